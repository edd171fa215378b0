//! `fleetgate-sim visibility`: its flags, and its report written to `--report-dir`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use simulator::report::write_report;
use simulator::scenario::visibility::visibility_page;
use simulator::{run_visibility, VisibilityConfig};

use super::{connect, output_and_report, ConnectionArgs, ReportArgs};

#[derive(Debug, Args)]
pub(crate) struct VisibilityArgs {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Number of simulated units, each with one asset (1..=10000).
    #[arg(long, default_value_t = 5)]
    pub(crate) units: usize,
    /// Sub-accounts that each receive every asset (1..=100; units × grantees ≤ 10000).
    #[arg(long, default_value_t = 2)]
    pub(crate) grantees: usize,
    /// Points per second per unit (at most 100).
    #[arg(long, default_value_t = 5.0)]
    pub(crate) rate: f64,
    /// Seconds the units keep streaming after the last removal.
    #[arg(long = "settle-s", default_value_t = 3)]
    pub(crate) settle_s: u64,
    /// Seconds to wait for every grantee's first points and for the last acknowledgements.
    #[arg(long = "delivery-timeout-s", default_value_t = 30)]
    pub(crate) delivery_timeout_s: u64,
    /// Seed of the removal order, to repeat a run; random by default (the report shows it).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) async fn run(args: VisibilityArgs) -> anyhow::Result<ExitCode> {
    let config = visibility_config(&args).await?;
    config.validate()?;
    let report = run_visibility(&config).await?;
    let clean = report.is_clean();
    if let Some(memory_error) = &report.timeline.memory_error {
        eprintln!("fleetgate-sim: gateway memory not measured: {memory_error}");
    }
    let written = write_report(
        &args.report.report_dir,
        "visibility",
        &report.run_id,
        &report,
        &visibility_page(&report),
    );
    output_and_report(&report, args.connection.json, clean, written)
}

pub(crate) async fn visibility_config(args: &VisibilityArgs) -> anyhow::Result<VisibilityConfig> {
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
        gateway_pid: args.report.gateway_pid,
        ..VisibilityConfig::for_target(target)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

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
            "--report-dir",
            "/tmp/vis-out",
            "--gateway-pid",
            "4242",
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
        assert_eq!(
            args.report.report_dir,
            std::path::PathBuf::from("/tmp/vis-out")
        );
        assert_eq!(config.gateway_pid, Some(4242));
        assert_eq!(config.target.tls_server_name.as_deref(), Some("localhost"));
        assert!(config.quiet);
        assert!(config.validate().is_ok());
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
        assert_eq!(args.report.report_dir, std::path::PathBuf::from("reports"));
        let config = visibility_config(&args).await.expect("config");
        assert_eq!(config.gateway_pid, None);
        let error = config.validate().expect_err("refused");
        assert!(error.to_string().contains("grants"), "{error}");
    }
}
