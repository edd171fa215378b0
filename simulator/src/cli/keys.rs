//! `fleetgate-sim keys`: its flags, and its report written to `--report-dir`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use simulator::report::write_report;
use simulator::scenario::keys::keys_page;
use simulator::{run_keys, KeysConfig};

use super::{connect, output_and_report, ConnectionArgs, ReportArgs};

#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
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
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) async fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let config = keys_config(&args).await?;
    config.validate()?;
    let report = run_keys(&config).await?;
    let clean = report.is_clean();
    if let Some(memory_error) = &report.timeline.memory_error {
        eprintln!("fleetgate-sim: gateway memory not measured: {memory_error}");
    }
    let written = write_report(
        &args.report.report_dir,
        "keys",
        &report.run_id,
        &report,
        &keys_page(&report),
    );
    output_and_report(&report, args.connection.json, clean, written)
}

pub(crate) async fn keys_config(args: &KeysArgs) -> anyhow::Result<KeysConfig> {
    let target = connect(&args.connection).await?;
    Ok(KeysConfig {
        units: args.units,
        parallelism: args.connection.parallelism,
        propagation_timeout: Duration::from_secs(args.propagation_timeout_s),
        short_lived: Duration::from_secs(args.short_lived_s),
        event_timeout: Duration::from_secs(args.event_timeout_s),
        offline_unit: !args.no_offline_unit,
        quiet: args.connection.quiet,
        gateway_pid: args.report.gateway_pid,
        ..KeysConfig::for_target(target)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[tokio::test]
    async fn keys_flags_reach_the_config_and_bounds_hold() {
        let parse = |extra: &[&str]| {
            let mut argv = vec![
                "fleetgate-sim",
                "keys",
                "--http",
                "http://127.0.0.1:8080",
                "--mqtt",
                "127.0.0.1:8883",
                "--token",
                "t",
            ];
            argv.extend_from_slice(extra);
            let cli = Cli::try_parse_from(argv).expect("parses");
            let Command::Keys(args) = cli.command else {
                panic!("not the keys command");
            };
            args
        };
        let args = parse(&[
            "--tls-server-name",
            "localhost",
            "--units",
            "1000",
            "--short-lived-s",
            "3",
            "--no-offline-unit",
            "--report-dir",
            "/tmp/keys-out",
            "--gateway-pid",
            "77",
            "--json",
            "--quiet",
        ]);
        assert!(args.connection.json);
        let config = keys_config(&args).await.expect("config");
        assert_eq!(config.units, 1000);
        assert_eq!(config.short_lived, Duration::from_secs(3));
        assert_eq!(config.target.tls_server_name.as_deref(), Some("localhost"));
        assert!(!config.offline_unit && config.quiet);
        assert_eq!(
            args.report.report_dir,
            std::path::PathBuf::from("/tmp/keys-out")
        );
        assert_eq!(config.gateway_pid, Some(77));
        assert!(config.validate().is_ok());
        let config = keys_config(&parse(&["--units", "10001"]))
            .await
            .expect("config");
        let error = config.validate().expect_err("refused");
        assert!(error.to_string().contains("units"), "{error}");
        let defaults = keys_config(&parse(&[])).await.expect("config");
        assert!(defaults.offline_unit);
        assert_eq!(defaults.gateway_pid, None);
        assert!(defaults.validate().is_ok());
    }
}
