//! The support-access scenario: platform staff get time-limited admin rights in customer
//! accounts and lose them again, and the run checks from outside that each change holds at
//! the moment its answer arrives (DESIGN.md rule 4; section 2: a mutation's effect is in
//! place before its HTTP answer).
//!
//! Order of a run: as the platform admin, create one `support` and one `tech_support` staff
//! member and `accounts` organization accounts, each with an admin user; then take every
//! account through its flows (`flows.rs`): a request that is approved, used and revoked, a
//! request that is declined, and a support case that is opened, used and closed. Accounts
//! run side by side, `parallelism` at a time; an account's flows run one after another.
//!
//! Nothing here needs MQTT: support access is purely a control-plane matter.
//!
//! While the flows run, `timeline.rs` samples the API calls answered per second (every
//! call of the flows that got an answer, refusals included; setup is not counted) and,
//! given the gateway's pid, its memory; `page.rs` draws the report.

mod checks;
mod flows;
mod report;

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use futures_util::{stream, StreamExt, TryStreamExt};
use tokio::time::Instant;

use super::fleet::{create_managed_account, ManagedAccount};
use super::runner::{self, Run, Scenario};
use super::timeline::{Sampler, Timeline};
use super::{progress_bar, ErrorLog, RunOptions, ScenarioError};
use crate::api::{ApiClient, StaffRole};
use flows::{AccountFlows, Logs, Staff};

pub use report::{CallKind, SupportLatencies, SupportReport, FLOWS_PER_ACCOUNT};

/// Bounds a run: each account costs about thirty sequential calls.
pub const MAX_ACCOUNTS: usize = 1000;
const MAX_PARALLELISM: usize = 256;

/// What to run and against which gateway.
#[derive(Clone)]
pub struct SupportConfig {
    /// Gateway root URL, e.g. `http://127.0.0.1:8080`.
    pub http_base: String,
    /// A `platform_admin` token (it creates the staff, accounts and admins).
    pub admin_token: String,
    /// Accounts taken through every flow.
    pub accounts: usize,
    /// Parallelism, progress, run id and the gateway's pid, as every scenario takes them.
    pub run: RunOptions,
}

impl fmt::Debug for SupportConfig {
    /// Leaves out the token: it is a platform administrator's credential.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SupportConfig")
            .field("http_base", &self.http_base)
            .field("accounts", &self.accounts)
            .field("parallelism", &self.run.parallelism)
            .field("quiet", &self.run.quiet)
            .field("run_id", &self.run.run_id)
            .field("gateway_pid", &self.run.gateway_pid)
            .finish_non_exhaustive()
    }
}

impl SupportConfig {
    /// Defaults: 3 accounts, 4 at a time, quiet.
    pub fn new(http_base: impl Into<String>, admin_token: impl Into<String>) -> Self {
        Self {
            http_base: http_base.into(),
            admin_token: admin_token.into(),
            accounts: 3,
            run: RunOptions {
                parallelism: 4,
                ..RunOptions::default()
            },
        }
    }

    /// Refuses settings that would run unbounded or check nothing, naming the setting.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if !(1..=MAX_ACCOUNTS).contains(&self.accounts) {
            return Err(ScenarioError::InvalidConfig(format!(
                "accounts must be 1..={MAX_ACCOUNTS}, got {}",
                self.accounts
            )));
        }
        self.run.validate(MAX_PARALLELISM)
    }
}

/// Runs the scenario. `Err` only when the run could not take place at all (bad settings,
/// staff or accounts refused); everything found during the flows is in the report.
pub async fn run_support(config: &SupportConfig) -> Result<SupportReport, ScenarioError> {
    runner::run(config, &config.run, config.validate()).await
}

/// What setup made: the two staff members, the accounts, and the contract violations
/// setup already found.
pub(crate) struct SupportSetup {
    support: Staff,
    tech: Staff,
    accounts: Vec<ManagedAccount>,
    checks: ErrorLog,
}

/// Per account, the flows it completed and their timings; the calls answered over time.
pub(crate) struct SupportLoad {
    outcomes: Vec<(usize, report::Timings)>,
    timeline: Timeline,
}

impl Scenario for SupportConfig {
    type Setup = SupportSetup;
    type Load = SupportLoad;
    type Report = SupportReport;

    /// A support and a tech-support staff member, and the accounts with their admins.
    async fn setup(&self, run: &Run) -> Result<SupportSetup, ScenarioError> {
        let platform_admin = ApiClient::new(&self.http_base, self.admin_token.clone())
            .map_err(ScenarioError::api("gateway URL"))?;
        let checks = ErrorLog::default();
        let support = create_staff(&platform_admin, &run.id, StaffRole::Support, &checks).await?;
        let tech = create_staff(&platform_admin, &run.id, StaffRole::TechSupport, &checks).await?;
        let accounts: Vec<ManagedAccount> = stream::iter(0..self.accounts)
            .map(|index| {
                let name = format!("sim-{}-s{index}", run.id);
                let platform_admin = &platform_admin;
                async move {
                    create_managed_account(platform_admin, &name, None, "sim-support-admin").await
                }
            })
            .buffered(self.run.parallelism)
            .try_collect()
            .await?;
        Ok(SupportSetup {
            support,
            tech,
            accounts,
            checks,
        })
    }

