//! The three flows each account of a support run goes through, driven from outside as the
//! people involved would: a support request that is approved, used and revoked; a request
//! that is declined; and a support case that tech support opens, uses and closes.
//!
//! A flow stops at the first call that fails outright (its later steps would only report
//! the same failure again) and goes to the error log; answers that arrive but break the
//! contract go to the check log and the flow goes on, so one run shows every broken rule.
//! The rights changes are timed from outside (`Cutover`): the first action after each one
//! is sent at once, because the contract says the change holds before its answer.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::checks::{audit_problem, listed_problems, unlisted_problems, view_problems, Expect};
use super::report::{CallKind, Cutover, Timings};
use crate::api::{
    ApiClient, ApiError, Asset, AssetId, AssetRelation, AuditQuery, NewAsset, PrincipalId,
    StaffRole, SupportAccessId, SupportDuration, SupportList, SupportState, SupportView,
};
use crate::scenario::fleet::ManagedAccount;
use crate::scenario::ErrorLog;

/// How long the run keeps trying for a rights change to show before calling it missing.
/// Generous: anything past the first attempt is already a failed check.
const CUTOVER_TIMEOUT: Duration = Duration::from_secs(5);
const CUTOVER_RETRY_PAUSE: Duration = Duration::from_millis(10);
/// The audit answer is one page; the accounts of a run hold a few dozen entries each.
const AUDIT_LIMIT: u32 = 1000;

/// A staff member the run created, and a client acting as them.
pub(super) struct Staff {
    pub(super) id: PrincipalId,
    pub(super) client: ApiClient,
}

/// The logs a run's flows write to, and the run's count of answered calls (the timeline's
/// series, shared by every account's flows).
pub(super) struct Logs<'a> {
    pub(super) checks: &'a ErrorLog,
    pub(super) errors: &'a ErrorLog,
    pub(super) answered: &'a AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Access,
    Decline,
    Case,
}

impl fmt::Display for Flow {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Flow::Access => "access flow",
            Flow::Decline => "decline flow",
            Flow::Case => "case flow",
        })
    }
}

/// One account's flows, run one after another: each flow's checks of who may act depend on
/// the previous one having ended its access.
pub(super) struct AccountFlows<'a> {
    run_id: &'a str,
    index: usize,
    account: &'a ManagedAccount,
    support: &'a Staff,
    tech: &'a Staff,
    logs: Logs<'a>,
    timings: Timings,
    /// Actions tried so far; numbers the assets they create, so none collide.
    actions: usize,
}

impl<'a> AccountFlows<'a> {
    pub(super) fn new(
        run_id: &'a str,
        index: usize,
        account: &'a ManagedAccount,
        support: &'a Staff,
        tech: &'a Staff,
        logs: Logs<'a>,
    ) -> Self {
        Self {
            run_id,
            index,
            account,
            support,
            tech,
            logs,
            timings: Timings::default(),
            actions: 0,
        }
    }

    /// Runs every flow; returns how many ran to their end, and their timings.
    pub(super) async fn run(mut self) -> (usize, Timings) {
        let mut completed = 0;
        completed += usize::from(self.access_flow().await.is_some());
        completed += usize::from(self.decline_flow().await.is_some());
        completed += usize::from(self.case_flow().await.is_some());
        (completed, self.timings)
    }

    /// Request (24 h) → listed as pending → a pending request gives nothing → approve →
    /// act (timed) → listed as active, no longer pending → audited with the request →
    /// revoke → refused (timed) → archived as revoked.
    async fn access_flow(&mut self) -> Option<()> {
        let flow = Flow::Access;
        let (account, support) = (self.account, self.support);
        let account_id = &account.account.id;
        let purpose = format!("sim {} access check {}", self.run_id, self.index);
        let requested = self
            .must(
                flow,
                "request access",
                CallKind::Request,
                support
                    .client
                    .request_support_access(account_id, &purpose, SupportDuration::Day),
            )
            .await?;
        let id = requested.id.clone();
        let pending = Expect {
            id: Some(&id),
            account_id,
            staff_id: &support.id,
            staff_role: StaffRole::Support,
            state: SupportState::Pending,
            duration: Some(SupportDuration::Day),
            ticket_id: None,
            decided_by: None,
            ended_by: None,
        };
        self.check_view(flow, "the new request", &requested, &pending);
        self.check_listed(flow, SupportList::Pending, &pending)
            .await?;
        self.expect_refused(flow, "acting on a pending request", support)
            .await?;

        let approve = account.client.approve_support_access(&id);
        let (approved, asset_id) = self
            .cut_over(
                flow,
                "approve",
                CallKind::Approve,
                approve,
                support,
                Cutover::Approved,
            )
            .await?;
        let active = Expect {
            decided_by: Some(&account.admin_id),
            ..pending.with_state(SupportState::Active)
        };
        let what = "the approval's answer";
        self.check_moved(flow, what, &approved, &active, SupportList::Pending)
            .await?;
        if let Some(asset_id) = asset_id {
            self.check_audit(flow, &asset_id, &support.id, &format!("request {id}"))
                .await?;
        }

        let revoke = account.client.revoke_support_access(&id);
        let (revoked, _) = self
            .cut_over(
                flow,
                "revoke",
                CallKind::Revoke,
                revoke,
                support,
                Cutover::Revoked,
            )
            .await?;
        let archived = Expect {
            ended_by: Some(&account.admin_id),
            ..active.with_state(SupportState::Revoked)
        };
        let what = "the revocation's answer";
        self.check_moved(flow, what, &revoked, &archived, SupportList::Active)
            .await
    }

