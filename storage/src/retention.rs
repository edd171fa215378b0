//! Retention: how long telemetry, access events and the audit log are kept, and the
//! bounded deletions that enforce it.
//!
//! - Telemetry is kept for the global default number of days unless the asset's owner
//!   account has its own setting ([`TELEMETRY_RETENTION`]); a grantee and a mirror read the
//!   owner's rows, so what the owner keeps is what they can see. A setting is the
//!   account's own: sub-accounts do not inherit it.
//! - Access events and audit entries have one global retention each.
//! - Every deletion is a batch of at most `budget` rows in the caller's write transaction
//!   (the store writer's), so live telemetry commits run between two batches; [`Plan`]
//!   says, per asset, where each batch starts and which rows are due.
//!
//! The per-account setting lives in [`crate::tables::TELEMETRY_RETENTION`].
//!
//! Days are whole days of 86,400,000 ms counted back from "now"; 0 means "keep forever".
//! A row is deleted when its `ts` (telemetry, access events) or `at` (audit) is strictly
//! before `now - days`.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use crate::error::{OpError, StoreError};
use crate::ids::AccountId;
use crate::model::{Asset, AuditEntry, Principal};
use crate::ops::{audit, AuditNote, Who};
use crate::read::administers;
use crate::store::decode_as;
use crate::tables::{
    ACCESS_EVENTS, ACCOUNTS, ASSETS, AUDIT, RETIRED_ASSETS, TELEMETRY, TELEMETRY_CHUNKS,
    TELEMETRY_RETENTION,
};
use crate::time::Timestamp;

/// One day in milliseconds.
pub const DAY_MS: u64 = 86_400_000;

/// The longest telemetry retention an account may set for itself: ten years, in days.
pub const MAX_ACCOUNT_DAYS: u32 = 3650;

/// The global retention settings, in days; 0 keeps forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Telemetry of accounts without their own setting.
    pub telemetry_days: u32,
    /// Access events reported by units.
    pub access_event_days: u32,
    /// Audit log entries.
    pub audit_days: u32,
}

/// The instant before which rows older than `days` are due at `now`; `None` keeps forever.
pub fn cutoff(now: Timestamp, days: u32) -> Option<Timestamp> {
    (days > 0).then(|| Timestamp(now.0.saturating_sub(u64::from(days) * DAY_MS)))
}

/// An account's telemetry retention, as `GET`/`PUT /v1/accounts/{a}/retention` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRetention {
    pub account_id: AccountId,
    /// The account's own setting in days; `None` follows the global default.
    pub own_days: Option<u32>,
    /// What applies to the account's assets, in days (0: forever).
    pub telemetry_days: u32,
}

/// The account's setting, for its admin or a platform admin (others: 404 or 403).
pub fn account_retention(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: &AccountId,
    default_days: u32,
) -> Result<AccountRetention, OpError> {
    administers(&rtx.open_table(ACCOUNTS)?, caller, account)?;
    let own_days = rtx
        .open_table(TELEMETRY_RETENTION)?
        .get(account.as_str())?
        .map(|days| days.value());
    Ok(AccountRetention {
        account_id: account.clone(),
        own_days,
        telemetry_days: own_days.unwrap_or(default_days),
    })
}

/// Sets (`Some`) or clears (`None`: back to the default) the account's own telemetry
/// retention in days, audited as `retention.set`. Refused: not 1..=[`MAX_ACCOUNT_DAYS`]
/// (422 naming `telemetry_days`), a caller who does not administer the account.
pub fn set_account_retention(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    days: Option<i64>,
    default_days: u32,
    now: Timestamp,
) -> Result<AccountRetention, OpError> {
    administers(&tx.open_table(ACCOUNTS)?, caller, account)?;
    let days = days.map(checked_days).transpose()?;
    let mut table = tx.open_table(TELEMETRY_RETENTION)?;
    let before = match days {
        Some(days) => table.insert(account.as_str(), days)?,
        None => table.remove(account.as_str())?,
    }
    .map(|old| old.value());
    drop(table);
    let shown =
        |days: Option<u32>| days.map_or_else(|| "default".to_owned(), |d| format!("{d} days"));
    let note = AuditNote {
        account_id: Some(account),
        action: "retention.set",
        target: format!("account {account} telemetry"),
        before: Some(shown(before)),
        after: Some(shown(days)),
    };
    audit(tx, Who::Principal(caller), note, now)?;
    Ok(AccountRetention {
        account_id: account.clone(),
        own_days: days,
        telemetry_days: days.unwrap_or(default_days),
    })
}

