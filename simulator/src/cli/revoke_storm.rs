//! `fleetgate-sim revoke-storm`: its flags and their config.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use simulator::{run_revoke_storm, RevokeMode, RevokeStormConfig, RunOptions};

use super::{connect, finish, RunArgs};

#[derive(Debug, Args)]
pub(crate) struct RevokeStormArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
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
}

pub(crate) async fn run(args: RevokeStormArgs) -> anyhow::Result<ExitCode> {
    let config = revoke_storm_config(&args).await?;
    config.validate()?;
    finish(&run_revoke_storm(&config).await?, &args.run)
}

pub(crate) async fn revoke_storm_config(
    args: &RevokeStormArgs,
) -> anyhow::Result<RevokeStormConfig> {
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
        seed: args.seed,
        run: args.run.options(RunOptions::default()),
        ..RevokeStormConfig::for_target(connect(&args.run).await?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_explicit, Command};

    async fn config(extra: &[&str]) -> RevokeStormConfig {
        let Command::RevokeStorm(args) = parse_explicit("revoke-storm", extra) else {
            panic!("not the revoke-storm command");
        };
        revoke_storm_config(&args).await.expect("config")
    }

    #[tokio::test]
    async fn flags_reach_the_config_and_bounds_hold() {
        let argv = [
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
        ];
        let storm = config(&argv).await;
        assert_eq!((storm.units, storm.grantees), (50, 40));
        assert_eq!((storm.concurrency, storm.mode), (64, RevokeMode::Bulk));
        assert_eq!(storm.seed, Some(9));
        assert_eq!(storm.settle, Duration::from_secs(3));
        assert!(storm.validate().is_ok());
        assert_eq!(config(&[]).await.mode, RevokeMode::Individual);
        let error = config(&["--units", "200", "--grantees", "26"])
            .await
            .validate();
        let error = error.expect_err("refused").to_string();
        assert!(error.contains("grants"), "{error}");
    }
}
