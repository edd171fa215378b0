//! `fleetgate-sim revoke-storm`: its flags, and its report written to `--report-dir`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use simulator::scenario::revoke_storm::write_revoke_storm_report;
use simulator::{run_revoke_storm, RevokeMode, RevokeStormConfig};

use super::{connect, output_and_report, ConnectionArgs, ReportArgs};

#[derive(Debug, Args)]
pub(crate) struct RevokeStormArgs {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Number of simulated units, each with one asset (1..=1000).
    #[arg(long, default_value_t = 10)]
    pub(crate) units: usize,
    /// Sub-accounts each granted every asset and holding a live stream (1..=500;
    /// units × grantees ≤ 5000).
    #[arg(long, default_value_t = 20)]
    pub(crate) grantees: usize,
    /// Points per second per unit (at most 100).
    #[arg(long, default_value_t = 5.0)]
    pub(crate) rate: f64,
    /// Removal calls in flight at once during the storm (1..=256).
    #[arg(long, default_value_t = 32)]
    pub(crate) concurrency: usize,
    /// Remove with one bulk `POST /v1/visibility/remove` per grantee instead of one
    /// `DELETE` per grant.
    #[arg(long)]
    pub(crate) bulk: bool,
    /// Seconds the units keep streaming after the storm's last answer.
    #[arg(long = "settle-s", default_value_t = 2)]
    pub(crate) settle_s: u64,
    /// Seconds to wait for every grantee's first points, the last acknowledgements and
    /// history.
    #[arg(long = "delivery-timeout-s", default_value_t = 30)]
    pub(crate) delivery_timeout_s: u64,
    /// Seed of the removal order, to repeat a run; random by default (the report shows it).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) async fn run(args: RevokeStormArgs) -> anyhow::Result<ExitCode> {
    let config = revoke_storm_config(&args).await?;
    config.validate()?;
    let report = run_revoke_storm(&config).await?;
    let clean = report.is_clean();
    if let Some(memory_error) = &report.timeline.memory_error {
        eprintln!("fleetgate-sim: gateway memory not measured: {memory_error}");
    }
    let written = write_revoke_storm_report(&report, &args.report.report_dir);
    output_and_report(&report, args.connection.json, clean, written)
}

pub(crate) async fn revoke_storm_config(
    args: &RevokeStormArgs,
) -> anyhow::Result<RevokeStormConfig> {
    let target = connect(&args.connection).await?;
    Ok(RevokeStormConfig {
        units: args.units,
        grantees: args.grantees,
        rate_per_unit: args.rate,
        concurrency: args.concurrency,
        mode: if args.bulk {
            RevokeMode::Bulk
        } else {
            RevokeMode::Individual
        },
        settle: Duration::from_secs(args.settle_s),
        delivery_timeout: Duration::from_secs(args.delivery_timeout_s),
        parallelism: args.connection.parallelism,
        quiet: args.connection.quiet,
        seed: args.seed,
        gateway_pid: args.report.gateway_pid,
        ..RevokeStormConfig::for_target(target)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(extra: &[&str]) -> RevokeStormArgs {
        let mut argv = vec![
            "fleetgate-sim",
            "revoke-storm",
            "--http",
            "http://127.0.0.1:1",
            "--mqtt",
            "127.0.0.1:1",
            "--token",
            "t",
        ];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).expect("parses");
        let Command::RevokeStorm(args) = cli.command else {
            panic!("not the revoke-storm command");
        };
        args
    }

    #[tokio::test]
    async fn flags_reach_the_config() {
        let args = parse(&[
            "--units",
            "50",
            "--grantees",
            "40",
            "--concurrency",
            "64",
            "--bulk",
            "--seed",
            "9",
            "--settle-s",
            "3",
            "--gateway-pid",
            "77",
        ]);
        let config = revoke_storm_config(&args).await.expect("config");
        assert_eq!((config.units, config.grantees), (50, 40));
        assert_eq!(config.concurrency, 64);
        assert_eq!(config.mode, RevokeMode::Bulk);
        assert_eq!(config.seed, Some(9));
        assert_eq!(config.settle, Duration::from_secs(3));
        assert_eq!(config.gateway_pid, Some(77));
        assert!(config.validate().is_ok());
        let individual = revoke_storm_config(&parse(&[])).await.expect("config");
        assert_eq!(individual.mode, RevokeMode::Individual);
    }

    #[tokio::test]
    async fn too_many_grants_are_refused_before_connecting() {
        let args = parse(&["--units", "200", "--grantees", "26"]);
        let error = revoke_storm_config(&args)
            .await
            .expect("config")
            .validate()
            .expect_err("refused");
        assert!(error.to_string().contains("grants"), "{error}");
    }
}