fn checked_days(days: i64) -> Result<u32, OpError> {
    u32::try_from(days)
        .ok()
        .filter(|days| (1..=MAX_ACCOUNT_DAYS).contains(days))
        .ok_or_else(|| {
            OpError::invalid(
                "telemetry_days",
                format!("must be a whole number of days from 1 to {MAX_ACCOUNT_DAYS}, or null for the default"),
            )
        })
}

/// What one prune run deletes: per asset key (ascending), the instant before which its
/// rows are due. Read once per run; a setting changed meanwhile applies from the next run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// (asset key, telemetry cutoff ms) for assets whose owner keeps telemetry finitely.
    pub telemetry: Vec<(u64, u64)>,
    /// (asset key, access-event cutoff ms) for every asset, when access events expire.
    pub access_events: Vec<(u64, u64)>,
    /// The audit cutoff, when audit entries expire.
    pub audit: Option<Timestamp>,
}

/// Reads the owners' settings and turns them into a [`Plan`] for `now`. Mirrors are
/// skipped: they hold no rows of their own (they read their source's, whose owner's
/// setting governs).
pub fn plan(
    rtx: &ReadTransaction,
    retention: Retention,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    let settings = rtx.open_table(TELEMETRY_RETENTION)?;
    let access_cutoff = cutoff(now, retention.access_event_days);
    let mut plan = Plan {
        audit: cutoff(now, retention.audit_days),
        ..Plan::default()
    };
    // An asset key's rows, under its owning account's setting.
    let mut add = |key: u64, account: &str| -> Result<(), StoreError> {
        let own = settings.get(account)?.map(|days| days.value());
        if let Some(at) = cutoff(now, own.unwrap_or(retention.telemetry_days)) {
            plan.telemetry.push((key, at.0));
        }
        if let Some(at) = access_cutoff {
            plan.access_events.push((key, at.0));
        }
        Ok(())
    };
    for row in rtx.open_table(ASSETS)?.iter()? {
        let asset: Asset = decode_as("assets", row?.1.value())?;
        if asset.mirror.is_none() {
            add(asset.key, asset.account_id.as_str())?;
        }
    }
    // A deleted asset's history follows its owner's retention too.
    for row in rtx.open_table(RETIRED_ASSETS)?.iter()? {
        let (key, owner) = row?;
        add(key.value(), owner.value().0)?;
    }
    plan.telemetry.sort_unstable();
    plan.access_events.sort_unstable();
    Ok(plan)
}

/// What one batch did: how many rows it deleted, and whether rows may remain (the budget
/// ran out), in which case the next batch starts at `resume` (an index into the plan's
/// list; unused for the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub deleted: usize,
    pub resume: Option<usize>,
}