    /// Every account's flows, `parallelism` accounts at a time, from their first call to
    /// the last answer.
    async fn load(&self, run: &Run, setup: &mut SupportSetup) -> SupportLoad {
        let answered = Arc::new(AtomicU64::new(0));
        let sampler = Sampler::start(
            answered.clone(),
            self.run.gateway_pid,
            Some(self.http_base.clone()),
            Instant::now(),
        );
        let progress = progress_bar(setup.accounts.len() as u64, "accounts", self.run.quiet);
        let setup = &*setup;
        let outcomes: Vec<_> = stream::iter(setup.accounts.iter().enumerate())
            .map(|(index, account)| {
                let logs = Logs {
                    checks: &setup.checks,
                    errors: &run.errors,
                    answered: &answered,
                };
                let flows =
                    AccountFlows::new(&run.id, index, account, &setup.support, &setup.tech, logs);
                let progress = &progress;
                async move {
                    let outcome = flows.run().await;
                    progress.inc(1);
                    outcome
                }
            })
            .buffer_unordered(self.run.parallelism)
            .collect()
            .await;
        progress.finish_and_clear();
        let timeline = sampler.finish(&run.errors).await;
        SupportLoad { outcomes, timeline }
    }

    /// Each flow checks its rights changes as they are answered: nothing is on the way.
    async fn settle(&self, _run: &Run, _setup: &mut SupportSetup, _load: &mut SupportLoad) {}

    async fn check(&self, run: Run, setup: SupportSetup, load: SupportLoad) -> SupportReport {
        let mut timings = report::Timings::default();
        let mut flows_completed = 0;
        for (completed, account_timings) in &load.outcomes {
            flows_completed += completed;
            timings.merge(account_timings);
        }
        SupportReport {
            run_id: run.id.clone(),
            accounts: setup.accounts.len(),
            flows_expected: FLOWS_PER_ACCOUNT * setup.accounts.len(),
            flows_completed,
            checks_failed: setup.checks.into_entries(),
            latencies: timings.latencies(),
            timeline: load.timeline,
            errors: run.finish_errors(),
        }
    }
}

/// Creates one staff member of the run; the answer must echo the role and name no account
/// (staff belong to none).
async fn create_staff(
    platform_admin: &ApiClient,
    run_id: &str,
    role: StaffRole,
    checks: &ErrorLog,
) -> Result<Staff, ScenarioError> {
    let name = format!("sim-{run_id}-{role}");
    let created = platform_admin
        .create_staff(&name, role)
        .await
        .map_err(ScenarioError::api(format!("create {role} staff {name}")))?;
    if created.role != role {
        checks.push(format!(
            "creating {role} staff {name} answered role {}",
            created.role
        ));
    }
    if let Some(account) = &created.account_id {
        checks.push(format!(
            "staff member {name} was created in account {account}; staff belong to none"
        ));
    }
    Ok(Staff {
        id: created.id,
        client: platform_admin.with_token(created.token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::options::{assert_refused, assert_run_options_checked};

    fn config() -> SupportConfig {
        SupportConfig::new("http://127.0.0.1:1", "token")
    }

    #[test]
    fn defaults_are_valid_and_bounds_are_named() {
        assert!(config().validate().is_ok());
        let refused = |config: SupportConfig, word: &str| assert_refused(config.validate(), word);
        refused(
            SupportConfig {
                accounts: 0,
                ..config()
            },
            "accounts",
        );
        refused(
            SupportConfig {
                accounts: MAX_ACCOUNTS + 1,
                ..config()
            },
            "accounts",
        );
        assert_run_options_checked(MAX_PARALLELISM, |run| {
            SupportConfig { run, ..config() }.validate()
        });
    }

    #[test]
    fn debug_hides_the_token() {
        let shown = format!(
            "{:?}",
            SupportConfig {
                admin_token: "very-secret".into(),
                ..config()
            }
        );
        assert!(!shown.contains("very-secret"));
    }

    #[tokio::test]
    async fn unreachable_gateway_is_an_error_not_a_report() {
        let closed = crate::scenario::Target::closed();
        let config = SupportConfig::new(closed.http_base, "token");
        let error = run_support(&config).await.expect_err("no gateway");
        assert!(matches!(error, ScenarioError::Api { .. }), "{error}");
    }
}
