//! `fleetgate-sim scale`: its flags, and its report written to `--report-dir`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use simulator::report::write_report;
use simulator::{run_scale, ScaleConfig};

use super::{connect, output_and_report, ConnectionArgs, ReportArgs};

#[derive(Debug, Args)]
pub(crate) struct ScaleArgs {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
    /// Units, each holding one session (1..=200000).
    #[arg(long, default_value_t = 1000)]
    pub(crate) units: usize,
    /// Loopback source addresses, comma-separated; each has its own ephemeral port range
    /// (about 28,000 ports with Linux defaults), so 50,000 units need at least two.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    pub(crate) sources: Vec<IpAddr>,
    /// Session openings in flight at once.
    #[arg(long = "connect-parallelism", default_value_t = 256)]
    pub(crate) connect_parallelism: usize,
    /// Seconds every session is held open, all at once, before the checks.
    #[arg(long = "hold-s", default_value_t = 30)]
    pub(crate) hold_s: u64,
    /// MQTT keep-alive in seconds (5..=3600).
    #[arg(long = "keep-alive-s", default_value_t = 60)]
    pub(crate) keep_alive_s: u64,
    /// Units that publish one telemetry point at full load (at most 1000).
    #[arg(long, default_value_t = 20)]
    pub(crate) probes: usize,
    /// Seconds one opening (TCP, TLS, CONNACK) may take.
    #[arg(long = "connect-timeout-s", default_value_t = 30)]
    pub(crate) connect_timeout_s: u64,
    /// Stop opening sessions after this many failures (the first limit is known by then).
    #[arg(long = "max-failures", default_value_t = 1000)]
    pub(crate) max_failures: u64,
    /// After the gateway, hold as many idle mutual-TLS units with this mosquitto binary
    /// (e.g. /usr/sbin/mosquitto, from scripts/setup.sh), started and stopped by the run on
    /// a free loopback port with a throwaway CA, and report memory per idle unit of both
    /// side by side. Needs --tls-server-name and --gateway-pid. The gateway's closed
    /// sessions keep their source ports in TIME_WAIT for about a minute, so give enough
    /// --sources for twice the units. Off by default.
    #[arg(long, value_name = "BINARY")]
    pub(crate) mosquitto: Option<PathBuf>,
}

pub(crate) async fn run(args: ScaleArgs) -> anyhow::Result<ExitCode> {
    let config = scale_config(&args).await?;
    config.validate()?;
    let report = run_scale(&config).await?;
    let clean = report.is_clean();
    let written = write_report(
        &args.report.report_dir,
        "scale",
        &report.run_id,
        &report,
        &report.page(),
    );
    output_and_report(&report, args.connection.json, clean, written)
}

pub(crate) async fn scale_config(args: &ScaleArgs) -> anyhow::Result<ScaleConfig> {
    let target = connect(&args.connection).await?;
    Ok(ScaleConfig {
        units: args.units,
        sources: args.sources.clone(),
        connect_parallelism: args.connect_parallelism,
        parallelism: args.connection.parallelism,
        hold: Duration::from_secs(args.hold_s),
        keep_alive: Duration::from_secs(args.keep_alive_s),
        probes: args.probes,
        connect_timeout: Duration::from_secs(args.connect_timeout_s),
        max_failures: args.max_failures,
        quiet: args.connection.quiet,
        gateway_pid: args.report.gateway_pid,
        mosquitto: args.mosquitto.clone(),
        ..ScaleConfig::for_target(target)
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[tokio::test]
    async fn flags_reach_the_config_and_sources_must_be_loopback() {
        let parse = |extra: &[&str]| {
            let mut argv = vec![
                "fleetgate-sim",
                "scale",
                "--http",
                "http://127.0.0.1:8080",
                "--mqtt",
                "127.0.0.1:8883",
                "--token",
                "t",
                "--tls-server-name",
                "localhost",
            ];
            argv.extend_from_slice(extra);
            let cli = Cli::try_parse_from(argv).expect("parses");
            let Command::Scale(args) = cli.command else {
                panic!("not the scale command");
            };
            args
        };
        let args = parse(&[
            "--units",
            "50000",
            "--sources",
            "127.0.0.1,127.0.0.2,127.0.0.3",
            "--hold-s",
            "60",
            "--gateway-pid",
            "77",
        ]);
        let config = scale_config(&args).await.expect("config");
        assert_eq!(config.units, 50_000);
        assert_eq!(config.sources.len(), 3);
        assert_eq!(config.hold, Duration::from_secs(60));
        assert_eq!(config.gateway_pid, Some(77));
        assert_eq!(config.target.tls_server_name.as_deref(), Some("localhost"));
        assert!(config.validate().is_ok());
        assert_eq!(config.mosquitto, None, "off by default");
        let side_by_side = scale_config(&parse(&[
            "--mosquitto",
            "/nonexistent/mosquitto",
            "--gateway-pid",
            "77",
        ]))
        .await
        .expect("config");
        assert_eq!(
            side_by_side.mosquitto.as_deref(),
            Some(std::path::Path::new("/nonexistent/mosquitto"))
        );
        let error = side_by_side.validate().expect_err("no such binary");
        assert!(error.to_string().contains("scripts/setup.sh"), "{error}");
        let without_pid = scale_config(&parse(&["--mosquitto", "/nonexistent/mosquitto"]))
            .await
            .expect("config");
        let error = without_pid.validate().expect_err("no gateway pid");
        assert!(error.to_string().contains("pid"), "{error}");
        let outside = scale_config(&parse(&["--sources", "192.0.2.1"]))
            .await
            .expect("config");
        let error = outside.validate().expect_err("refused");
        assert!(error.to_string().contains("loopback"), "{error}");
    }
}