/// Deletes about `budget` telemetry readings that are due, by the plan's cutoffs from index
/// `start` on: rows first (a row holds every reading of its millisecond and counts once),
/// then sealed chunks, a chunk wholly due at once and one that straddles the cutoff
/// rewritten without its due readings.
pub fn prune_telemetry(
    tx: &WriteTransaction,
    cutoffs: &[(u64, u64)],
    start: usize,
    budget: usize,
) -> Result<Batch, StoreError> {
    let mut table = tx.open_table(TELEMETRY)?;
    let mut chunks = tx.open_table(TELEMETRY_CHUNKS)?;
    prune_by_asset(cutoffs, start, budget, |key, before, limit| {
        let due: Vec<(u64, u64)> = table
            .range((key, 0)..(key, before))?
            .take(limit)
            .map(|row| row.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        for row in &due {
            table.remove(row)?;
        }
        Ok(due.len() + prune_chunks(&mut chunks, key, before, limit - due.len())?)
    })
}

/// Deletes the due readings of `asset`'s chunks older than `before`, whole chunks while
/// fewer than `limit` readings went; answers how many went.
fn prune_chunks(
    chunks: &mut redb::Table<(u64, u64), &'static [u8]>,
    asset: u64,
    before: u64,
    limit: usize,
) -> Result<usize, StoreError> {
    let mut deleted = 0;
    while deleted < limit {
        let first = chunks
            .range((asset, 0)..(asset, before))?
            .next()
            .transpose()?;
        let Some((start, record)) =
            first.map(|(key, value)| (key.value().1, value.value().to_vec()))
        else {
            break;
        };
        let mut points = crate::telemetry::stored::decode_chunk(start, &record)?;
        let held = points.len();
        points.retain(|point| point.ts.0 >= before);
        deleted += held - points.len();
        if points.is_empty() {
            chunks.remove((asset, start))?;
            continue;
        }
        // The chunk straddles the cutoff: what is left is not due, and no later chunk is.
        if points.len() < held {
            let kept = crate::telemetry::chunk::encode(start, &points);
            chunks.insert((asset, start), kept.as_slice())?;
        }
        break;
    }
    Ok(deleted)
}

/// As [`prune_telemetry`], for access events.
pub fn prune_access_events(
    tx: &WriteTransaction,
    cutoffs: &[(u64, u64)],
    start: usize,
    budget: usize,
) -> Result<Batch, StoreError> {
    let mut table = tx.open_table(ACCESS_EVENTS)?;
    prune_by_asset(cutoffs, start, budget, |key, before, limit| {
        let due: Vec<(u64, u64, u64)> = table
            .range((key, 0, 0)..(key, before, 0))?
            .take(limit)
            .map(|row| row.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        for row in &due {
            table.remove(row)?;
        }
        Ok(due.len())
    })
}

/// The batch walk both prunes share: for each `(asset key, cutoff)` from `start` on, lets
/// `delete(key, cutoff, limit)` remove up to `limit` due rows (answering how many), until
/// `budget` rows are gone; the batch says where the next one resumes.
fn prune_by_asset(
    cutoffs: &[(u64, u64)],
    start: usize,
    budget: usize,
    mut delete: impl FnMut(u64, u64, usize) -> Result<usize, StoreError>,
) -> Result<Batch, StoreError> {
    let budget = budget.max(1);
    let mut deleted = 0;
    for (index, &(key, before)) in cutoffs.iter().enumerate().skip(start) {
        deleted += delete(key, before, budget - deleted)?;
        // A whole chunk may take a batch past its budget.
        if deleted >= budget {
            return Ok(Batch {
                deleted,
                resume: Some(index),
            });
        }
    }
    Ok(Batch {
        deleted,
        resume: None,
    })
}

/// Deletes at most `budget` audit entries made before `before`, oldest first. Entries are
/// appended in time order (sequence and `at` rise together), so the scan stops at the
/// first entry that is not due.
pub fn prune_audit(
    tx: &WriteTransaction,
    before: Timestamp,
    budget: usize,
) -> Result<Batch, StoreError> {
    let budget = budget.max(1);
    let mut table = tx.open_table(AUDIT)?;
    let mut due = Vec::new();
    let mut more = false;
    for row in table.iter()? {
        let (seq, bytes) = row?;
        let entry: AuditEntry = decode_as("audit", bytes.value())?;
        if entry.at >= before {
            break;
        }
        if due.len() == budget {
            more = true;
            break;
        }
        due.push(seq.value());
    }
    for seq in &due {
        table.remove(seq)?;
    }
    Ok(Batch {
        deleted: due.len(),
        resume: more.then_some(0),
    })
}
