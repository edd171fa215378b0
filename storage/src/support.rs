//! Support access (rule 4): platform staff ask for time-limited Admin rights in an
//! account; that account's admin approves, declines or revokes; a support case grants
//! tech support access at once. Expiry and revoke end access through one function, so the
//! scheduler and the admin cut it the same way.
//!
//! Scope, decided here: active support access gives Admin rights in the account and, as
//! an account admin has them, in its descendants. Never in its ancestors or siblings.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime};

use crate::codec;
use crate::error::{OpError, StoreError};
use crate::ids::{AccountId, PrincipalId};
use crate::model::{ActiveSupport, Principal, PrincipalKind, Role, StaffRole};
use crate::ops::{audit, AuditNote, Who};
use crate::policy;
use crate::read::chain;
use crate::rule::Rule;
use crate::store::{get, rows_where};
use crate::tables::*;
use crate::time::Timestamp;

pub const MAX_PURPOSE: usize = 500;
pub const MAX_TICKET: usize = 64;

/// How long approved access lasts. `3mo` is three calendar months from the approval
/// instant (same day of month, clamped to the month's last day: Nov 30 + 3mo = Feb 28/29).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SupportDuration {
    Day,
    TwoWeeks,
    ThreeMonths,
}

impl SupportDuration {
    pub const NAMES: &'static str = "24h, 14d, 3mo";

    pub fn parse(raw: &str) -> Option<SupportDuration> {
        match raw {
            "24h" => Some(SupportDuration::Day),
            "14d" => Some(SupportDuration::TwoWeeks),
            "3mo" => Some(SupportDuration::ThreeMonths),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SupportDuration::Day => "24h",
            SupportDuration::TwoWeeks => "14d",
            SupportDuration::ThreeMonths => "3mo",
        }
    }

    pub fn end(self, start: Timestamp) -> Timestamp {
        const DAY_MS: u64 = 24 * 3600 * 1000;
        match self {
            SupportDuration::Day => Timestamp(start.0 + DAY_MS),
            SupportDuration::TwoWeeks => Timestamp(start.0 + 14 * DAY_MS),
            SupportDuration::ThreeMonths => add_months(start, 3),
        }
    }
}

fn add_months(start: Timestamp, months: u8) -> Timestamp {
    let Ok(at) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(start.0) * 1_000_000) else {
        return start;
    };
    let total = at.month() as u8 - 1 + months;
    let year = at.year() + i32::from(total / 12);
    let month = Month::try_from(total % 12 + 1).unwrap_or(Month::January);
    let day = at.day().min(time::util::days_in_month(month, year));
    let Ok(date) = Date::from_calendar_date(year, month, day) else {
        return start;
    };
    let moved = at.replace_date(date);
    Timestamp(u64::try_from(moved.unix_timestamp_nanos() / 1_000_000).unwrap_or(start.0))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SupportState {
    Pending,
    Active,
    Declined,
    Revoked,
    Expired,
    /// A support case was closed.
    Closed,
}

