//! The command line of `fleetgate-sim`, for load and correctness runs against a
//! gateway started by hand or by a benchmark script. All logic lives in the library; this
//! file only turns flags into a scenario's config and its report into output.
//!
//! Exit status: 0 when the run was clean, 2 when it ran but found problems (missing or
//! duplicated points, points past a grant's cut-off, support access that did not hold or
//! did not end when answered, keys that did not reach the units as answered or decisions
//! that differ from the key API, errors), 1 when it could not run (or its report could not
//! be written).
//!
//! Every scenario writes its report to `--report-dir` (default `reports/`): a JSON of the
//! figures and a self-contained HTML page with charts (see the library's `report` module).
//!
//! Each scenario's flags and its turning them into a config live in the file of its name;
//! this module holds what they share: where the gateway is, and how a report is printed.

mod fanout;
mod ingest;
mod keys;
mod revoke_storm;
mod scale;
mod soak;
mod support;
mod visibility;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use simulator::{wait_ready, BrokerAddr, GatewayEndpoints, ReportError, Target, WrittenReport};

#[derive(Debug, Parser)]
#[command(name = "fleetgate-sim", version, about = "Fleetgate device simulator")]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Units publish telemetry at a fixed rate; reports throughput, latencies and whether
    /// every acknowledged point was stored exactly once.
    Ingest(ingest::IngestArgs),
    /// An owner grants its assets to sub-accounts while units stream, then removes the grants
    /// one by one; reports removal latency and any point delivered past a removal.
    Visibility(visibility::VisibilityArgs),
    /// Support staff request access to accounts, their admins approve, decline and revoke,
    /// tech support opens and closes cases; reports whether each change held the moment it
    /// was answered, and the latencies. HTTP only.
    Support(support::SupportArgs),
    /// An owner creates, edits and deletes access keys while the units hold and ack their
    /// key sets; reports key propagation time to the units, and whether the answers'
    /// delivered/pending lists, the units' access decisions and the stored and live access
    /// events agree with the key API.
    Keys(keys::KeysArgs),
    /// Many idle units hold TLS sessions at once, from several loopback source addresses;
    /// reports how many the gateway held, memory per unit, and the first limit hit.
    Scale(scale::ScaleArgs),
    /// An owner's assets are each shared with many grantees holding live streams; reports
    /// whether every acknowledged point reached every grantee exactly once and no other
    /// account, delivery latency and spread, deliveries per second and gateway memory.
    Fanout(fanout::FanoutArgs),
    /// Thousands of grants are removed at once with many calls in flight while units stream;
    /// reports removal latency and rate, and any point delivered past a removal.
    RevokeStorm(revoke_storm::RevokeStormArgs),
    /// Units stream at a steady rate for a long, bounded time while an admin loop churns
    /// grants, keys and history reads; reports windows over time and whether memory grew,
    /// latency crept or any acknowledged point was lost.
    Soak(soak::SoakArgs),
}

/// Where the gateway is and who the simulator is there; shared by every scenario.
#[derive(Debug, Args)]
pub(crate) struct ConnectionArgs {
    /// The gateway's data directory: read ready.json and bootstrap-token from it.
    #[arg(long, env = "FLEETGATE_DATA_DIR", conflicts_with_all = ["http", "mqtt"])]
    pub(crate) data_dir: Option<PathBuf>,
    /// Gateway HTTP root, e.g. http://127.0.0.1:8080 (with --mqtt and --token).
    #[arg(long, requires = "mqtt")]
    pub(crate) http: Option<String>,
    /// Broker address HOST:PORT (with --http).
    #[arg(long, requires = "http")]
    pub(crate) mqtt: Option<BrokerAddr>,
    /// A platform_admin token; defaults to the data dir's bootstrap-token.
    #[arg(long, env = "FLEETGATE_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Connect over mutual TLS with per-device certificates; the name must match the
    /// gateway certificate (e.g. localhost). Without it, the plain listener is used.
    #[arg(long)]
    pub(crate) tls_server_name: Option<String>,
    /// Setup calls and connection attempts in flight at once.
    #[arg(long, default_value_t = 32)]
    pub(crate) parallelism: usize,
    /// Seconds to wait for ready.json.
    #[arg(long = "ready-timeout-s", default_value_t = 30)]
    pub(crate) ready_timeout_s: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// Runs the command line's scenario.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Ingest(args) => ingest::run(args).await,
        Command::Visibility(args) => visibility::run(args).await,
        Command::Support(args) => support::run(args).await,
        Command::Keys(args) => keys::run(args).await,
        Command::Scale(args) => scale::run(args).await,
        Command::Fanout(args) => fanout::run(args).await,
        Command::RevokeStorm(args) => revoke_storm::run(args).await,
        Command::Soak(args) => soak::run(args).await,
    }
}

/// Where a scenario's report goes and whose memory it samples; shared by the scenarios that
/// write a report.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Directory for the run's report, `<scenario>-<run_id>.json` and `.html` (created when
    /// missing).
    #[arg(long = "report-dir", default_value = "reports")]
    pub(crate) report_dir: PathBuf,
    /// Process id of the gateway when it runs on this machine: its memory (VmRSS) is
    /// sampled each second. Without it the report's memory chart says "not measured".
    #[arg(long = "gateway-pid")]
    pub(crate) gateway_pid: Option<u32>,
}

/// Prints a report, then says where its files were written. A report that cannot be
/// written does not hide the run's outcome: it is still printed, and the failure to write
/// makes the exit status 1.
pub(crate) fn output_and_report<R: Serialize + std::fmt::Display>(
    report: &R,
    json: bool,
    clean: bool,
    written: Result<WrittenReport, ReportError>,
) -> anyhow::Result<ExitCode> {
    let code = output(report, json, clean)?;
    let written = written.context("writing the report")?;
    eprintln!(
        "fleetgate-sim: report written to {} and {}",
        written.json.display(),
        written.html.display()
    );
    Ok(code)
}

/// Prints a report and turns its verdict into the exit status.
pub(crate) fn output<R: Serialize + std::fmt::Display>(
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
pub(crate) async fn connect(args: &ConnectionArgs) -> anyhow::Result<Target> {
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
pub(crate) async fn gateway_in(
    data_dir: &Path,
    ready_timeout_s: u64,
) -> anyhow::Result<GatewayEndpoints> {
    wait_ready(data_dir, Duration::from_secs(ready_timeout_s))
        .await
        .with_context(|| format!("waiting for the gateway in {}", data_dir.display()))
}

/// The token given on the command line, else the data dir's bootstrap token.
pub(crate) fn token_or_bootstrap(
    token: Option<&str>,
    endpoints: &GatewayEndpoints,
) -> anyhow::Result<String> {
    token
        .map(str::to_owned)
        .or_else(|| endpoints.bootstrap_token.clone())
        .context("no --token given and the data dir has no bootstrap-token")
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
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
}
