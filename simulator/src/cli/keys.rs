//! `fleetgate-sim keys`: its flags and their config.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use simulator::{run_keys, KeysConfig, RunOptions};

use super::{connect, finish, RunArgs};

#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Number of simulated units, each with one asset (1..=10000).
    #[arg(long, default_value_t = 10)]
    pub(crate) units: usize,
    /// Seconds a key change may take to reach every online unit.
    #[arg(long = "propagation-timeout-s", default_value_t = 30)]
    pub(crate) propagation_timeout_s: u64,
    /// Seconds the short-lived key lasts (2..=300); the run waits for it to end.
    #[arg(long = "short-lived-s", default_value_t = 5)]
    pub(crate) short_lived_s: u64,
    /// Seconds reported attempts may take to appear in history and on the live stream.
    #[arg(long = "event-timeout-s", default_value_t = 30)]
    pub(crate) event_timeout_s: u64,
    /// Keep every unit online (by default the last one is off while the first keys are
    /// created, then reconnects and must get the retained set).
    #[arg(long)]
    pub(crate) no_offline_unit: bool,
}

pub(crate) async fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let config = keys_config(&args).await?;
    config.validate()?;
    finish(&run_keys(&config).await?, &args.run)
}

pub(crate) async fn keys_config(args: &KeysArgs) -> anyhow::Result<KeysConfig> {
    Ok(KeysConfig {
        units: args.units,
        propagation_timeout: Duration::from_secs(args.propagation_timeout_s),
        short_lived: Duration::from_secs(args.short_lived_s),
        event_timeout: Duration::from_secs(args.event_timeout_s),
        offline_unit: !args.no_offline_unit,
        run: args.run.options(RunOptions::default()),
        ..KeysConfig::for_target(connect(&args.run).await?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_explicit, Command};

    async fn config(extra: &[&str]) -> KeysConfig {
        let Command::Keys(args) = parse_explicit("keys", extra) else {
            panic!("not the keys command");
        };
        keys_config(&args).await.expect("config")
    }

    #[tokio::test]
    async fn keys_flags_reach_the_config_and_bounds_hold() {
        let argv = [
            "--units",
            "1000",
            "--short-lived-s",
            "3",
            "--no-offline-unit",
        ];
        let keys = config(&argv).await;
        assert_eq!(keys.units, 1000);
        assert_eq!(keys.short_lived, Duration::from_secs(3));
        assert!(!keys.offline_unit);
        assert!(keys.validate().is_ok());
        let error = config(&["--units", "10001"]).await.validate();
        let error = error.expect_err("refused").to_string();
        assert!(error.contains("units"), "{error}");
        let defaults = config(&[]).await;
        assert!(defaults.offline_unit);
        assert!(defaults.validate().is_ok());
    }
}
