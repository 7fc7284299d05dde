use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = webdial::cli::Cli::parse();
    webdial::logging::init();
    webdial::cli::run(cli).await
}
