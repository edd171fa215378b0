//! `fleetgate-sim ingest`: its flags and their config.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use simulator::{run_ingest, IngestConfig, RunOptions};

use super::{connect, finish, RunArgs};

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
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
}

pub(crate) async fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let config = ingest_config(&args).await?;
    config.validate()?;
    finish(&run_ingest(&config).await?, &args.run)
}

pub(crate) async fn ingest_config(args: &IngestArgs) -> anyhow::Result<IngestConfig> {
    Ok(IngestConfig {
        units: args.units,
        rate_per_unit: args.rate,
        duration: Duration::from_secs(args.duration_s),
        settle_timeout: Duration::from_secs(args.settle_s),
        baseline: !args.no_baseline,
        run: args.run.options(RunOptions::default()),
        ..IngestConfig::for_target(connect(&args.run).await?)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use clap::Parser;

    use crate::cli::{parse_explicit, Command};

    fn parse(extra: &[&str]) -> IngestArgs {
        let Command::Ingest(args) = parse_explicit("ingest", extra) else {
            panic!("not the ingest command");
        };
        args
    }

    #[tokio::test]
    async fn flags_reach_the_config() {
        let defaults = parse(&[]);
        assert_eq!(defaults.run.report_dir, PathBuf::from("reports"));
        let config = ingest_config(&defaults).await.expect("config");
        assert!(
            config.baseline,
            "the command line runs the baseline by default"
        );
        assert_eq!(config.run.parallelism, 32);
        assert!(!config.run.quiet, "quiet only with --quiet");
        let args = parse(&[
            "--units",
            "3",
            "--duration-s",
            "5",
            "--report-dir",
            "/tmp/out",
            "--gateway-pid",
            "4242",
            "--no-baseline",
        ]);
        assert_eq!(args.run.report_dir, PathBuf::from("/tmp/out"));
        let config = ingest_config(&args).await.expect("config");
        assert_eq!((config.units, config.duration), (3, Duration::from_secs(5)));
        assert_eq!(config.run.gateway_pid, Some(4242));
        assert_eq!(config.target.mqtt.port, 1);
        assert!(!config.baseline);
    }

    #[tokio::test]
    async fn too_long_runs_are_refused_before_connecting() {
        let config = ingest_config(&parse(&["--duration-s", "3601"]))
            .await
            .expect("config");
        let error = config.validate().expect_err("refused");
        assert!(error.to_string().contains("duration"), "{error}");
        assert!(crate::cli::Cli::try_parse_from([
            "fleetgate-sim",
            "ingest",
            "--data-dir",
            "/tmp/x",
            "--gateway-pid",
            "guess",
        ])
        .is_err());
    }
}
