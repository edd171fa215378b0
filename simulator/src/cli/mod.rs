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
//! this module holds what they share: the common flags (`RunArgs`), where the gateway is,
//! and how a report is printed and written; and `compare-reports`.

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
use simulator::report::compare::compare;
use simulator::report::{text, to_json, write, ScenarioReport};
use simulator::{wait_ready, BrokerAddr, GatewayEndpoints, RunOptions, Target};

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
    /// Lists every figure and check name an earlier run's JSON report has and a later one's
    /// lacks (values are not compared: they differ from run to run); exit status 2 when
    /// anything was lost. Given two directories, compares the reports of the same names.
    CompareReports(CompareArgs),
}

/// The flags every scenario shares: where the gateway is and who the simulator is there,
/// the run's options ([`RunOptions`]), and where its report goes. Flattened into each
/// scenario's own flags.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The gateway's data directory: read ready.json and bootstrap-token from it.
    #[arg(long, env = "FLEETGATE_DATA_DIR", conflicts_with_all = ["http", "mqtt"])]
    pub(crate) data_dir: Option<PathBuf>,
    /// Gateway HTTP root, e.g. http://127.0.0.1:8080 (with --token, and --mqtt for the
    /// scenarios that drive units).
    #[arg(long)]
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
    /// Setup calls and connection attempts in flight at once (default: the scenario's).
    #[arg(long)]
    pub(crate) parallelism: Option<usize>,
    /// Seconds to wait for ready.json.
    #[arg(long = "ready-timeout-s", default_value_t = 30)]
    pub(crate) ready_timeout_s: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Directory for the run's report, `<scenario>-<run_id>.json` and `.html` (created when
    /// missing).
    #[arg(long = "report-dir", default_value = "reports")]
    pub(crate) report_dir: PathBuf,
    /// Process id of the gateway when it runs on this machine: its memory (VmRSS) is
    /// sampled each second. Without it the report's memory chart says "not measured".
    #[arg(long = "gateway-pid")]
    pub(crate) gateway_pid: Option<u32>,
}

impl RunArgs {
    /// The run's options; `defaults` are the scenario's own (its parallelism).
    pub(crate) fn options(&self, defaults: RunOptions) -> RunOptions {
        RunOptions {
            parallelism: self.parallelism.unwrap_or(defaults.parallelism),
            quiet: self.quiet,
            gateway_pid: self.gateway_pid,
            ..defaults
        }
    }
}

/// Runs the command line's scenario or comparison.
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
        Command::CompareReports(args) => compare_reports(&args),
    }
}

/// Prints a scenario's report (text, or JSON with `--json`) and writes its files to
/// `--report-dir`, then turns its verdict into the exit status. A report that cannot be
/// written does not hide the run's outcome: it is still printed, and the failure to write
/// makes the exit status 1.
pub(crate) fn finish<R: ScenarioReport>(report: &R, args: &RunArgs) -> anyhow::Result<ExitCode> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(report)?)?);
    } else {
        println!("{}", text(report));
    }
    let written = write(report, &args.report_dir).context("writing the report")?;
    eprintln!(
        "fleetgate-sim: report written to {} and {}",
        written.json.display(),
        written.html.display()
    );
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Two JSON reports, or two directories of them, to compare by shape.
#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The earlier report (or a directory of `*.json` reports).
    pub(crate) before: PathBuf,
    /// The later report (or a directory holding reports of the same names).
    pub(crate) after: PathBuf,
}

