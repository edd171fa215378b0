//! `fleetgate-sim`: the simulator's command line, for load and correctness runs against a
//! gateway started by hand or by a benchmark script. All logic lives in the library; this
//! file only turns flags into a scenario's config and its report into output.
//!
//! Exit status: 0 when the run was clean, 2 when it ran but found problems (missing or
//! duplicated points, points past a grant's cut-off, support access that did not hold or
//! did not end when answered, keys that did not reach the units as answered or decisions
//! that differ from the key API, errors), 1 when it could not run (or its report could not
//! be written).
//!
//! `ingest` also writes its report to `--report-dir` (default `reports/`): a JSON of the
//! figures and a self-contained HTML page with charts (see the library's `report` module).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use simulator::{
    run_ingest, run_keys, run_support, run_visibility, wait_ready, write_ingest_report, BrokerAddr,
    GatewayEndpoints, IngestConfig, KeysConfig, SupportConfig, Target, VisibilityConfig,
};

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
    /// An owner grants its assets to sub-accounts while units stream, then removes the grants
    /// one by one; reports removal latency and any point delivered past a removal.
    Visibility(VisibilityArgs),
    /// Support staff request access to accounts, their admins approve, decline and revoke,
    /// tech support opens and closes cases; reports whether each change held the moment it
    /// was answered, and the latencies. HTTP only.
    Support(SupportArgs),
    /// An owner creates, edits and deletes access keys while the units hold and ack their
    /// key sets; reports key propagation time to the units, and whether the answers'
    /// delivered/pending lists, the units' access decisions and the stored and live access
    /// events agree with the key API.
    Keys(KeysArgs),
}

/// Where the gateway is and who the simulator is there; shared by every scenario.
#[derive(Debug, Args)]
struct ConnectionArgs {
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
    /// Setup calls and connection attempts in flight at once.
    #[arg(long, default_value_t = 32)]
    parallelism: usize,
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

#[derive(Debug, Args)]
struct IngestArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Number of simulated units (1..=100000).
    #[arg(long, default_value_t = 10)]
    units: usize,
    /// Points per second per unit.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// How long the units publish, in seconds (at most 3600).
    #[arg(long = "duration-s", default_value_t = 10)]
    duration_s: u64,
    /// Seconds to wait for acknowledgements, live delivery and history to catch up.
    #[arg(long = "settle-s", default_value_t = 30)]
    settle_s: u64,
    /// Directory for the run's report, `ingest-<run_id>.json` and `ingest-<run_id>.html`
    /// (created when missing).
    #[arg(long = "report-dir", default_value = "reports")]
    report_dir: PathBuf,
    /// Process id of the gateway when it runs on this machine: its memory (VmRSS) is
    /// sampled each second. Without it the report's memory chart says "not measured".
    #[arg(long = "gateway-pid")]
    gateway_pid: Option<u32>,
}

#[derive(Debug, Args)]
struct VisibilityArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Number of simulated units, each with one asset (1..=10000).
    #[arg(long, default_value_t = 5)]
    units: usize,
    /// Sub-accounts that each receive every asset (1..=100; units × grantees ≤ 10000).
    #[arg(long, default_value_t = 2)]
    grantees: usize,
    /// Points per second per unit (at most 100).
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Seconds the units keep streaming after the last removal.
    #[arg(long = "settle-s", default_value_t = 3)]
    settle_s: u64,
    /// Seconds to wait for every grantee's first points and for the last acknowledgements.
    #[arg(long = "delivery-timeout-s", default_value_t = 30)]
    delivery_timeout_s: u64,
    /// Seed of the removal order, to repeat a run; random by default (the report shows it).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, Args)]
