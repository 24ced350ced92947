//! The `breakwater-origin` binary: parse flags, then either serve (start logging, build the
//! server, serve until SIGINT or SIGTERM) or run a `dead-letters` command.

use std::error::Error;
use std::process::ExitCode;

use breakwater_origin::cli::{Cli, Command};
use breakwater_origin::outbox::{self, command::DeadLettersCommand};
use breakwater_origin::{Application, shutdown, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command() {
        Command::Serve => serve(cli).await,
        Command::DeadLetters(command) => dead_letters(&command, &cli.database_url).await,
    }
}

async fn serve(cli: Cli) -> ExitCode {
    if let Err(error) = telemetry::init(cli.log_format) {
        eprintln!("breakwater-origin: cannot initialise logging: {error}");
        return ExitCode::FAILURE;
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %chain(&*error), "breakwater-origin stopped with an error");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    let app = Application::build(cli.settings()).await?;
    let addr = app.local_addr();
    tracing::info!(%addr, "listening on http://{addr}");
    app.run_until(shutdown::signal()).await?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Output on stdout, errors on stderr, no log lines: a command for people and scripts.
async fn dead_letters(command: &DeadLettersCommand, database_url: &str) -> ExitCode {
    let mut stdout = std::io::stdout();
    let now = outbox::system_clock();
    match outbox::command::run(command, database_url, now, &mut stdout).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("breakwater-origin: {}", chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// The whole chain: "cannot listen on …: Address already in use".
fn chain(error: &dyn Error) -> String {
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        reason.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    reason
}