    /// Request (14 d) → decline → archived as declined → approving it now answers 409 →
    /// acting is refused.
    async fn decline_flow(&mut self) -> Option<()> {
        let flow = Flow::Decline;
        let (account, support) = (self.account, self.support);
        let account_id = &account.account.id;
        let purpose = format!("sim {} decline check {}", self.run_id, self.index);
        let requested = self
            .must(
                flow,
                "request access",
                CallKind::Request,
                support.client.request_support_access(
                    account_id,
                    &purpose,
                    SupportDuration::TwoWeeks,
                ),
            )
            .await?;
        let id = requested.id.clone();
        let pending = Expect {
            id: Some(&id),
            account_id,
            staff_id: &support.id,
            staff_role: StaffRole::Support,
            state: SupportState::Pending,
            duration: Some(SupportDuration::TwoWeeks),
            ticket_id: None,
            decided_by: None,
            ended_by: None,
        };
        self.check_view(flow, "the new request", &requested, &pending);
        let declined = self
            .must(
                flow,
                "decline",
                CallKind::Decline,
                account.client.decline_support_access(&id),
            )
            .await?;
        let archived = Expect {
            decided_by: Some(&account.admin_id),
            ..pending.with_state(SupportState::Declined)
        };
        let what = "the decline's answer";
        self.check_moved(flow, what, &declined, &archived, SupportList::Pending)
            .await?;

        let late = self
            .timed(
                CallKind::Approve,
                account.client.approve_support_access(&id),
            )
            .await;
        match late {
            Err(error) if error.status() == Some(409) => {}
            Ok(view) => self.check(
                flow,
                format!(
                    "approving the declined request {id} answered 200 (as {})",
                    view.state
                ),
            ),
            Err(error @ ApiError::Status { .. }) => self.check(
                flow,
                format!("approving the declined request {id}: {error}, not 409"),
            ),
            Err(error) => return self.stop(flow, "approve the declined request", error),
        }
        self.expect_refused(flow, "acting after the decline", support)
            .await
    }

    /// Open a case → listed as active with its ticket → act (allowed at once) → audited
    /// with the ticket → close → refused (timed) → archived as closed.
    async fn case_flow(&mut self) -> Option<()> {
        let flow = Flow::Case;
        let (account, tech) = (self.account, self.tech);
        let account_id = &account.account.id;
        let ticket = format!("SIM-{}-{}", self.run_id, self.index);
        let opened = self
            .must(
                flow,
                "open a case",
                CallKind::OpenCase,
                tech.client.open_support_case(account_id, &ticket),
            )
            .await?;
        let opened_at = Instant::now();
        let id = opened.id.clone();
        let active = Expect {
            id: Some(&id),
            account_id,
            staff_id: &tech.id,
            staff_role: StaffRole::TechSupport,
            state: SupportState::Active,
            duration: None,
            ticket_id: Some(&ticket),
            decided_by: None,
            ended_by: None,
        };
        self.check_view(flow, "the opened case", &opened, &active);
        self.check_listed(flow, SupportList::Active, &active)
            .await?;
        let asset_id = self
            .act_until(flow, tech, Cutover::CaseOpened, opened_at)
            .await?;
        if let Some(asset_id) = asset_id {
            self.check_audit(flow, &asset_id, &tech.id, &format!("ticket {ticket}"))
                .await?;
        }

        let close = tech.client.close_support_case(&id);
        let (closed, _) = self
            .cut_over(
                flow,
                "close the case",
                CallKind::CloseCase,
                close,
                tech,
                Cutover::CaseClosed,
            )
            .await?;
        let archived = Expect {
            ended_by: Some(&tech.id),
            ..active.with_state(SupportState::Closed)
        };
        let what = "the close's answer";
        self.check_moved(flow, what, &closed, &archived, SupportList::Active)
            .await
    }