struct SupportArgs {
    /// The gateway's data directory: read ready.json and bootstrap-token from it.
    #[arg(long, env = "FLEETGATE_DATA_DIR", conflicts_with = "http")]
    data_dir: Option<PathBuf>,
    /// Gateway HTTP root, e.g. http://127.0.0.1:8080 (with --token).
    #[arg(long)]
    http: Option<String>,
    /// A platform_admin token; defaults to the data dir's bootstrap-token.
    #[arg(long, env = "FLEETGATE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Seconds to wait for ready.json.
    #[arg(long = "ready-timeout-s", default_value_t = 30)]
    ready_timeout_s: u64,
    /// Accounts taken through every flow (1..=1000).
    #[arg(long, default_value_t = 3)]
    accounts: usize,
    /// Accounts whose flows run at once.
    #[arg(long, default_value_t = 4)]
    parallelism: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct KeysArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Number of simulated units, each with one asset (1..=10000).
    #[arg(long, default_value_t = 10)]
    units: usize,
    /// Seconds a key change may take to reach every online unit.
    #[arg(long = "propagation-timeout-s", default_value_t = 30)]
    propagation_timeout_s: u64,
    /// Seconds the short-lived key lasts (2..=300); the run waits for it to end.
    #[arg(long = "short-lived-s", default_value_t = 5)]
    short_lived_s: u64,
    /// Seconds reported attempts may take to appear in history and on the live stream.
    #[arg(long = "event-timeout-s", default_value_t = 30)]
    event_timeout_s: u64,
    /// Keep every unit online (by default the last one is off while the first keys are
    /// created, then reconnects and must get the retained set).
    #[arg(long)]
    no_offline_unit: bool,
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
        Command::Ingest(args) => {
            let config = ingest_config(&args).await?;
            config.validate()?;
            let report = run_ingest(&config).await?;
            let clean = report.is_clean();
            if let Some(memory_error) = &report.timeline.memory_error {
                eprintln!("fleetgate-sim: gateway memory not measured: {memory_error}");
            }
            // A report that cannot be written does not hide the run's outcome: it is still
            // printed, and the failure to write makes the exit status 1.
            let written = write_ingest_report(&report, &args.report_dir);
            let code = output(&report, args.connection.json, clean)?;
            let written = written.context("writing the ingest report")?;
            eprintln!(
                "fleetgate-sim: report written to {} and {}",
                written.json.display(),
                written.html.display()
            );
            Ok(code)
        }
        Command::Visibility(args) => {
            let config = visibility_config(&args).await?;
            config.validate()?;
            let report = run_visibility(&config).await?;
            let clean = report.is_clean();
            output(&report, args.connection.json, clean)
        }
        Command::Support(args) => {
            let config = support_config(&args).await?;
            config.validate()?;
            let report = run_support(&config).await?;
            let clean = report.is_clean();
            output(&report, args.json, clean)
        }
        Command::Keys(args) => {
            let config = keys_config(&args).await?;
            config.validate()?;
            let report = run_keys(&config).await?;
            let clean = report.is_clean();
            output(&report, args.connection.json, clean)
        }
    }
}

