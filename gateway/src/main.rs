//! `fleetgate`: the gateway binary. `fleetgate serve` runs until SIGINT or SIGTERM, then
//! shuts down cleanly (the store writer commits what it holds).

use clap::{Parser, Subcommand};
use gateway::{Config, Gateway, ServeArgs};

#[derive(Debug, Parser)]
#[command(
    name = "fleetgate",
    version,
    about = "Telematics gateway for fleets of machines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (MQTT broker, ingest, HTTP control API).
    Serve(ServeArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rumqttd=warn".into()),
        )
        .init();
    let Cli { command } = Cli::parse();
    match command {
        Command::Serve(args) => {
            let config = Config::resolve(&args)?;
            let gateway = Gateway::start(config)?;
            wait_for_signal()?;
            gateway.shutdown();
            Ok(())
        }
    }
}

fn wait_for_signal() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        Ok(())
    })
}
