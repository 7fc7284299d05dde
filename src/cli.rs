//! The command line: `serve`, `check`, `render`, `dial`, `log` (the dial
//! log), `watch` (a running gateway's call events), `standin` (the
//! stand-in PBX on its own), `presets` and `new` (starting a branch). Arguments are parsed by clap; each
//! subcommand asks [`crate::app`] (or [`crate::follow`]) for what it needs
//! and returns an exit code. No dial
//! logic and no assembly live here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::app;
use crate::call::Gateway;
use crate::call::input::ActionInput;
use crate::guard::keys::Credential;

/// Where `serve --demo` starts the stand-in PBX; the shipped demo profiles point here.
pub const DEMO_PBX: &str = "127.0.0.1:8089";
/// The gateway `watch` reads when `--url` is not given: `serve`'s default address.
pub const DEFAULT_WATCH_URL: &str = "http://127.0.0.1:8080";
/// The demo branch whose PBX (the stand-in) sends call events, and the
/// secret `profiles/demo-voispeed.yaml` sets for them.
pub const DEMO_EVENTS_BRANCH: &str = "demo-voispeed";
pub const DEMO_EVENTS_SECRET: &str = "demo-events-secret";
/// How far apart the demo PBX's events are: slow enough to watch a call's life.
pub const DEMO_EVENTS_PACE: std::time::Duration = std::time::Duration::from_secs(1);
/// The settings file read when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "webdial.yaml";

/// Writes a line to stdout, ignoring a closed pipe: `webdial log | head`
/// must end quietly, not panic as `println!` does.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

#[derive(Debug, Parser)]
#[command(name = "webdial", version, about = "A web-dial gateway: one dial endpoint for every branch's phone system")]
pub struct Cli {
    /// Server settings file (default webdial.yaml); profiles are found relative to it.
    #[arg(long, global = true, env = "WEBDIAL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on (overrides `listen` in the config).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Also run the stand-in PBX (default 127.0.0.1:8089), for trying webdial without a PBX.
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEMO_PBX)]
        demo: Option<SocketAddr>,
        /// Serve a non-loopback address without API keys (only behind something that authenticates).
        #[arg(long)]
        no_auth: bool,
    },
    /// Check every profile; print problems as FILE:LINE:COL: message; exit 1 if any.
    Check,
    /// List the presets a branch can extend, with the variables each needs and its actions.
    Presets {
        /// Machine-readable: a JSON array, one object per preset.
        #[arg(long)]
        json: bool,
    },
    /// Write a starter profile, DIR/BRANCH.yaml, extending a preset; never overwrites.
    New {
        /// The new branch's name (letters, digits, - _ .).
        branch: String,
        /// The preset to extend (as `webdial presets` lists them).
        #[arg(long)]
        preset: String,
        /// The profiles folder (default: the one in the config).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the exact request an action would send (secrets as ***). Sends nothing.
    Render(ActionArgs),
    /// Send an action (a dial by default) and print the JSON result; exit 0 iff it is ok.
    Dial(ActionArgs),
    /// List the dial log (`data:` in the config), newest first.
    Log(LogArgs),
    /// Print a running gateway's call events, one line each, until Ctrl-C.
    Watch {
        /// The gateway.
        #[arg(long, default_value = DEFAULT_WATCH_URL)]
        url: String,
        /// An API key (when the gateway has keys): one that may see the branches watched.
        #[arg(long, env = "WEBDIAL_KEY", hide_env_values = true)]
        key: Option<String>,
        /// Only this branch's events.
        #[arg(long)]
        branch: Option<String>,
        /// Only this extension's events.
        #[arg(long, value_name = "EXT")]
        extension: Option<String>,
    },
    /// Run only the stand-in PBX: every system it speaks, or one (`--system`).
    Standin {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = DEMO_PBX)]
        listen: SocketAddr,
        /// Speak only this system (its preset's name; `--list` shows them).
        #[arg(long, value_name = "NAME")]
        system: Option<String>,
        /// List the systems and exit.
        #[arg(long)]
        list: bool,
        /// Answer without recording requests (for load tests).
        #[arg(long)]
        no_record: bool,
    },
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only this branch.
    #[arg(long)]
    pub branch: Option<String>,
    /// Only this extension.
    #[arg(long, value_name = "EXT")]
    pub ext: Option<String>,
    /// Only this number (as received or as dialled).
    #[arg(long)]
    pub number: Option<String>,
    /// Only this action (dial, hangup, …).
    #[arg(long)]
    pub action: Option<String>,
    /// Only entries since a time (2026-11-23T14:00:00Z) or for a duration back (1h, 7d).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// At most this many entries.
    #[arg(long, default_value_t = crate::calls::DEFAULT_LIMIT as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
    /// One JSON object per line (the shape of GET /v1/calls).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    /// The branch (profile file name without .yaml).
    #[arg(long)]
    pub branch: String,
    /// The extension: for a dial, the one that rings first.
    #[arg(long, value_name = "EXT")]
    pub ext: Option<String>,
    /// The number: for a dial, the one to connect the extension to; for transfer/divert, the target.
    #[arg(long)]
    pub number: Option<String>,
    /// The action to run (dial, hangup, transfer, … or one under `actions:`).
    #[arg(long, default_value = "dial")]
    pub action: String,
    /// Caller id to present, where the PBX supports it.
    #[arg(long)]
    pub caller_id: Option<String>,
    /// Your own id for this request, passed to the PBX where it supports one.
    #[arg(long)]
    pub external_id: Option<String>,
    /// The PBX's id of the call an action applies to (hangup, transfer…).
    #[arg(long)]
    pub call_id: Option<String>,
    /// DTMF digits for `dtmf` (0-9 * # A-D).
    #[arg(long)]
    pub digits: Option<String>,
    /// An option the action declares, as NAME=VALUE (repeatable).
    #[arg(long = "option", value_name = "NAME=VALUE", value_parser = parse_option)]
    pub options: Vec<(String, String)>,
}