    /// A rights change (the flow's `step`, timed as `kind`) that must succeed, then acting as `staff` until it shows
    /// (see [`Self::act_until`]), timed from its answer: the change's answer and the asset
    /// the first allowed action created. How approving, revoking and closing are checked.
    async fn cut_over(
        &mut self,
        flow: Flow,
        step: &str,
        kind: CallKind,
        change: impl Future<Output = Result<SupportView, ApiError>>,
        staff: &Staff,
        cutover: Cutover,
    ) -> Option<(SupportView, Option<AssetId>)> {
        let answer = self.must(flow, step, kind, change).await?;
        let asset_id = self.act_until(flow, staff, cutover, Instant::now()).await?;
        Some((answer, asset_id))
    }

    /// The answer `what` to a change shows `expect`, and the access is now listed under
    /// its state's list and no longer under `left`: how every decision is checked.
    async fn check_moved(
        &mut self,
        flow: Flow,
        what: &str,
        answer: &SupportView,
        expect: &Expect<'_>,
        left: SupportList,
    ) -> Option<()> {
        self.check_view(flow, what, answer, expect);
        self.check_listed(flow, expect.state.list(), expect).await?;
        match expect.id {
            Some(id) => self.check_unlisted(flow, left, id).await,
            None => Some(()),
        }
    }

    /// Acts as `staff` until the change `cutover` shows, starting at once; records the time
    /// from `since` to the first action that showed it. Returns the asset the first allowed
    /// action created (`None` when the change takes access away). `None` overall stops the
    /// flow: the call failed, or the change never showed.
    async fn act_until(
        &mut self,
        flow: Flow,
        staff: &Staff,
        cutover: Cutover,
        since: Instant,
    ) -> Option<Option<AssetId>> {
        let deadline = since + CUTOVER_TIMEOUT;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let (asset_id, allowed) = self.act(flow, staff).await?;
            if allowed == cutover.grants_access() {
                self.timings.record_cutover(cutover, since.elapsed());
                if attempts > 1 {
                    self.check(
                        flow,
                        format!(
                            "the first action after {} was {}; it took {attempts} attempts \
                             and {:?}",
                            cutover.describe(),
                            outcome_word(!allowed),
                            since.elapsed()
                        ),
                    );
                }
                return Some(allowed.then_some(asset_id));
            }
            if Instant::now() >= deadline {
                self.check(
                    flow,
                    format!(
                        "every one of {attempts} actions in {CUTOVER_TIMEOUT:?} after {} was {}",
                        cutover.describe(),
                        outcome_word(allowed)
                    ),
                );
                return None;
            }
            tokio::time::sleep(CUTOVER_RETRY_PAUSE).await;
        }
    }

    /// One action that must be refused (404, as if the account did not exist).
    async fn expect_refused(&mut self, flow: Flow, what: &str, staff: &Staff) -> Option<()> {
        let (asset_id, allowed) = self.act(flow, staff).await?;
        if allowed {
            self.check(flow, format!("{what}: creating {asset_id} was allowed"));
        }
        Some(())
    }

    /// Creates an asset in the account as `staff`: something only its admin may do.
    /// Returns whether it was allowed; `None` when the answer was neither a success nor a
    /// refusal. A 403 counts as a refusal but is a failed check: without access the
    /// contract answers 404, exactly as if the account did not exist.
    async fn act(&mut self, flow: Flow, staff: &Staff) -> Option<(AssetId, bool)> {
        self.actions += 1;
        let account = self.account;
        let account_id = &account.account.id;
        let asset_id = AssetId::new(format!(
            "sim-{}-s{}-{}",
            self.run_id, self.index, self.actions
        ));
        let asset = NewAsset::new(asset_id.clone(), "created under support access");
        let outcome = self
            .timed(
                CallKind::Act,
                staff.client.create_asset_in(account_id, &asset),
            )
            .await;
        match outcome {
            Ok(created) => {
                if let Some(problem) = asset_problem(&created, &asset) {
                    self.check(flow, problem);
                }
                Some((asset_id, true))
            }
            Err(error) if error.status() == Some(404) => Some((asset_id, false)),
            Err(error) if error.status() == Some(403) => {
                self.check(
                    flow,
                    format!("creating {asset_id} was refused with 403, not 404: {error}"),
                );
                Some((asset_id, false))
            }
            Err(error) => self.stop(flow, format!("create asset {asset_id}"), error),
        }
    }

    async fn check_listed(
        &mut self,
        flow: Flow,
        list: SupportList,
        expect: &Expect<'_>,
    ) -> Option<()> {
        let items = self.list(flow, list).await?;
        for problem in listed_problems(&items, list, expect) {
            self.check(flow, problem);
        }
        Some(())
    }

    async fn check_unlisted(
        &mut self,
        flow: Flow,
        list: SupportList,
        id: &SupportAccessId,
    ) -> Option<()> {
        let items = self.list(flow, list).await?;
        for problem in unlisted_problems(&items, list, id) {
            self.check(flow, problem);
        }
        Some(())
    }

    /// One of the account's lists, read by its admin.
    async fn list(&mut self, flow: Flow, list: SupportList) -> Option<Vec<SupportView>> {
        let account = self.account;
        self.must(
            flow,
            &format!("list {list}"),
            CallKind::List,
            account
                .client
                .list_support_access(&account.account.id, list),
        )
        .await
    }

    /// The account's audit log, read by its admin, must show the creation of `asset_id` by
    /// the staff member under `via`.
    async fn check_audit(
        &mut self,
        flow: Flow,
        asset_id: &AssetId,
        actor: &PrincipalId,
        via: &str,
    ) -> Option<()> {
        let account = self.account;
        let query = AuditQuery {
            account_id: Some(account.account.id.clone()),
            limit: Some(AUDIT_LIMIT),
            ..AuditQuery::default()
        };
        let entries = self
            .must(
                flow,
                "read the audit log",
                CallKind::Audit,
                account.client.audit(&query),
            )
            .await?;
        if let Some(problem) = audit_problem(&entries, asset_id, actor, via) {
            self.check(flow, problem);
        }
        Some(())
    }

    fn check_view(&self, flow: Flow, what: &str, view: &SupportView, expect: &Expect<'_>) {
        for problem in view_problems(view, expect) {
            self.check(flow, format!("{what}: {problem}"));
        }
    }

    /// A call of a step that must succeed: its failure stops the flow.
    async fn must<T>(
        &mut self,
        flow: Flow,
        step: &str,
        kind: CallKind,
        call: impl Future<Output = Result<T, ApiError>>,
    ) -> Option<T> {
        match self.timed(kind, call).await {
            Ok(value) => Some(value),
            Err(error) => self.stop(flow, step, error),
        }
    }

    /// Runs a call and records its round trip when the gateway answered at all.
    async fn timed<T>(
        &mut self,
        kind: CallKind,
        call: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let started = Instant::now();
        let outcome = call.await;
        let answered = match &outcome {
            Ok(_) => true,
            Err(error) => error.status().is_some(),
        };
        if answered {
            self.timings.record_call(kind, started.elapsed());
            self.logs.answered.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    fn check(&self, flow: Flow, problem: impl fmt::Display) {
        self.logs.checks.push(format!(
            "account {}: {flow}: {problem}",
            self.account.account.id
        ));
    }

    fn stop<T>(&self, flow: Flow, step: impl fmt::Display, error: ApiError) -> Option<T> {
        self.logs.errors.push(format!(
            "account {}: {flow}: {step}: {error}",
            self.account.account.id
        ));
        None
    }
}

fn outcome_word(allowed: bool) -> &'static str {
    if allowed {
        "allowed"
    } else {
        "refused"
    }
}

