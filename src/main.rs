use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = webdial::cli::Cli::parse();
    // The server logs every dial; one-shot commands keep their output clean.
    let level = match cli.command {
        webdial::cli::Command::Serve { .. } | webdial::cli::Command::Standin { .. } => "info",
        // The audit line is written for one-shot dials too.
        _ => "warn,webdial::audit=info",
    };
    let _flush_logs_on_exit = webdial::logging::init(level);
    webdial::cli::run(cli).await
}
