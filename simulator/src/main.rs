//! `fleetgate-sim`: the simulator's command line, for load and correctness runs against a
//! gateway started by hand or by a benchmark script. All logic lives in the library; the
//! `cli` module only turns flags into a scenario's config and its report into output.

mod cli;

/// mimalloc, as the gateway: a thousand units' tasks allocate and free packets across the
/// runtime's threads, where glibc's malloc took about a tenth of the simulator's CPU (perf,
/// `ingest` at 1,000 TLS units), CPU the gateway under test shares on a small machine.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The ingest baseline embeds a bare rumqttd, which logs an ERROR line for every
                // ordinary disconnect; its state is in the report instead.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,rumqttd=off")),
        )
        .init();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("fleetgate-sim: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("fleetgate-sim: {error:#}");
            ExitCode::from(1)
        }
    }
}
