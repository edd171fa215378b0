//! `fleetgate-sim support`: its flags and their config. HTTP only: it needs no broker.

use std::process::ExitCode;

use clap::Args;
use simulator::{run_support, SupportConfig};

use super::{finish, http_endpoint, RunArgs};

#[derive(Debug, Args)]
pub(crate) struct SupportArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Accounts taken through every flow (1..=1000); `--parallelism` of them at once
    /// (default 4).
    #[arg(long, default_value_t = 3)]
    pub(crate) accounts: usize,
}

pub(crate) async fn run(args: SupportArgs) -> anyhow::Result<ExitCode> {
    let config = support_config(&args).await?;
    config.validate()?;
    finish(&run_support(&config).await?, &args.run)
}

pub(crate) async fn support_config(args: &SupportArgs) -> anyhow::Result<SupportConfig> {
    let (http_base, token, _) = http_endpoint(&args.run).await?;
    let defaults = SupportConfig::new(http_base, token);
    Ok(SupportConfig {
        accounts: args.accounts,
        run: args.run.options(defaults.run.clone()),
        ..defaults
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Command};

    fn args(extra: &[&str]) -> SupportArgs {
        let mut argv = vec!["support", "--http", "http://127.0.0.1:8080"];
        argv.extend_from_slice(extra);
        let Command::Support(args) = parse(&argv) else {
            panic!("not the support command");
        };
        args
    }

    #[tokio::test]
    async fn support_needs_no_mqtt_and_its_flags_reach_the_config() {
        let config = support_config(&args(&["--token", "t", "--accounts", "7"]))
            .await
            .expect("config");
        assert_eq!(config.accounts, 7);
        assert_eq!(config.http_base, "http://127.0.0.1:8080");
        assert_eq!(config.run.parallelism, 4, "the scenario's own default");
        assert!(config.validate().is_ok());
        let wide = args(&["--token", "t", "--parallelism", "8"]);
        let wide = support_config(&wide).await.expect("config");
        assert_eq!(wide.run.parallelism, 8);
        let many = args(&["--token", "t", "--accounts", "1001"]);
        let error = support_config(&many).await.expect("config").validate();
        let error = error.expect_err("refused");
        assert!(error.to_string().contains("accounts"), "{error}");
        let no_token = args(&[]);
        if no_token.run.token.is_none() {
            let error = support_config(&no_token).await.expect_err("no token");
            assert!(error.to_string().contains("--token"), "{error}");
        }
    }
}
