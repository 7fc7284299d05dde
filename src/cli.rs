//! The command line (SPEC §4): `serve`, `check`, `render`, `dial`, and
//! `standin` (the stand-in PBX on its own). Arguments are parsed by clap;
//! each subcommand loads what it needs and returns an exit code.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::call::{DialInput, Gateway, Settings};
use crate::guard::keys::Credential;
use crate::pbx::client::Dispatcher;
use crate::profile::{self, Profiles};
use crate::settings::Config;
use crate::settings::diagnostic::Diagnostic;

/// Where `serve --demo` starts the stand-in PBX; the shipped demo profiles point here.
pub const DEMO_PBX: &str = "127.0.0.1:8089";

#[derive(Debug, Parser)]
#[command(name = "webdial", version, about = "A web-dial gateway: one dial endpoint for every branch's phone system")]
pub struct Cli {
    /// Server settings file; profiles are found relative to it.
    #[arg(long, global = true, default_value = "webdial.yaml", env = "WEBDIAL_CONFIG")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on (overrides `listen` in the config).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Also run the stand-in PBX (default 127.0.0.1:8089), for trying webdial without a PBX.
        #[arg(long, num_args = 0..=1, default_missing_value = DEMO_PBX)]
        demo: Option<SocketAddr>,
        /// Serve a non-loopback address without API keys (only behind something that authenticates).
        #[arg(long)]
        no_auth: bool,
    },
    /// Check every profile; print problems as FILE:LINE:COL: message; exit 1 if any.
    Check,
    /// Print the exact request a dial would send (secrets as ***). Sends nothing.
    Render(DialArgs),
    /// Send a dial and print the JSON result; exit 0 iff it is ok.
    Dial(DialArgs),
    /// Run only the stand-in PBX (VOIspeed SERI, Click2Call, IQX-style endpoints).
    Standin {
        #[arg(long, default_value = DEMO_PBX)]
        listen: SocketAddr,
        /// Answer without recording requests (for load tests).
        #[arg(long)]
        no_record: bool,
    },
}

#[derive(Debug, Args)]
pub struct DialArgs {
    #[arg(long)]
    pub branch: String,
    /// The extension that rings first.
    #[arg(long)]
    pub ext: String,
    /// The number to connect it to.
    #[arg(long)]
    pub number: String,
    #[arg(long, default_value = "dial")]
    pub action: String,
    #[arg(long)]
    pub caller_id: Option<String>,
    #[arg(long)]
    pub external_id: Option<String>,
}