/// Lists every figure and check the later reports lost; exit status 2 when any was lost.
fn compare_reports(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let comparisons = compare(&args.before, &args.after)?;
    let mut lost = 0;
    for comparison in &comparisons {
        let name = comparison.before.display();
        match &comparison.after {
            None => {
                lost += 1;
                println!("{name}: no report of that name after");
            }
            Some(_) if comparison.missing.is_empty() => println!("{name}: nothing lost"),
            Some(after) => {
                lost += comparison.missing.len();
                println!(
                    "{name}: {} lost in {}:",
                    comparison.missing.len(),
                    after.display()
                );
                for path in &comparison.missing {
                    println!("  - {path}");
                }
            }
        }
    }
    Ok(if lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Resolves where the gateway is: the data dir's ready.json (and bootstrap token), or the
/// explicit flags.
pub(crate) async fn connect(args: &RunArgs) -> anyhow::Result<Target> {
    let (http_base, token, endpoints) = http_endpoint(args).await?;
    let mqtt = match (endpoints, &args.mqtt) {
        (Some(endpoints), _) if args.tls_server_name.is_some() => endpoints
            .mqtt_tls
            .context("the gateway reports no MQTT TLS listener")?,
        (Some(endpoints), _) => match endpoints.mqtt_plain {
            Some(plain) => plain,
            None => bail!(
                "the gateway has no plain MQTT listener; pass --tls-server-name \
                 (e.g. localhost) to use its TLS listener"
            ),
        },
        (None, Some(mqtt)) => mqtt.clone(),
        (None, None) => bail!("give either --data-dir or --http, --mqtt and --token"),
    };
    Ok(Target {
        tls_server_name: args.tls_server_name.clone(),
        ..Target::new(http_base, mqtt, token)
    })
}

/// The gateway's HTTP root and the token to use there, from the data dir (whose endpoints
/// come along) or from `--http` and `--token`; enough for the scenarios without units.
pub(crate) async fn http_endpoint(
    args: &RunArgs,
) -> anyhow::Result<(String, String, Option<GatewayEndpoints>)> {
    match (&args.data_dir, &args.http) {
        (Some(data_dir), _) => {
            let endpoints = gateway_in(data_dir, args.ready_timeout_s).await?;
            let token = token_or_bootstrap(args.token.as_deref(), &endpoints)?;
            Ok((endpoints.http_base.clone(), token, Some(endpoints)))
        }
        (None, Some(http)) => {
            let token = args
                .token
                .clone()
                .context("--http needs --token (a platform_admin token)")?;
            Ok((http.clone(), token, None))
        }
        (None, None) => bail!("give either --data-dir or --http and --token"),
    }
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

/// Parses a command line as `fleetgate-sim` would, for the flag tests of each scenario.
#[cfg(test)]
pub(crate) fn parse(argv: &[&str]) -> Command {
    let argv = ["fleetgate-sim"].iter().chain(argv);
    Cli::try_parse_from(argv).expect("parses").command
}

/// Explicit endpoints that need no gateway, then `extra`.
#[cfg(test)]
pub(crate) fn parse_explicit(scenario: &str, extra: &[&str]) -> Command {
    let mut argv = vec![
        scenario,
        "--http",
        "http://127.0.0.1:1",
        "--mqtt",
        "127.0.0.1:1",
        "--token",
        "t",
    ];
    argv.extend_from_slice(extra);
    parse(&argv)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command};

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[tokio::test]
    async fn the_shared_flags_reach_every_scenario_alike() {
        let shared = [
            "--tls-server-name",
            "localhost",
            "--report-dir",
            "/tmp/out",
            "--gateway-pid",
            "4242",
            "--json",
            "--quiet",
        ];
        let Command::Fanout(args) = super::parse_explicit("fanout", &shared) else {
            panic!("not the fanout command");
        };
        assert!(args.run.json);
        assert_eq!(args.run.report_dir, std::path::PathBuf::from("/tmp/out"));
        let target = super::connect(&args.run).await.expect("target");
        assert_eq!(target.tls_server_name.as_deref(), Some("localhost"));
        assert_eq!(target.mqtt.port, 1);
        let options = args.run.options(simulator::RunOptions::default());
        assert_eq!((options.gateway_pid, options.quiet), (Some(4242), true));
        let Command::Soak(defaults) = super::parse_explicit("soak", &[]) else {
            panic!("not the soak command");
        };
        assert_eq!(defaults.run.report_dir, std::path::PathBuf::from("reports"));
        assert_eq!(
            defaults
                .run
                .options(simulator::RunOptions::default())
                .gateway_pid,
            None
        );
        assert!(Cli::try_parse_from(["fleetgate-sim", "keys", "--gateway-pid", "guess"]).is_err());
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
