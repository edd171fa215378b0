//! `fleetgate-sim scale`: its flags and their config.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use simulator::{run_scale, RunOptions, ScaleConfig};

use super::{connect, finish, RunArgs};

#[derive(Debug, Args)]
pub(crate) struct ScaleArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
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
    finish(&run_scale(&config).await?, &args.run)
}

pub(crate) async fn scale_config(args: &ScaleArgs) -> anyhow::Result<ScaleConfig> {
    Ok(ScaleConfig {
        units: args.units,
        sources: args.sources.clone(),
        connect_parallelism: args.connect_parallelism,
        hold: Duration::from_secs(args.hold_s),
        keep_alive: Duration::from_secs(args.keep_alive_s),
        probes: args.probes,
        connect_timeout: Duration::from_secs(args.connect_timeout_s),
        max_failures: args.max_failures,
        mosquitto: args.mosquitto.clone(),
        run: args.run.options(RunOptions::default()),
        ..ScaleConfig::for_target(connect(&args.run).await?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_explicit, Command};

    async fn config(extra: &[&str]) -> ScaleConfig {
        let mut argv = vec!["--tls-server-name", "localhost"];
        argv.extend_from_slice(extra);
        let Command::Scale(args) = parse_explicit("scale", &argv) else {
            panic!("not the scale command");
        };
        scale_config(&args).await.expect("config")
    }

    #[tokio::test]
    async fn flags_reach_the_config_and_sources_must_be_loopback() {
        let sources = "127.0.0.1,127.0.0.2,127.0.0.3";
        let argv = ["--units", "50000", "--sources", sources, "--hold-s", "60"];
        let scale = config(&argv).await;
        assert_eq!((scale.units, scale.sources.len()), (50_000, 3));
        assert_eq!(scale.hold, Duration::from_secs(60));
        assert_eq!(scale.mosquitto, None, "off by default");
        let mosquitto = ["--mosquitto", "/nonexistent/mosquitto"];
        let without_pid = config(&mosquitto).await.validate().expect_err("no pid");
        assert!(without_pid.to_string().contains("pid"), "{without_pid}");
        let side_by_side = config(&[mosquitto[0], mosquitto[1], "--gateway-pid", "77"]).await;
        let error = side_by_side.validate().expect_err("no such binary");
        assert!(error.to_string().contains("scripts/setup.sh"), "{error}");
        let outside = config(&["--sources", "192.0.2.1"]).await.validate();
        let error = outside.expect_err("refused").to_string();
        assert!(error.contains("loopback"), "{error}");
    }
}