/// What is wrong with the answer to creating `asked` in the account, if anything: the asset
/// must be the account's own, under the id asked for.
fn asset_problem(created: &Asset, asked: &NewAsset) -> Option<String> {
    if created.id != asked.id {
        return Some(format!(
            "creating asset {} answered asset {}",
            asked.id, created.id
        ));
    }
    if created.relation != AssetRelation::Owned {
        return Some(format!(
            "asset {} was created with relation {:?}, not owned",
            created.id, created.relation
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AccountId;

    fn asset(id: &str, relation: AssetRelation) -> Asset {
        Asset {
            id: AssetId::new(id),
            account_id: AccountId::new("acc1"),
            name: "n".into(),
            serial: None,
            device_id: None,
            relation,
            created_at: String::new(),
        }
    }

    #[test]
    fn created_assets_must_be_owned_and_named_as_asked() {
        let asked = NewAsset::new("sim-x-s0-1", "n");
        assert_eq!(
            asset_problem(&asset("sim-x-s0-1", AssetRelation::Owned), &asked),
            None
        );
        assert!(asset_problem(&asset("other", AssetRelation::Owned), &asked).is_some());
        assert!(asset_problem(&asset("sim-x-s0-1", AssetRelation::Shared), &asked).is_some());
    }

    #[test]
    fn flows_and_outcomes_read_well_in_messages() {
        assert_eq!(Flow::Access.to_string(), "access flow");
        assert_eq!(outcome_word(true), "allowed");
        assert_eq!(outcome_word(false), "refused");
    }
}
