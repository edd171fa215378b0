//! `fleetgate-sim`: the simulator's command line, for load and correctness runs against a
//! gateway started by hand or by a benchmark script. All logic lives in the library; this
//! file only turns flags into an `IngestConfig` and the report into output.
//!
//! Exit status: 0 when the run was clean, 2 when it ran but found problems (missing or
//! duplicated points, errors), 1 when it could not run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use simulator::{run_ingest, wait_ready, BrokerAddr, IngestConfig};

#[derive(Debug, Parser)]
#[command(name = "fleetgate-sim", version, about = "Fleetgate device simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Units publish telemetry at a fixed rate; reports throughput, latencies and whether
    /// every acknowledged point was stored exactly once.
    Ingest(IngestArgs),
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// The gateway's data directory: read ready.json and bootstrap-token from it.
    #[arg(long, env = "FLEETGATE_DATA_DIR", conflicts_with_all = ["http", "mqtt"])]
    data_dir: Option<PathBuf>,
    /// Gateway HTTP root, e.g. http://127.0.0.1:8080 (with --mqtt and --token).
    #[arg(long, requires = "mqtt")]
    http: Option<String>,
    /// Broker address HOST:PORT (with --http).
    #[arg(long, requires = "http")]
    mqtt: Option<BrokerAddr>,
    /// A platform_admin token; defaults to the data dir's bootstrap-token.
    #[arg(long, env = "FLEETGATE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Connect over mutual TLS with per-device certificates; the name must match the
    /// gateway certificate (e.g. localhost). Without it, the plain listener is used.
    #[arg(long)]
    tls_server_name: Option<String>,
    /// Number of simulated units (1..=100000).
    #[arg(long, default_value_t = 10)]
    units: usize,
    /// Points per second per unit.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// How long the units publish, in seconds (at most 3600).
    #[arg(long = "duration-s", default_value_t = 10)]
    duration_s: u64,
    /// Setup calls and connection attempts in flight at once.
    #[arg(long, default_value_t = 32)]
    parallelism: usize,
    /// Seconds to wait for acknowledgements, live delivery and history to catch up.
    #[arg(long = "settle-s", default_value_t = 30)]
    settle_s: u64,
    /// Seconds to wait for ready.json.
    #[arg(long = "ready-timeout-s", default_value_t = 30)]
    ready_timeout_s: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("fleetgate-sim: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("fleetgate-sim: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Ingest(args) => ingest(args).await,
    }
}

async fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let config = ingest_config(&args).await?;
    config.validate()?;
    let report = run_ingest(&config).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Resolves where the gateway is (data dir or explicit flags) and builds the settings.
async fn ingest_config(args: &IngestArgs) -> anyhow::Result<IngestConfig> {
    let (http_base, mqtt, token) = match (&args.data_dir, &args.http, &args.mqtt) {
        (Some(data_dir), _, _) => {
            let endpoints = wait_ready(data_dir, Duration::from_secs(args.ready_timeout_s))
                .await
                .with_context(|| format!("waiting for the gateway in {}", data_dir.display()))?;
            let mqtt = if args.tls_server_name.is_some() {
                endpoints
                    .mqtt_tls
                    .context("the gateway reports no MQTT TLS listener")?
            } else {
                match endpoints.mqtt_plain {
                    Some(plain) => plain,
                    None => bail!(
                        "the gateway has no plain MQTT listener; pass --tls-server-name \
                         (e.g. localhost) to use its TLS listener"
                    ),
                }
            };
            let token = args
                .token
                .clone()
                .or(endpoints.bootstrap_token)
                .context("no --token given and the data dir has no bootstrap-token")?;
            (endpoints.http_base, mqtt, token)
        }
        (None, Some(http), Some(mqtt)) => {
            let token = args
                .token
                .clone()
                .context("--http/--mqtt need --token (a platform_admin token)")?;
            (http.clone(), mqtt.clone(), token)
        }
        _ => bail!("give either --data-dir or --http, --mqtt and --token"),
    };
    Ok(IngestConfig {
        tls_server_name: args.tls_server_name.clone(),
        units: args.units,
        rate_per_unit: args.rate,
        duration: Duration::from_secs(args.duration_s),
        parallelism: args.parallelism,
        settle_timeout: Duration::from_secs(args.settle_s),
        quiet: args.quiet,
        ..IngestConfig::new(http_base, mqtt, token)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn explicit_endpoints_parse() {
        let cli = Cli::try_parse_from([
            "fleetgate-sim",
            "ingest",
            "--http",
            "http://127.0.0.1:8080",
            "--mqtt",
            "127.0.0.1:1883",
            "--token",
            "t",
            "--units",
            "3",
            "--duration-s",
            "5",
        ])
        .expect("parses");
        let Command::Ingest(args) = cli.command;
        assert_eq!(args.units, 3);
        assert_eq!(args.mqtt.map(|addr| addr.port), Some(1883));
    }

    #[test]
    fn data_dir_excludes_explicit_endpoints() {
        let outcome = Cli::try_parse_from([
            "fleetgate-sim",
            "ingest",
            "--data-dir",
            "/tmp/x",
            "--http",
            "http://127.0.0.1:8080",
            "--mqtt",
            "127.0.0.1:1883",
        ]);
        assert!(outcome.is_err());
    }

    #[tokio::test]
    async fn too_long_runs_are_refused_before_connecting() {
        let cli = Cli::try_parse_from([
            "fleetgate-sim",
            "ingest",
            "--http",
            "http://127.0.0.1:1",
            "--mqtt",
            "127.0.0.1:1",
            "--token",
            "t",
            "--duration-s",
            "3601",
        ])
        .expect("parses");
        let Command::Ingest(args) = cli.command;
        let config = ingest_config(&args).await.expect("config");
        let error = config.validate().expect_err("refused");
        assert!(error.to_string().contains("duration"), "{error}");
    }
}
