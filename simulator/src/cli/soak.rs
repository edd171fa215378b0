//! `fleetgate-sim soak`: its flags, and its report written to `--report-dir`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use simulator::report::write_report;
use simulator::scenario::soak::soak_page;
use simulator::{run_soak, SoakConfig};

use super::{connect, output_and_report, ConnectionArgs, ReportArgs};

#[derive(Debug, Args)]
pub(crate) struct SoakArgs {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
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
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) async fn run(args: SoakArgs) -> anyhow::Result<ExitCode> {
    let config = soak_config(&args).await?;
    config.validate()?;
    let report = run_soak(&config).await?;
    let clean = report.is_clean();
    if let Some(memory_error) = &report.memory.memory_error {
        eprintln!("fleetgate-sim: gateway memory not measured: {memory_error}");
    }
    let written = write_report(
        &args.report.report_dir,
        "soak",
        &report.run_id,
        &report,
        &soak_page(&report),
    );
    output_and_report(&report, args.connection.json, clean, written)
}

pub(crate) async fn soak_config(args: &SoakArgs) -> anyhow::Result<SoakConfig> {
    let target = connect(&args.connection).await?;
    Ok(SoakConfig {
        units: args.units,
        rate_per_unit: args.rate,
        duration: Duration::from_secs(args.duration_s),
        window: Duration::from_secs(args.window_s),
        admin_rate: args.admin_rate,
        max_memory_growth_mib_per_h: args.max_memory_growth_mib_per_h,
        max_latency_creep: args.max_latency_creep,
        parallelism: args.connection.parallelism,
        settle_timeout: Duration::from_secs(args.settle_s),
        quiet: args.connection.quiet,
        gateway_pid: args.report.gateway_pid,
        ..SoakConfig::for_target(target)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(extra: &[&str]) -> SoakArgs {
        let mut argv = vec![
            "fleetgate-sim",
            "soak",
            "--http",
            "http://127.0.0.1:8080",
            "--mqtt",
            "127.0.0.1:8883",
            "--token",
            "t",
        ];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).expect("parses");
        let Command::Soak(args) = cli.command else {
            panic!("not the soak command");
        };
        args
    }

    #[tokio::test]
    async fn soak_flags_reach_the_config() {
        let args = parse(&[
            "--tls-server-name",
            "localhost",
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
            "--gateway-pid",
            "4242",
            "--report-dir",
            "/tmp/soak-out",
        ]);
        assert_eq!(args.report.report_dir, PathBuf::from("/tmp/soak-out"));
        let config = soak_config(&args).await.expect("config");
        assert_eq!(config.units, 50);
        assert_eq!(config.rate_per_unit, 2.0);
        assert_eq!(config.duration, Duration::from_secs(1800));
        assert_eq!(config.window, Duration::from_secs(15));
        assert_eq!(config.admin_rate, 5.0);
        assert_eq!(config.max_memory_growth_mib_per_h, 20.0);
        assert_eq!(config.max_latency_creep, 2.5);
        assert_eq!(config.gateway_pid, Some(4242));
        assert_eq!(config.target.tls_server_name.as_deref(), Some("localhost"));
        assert!(config.validate().is_ok());
    }

    #[tokio::test]
    async fn defaults_are_valid_and_out_of_range_flags_are_refused_by_name() {
        let defaults = soak_config(&parse(&[])).await.expect("config");
        assert!(defaults.validate().is_ok());
        assert_eq!(defaults.duration, Duration::from_secs(300));
        assert_eq!(defaults.window, Duration::from_secs(10));
        let too_long = soak_config(&parse(&["--duration-s", "86401"]))
            .await
            .expect("config");
        let error = too_long.validate().expect_err("refused");
        assert!(error.to_string().contains("duration"), "{error}");
        let no_window = soak_config(&parse(&["--window-s", "0"]))
            .await
            .expect("config");
        let error = no_window.validate().expect_err("refused");
        assert!(error.to_string().contains("window"), "{error}");
        let creep = soak_config(&parse(&["--max-latency-creep", "0.9"]))
            .await
            .expect("config");
        let error = creep.validate().expect_err("refused");
        assert!(error.to_string().contains("max latency creep"), "{error}");
    }
}
