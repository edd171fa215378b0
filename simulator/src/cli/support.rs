//! `fleetgate-sim support`: its flags (HTTP only, so no MQTT address), and its report
//! written to `--report-dir`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use simulator::report::write_report;
use simulator::scenario::support::support_page;
use simulator::{run_support, SupportConfig};

use super::{gateway_in, output_and_report, token_or_bootstrap, ReportArgs};

#[derive(Debug, Args)]
pub(crate) struct SupportArgs {
    /// The gateway's data directory: read ready.json and bootstrap-token from it.
    #[arg(long, env = "FLEETGATE_DATA_DIR", conflicts_with = "http")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Gateway HTTP root, e.g. http://127.0.0.1:8080 (with --token).
    #[arg(long)]
    pub(crate) http: Option<String>,
    /// A platform_admin token; defaults to the data dir's bootstrap-token.
    #[arg(long, env = "FLEETGATE_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Seconds to wait for ready.json.
    #[arg(long = "ready-timeout-s", default_value_t = 30)]
    pub(crate) ready_timeout_s: u64,
    /// Accounts taken through every flow (1..=1000).
    #[arg(long, default_value_t = 3)]
    pub(crate) accounts: usize,
    /// Accounts whose flows run at once.
    #[arg(long, default_value_t = 4)]
    pub(crate) parallelism: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) async fn run(args: SupportArgs) -> anyhow::Result<ExitCode> {
    let config = support_config(&args).await?;
    config.validate()?;
    let report = run_support(&config).await?;
    let clean = report.is_clean();
    if let Some(memory_error) = &report.timeline.memory_error {
        eprintln!("fleetgate-sim: gateway memory not measured: {memory_error}");
    }
    let written = write_report(
        &args.report.report_dir,
        "support",
        &report.run_id,
        &report,
        &support_page(&report),
    );
    output_and_report(&report, args.json, clean, written)
}

/// Like `connect`, for the scenarios that need only the HTTP port.
pub(crate) async fn support_config(args: &SupportArgs) -> anyhow::Result<SupportConfig> {
    let (http_base, token) = match (&args.data_dir, &args.http) {
        (Some(data_dir), _) => {
            let endpoints = gateway_in(data_dir, args.ready_timeout_s).await?;
            let token = token_or_bootstrap(args.token.as_deref(), &endpoints)?;
            (endpoints.http_base, token)
        }
        (None, Some(http)) => {
            let token = args
                .token
                .clone()
                .context("--http needs --token (a platform_admin token)")?;
            (http.clone(), token)
        }
        (None, None) => bail!("give either --data-dir or --http and --token"),
    };
    Ok(SupportConfig {
        accounts: args.accounts,
        parallelism: args.parallelism,
        quiet: args.quiet,
        gateway_pid: args.report.gateway_pid,
        ..SupportConfig::new(http_base, token)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[tokio::test]
    async fn support_needs_no_mqtt_and_its_flags_reach_the_config() {
        let cli = Cli::try_parse_from([
            "fleetgate-sim",
            "support",
            "--http",
            "http://127.0.0.1:8080",
            "--token",
            "t",
            "--accounts",
            "7",
            "--report-dir",
            "/tmp/support-out",
            "--gateway-pid",
            "99",
            "--json",
            "--quiet",
        ])
        .expect("parses");
        let Command::Support(args) = cli.command else {
            panic!("not the support command");
        };
        assert!(args.json);
        let config = support_config(&args).await.expect("config");
        assert_eq!(config.accounts, 7);
        assert_eq!(args.report.report_dir, PathBuf::from("/tmp/support-out"));
        assert_eq!(config.gateway_pid, Some(99));
        assert_eq!(config.http_base, "http://127.0.0.1:8080");
        assert!(config.quiet);
        assert!(config.validate().is_ok());
    }

    #[tokio::test]
    async fn support_refuses_missing_token_and_too_many_accounts() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["fleetgate-sim", "support", "--http", "http://127.0.0.1:1"];
            argv.extend_from_slice(extra);
            let cli = Cli::try_parse_from(argv).expect("parses");
            let Command::Support(args) = cli.command else {
                panic!("not the support command");
            };
            args
        };
        let no_token = parse(&[]);
        if no_token.token.is_none() {
            let error = support_config(&no_token).await.expect_err("no token");
            assert!(error.to_string().contains("--token"), "{error}");
        }
        let defaults = parse(&["--token", "t"]);
        assert_eq!(defaults.report.report_dir, PathBuf::from("reports"));
        assert_eq!(defaults.report.gateway_pid, None);
        assert!(Cli::try_parse_from([
            "fleetgate-sim",
            "support",
            "--http",
            "http://127.0.0.1:1",
            "--gateway-pid",
            "guess",
        ])
        .is_err());
        let config = support_config(&parse(&["--token", "t", "--accounts", "1001"]))
            .await
            .expect("config");
        let error = config.validate().expect_err("refused");
        assert!(error.to_string().contains("accounts"), "{error}");
        assert!(Cli::try_parse_from([
            "fleetgate-sim",
            "support",
            "--data-dir",
            "/tmp/x",
            "--http",
            "http://127.0.0.1:1",
        ])
        .is_err());
    }
}
