//! `nox-sync`: run the server (`serve`, the default), apply migrations (`migrate`), or run only the
//! embedded database for several nodes (`database`).

use anyhow::Context;
use clap::Parser;
use nox_server::config::{Cli, Command};
use nox_server::startup::Application;

/// mimalloc instead of the system allocator: a document allocates and frees one small block per
/// Yjs struct, and a large transaction (a restore replacing 20k entities, a cold load) spends
/// half its time in glibc's malloc/free otherwise (bench/README.md, issue 14).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    nox_server::telemetry::init(&cli.config.log, &cli.config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(cli.config)
                .await
                .context("starting nox-sync")?;
            app.run_until_stopped(shutdown_signal()).await?;
        }
        Command::Migrate => {
            // Building the application applies migrations; then stop without serving.
            let mut config = cli.config;
            config.addr = "127.0.0.1:0".parse()?;
            let app = Application::build(config)
                .await
                .context("applying migrations")?;
            tracing::info!("migrations applied");
            app.close().await;
        }
        Command::Database => {
            // The one line on stdout, for scripts that start nodes on this database.
            let announce = |url: &str| {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "DATABASE_URL={url}");
                let _ = out.flush();
            };
            let url = nox_server::startup::serve_database(&cli.config, announce, shutdown_signal())
                .await
                .context("running the embedded database")?;
            tracing::info!(%url, "embedded PostgreSQL stopped");
        }
    }
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
