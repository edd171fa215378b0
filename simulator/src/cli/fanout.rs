//! `fleetgate-sim fanout`: its flags, and its report written to `--report-dir`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use simulator::scenario::fanout::write_fanout_report;
use simulator::{run_fanout, FanoutConfig};

use super::{connect, output_and_report, ConnectionArgs, ReportArgs};

#[derive(Debug, Args)]
pub(crate) struct FanoutArgs {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Number of simulated units, each with one asset (1..=1000).
    #[arg(long, default_value_t = 5)]
    pub(crate) units: usize,
    /// Sub-accounts each granted every asset and holding a live stream (1..=500;
    /// units × grantees ≤ 10000).
    #[arg(long, default_value_t = 20)]
    pub(crate) grantees: usize,
    /// Points per second per unit (at most 100).
    #[arg(long, default_value_t = 2.0)]
    pub(crate) rate: f64,
    /// How long the units publish, in seconds (at most 600).
    #[arg(long = "duration-s", default_value_t = 10)]
    pub(crate) duration_s: u64,
    /// Grantees whose history of every asset is read back afterwards (1..=grantees).
    #[arg(long = "history-sample", default_value_t = 3)]
    pub(crate) history_sample: usize,
    /// Seconds to wait for acknowledgements, live deliveries and history to catch up.
    #[arg(long = "settle-s", default_value_t = 30)]
    pub(crate) settle_s: u64,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) async fn run(args: FanoutArgs) -> anyhow::Result<ExitCode> {
    let config = fanout_config(&args).await?;
    config.validate()?;
    let report = run_fanout(&config).await?;
    let clean = report.is_clean();
    if let Some(memory_error) = &report.timeline.memory_error {
        eprintln!("fleetgate-sim: gateway memory not measured: {memory_error}");
    }
    let written = write_fanout_report(&report, &args.report.report_dir);
    output_and_report(&report, args.connection.json, clean, written)
}

pub(crate) async fn fanout_config(args: &FanoutArgs) -> anyhow::Result<FanoutConfig> {
    let target = connect(&args.connection).await?;
    Ok(FanoutConfig {
        units: args.units,
        grantees: args.grantees,
        rate_per_unit: args.rate,
        duration: Duration::from_secs(args.duration_s),
        history_sample: args.history_sample,
        settle_timeout: Duration::from_secs(args.settle_s),
        parallelism: args.connection.parallelism,
        quiet: args.connection.quiet,
        gateway_pid: args.report.gateway_pid,
        ..FanoutConfig::for_target(target)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(extra: &[&str]) -> FanoutArgs {
        let mut argv = vec![
            "fleetgate-sim",
            "fanout",
            "--http",
            "http://127.0.0.1:1",
            "--mqtt",
            "127.0.0.1:1",
            "--token",
            "t",
        ];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).expect("parses");
        let Command::Fanout(args) = cli.command else {
            panic!("not the fanout command");
        };
        args
    }

    #[tokio::test]
    async fn flags_reach_the_config() {
        let args = parse(&[
            "--units",
            "4",
            "--grantees",
            "100",
            "--rate",
            "5",
            "--duration-s",
            "20",
            "--history-sample",
            "7",
            "--gateway-pid",
            "4242",
            "--report-dir",
            "/tmp/fanout-out",
            "--tls-server-name",
            "localhost",
        ]);
        assert_eq!(args.report.report_dir, PathBuf::from("/tmp/fanout-out"));
        let config = fanout_config(&args).await.expect("config");
        assert_eq!((config.units, config.grantees), (4, 100));
        assert_eq!(config.rate_per_unit, 5.0);
        assert_eq!(config.duration, Duration::from_secs(20));
        assert_eq!(config.history_sample, 7);
        assert_eq!(config.gateway_pid, Some(4242));
        assert_eq!(config.target.tls_server_name.as_deref(), Some("localhost"));
        assert!(config.validate().is_ok());
    }

    #[tokio::test]
    async fn too_many_grantees_are_refused_before_connecting() {
        let args = parse(&["--grantees", "501"]);
        let error = fanout_config(&args)
            .await
            .expect("config")
            .validate()
            .expect_err("refused");
        assert!(error.to_string().contains("grantees"), "{error}");
    }
}
