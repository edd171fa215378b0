//! `fleetgate-sim ingest`: its flags, and its report written to `--report-dir`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use simulator::{run_ingest, write_ingest_report, IngestConfig};

use super::{connect, output_and_report, ConnectionArgs, ReportArgs};

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Number of simulated units (1..=100000).
    #[arg(long, default_value_t = 10)]
    pub(crate) units: usize,
    /// Points per second per unit.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) rate: f64,
    /// How long the units publish, in seconds (at most 3600).
    #[arg(long = "duration-s", default_value_t = 10)]
    pub(crate) duration_s: u64,
    /// Seconds to wait for acknowledgements, live delivery and history to catch up.
    #[arg(long = "settle-s", default_value_t = 30)]
    pub(crate) settle_s: u64,
    /// Skip the baseline: by default the same load first runs against a bare rumqttd
    /// (crates.io, the version Cargo.lock pins) started inside this process (plain TCP,
    /// loopback), and the report gives the gateway's throughput as a ratio of it.
    #[arg(long = "no-baseline")]
    pub(crate) no_baseline: bool,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) async fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let config = ingest_config(&args).await?;
    config.validate()?;
    let report = run_ingest(&config).await?;
    let clean = report.is_clean();
    if let Some(memory_error) = &report.timeline.memory_error {
        eprintln!("fleetgate-sim: gateway memory not measured: {memory_error}");
    }
    let written = write_ingest_report(&report, &args.report.report_dir);
    output_and_report(&report, args.connection.json, clean, written)
}

pub(crate) async fn ingest_config(args: &IngestArgs) -> anyhow::Result<IngestConfig> {
    let target = connect(&args.connection).await?;
    Ok(IngestConfig {
        units: args.units,
        rate_per_unit: args.rate,
        duration: Duration::from_secs(args.duration_s),
        parallelism: args.connection.parallelism,
        settle_timeout: Duration::from_secs(args.settle_s),
        quiet: args.connection.quiet,
        gateway_pid: args.report.gateway_pid,
        baseline: !args.no_baseline,
        ..IngestConfig::for_target(target)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

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
        assert_eq!(args.report.report_dir, PathBuf::from("reports"));
        assert_eq!(args.report.gateway_pid, None);
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
        assert_eq!(args.report.report_dir, PathBuf::from("/tmp/out"));
        let config = ingest_config(&args).await.expect("config");
        assert_eq!(config.gateway_pid, Some(4242));
        assert!(
            config.baseline,
            "the command line runs the baseline by default"
        );
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
        assert!(config.baseline);
        let error = config.validate().expect_err("refused");
        assert!(error.to_string().contains("duration"), "{error}");
    }

    #[tokio::test]
    async fn no_baseline_turns_it_off() {
        let cli = Cli::try_parse_from([
            "fleetgate-sim",
            "ingest",
            "--http",
            "http://127.0.0.1:1",
            "--mqtt",
            "127.0.0.1:1",
            "--token",
            "t",
            "--no-baseline",
        ])
        .expect("parses");
        let Command::Ingest(args) = cli.command else {
            panic!("not the ingest command");
        };
        assert!(!ingest_config(&args).await.expect("config").baseline);
    }
}