fn parse_option(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("{s:?} is not NAME=VALUE"))
}

impl ActionArgs {
    fn input(&self, dry_run: bool) -> ActionInput {
        ActionInput {
            branch: Some(self.branch.clone()),
            action: Some(self.action.clone()),
            extension: self.ext.clone(),
            number: self.number.clone(),
            caller_id: self.caller_id.clone(),
            external_id: self.external_id.clone(),
            call_id: self.call_id.clone(),
            digits: self.digits.clone(),
            options: self.options.iter().cloned().collect(),
            idempotency_key: None,
            dry_run,
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    let (config, explicit) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    match cli.command {
        Command::Check => check(&config, explicit),
        Command::Presets { json } => crate::onboard::presets(&config, explicit, json),
        Command::New { branch, preset, dir } => {
            crate::onboard::new_branch(&config, explicit, &branch, &preset, dir.as_deref())
        }
        Command::Serve { listen, demo, no_auth } => serve(&config, explicit, listen, demo, no_auth).await,
        Command::Render(args) => render(&config, explicit, &args).await,
        Command::Dial(args) => dial(&config, explicit, &args).await,
        Command::Log(args) => log(&config, explicit, &args),
        Command::Standin { listen, system, list, no_record } => standin(listen, system, list, !no_record).await,
        Command::Watch { url, key, branch, extension } => {
            watch(crate::follow::Options { url, key, branch, extension }).await
        }
    }
}

fn load(config: &Path, explicit: bool) -> app::Loaded {
    let env = |name: &str| std::env::var(name).ok();
    app::load(config, explicit, &env)
}

fn check(config: &Path, explicit: bool) -> ExitCode {
    let loaded = load(config, explicit);
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    if loaded.diagnostics.is_empty() {
        out!("ok: {} branches", loaded.profiles.len());
        ExitCode::SUCCESS
    } else {
        let failed = loaded.profiles.broken_all().count();
        eprintln!(
            "{} problem(s); {} branch(es) loaded, {failed} failed",
            loaded.diagnostics.len(),
            loaded.profiles.len()
        );
        ExitCode::FAILURE
    }
}

/// Builds a gateway for one-shot commands; any problem that stops it is
/// printed. Without `record`, the dial log stays in memory (`render` sends
/// nothing, so it must not create or touch the file).
fn gateway(config: &Path, explicit: bool, record: bool) -> Result<Arc<Gateway>, ExitCode> {
    let loaded = load(config, explicit);
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    let Some(mut settings) = loaded.settings else { return Err(ExitCode::FAILURE) };
    if !record {
        settings.data = crate::settings::Data::Memory;
    }
    if loaded.profiles.is_empty() && !loaded.diagnostics.is_empty() {
        return Err(ExitCode::FAILURE);
    }
    app::build(settings, loaded.profiles).map_err(|e| {
        eprintln!("{e}");
        ExitCode::FAILURE
    })
}

async fn render(config: &Path, explicit: bool, args: &ActionArgs) -> ExitCode {
    let gw = match gateway(config, explicit, false) {
        Ok(g) => g,
        Err(code) => return code,
    };
    let result = gw.run(Credential::Local, args.input(true)).await;
    if let Some(uri) = &result.uri {
        out!("open {uri}");
        out!("(a client-side URI: the caller's softphone opens it; nothing is sent)");
        return ExitCode::SUCCESS;
    }
    let Some(req) = &result.request else {
        eprintln!("{}", result.message.as_deref().unwrap_or(result.status.as_str()));
        return ExitCode::FAILURE;
    };
    out!("{} {}", req.method, req.url);
    for (k, v) in &req.headers {
        out!("{k}: {v}");
    }
    if let Some(body) = &req.body {
        out!();
        out!("{body}");
    }
    ExitCode::SUCCESS
}

async fn dial(config: &Path, explicit: bool, args: &ActionArgs) -> ExitCode {
    let gw = match gateway(config, explicit, true) {
        Ok(g) => g,
        Err(code) => return code,
    };
    let result = gw.run(Credential::Local, args.input(false)).await;
    match serde_json::to_string_pretty(&result) {
        Ok(text) => out!("{text}"),
        Err(e) => eprintln!("{e}"),
    }
    if result.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn log(config: &Path, explicit: bool, args: &LogArgs) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let settings = match crate::settings::Settings::load(config, explicit, &env) {
        Ok(s) => s,
        Err(diagnostics) => {
            for d in diagnostics {
                eprintln!("{d}");
            }
            return ExitCode::FAILURE;
        }
    };
    let mut query = crate::calls::Query {
        branch: args.branch.clone(),
        extension: args.ext.as_deref().map(crate::calls::extension_key),
        number: args.number.clone(),
        action: args.action.clone(),
        limit: usize::try_from(args.limit).unwrap_or(usize::MAX),
        ..Default::default()
    };
    if let Some(since) = &args.since {
        match crate::calls::parse_since(since, std::time::SystemTime::now()) {
            Ok(t) => query.since = Some(t),
            Err(e) => {
                eprintln!("--since: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    match app::read_log(&settings, &query) {
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Ok(None) => {
            eprintln!("{}: no dial log yet (nothing has been recorded)", settings.data);
            ExitCode::SUCCESS
        }
        Ok(Some(calls)) => {
            for call in &calls {
                let view = crate::calls::CallView::from(call);
                if args.json {
                    match serde_json::to_string(&view) {
                        Ok(line) => out!("{line}"),
                        Err(e) => eprintln!("{e}"),
                    }
                } else {
                    out!("{}", log_line(&view));
                }
            }
            ExitCode::SUCCESS
        }
    }
}

/// One entry as a line for people: when, id, where, what, how it ended.
fn log_line(c: &crate::calls::CallView<'_>) -> String {
    let mut line = format!("{}  {}  {}  {}  ext {}", c.created, c.id, c.branch, c.action, c.extension);
    if !c.number.is_empty() {
        line.push_str(&format!("  number {}", c.number));
        if let Some(d) = c.dialled.filter(|d| *d != c.number) {
            line.push_str(&format!(" ({d})"));
        }
    }
    line.push_str(&format!("  {}", c.status.as_str()));
    if let Some(id) = c.call_id {
        line.push_str(&format!("  call_id {id}"));
    }
    if let Some(d) = c.dial_id {
        line.push_str(&format!("  on {d}"));
    }
    if let Some(m) = c.message {
        line.push_str(&format!("  {m:?}"));
    }
    line
}

async fn serve(
    config: &Path,
    explicit: bool,
    listen: Option<SocketAddr>,
    demo: Option<SocketAddr>,
    no_auth: bool,
) -> ExitCode {
    let hangups = Arc::new(tokio::sync::Notify::new());
    let shutdown = crate::signals::shutdown_signal_reloading(hangups.clone());
    crate::net::raise_fd_limit();
    let mut demo_pbx = None;
    if let Some(addr) = demo {
        match crate::standin::StandIn::bind(&addr.to_string()).await {
            Ok(s) => {
                tracing::info!("stand-in PBX (demo) listening on {}", s.url());
                demo_pbx = Some(s);
            }
            Err(e) => {
                tracing::error!("cannot start the stand-in PBX on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let loaded = load(config, explicit);
    for d in &loaded.diagnostics {
        tracing::error!("{d}");
    }
    let Some(settings) = loaded.settings else { return ExitCode::FAILURE };
    if loaded.profiles.is_empty() {
        tracing::error!("no branch loaded: nothing to serve (run `webdial check`)");
        return ExitCode::FAILURE;
    }
    if !loaded.diagnostics.is_empty() {
        tracing::warn!(
            "{} problem(s) in profiles: the branches affected answer unknown_branch until fixed",
            loaded.diagnostics.len()
        );
    }
    let addr = listen.unwrap_or(settings.listen);
    match app::exposure(&settings, addr, no_auth) {
        Ok(None) => {}
        Ok(Some(warning)) => tracing::warn!("{warning}"),
        Err(refusal) => {
            tracing::error!("{refusal}");
            return ExitCode::FAILURE;
        }
    }
    let listener = match crate::net::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let (Some(pbx), Ok(at)) = (&demo_pbx, listener.local_addr()) {
        // The demo PBX tells the gateway about its calls, as a real one is set up to.
        let host = if at.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], at.port())) } else { at };
        let url = format!("http://{host}/v1/events/{DEMO_EVENTS_BRANCH}?secret={DEMO_EVENTS_SECRET}");
        pbx.notify_to(&url, DEMO_EVENTS_PACE);
        tracing::info!(
            "the stand-in PBX sends {DEMO_EVENTS_BRANCH}'s call events to the gateway (`webdial watch` shows them)"
        );
    }
    let branches = loaded.profiles.len();
    // Requests in progress at shutdown may run to their profile's timeout.
    let longest = loaded.profiles.iter().flat_map(|p| p.actions.iter().map(|(_, a)| a.timeout)).max();
    let grace = app::SHUTDOWN_GRACE.max(longest.unwrap_or_default() + std::time::Duration::from_secs(5));
    let gw = match app::build(settings, loaded.profiles) {
        Ok(g) => g,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    app::release_load_garbage();
    let _reloading = app::reload_on(&gw, hangups);
    tracing::info!("webdial listening on http://{} with {branches} branches", listener.local_addr().unwrap_or(addr));
    match app::serve(gw, listener, shutdown, grace).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn standin(listen: SocketAddr, system: Option<String>, list: bool, record: bool) -> ExitCode {
    use crate::standin::{SYSTEMS, StandIn, find_system};
    if list {
        let width = SYSTEMS.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in SYSTEMS {
            out!("{:width$}  {}", s.name, s.about);
        }
        return ExitCode::SUCCESS;
    }
    let only = match system.as_deref().map(|name| (name, find_system(name))) {
        None => None,
        Some((_, Some(found))) => Some(found),
        Some((name, None)) => {
            let known: Vec<&str> = SYSTEMS.iter().map(|s| s.name).collect();
            eprintln!("webdial standin: no system named {name:?}; known: {}", known.join(", "));
            return ExitCode::from(2);
        }
    };
    let shutdown = crate::signals::shutdown_signal();
    let bound = match crate::net::bind(listen) {
        Ok(l) => StandIn::start_system(l, record, only),
        Err(e) => Err(e),
    };
    match bound {
        Ok(s) => {
            let speaks = only.map_or("every system", |o| o.name);
            tracing::info!("stand-in PBX ({speaks}) listening on {}", s.url());
            shutdown.await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("cannot listen on {listen}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn watch(options: crate::follow::Options) -> ExitCode {
    let mut out = std::io::stdout();
    tokio::select! {
        r = crate::follow::run(&options, &mut out) => match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("webdial watch: {e}");
                ExitCode::FAILURE
            }
        },
        () = crate::signals::shutdown_signal() => ExitCode::SUCCESS,
    }
}
