//! `fleetgate-sim soak`: its flags and their config.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use simulator::{run_soak, RunOptions, SoakConfig};

use super::{connect, finish, RunArgs};

#[derive(Debug, Args)]
pub(crate) struct SoakArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Number of simulated units (1..=10000).
    #[arg(long, default_value_t = 10)]
    pub(crate) units: usize,
    /// Points per second per unit (at most 100).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) rate: f64,
    /// How long the units publish and the admin loop churns, in seconds (at most 86400).
    #[arg(long = "duration-s", default_value_t = 300)]
    pub(crate) duration_s: u64,
    /// Length of one window of figures, in seconds (1..=3600, at most 10000 windows).
    #[arg(long = "window-s", default_value_t = 10)]
    pub(crate) window_s: u64,
    /// Admin calls per second: grants, removals, key creations and deletions, history
    /// reads (at most 50).
    #[arg(long = "admin-rate", default_value_t = 2.0)]
    pub(crate) admin_rate: f64,
    /// Fail when the gateway's memory grows faster than this over the second half, MiB/h.
    #[arg(long = "max-memory-growth-mib-per-h", default_value_t = 50.0)]
    pub(crate) max_memory_growth_mib_per_h: f64,
    /// Fail when the last windows' p99 exceeds this factor times the first windows' p99.
    #[arg(long = "max-latency-creep", default_value_t = 3.0)]
    pub(crate) max_latency_creep: f64,
    /// Seconds to wait for acknowledgements, live delivery and history to catch up.
    #[arg(long = "settle-s", default_value_t = 30)]
    pub(crate) settle_s: u64,
}

pub(crate) async fn run(args: SoakArgs) -> anyhow::Result<ExitCode> {
    let config = soak_config(&args).await?;
    config.validate()?;
    finish(&run_soak(&config).await?, &args.run)
}

pub(crate) async fn soak_config(args: &SoakArgs) -> anyhow::Result<SoakConfig> {
    Ok(SoakConfig {
        units: args.units,
        rate_per_unit: args.rate,
        duration: Duration::from_secs(args.duration_s),
        window: Duration::from_secs(args.window_s),
        admin_rate: args.admin_rate,
        max_memory_growth_mib_per_h: args.max_memory_growth_mib_per_h,
        max_latency_creep: args.max_latency_creep,
        settle_timeout: Duration::from_secs(args.settle_s),
        run: args.run.options(RunOptions::default()),
        ..SoakConfig::for_target(connect(&args.run).await?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_explicit, Command};

    async fn config(extra: &[&str]) -> SoakConfig {
        let Command::Soak(args) = parse_explicit("soak", extra) else {
            panic!("not the soak command");
        };
        soak_config(&args).await.expect("config")
    }

    #[tokio::test]
    async fn flags_reach_the_config() {
        let argv = [
            "--units",
            "50",
            "--rate",
            "2",
            "--duration-s",
            "1800",
            "--window-s",
            "15",
            "--admin-rate",
            "5",
            "--max-memory-growth-mib-per-h",
            "20",
            "--max-latency-creep",
            "2.5",
        ];
        let soak = config(&argv).await;
        assert_eq!((soak.units, soak.rate_per_unit), (50, 2.0));
        assert_eq!(soak.duration, Duration::from_secs(1800));
        assert_eq!(soak.window, Duration::from_secs(15));
        assert_eq!(soak.admin_rate, 5.0);
        assert_eq!(soak.max_memory_growth_mib_per_h, 20.0);
        assert_eq!(soak.max_latency_creep, 2.5);
        assert!(soak.validate().is_ok());
    }

    #[tokio::test]
    async fn defaults_are_valid_and_out_of_range_flags_are_refused_by_name() {
        let defaults = config(&[]).await;
        assert!(defaults.validate().is_ok());
        assert_eq!(defaults.duration, Duration::from_secs(300));
        assert_eq!(defaults.window, Duration::from_secs(10));
        for (flag, value, named) in [
            ("--duration-s", "86401", "duration"),
            ("--window-s", "0", "window"),
            ("--max-latency-creep", "0.9", "max latency creep"),
        ] {
            let error = config(&[flag, value]).await.validate().expect_err(flag);
            assert!(error.to_string().contains(named), "{error}");
        }
    }
}
