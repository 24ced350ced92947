//! The `breakwater-origin` binary: parse flags, start logging, build the server, serve until
//! SIGINT or SIGTERM.

use std::process::ExitCode;

use breakwater_origin::{Application, cli::Cli, shutdown, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = telemetry::init(cli.log_format) {
        eprintln!("breakwater-origin: cannot initialise logging: {error}");
        return ExitCode::FAILURE;
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The whole chain: "cannot listen on …: Address already in use".
            let mut reason = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                reason.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            tracing::error!(error = %reason, "breakwater-origin stopped with an error");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let app = Application::build(cli.settings()).await?;
    let addr = app.local_addr();
    tracing::info!(%addr, "listening on http://{addr}");
    app.run_until(shutdown::signal()).await?;
    tracing::info!("shut down cleanly");
    Ok(())
}
