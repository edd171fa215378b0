//! `fleetgate-sim fanout`: its flags and their config.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use simulator::{run_fanout, FanoutConfig, RunOptions};

use super::{connect, finish, RunArgs};

#[derive(Debug, Args)]
pub(crate) struct FanoutArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
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
}

pub(crate) async fn run(args: FanoutArgs) -> anyhow::Result<ExitCode> {
    let config = fanout_config(&args).await?;
    config.validate()?;
    finish(&run_fanout(&config).await?, &args.run)
}

pub(crate) async fn fanout_config(args: &FanoutArgs) -> anyhow::Result<FanoutConfig> {
    Ok(FanoutConfig {
        units: args.units,
        grantees: args.grantees,
        rate_per_unit: args.rate,
        duration: Duration::from_secs(args.duration_s),
        history_sample: args.history_sample,
        settle_timeout: Duration::from_secs(args.settle_s),
        run: args.run.options(RunOptions::default()),
        ..FanoutConfig::for_target(connect(&args.run).await?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_explicit, Command};

    async fn config(extra: &[&str]) -> FanoutConfig {
        let Command::Fanout(args) = parse_explicit("fanout", extra) else {
            panic!("not the fanout command");
        };
        fanout_config(&args).await.expect("config")
    }

    #[tokio::test]
    async fn flags_reach_the_config_and_bounds_hold() {
        let argv = [
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
        ];
        let config = config(&argv).await;
        assert_eq!((config.units, config.grantees), (4, 100));
        assert_eq!(config.rate_per_unit, 5.0);
        assert_eq!(config.duration, Duration::from_secs(20));
        assert_eq!(config.history_sample, 7);
        assert!(config.validate().is_ok());
        let error = super::tests::config(&["--grantees", "501"])
            .await
            .validate();
        let error = error.expect_err("refused").to_string();
        assert!(error.contains("grantees"), "{error}");
    }
}