/// Prints a report and turns its verdict into the exit status.
fn output<R: Serialize + std::fmt::Display>(
    report: &R,
    json: bool,
    clean: bool,
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!("{report}");
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Resolves where the gateway is: the data dir's ready.json (and bootstrap token), or the
/// explicit flags.
async fn connect(args: &ConnectionArgs) -> anyhow::Result<Target> {
    let (http_base, mqtt, token) = match (&args.data_dir, &args.http, &args.mqtt) {
        (Some(data_dir), _, _) => {
            let endpoints = gateway_in(data_dir, args.ready_timeout_s).await?;
            let token = token_or_bootstrap(args.token.as_deref(), &endpoints)?;
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
    Ok(Target {
        tls_server_name: args.tls_server_name.clone(),
        ..Target::new(http_base, mqtt, token)
    })
}

/// Waits for the gateway whose data directory is `data_dir` to be ready.
async fn gateway_in(data_dir: &Path, ready_timeout_s: u64) -> anyhow::Result<GatewayEndpoints> {
    wait_ready(data_dir, Duration::from_secs(ready_timeout_s))
        .await
        .with_context(|| format!("waiting for the gateway in {}", data_dir.display()))
}

/// The token given on the command line, else the data dir's bootstrap token.
fn token_or_bootstrap(token: Option<&str>, endpoints: &GatewayEndpoints) -> anyhow::Result<String> {
    token
        .map(str::to_owned)
        .or_else(|| endpoints.bootstrap_token.clone())
        .context("no --token given and the data dir has no bootstrap-token")
}

/// Like `connect`, for the scenarios that need only the HTTP port.
async fn support_config(args: &SupportArgs) -> anyhow::Result<SupportConfig> {
    let (http_base, token) = match (&args.data_dir, &args.http) {
        (Some(data_dir), _) => {
            let endpoints = gateway_in(data_dir, args.ready_timeout_s).await?;
            let token = token_or_bootstrap(args.token.as_deref(), &endpoints)?;
            (endpoints.http_base, token)
        }
        (None, Some(http)) => {
            let token = args
                .token
                .clone()
                .context("--http needs --token (a platform_admin token)")?;
            (http.clone(), token)
        }
        (None, None) => bail!("give either --data-dir or --http and --token"),
    };
    Ok(SupportConfig {
        accounts: args.accounts,
        parallelism: args.parallelism,
        quiet: args.quiet,
        ..SupportConfig::new(http_base, token)
    })
}

async fn ingest_config(args: &IngestArgs) -> anyhow::Result<IngestConfig> {
    let target = connect(&args.connection).await?;
    Ok(IngestConfig {
        units: args.units,
        rate_per_unit: args.rate,
        duration: Duration::from_secs(args.duration_s),
        parallelism: args.connection.parallelism,
        settle_timeout: Duration::from_secs(args.settle_s),
        quiet: args.connection.quiet,
        gateway_pid: args.gateway_pid,
        ..IngestConfig::for_target(target)
    })
}

async fn visibility_config(args: &VisibilityArgs) -> anyhow::Result<VisibilityConfig> {
    let target = connect(&args.connection).await?;
    Ok(VisibilityConfig {
        units: args.units,
        grantees: args.grantees,
        rate_per_unit: args.rate,
        settle: Duration::from_secs(args.settle_s),
        delivery_timeout: Duration::from_secs(args.delivery_timeout_s),
        parallelism: args.connection.parallelism,
        quiet: args.connection.quiet,
        seed: args.seed,
        ..VisibilityConfig::for_target(target)
    })
}

async fn keys_config(args: &KeysArgs) -> anyhow::Result<KeysConfig> {
    let target = connect(&args.connection).await?;
    Ok(KeysConfig {
        units: args.units,
        parallelism: args.connection.parallelism,
        propagation_timeout: Duration::from_secs(args.propagation_timeout_s),
        short_lived: Duration::from_secs(args.short_lived_s),
        event_timeout: Duration::from_secs(args.event_timeout_s),
        offline_unit: !args.no_offline_unit,
        quiet: args.connection.quiet,
        ..KeysConfig::for_target(target)
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
        let Command::Ingest(args) = cli.command else {
            panic!("not the ingest command");
        };
        assert_eq!(args.units, 3);
        assert_eq!(args.connection.mqtt.map(|addr| addr.port), Some(1883));
        assert_eq!(args.report_dir, PathBuf::from("reports"));
        assert_eq!(args.gateway_pid, None);
    }

    #[tokio::test]
    async fn report_flags_reach_the_config() {
        let cli = Cli::try_parse_from([
            "fleetgate-sim",
            "ingest",
            "--http",
            "http://127.0.0.1:8080",
            "--mqtt",
            "127.0.0.1:1883",
            "--token",
            "t",
            "--report-dir",
            "/tmp/out",
            "--gateway-pid",
            "4242",
        ])
        .expect("parses");
        let Command::Ingest(args) = cli.command else {
            panic!("not the ingest command");
        };
        assert_eq!(args.report_dir, PathBuf::from("/tmp/out"));
        let config = ingest_config(&args).await.expect("config");
        assert_eq!(config.gateway_pid, Some(4242));
        assert!(Cli::try_parse_from([
            "fleetgate-sim",
            "ingest",
            "--data-dir",
            "/tmp/x",
            "--gateway-pid",
            "guess",
        ])
        .is_err());
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
        let Command::Ingest(args) = cli.command else {
            panic!("not the ingest command");
        };
        let config = ingest_config(&args).await.expect("config");
        let error = config.validate().expect_err("refused");
        assert!(error.to_string().contains("duration"), "{error}");
    }

    #[tokio::test]
    async fn visibility_flags_reach_the_config() {
        let cli = Cli::try_parse_from([
            "fleetgate-sim",
            "visibility",
            "--http",
            "http://127.0.0.1:8080",
            "--mqtt",
            "127.0.0.1:8883",
            "--token",
            "t",
            "--tls-server-name",
            "localhost",
            "--units",
            "4",
            "--grantees",
            "3",
            "--rate",
            "20",
            "--settle-s",
            "2",
            "--seed",
            "42",
            "--json",
            "--quiet",
        ])
        .expect("parses");
        let Command::Visibility(args) = cli.command else {
            panic!("not the visibility command");
        };
        assert!(args.connection.json);
        let config = visibility_config(&args).await.expect("config");
        assert_eq!((config.units, config.grantees), (4, 3));
        assert_eq!(config.rate_per_unit, 20.0);
        assert_eq!(config.settle, Duration::from_secs(2));
        assert_eq!(config.seed, Some(42));
        assert_eq!(config.target.tls_server_name.as_deref(), Some("localhost"));
        assert!(config.quiet);
        assert!(config.validate().is_ok());
    }

    #[tokio::test]
    async fn support_needs_no_mqtt_and_its_flags_reach_the_config() {
        let cli = Cli::try_parse_from([
            "fleetgate-sim",
            "support",
            "--http",
            "http://127.0.0.1:8080",
            "--token",
            "t",
            "--accounts",
            "7",
            "--json",
            "--quiet",
        ])
        .expect("parses");
        let Command::Support(args) = cli.command else {
            panic!("not the support command");
        };
        assert!(args.json);
        let config = support_config(&args).await.expect("config");
        assert_eq!(config.accounts, 7);
        assert_eq!(config.http_base, "http://127.0.0.1:8080");
        assert!(config.quiet);
        assert!(config.validate().is_ok());
    }

    #[tokio::test]
    async fn support_refuses_missing_token_and_too_many_accounts() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["fleetgate-sim", "support", "--http", "http://127.0.0.1:1"];
            argv.extend_from_slice(extra);
            let cli = Cli::try_parse_from(argv).expect("parses");
            let Command::Support(args) = cli.command else {
                panic!("not the support command");
            };
            args
        };
        let no_token = parse(&[]);
        if no_token.token.is_none() {
            let error = support_config(&no_token).await.expect_err("no token");
            assert!(error.to_string().contains("--token"), "{error}");
        }
        let config = support_config(&parse(&["--token", "t", "--accounts", "1001"]))
            .await
            .expect("config");
        let error = config.validate().expect_err("refused");
        assert!(error.to_string().contains("accounts"), "{error}");
        assert!(Cli::try_parse_from([
            "fleetgate-sim",
            "support",
            "--data-dir",
            "/tmp/x",
            "--http",
            "http://127.0.0.1:1",
        ])
        .is_err());
    }

    #[tokio::test]
    async fn keys_flags_reach_the_config_and_bounds_hold() {
        let parse = |extra: &[&str]| {
            let mut argv = vec![
                "fleetgate-sim",
                "keys",
                "--http",
                "http://127.0.0.1:8080",
                "--mqtt",
                "127.0.0.1:8883",
                "--token",
                "t",
            ];
            argv.extend_from_slice(extra);
            let cli = Cli::try_parse_from(argv).expect("parses");
            let Command::Keys(args) = cli.command else {
                panic!("not the keys command");
            };
            args
        };
        let args = parse(&[
            "--tls-server-name",
            "localhost",
            "--units",
            "1000",
            "--short-lived-s",
            "3",
            "--no-offline-unit",
            "--json",
            "--quiet",
        ]);
        assert!(args.connection.json);
        let config = keys_config(&args).await.expect("config");
        assert_eq!(config.units, 1000);
        assert_eq!(config.short_lived, Duration::from_secs(3));
        assert_eq!(config.target.tls_server_name.as_deref(), Some("localhost"));
        assert!(!config.offline_unit && config.quiet);
        assert!(config.validate().is_ok());
        let config = keys_config(&parse(&["--units", "10001"]))
            .await
            .expect("config");
        let error = config.validate().expect_err("refused");
        assert!(error.to_string().contains("units"), "{error}");
        let defaults = keys_config(&parse(&[])).await.expect("config");
        assert!(defaults.offline_unit);
        assert!(defaults.validate().is_ok());
    }

    #[tokio::test]
    async fn too_many_grants_are_refused_before_connecting() {
        let cli = Cli::try_parse_from([
            "fleetgate-sim",
            "visibility",
            "--http",
            "http://127.0.0.1:1",
            "--mqtt",
            "127.0.0.1:1",
            "--token",
            "t",
            "--units",
            "5000",
            "--grantees",
            "3",
        ])
        .expect("parses");
        let Command::Visibility(args) = cli.command else {
            panic!("not the visibility command");
        };
        let config = visibility_config(&args).await.expect("config");
        let error = config.validate().expect_err("refused");
        assert!(error.to_string().contains("grants"), "{error}");
    }
}