impl DialArgs {
    fn input(&self, dry_run: bool) -> DialInput {
        DialInput {
            credential: Credential::Local,
            idempotency_key: None,
            branch: Some(self.branch.clone()),
            action: Some(self.action.clone()),
            extension: Some(self.ext.clone()),
            number: Some(self.number.clone()),
            caller_id: self.caller_id.clone(),
            external_id: self.external_id.clone(),
            dry_run,
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check => check(&cli.config),
        Command::Serve { listen, demo, no_auth } => serve(&cli.config, listen, demo, no_auth).await,
        Command::Render(args) => render(&cli.config, &args).await,
        Command::Dial(args) => dial(&cli.config, &args).await,
        Command::Standin { listen, no_record } => standin(listen, !no_record).await,
    }
}

/// Loads settings and profiles; all problems come back together.
pub fn load(config: &Path) -> (Option<Config>, Profiles, Vec<Diagnostic>) {
    let explicit = config.as_os_str() != "webdial.yaml";
    let env = |name: &str| std::env::var(name).ok();
    match Config::load(config, explicit, &env) {
        Err(diags) => (None, Profiles::default(), diags),
        Ok(cfg) => {
            let (profiles, diags) = profile::load_dir(&cfg.profiles);
            (Some(cfg), profiles, diags)
        }
    }
}

fn check(config: &Path) -> ExitCode {
    let (_, profiles, diags) = load(config);
    for d in &diags {
        eprintln!("{d}");
    }
    if diags.is_empty() {
        println!("ok: {} branches", profiles.len());
        ExitCode::SUCCESS
    } else {
        eprintln!("{} problem(s); {} branch(es) loaded", diags.len(), profiles.len());
        ExitCode::FAILURE
    }
}

/// Builds a gateway for one-shot commands; any load problem is fatal there.
fn gateway(config: &Path) -> Result<Arc<Gateway>, ExitCode> {
    let (cfg, profiles, diags) = load(config);
    for d in &diags {
        eprintln!("{d}");
    }
    let Some(cfg) = cfg else { return Err(ExitCode::FAILURE) };
    if profiles.is_empty() && !diags.is_empty() {
        return Err(ExitCode::FAILURE);
    }
    let dispatcher = Dispatcher::for_profiles(&profiles).map_err(|e| {
        eprintln!("{e}");
        ExitCode::FAILURE
    })?;
    Ok(Arc::new(Gateway::new(profiles, dispatcher, Settings { keys: cfg.keys, dedupe_window: cfg.dedupe_window })))
}

async fn render(config: &Path, args: &DialArgs) -> ExitCode {
    let gw = match gateway(config) {
        Ok(g) => g,
        Err(code) => return code,
    };
    let result = gw.dial(args.input(true)).await;
    if let Some(uri) = &result.uri {
        println!("open {uri}");
        println!("(a client-side URI: the caller's softphone opens it; nothing is sent)");
        return ExitCode::SUCCESS;
    }
    let Some(req) = &result.request else {
        eprintln!("{}", result.message.as_deref().unwrap_or(result.status.as_str()));
        return ExitCode::FAILURE;
    };
    println!("{} {}", req.method, req.url);
    for (k, v) in &req.headers {
        println!("{k}: {v}");
    }
    if let Some(body) = &req.body {
        println!();
        println!("{body}");
    }
    ExitCode::SUCCESS
}

async fn dial(config: &Path, args: &DialArgs) -> ExitCode {
    let gw = match gateway(config) {
        Ok(g) => g,
        Err(code) => return code,
    };
    let result = gw.dial(args.input(false)).await;
    match serde_json::to_string_pretty(&result) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("{e}"),
    }
    if result.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn serve(config: &Path, listen: Option<SocketAddr>, demo: Option<SocketAddr>, no_auth: bool) -> ExitCode {
    if let Some(addr) = demo {
        match crate::standin::StandIn::bind(&addr.to_string()).await {
            Ok(s) => tracing::info!("stand-in PBX (demo) listening on {}", s.url()),
            Err(e) => {
                tracing::error!("cannot start the stand-in PBX on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let (cfg, profiles, diags) = load(config);
    for d in &diags {
        tracing::error!("{d}");
    }
    let Some(cfg) = cfg else { return ExitCode::FAILURE };
    if profiles.is_empty() {
        tracing::error!("no branch loaded: nothing to serve (run `webdial check`)");
        return ExitCode::FAILURE;
    }
    if !diags.is_empty() {
        tracing::warn!(
            "{} problem(s) in profiles: the branches affected answer unknown_branch until fixed",
            diags.len()
        );
    }
    let addr = listen.unwrap_or(cfg.listen);
    if cfg.keys.is_empty() && !addr.ip().is_loopback() {
        if !no_auth {
            tracing::error!(
                "refusing to serve {addr} without API keys: anyone who can reach it could place calls on your lines. \
                 Add `keys:` to {}, listen on a loopback address, or pass --no-auth if something in front of webdial authenticates callers",
                cfg.file.display()
            );
            return ExitCode::FAILURE;
        }
        tracing::warn!(
            "!!! --no-auth: serving {addr} WITHOUT API keys. Anyone who can reach this address can place calls. !!!"
        );
    }
    let dispatcher = match Dispatcher::for_profiles(&profiles) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match crate::api::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let branches = profiles.len();
    release_load_garbage();
    let settings = Settings { keys: cfg.keys, dedupe_window: cfg.dedupe_window };
    let gw = Arc::new(Gateway::new(profiles, dispatcher, settings));
    tracing::info!("webdial listening on http://{} with {branches} branches", listener.local_addr().unwrap_or(addr));
    match crate::api::serve(listener, gw, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loading parses every file into short-lived values; glibc keeps the freed
/// memory mapped unless asked. Returning it keeps an idle gateway with
/// 1,000 branches small.
fn release_load_garbage() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the OS; it has no
    // preconditions and touches no memory the program still uses.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn standin(listen: SocketAddr, record: bool) -> ExitCode {
    let bound = match crate::api::bind(listen) {
        Ok(l) => crate::standin::StandIn::start_with(l, record),
        Err(e) => Err(e),
    };
    match bound {
        Ok(s) => {
            tracing::info!("stand-in PBX listening on {}", s.url());
            shutdown_signal().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("cannot listen on {listen}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
