//! `fleetgate-sim visibility`: its flags and their config.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use simulator::{run_visibility, RunOptions, VisibilityConfig};

use super::{connect, finish, RunArgs};

#[derive(Debug, Args)]
pub(crate) struct VisibilityArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
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
}

pub(crate) async fn run(args: VisibilityArgs) -> anyhow::Result<ExitCode> {
    let config = visibility_config(&args).await?;
    config.validate()?;
    finish(&run_visibility(&config).await?, &args.run)
}

pub(crate) async fn visibility_config(args: &VisibilityArgs) -> anyhow::Result<VisibilityConfig> {
    Ok(VisibilityConfig {
        units: args.units,
        grantees: args.grantees,
        rate_per_unit: args.rate,
        settle: Duration::from_secs(args.settle_s),
        delivery_timeout: Duration::from_secs(args.delivery_timeout_s),
        seed: args.seed,
        run: args.run.options(RunOptions::default()),
        ..VisibilityConfig::for_target(connect(&args.run).await?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_explicit, Command};

    async fn config(extra: &[&str]) -> VisibilityConfig {
        let Command::Visibility(args) = parse_explicit("visibility", extra) else {
            panic!("not the visibility command");
        };
        visibility_config(&args).await.expect("config")
    }

    #[tokio::test]
    async fn flags_reach_the_config_and_bounds_hold() {
        let argv = [
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
        ];
        let visibility = config(&argv).await;
        assert_eq!((visibility.units, visibility.grantees), (4, 3));
        assert_eq!(visibility.rate_per_unit, 20.0);
        assert_eq!(visibility.settle, Duration::from_secs(2));
        assert_eq!(visibility.seed, Some(42));
        assert!(visibility.validate().is_ok());
        let error = config(&["--units", "5000", "--grantees", "3"])
            .await
            .validate();
        let error = error.expect_err("refused").to_string();
        assert!(error.contains("grants"), "{error}");
    }
}
