//! Reading the audit log. Entries are written by every mutation in [`crate::ops`] and
//! [`crate::sharing`] inside the mutation's own transaction; this module decides who may
//! read which entries: an account's admin its account's, platform admins all.

use redb::ReadTransaction;

use crate::error::OpError;
use crate::ids::AccountId;
use crate::model::{AuditEntry, Principal, StaffRole};
use crate::policy::Need;
use crate::read::{require_on_account, Page};
use crate::store::decode_as;
use crate::tables::AUDIT;
use crate::time::Timestamp;

/// One page of at most `limit` entries that `filter` keeps, in `filter.order`, past the
/// entry `after` (the cursor: the previous page's last `seq`). Without an account, a
/// platform admin reads all and a user its own account's.
pub fn entries(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: Option<&AccountId>,
    filter: &AuditFilter,
    (after, limit): (Option<u64>, usize),
) -> Result<Page<AuditEntry>, OpError> {
    let account = scope(rtx, caller, account)?;
    let table = rtx.open_table(AUDIT)?;
    let mut items = Vec::new();
    let mut next_cursor = None;
    let rows = match filter.newest_first {
        false => Box::new(table.range(after.map_or(0, |seq| seq.saturating_add(1))..)?)
            as Box<dyn Iterator<Item = _>>,
        true => Box::new(table.range(..after.unwrap_or(u64::MAX))?.rev()),
    };
    for row in rows {
        let entry: AuditEntry = decode_as("audit", row?.1.value())?;
        if !filter.keeps(&entry) || (account.is_some() && entry.account_id != account) {
            continue;
        }
        if items.len() == limit.max(1) {
            next_cursor = items.last().map(|last: &AuditEntry| last.seq.to_string());
            break;
        }
        items.push(entry);
    }
    Ok(Page { items, next_cursor })
}

/// The account whose entries `caller` reads (`None`: every account, platform admins only).
fn scope(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: Option<&AccountId>,
) -> Result<Option<AccountId>, OpError> {
    let platform = caller.is_staff(StaffRole::PlatformAdmin);
    match account.or(caller.home_account()) {
        Some(account) => {
            if !platform {
                require_on_account(rtx, caller, account, Need::Administer)?;
            }
            Ok(Some(account.clone()))
        }
        None if platform => Ok(None),
        None => Err(OpError::invalid(
            "account_id",
            "required for staff principals",
        )),
    }
}

/// Which audit entries a list shows: every criterion given must hold.
#[derive(Debug, Clone)]
pub struct AuditFilter {
    /// `from <= at < to`.
    pub span: (Timestamp, Timestamp),
    /// Made by this principal id.
    pub actor: Option<String>,
    /// This action (`grant.create`), or a family of them (`grant`: every `grant.*`).
    pub action: Option<String>,
    /// Newest entries first (what an admin looking for a recent change reads), else oldest.
    pub newest_first: bool,
}

impl AuditFilter {
    pub fn keeps(&self, entry: &AuditEntry) -> bool {
        let (from, to) = self.span;
        let family = |wanted: &String| {
            entry.action == *wanted
                || entry
                    .action
                    .strip_prefix(wanted.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        };
        from <= entry.at
            && entry.at < to
            && self
                .actor
                .as_ref()
                .is_none_or(|a| entry.actor.as_str() == a)
            && self.action.as_ref().is_none_or(family)
    }
}