impl SupportState {
    pub fn as_str(self) -> &'static str {
        match self {
            SupportState::Pending => "pending",
            SupportState::Active => "active",
            SupportState::Declined => "declined",
            SupportState::Revoked => "revoked",
            SupportState::Expired => "expired",
            SupportState::Closed => "closed",
        }
    }

    /// The three lists the account admin sees.
    pub fn list(self) -> &'static str {
        match self {
            SupportState::Pending => "pending",
            SupportState::Active => "active",
            _ => "archived",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportAccess {
    /// `sup...`; for a support case this is the case id.
    pub id: String,
    pub account_id: AccountId,
    pub staff: PrincipalId,
    pub staff_role: StaffRole,
    pub purpose: String,
    pub duration: Option<SupportDuration>,
    pub ticket_id: Option<String>,
    pub state: SupportState,
    pub requested_at: Timestamp,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    /// Who approved, declined, revoked or closed it (the scheduler for an expiry).
    pub decided_by: Option<PrincipalId>,
    pub decided_at: Option<Timestamp>,
    pub ended_by: Option<PrincipalId>,
    pub ended_at: Option<Timestamp>,
}

impl SupportAccess {
    /// What audit entries name: the ticket for a case, the request id otherwise.
    pub fn via(&self) -> String {
        match &self.ticket_id {
            Some(ticket) => format!("ticket {ticket}"),
            None => format!("request {}", self.id),
        }
    }
}

fn text(field: &str, raw: &str, max: usize) -> Result<String, OpError> {
    crate::text::checked(raw, max).map_err(|rule| OpError::invalid(field, rule))
}

/// Writes the record and keeps the active-access index and deadline rows in step with it.
fn save(tx: &WriteTransaction, access: &SupportAccess) -> Result<(), StoreError> {
    tx.open_table(SUPPORT)?
        .insert(access.id.as_str(), codec::encode(access).as_slice())?;
    if let (SupportState::Active, Some(ends)) = (access.state, access.ends_at) {
        tx.open_table(SUPPORT_ACTIVE)?.insert(
            (
                access.staff.as_str(),
                access.account_id.as_str(),
                access.id.as_str(),
            ),
            ends.0,
        )?;
        tx.open_table(SUPPORT_DEADLINES)?
            .insert((ends.0, access.id.as_str()), ())?;
    }
    Ok(())
}

/// Removes the index rows of access that is about to stop being active.
fn unindex(tx: &WriteTransaction, access: &SupportAccess) -> Result<(), StoreError> {
    tx.open_table(SUPPORT_ACTIVE)?.remove((
        access.staff.as_str(),
        access.account_id.as_str(),
        access.id.as_str(),
    ))?;
    if let Some(ends) = access.ends_at {
        tx.open_table(SUPPORT_DEADLINES)?
            .remove((ends.0, access.id.as_str()))?;
    }
    Ok(())
}

fn note<'a>(access: &'a SupportAccess, action: &'a str, before: SupportState) -> AuditNote<'a> {
    AuditNote {
        account_id: Some(&access.account_id),
        action,
        target: access.id.clone(),
        before: Some(format!("{} {}", access.staff, before.as_str())),
        after: Some(format!(
            "{} {} ({})",
            access.staff,
            access.state.as_str(),
            access.via()
        )),
    }
}

fn staff_role(caller: &Principal) -> Option<StaffRole> {
    match caller.kind {
        PrincipalKind::Staff { role } => Some(role),
        PrincipalKind::User { .. } => None,
    }
}

/// `support` staff ask for Admin access to an account for a purpose and a duration.
pub fn request(
    tx: &WriteTransaction,
    caller: &Principal,
    account_id: &AccountId,
    purpose: &str,
    duration: SupportDuration,
    now: Timestamp,
) -> Result<SupportAccess, OpError> {
    if staff_role(caller) != Some(StaffRole::Support) {
        return Err(OpError::Forbidden(Rule::SupportRequestedBySupport));
    }
    let purpose = text("purpose", purpose, MAX_PURPOSE)?;
    chain(&tx.open_table(ACCOUNTS)?, account_id)?
        .ok_or_else(|| OpError::not_found(format!("account {account_id}")))?;
    let access = SupportAccess {
        id: crate::ids::generate("sup"),
        account_id: account_id.clone(),
        staff: caller.id.clone(),
        staff_role: StaffRole::Support,
        purpose,
        duration: Some(duration),
        ticket_id: None,
        state: SupportState::Pending,
        requested_at: now,
        starts_at: None,
        ends_at: None,
        decided_by: None,
        decided_at: None,
        ended_by: None,
        ended_at: None,
    };
    create(tx, caller, access, "support.request", now)
}

/// Saves a new access and audits its coming into being (from pending, as `action`): how
/// a request and a case both start.
fn create(
    tx: &WriteTransaction,
    caller: &Principal,
    access: SupportAccess,
    action: &str,
    now: Timestamp,
) -> Result<SupportAccess, OpError> {
    save(tx, &access)?;
    // A new access has no state before this one ("pending → pending" read as a change).
    let note = AuditNote {
        before: None,
        ..note(&access, action, SupportState::Pending)
    };
    audit(tx, Who::Principal(caller), note, now)?;
    Ok(access)
}

/// Only the account's own admin (a user, not staff, not a fleet admin or viewer) decides.
fn require_account_admin(
    tx: &WriteTransaction,
    caller: &Principal,
    access: &SupportAccess,
) -> Result<(), OpError> {
    let what = format!("support access {}", access.id);
    let account_chain = chain(&tx.open_table(ACCOUNTS)?, &access.account_id)?.unwrap_or_default();
    match &caller.kind {
        PrincipalKind::Staff { .. } => Err(OpError::Forbidden(Rule::SupportDecidedByAdmin {
            role: None,
        })),
        PrincipalKind::User { account_id, .. } => match policy::role_in(caller, &account_chain) {
            Some(Role::Admin) => Ok(()),
            Some(role) => Err(OpError::Forbidden(Rule::SupportDecidedByAdmin {
                role: Some(role),
            })),
            // A sub-account's admin sees the inherited access in its lists; it is decided
            // where it was approved.
            None if covers(tx, &access.account_id, account_id)? => {
                Err(OpError::Forbidden(Rule::SupportDecidedWhereApproved {
                    account_id: access.account_id.clone(),
                }))
            }
            None => Err(OpError::not_found(what)),
        },
    }
}

/// Whether `account` is `ancestor` or one of its descendants.
fn covers(
    tx: &WriteTransaction,
    ancestor: &AccountId,
    account: &AccountId,
) -> Result<bool, StoreError> {
    Ok(chain(&tx.open_table(ACCOUNTS)?, account)?
        .is_some_and(|account_chain| account_chain.contains(ancestor)))
}

fn load(tx: &WriteTransaction, id: &str) -> Result<SupportAccess, OpError> {
    get(&tx.open_table(SUPPORT)?, "support", id)?
        .ok_or_else(|| OpError::not_found(format!("support access {id}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Decline,
    Revoke,
}

/// Approve or decline a pending request, or revoke active access. Anything else is 409.
pub fn decide(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &str,
    decision: Decision,
    now: Timestamp,
) -> Result<SupportAccess, OpError> {
    let mut access = load(tx, id)?;
    require_account_admin(tx, caller, &access)?;
    let before = access.state;
    match (decision, before) {
        (Decision::Approve, SupportState::Pending) => {
            let duration = access.duration.unwrap_or(SupportDuration::Day);
            access.state = SupportState::Active;
            access.starts_at = Some(now);
            access.ends_at = Some(duration.end(now));
            access.decided_by = Some(caller.id.clone());
            access.decided_at = Some(now);
        }
        (Decision::Decline, SupportState::Pending) => {
            access.state = SupportState::Declined;
            access.decided_by = Some(caller.id.clone());
            access.decided_at = Some(now);
        }
        (Decision::Revoke, SupportState::Active) => {
            return end(
                tx,
                Who::Principal(caller),
                access,
                (SupportState::Revoked, None),
                now,
            );
        }
        (decision, state) => {
            return Err(OpError::Conflict(format!(
                "support access {id} is {}; it cannot be {}",
                state.as_str(),
                match decision {
                    Decision::Approve => "approved",
                    Decision::Decline => "declined",
                    Decision::Revoke => "revoked",
                }
            )))
        }
    }
    save(tx, &access)?;
    let action = if access.state == SupportState::Active {
        "support.approve"
    } else {
        "support.decline"
    };
    audit(
        tx,
        Who::Principal(caller),
        note(&access, action, before),
        now,
    )?;
    Ok(access)
}

/// The one way active access ends: revoke, expiry, or a closed case; `to` is the state
/// it ends in and, when the access ends for a reason of its own (its staff member was
/// disabled or deleted), the words the audit adds.
fn end(
    tx: &WriteTransaction,
    who: Who<'_>,
    mut access: SupportAccess,
    (to, reason): (SupportState, Option<&str>),
    now: Timestamp,
) -> Result<SupportAccess, OpError> {
    let before = access.state;
    unindex(tx, &access)?;
    access.state = to;
    access.ends_at = Some(now.min(access.ends_at.unwrap_or(now)));
    access.ended_at = Some(now);
    access.ended_by = Some(who.actor_id());
    save(tx, &access)?;
    let action = match to {
        SupportState::Revoked => "support.revoke",
        SupportState::Closed => "support.close",
        _ => "support.expire",
    };
    audit(tx, who, because(note(&access, action, before), reason), now)?;
    Ok(access)
}

/// The audit line with the reason its access ended, when it has one.
fn because<'a>(mut line: AuditNote<'a>, reason: Option<&str>) -> AuditNote<'a> {
    if let (Some(after), Some(reason)) = (line.after.as_mut(), reason) {
        after.push_str(": ");
        after.push_str(reason);
    }
    line
}

/// Ends every support access of the staff member `staff` that is pending or active, for
/// `reason` (its member was disabled or deleted): active access is revoked through the
/// same [`end`] as an admin's revoke, so its streams end as a revoke's do; a pending
/// request is declined. `caller` (the platform admin) is named as who decided, and the
/// audit of each says why. Answers what ended.
///
/// # Errors
/// [`OpError`] when the store fails.
pub fn end_for_staff(
    tx: &WriteTransaction,
    caller: &Principal,
    staff: &PrincipalId,
    reason: &str,
    now: Timestamp,
) -> Result<Vec<SupportAccess>, OpError> {
    let open = rows_where(
        &tx.open_table(SUPPORT)?,
        "support",
        |access: &SupportAccess| {
            access.staff == *staff
                && matches!(access.state, SupportState::Pending | SupportState::Active)
        },
    )?;
    let mut ended = Vec::with_capacity(open.len());
    for mut access in open {
        if access.state == SupportState::Active {
            let to = (SupportState::Revoked, Some(reason));
            ended.push(end(tx, Who::Principal(caller), access, to, now)?);
            continue;
        }
        access.state = SupportState::Declined;
        access.decided_by = Some(caller.id.clone());
        access.decided_at = Some(now);
        save(tx, &access)?;
        let line = note(&access, "support.decline", SupportState::Pending);
        audit(tx, Who::Principal(caller), because(line, Some(reason)), now)?;
        ended.push(access);
    }
    Ok(ended)
}

/// `tech_support` or `platform_admin` open a case: tech support access, active at once,
/// listed with the ticket id, for at most three months. The access goes to tech_support
/// staff only: the opener, or the staff member a platform_admin names in `for_staff`; a
/// platform_admin never gets account rights from a case.
pub fn open_case(
    tx: &WriteTransaction,
    caller: &Principal,
    account_id: &AccountId,
    ticket_id: &str,
    for_staff: Option<&str>,
    now: Timestamp,
) -> Result<SupportAccess, OpError> {
    let staff = case_staff(tx, caller, for_staff)?;
    let ticket_id = text("ticket_id", ticket_id, MAX_TICKET)?;
    chain(&tx.open_table(ACCOUNTS)?, account_id)?
        .ok_or_else(|| OpError::not_found(format!("account {account_id}")))?;
    let access = SupportAccess {
        id: crate::ids::generate("case"),
        account_id: account_id.clone(),
        staff,
        staff_role: StaffRole::TechSupport,
        purpose: format!("support case {ticket_id}"),
        duration: Some(SupportDuration::ThreeMonths),
        ticket_id: Some(ticket_id),
        state: SupportState::Active,
        requested_at: now,
        starts_at: Some(now),
        ends_at: Some(SupportDuration::ThreeMonths.end(now)),
        decided_by: Some(caller.id.clone()),
        decided_at: Some(now),
        ended_by: None,
        ended_at: None,
    };
    create(tx, caller, access, "support.case_open", now)
}

/// Who a case's access is for (see [`open_case`]).
fn case_staff(
    tx: &WriteTransaction,
    caller: &Principal,
    for_staff: Option<&str>,
) -> Result<PrincipalId, OpError> {
    match (staff_role(caller), for_staff) {
        (Some(StaffRole::TechSupport), None) => Ok(caller.id.clone()),
        (Some(StaffRole::TechSupport), Some(named)) if named == caller.id.as_str() => {
            Ok(caller.id.clone())
        }
        (Some(StaffRole::TechSupport), Some(_)) => Err(OpError::invalid(
            "staff_id",
            "rule 4: tech_support opens a case for themselves; a platform_admin names others",
        )),
        (Some(StaffRole::PlatformAdmin), None) => Err(OpError::invalid(
            "staff_id",
            "rule 4: a platform_admin names the tech_support staff member the case is for \
             (a case never gives a platform_admin account rights)",
        )),
        (Some(StaffRole::PlatformAdmin), Some(named)) => {
            let principal: Option<Principal> =
                get(&tx.open_table(PRINCIPALS)?, "principals", named)?;
            match principal {
                Some(staff) if staff_role(&staff) == Some(StaffRole::TechSupport) => {
                    if tx.open_table(DISABLED_USERS)?.get(named)?.is_some() {
                        return Err(OpError::invalid(
                            "staff_id",
                            "this tech_support staff member is disabled",
                        ));
                    }
                    Ok(staff.id)
                }
                _ => Err(OpError::invalid(
                    "staff_id",
                    "rule 4: a case's access goes to a tech_support staff member",
                )),
            }
        }
        _ => Err(OpError::Forbidden(Rule::CasesByTechSupport {
            action: "open",
        })),
    }
}

pub fn close_case(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &str,
    now: Timestamp,
) -> Result<SupportAccess, OpError> {
    let access = load(tx, id)?;
    if access.ticket_id.is_none() {
        return Err(OpError::not_found(format!("support case {id}")));
    }
    // Someone outside the case's account is told nothing about it (404, not 403).
    if staff_role(caller).is_none() {
        let account_chain =
            chain(&tx.open_table(ACCOUNTS)?, &access.account_id)?.unwrap_or_default();
        if policy::role_in(caller, &account_chain).is_none() {
            return Err(OpError::not_found(format!("support case {id}")));
        }
    }
    if !matches!(
        staff_role(caller),
        Some(StaffRole::TechSupport | StaffRole::PlatformAdmin)
    ) {
        return Err(OpError::Forbidden(Rule::CasesByTechSupport {
            action: "close",
        }));
    }
    if access.state != SupportState::Active {
        return Err(OpError::Conflict(format!(
            "support case {id} is already {}",
            access.state.as_str()
        )));
    }
    end(
        tx,
        Who::Principal(caller),
        access,
        (SupportState::Closed, None),
        now,
    )
}

/// Expires every active access whose end has come; the same `end` as revoke.
pub fn apply_due(tx: &WriteTransaction, now: Timestamp) -> Result<Vec<SupportAccess>, OpError> {
    let due = crate::store::due_deadlines(tx, SUPPORT_DEADLINES, now)?;
    let mut ended = Vec::new();
    for (_, id) in due {
        let access = load(tx, &id)?;
        if access.state == SupportState::Active {
            ended.push(end(
                tx,
                Who::Scheduler,
                access,
                (SupportState::Expired, None),
                now,
            )?);
        }
    }
    Ok(ended)
}

pub fn next_deadline(rtx: &ReadTransaction) -> Result<Option<Timestamp>, StoreError> {
    crate::store::first_deadline(rtx, SUPPORT_DEADLINES)
}

/// The support access a staff member holds right now, for the bearer-token lookup.
pub fn active_for(
    rtx: &ReadTransaction,
    staff: &PrincipalId,
    now: Timestamp,
) -> Result<Vec<ActiveSupport>, StoreError> {
    let active = rtx.open_table(SUPPORT_ACTIVE)?;
    let support = rtx.open_table(SUPPORT)?;
    let mut out = Vec::new();
    for row in active.range((staff.as_str(), "", "")..)? {
        let (key, ends) = row?;
        let (holder, account, id) = key.value();
        if holder != staff.as_str() {
            break;
        }
        // The end instant counts even before the scheduler has run.
        if now.0 >= ends.value() {
            continue;
        }
        if let Some(access) = get::<SupportAccess>(&support, "support", id)? {
            out.push(ActiveSupport {
                account_id: AccountId::parse(account).map_err(|_| StoreError::WriterGone)?,
                via: access.via(),
            });
        }
    }
    Ok(out)
}

/// One of the three lists for an account (`None`: every state): its admin and platform staff
/// may read them.
pub fn list(
    rtx: &ReadTransaction,
    caller: &Principal,
    account_id: &AccountId,
    list: Option<&str>,
) -> Result<Vec<SupportAccess>, OpError> {
    let what = format!("account {account_id}");
    let account_chain =
        chain(&rtx.open_table(ACCOUNTS)?, account_id)?.ok_or_else(|| OpError::not_found(&what))?;
    if staff_role(caller).is_none() {
        policy::require(caller, &account_chain, policy::Need::Administer, &what)?;
    }
    // An access covers the account it was approved at and that account's descendants, so
    // every account it covers lists it (`inherited` when approved above).
    Ok(rows_where(
        &rtx.open_table(SUPPORT)?,
        "support",
        |access: &SupportAccess| {
            account_chain.contains(&access.account_id)
                && list.is_none_or(|list| access.state.list() == list)
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).expect("time")
    }

    #[test]
    fn durations_end_where_the_docs_say() {
        let start = at("2026-11-30T10:00:00Z");
        assert_eq!(SupportDuration::Day.end(start), at("2026-12-01T10:00:00Z"));
        assert_eq!(
            SupportDuration::TwoWeeks.end(start),
            at("2026-12-14T10:00:00Z")
        );
        assert_eq!(
            SupportDuration::ThreeMonths.end(start),
            at("2027-02-28T10:00:00Z"),
            "clamped to February's end"
        );
        assert_eq!(
            SupportDuration::ThreeMonths.end(at("2027-11-30T10:00:00Z")),
            at("2028-02-29T10:00:00Z"),
            "leap year"
        );
        assert_eq!(
            SupportDuration::ThreeMonths.end(at("2026-01-15T00:00:00Z")),
            at("2026-04-15T00:00:00Z")
        );
        assert_eq!(
            SupportDuration::parse("3mo"),
            Some(SupportDuration::ThreeMonths)
        );
        assert_eq!(SupportDuration::parse("1y"), None);
    }
}
