//! `fleetgate`: the gateway binary. `fleetgate serve` runs until SIGINT or SIGTERM, then
//! shuts down cleanly (the store writer commits what it holds).

use clap::{Parser, Subcommand};
use gateway::{Config, Gateway, ServeArgs};

/// mimalloc instead of glibc's malloc: the ingest path allocates on one thread and frees on
/// another (sessions, actors, the store writer), where glibc spent a third of the gateway's
/// CPU in `_int_malloc`, `_int_free` and `malloc_consolidate` (perf, 1,000 TLS units).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run the gateway (MQTT transport, ingest, HTTP control API).
    Serve(Box<ServeArgs>),
    /// Offline administration of a stopped gateway's data dir.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Gives the bootstrap platform_admin a new token (the old one stops working) and
    /// writes it to `{data_dir}/bootstrap-token`. The gateway must be stopped: it holds
    /// the database's lock.
    ResetToken {
        #[arg(long, env = "FLEETGATE_DATA_DIR")]
        data_dir: std::path::PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let Cli { command } = Cli::parse();
    match command {
        Command::Serve(args) => {
            raise_open_file_limit();
            let config = Config::resolve(&args)?;
            let gateway = Gateway::start(config)?;
            println!("Fleetgate console: {}", gateway.ready.console_url());
            wait_for_signal()?;
            gateway.shutdown();
            Ok(())
        }
        Command::Admin(AdminCommand::ResetToken { data_dir }) => {
            let file = gateway::reset_platform_token(&data_dir)?;
            println!("new platform_admin token written to {}", file.display());
            Ok(())
        }
    }
}

/// Every unit's connection is a file descriptor, and the usual soft limit (1,024 or a few
/// thousand) would refuse units long before memory or CPU run out. Raising the soft limit
/// to the hard one is what the hard limit is for; raising the hard limit is left to the
/// operator (systemd `LimitNOFILE=`, `ulimit -Hn`), and the startup log says what we got so
/// the capacity is never a surprise.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(
            open_files = limit,
            "open file limit (caps MQTT connections)"
        ),
        Err(error) => tracing::warn!(%error, "could not raise the open file limit"),
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
