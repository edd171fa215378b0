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

/// Every action the audit log records (`AuditNote::action`); an `action` filter is one of
/// them or a family of them (a prefix up to a `.`: `grant`, `sharing.details`).
pub const ACTIONS: &[&str] = &[
    "account.create",
    "asset.create",
    "asset.delete",
    "asset.unit",
    "asset.update",
    "certificate.revoke",
    "certificate.revoke_issued_before",
    "customer.create",
    "customer.delete",
    "customer.rename",
    "device.capabilities",
    "device.certificate",
    "device.deregister",
    "device.register",
    "grant.create",
    "grant.end",
    "grant.expire",
    "grant.remove",
    "grant.update",
    "integration_cert.issue",
    "key.create",
    "key.delete",
    "key.update",
    "operator.create",
    "operator.delete",
    "operator.import",
    "operator.invite",
    "operator.update",
    "partnership.create",
    "partnership.end",
    "platform_admin.token_reset",
    "profile.create",
    "profile.delete",
    "profile.update",
    "retention.set",
    "session.start",
    "sharing.details.start",
    "sharing.details.stop",
    "sharing.telemetry.start",
    "sharing.telemetry.stop",
    "staff.create",
    "staff.delete",
    "staff.token_rotate",
    "staff.update",
    "support.approve",
    "support.case_open",
    "support.close",
    "support.decline",
    "support.expire",
    "support.request",
    "support.revoke",
    "user.create",
    "user.delete",
    "user.password_invite",
    "user.password_reset",
    "user.password_set",
    "user.token_rotate",
    "user.update",
];

/// An `action` filter checked against [`ACTIONS`]: an action, or a family of actions.
///
/// # Errors
/// [`OpError::Invalid`] naming `action` for a value that is neither.
pub fn action_filter(raw: Option<&str>) -> Result<Option<String>, OpError> {
    let Some(wanted) = raw else {
        return Ok(None);
    };
    let known = ACTIONS.iter().any(|action| {
        *action == wanted
            || action
                .strip_prefix(wanted)
                .is_some_and(|rest| rest.starts_with('.'))
    });
    match known {
        true => Ok(Some(wanted.to_owned())),
        false => Err(OpError::invalid(
            "action",
            "must be an action the audit log records (grant.create) or a family of them \
             (grant: every grant.*)",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_filter_is_an_action_or_a_family() {
        for known in [
            "grant.create",
            "grant",
            "sharing.details",
            "sharing",
            "user.update",
        ] {
            assert_eq!(
                action_filter(Some(known)).expect(known).as_deref(),
                Some(known)
            );
        }
        for unknown in ["nope", "gra", "grant.", "grant.nope", "sharing.det", ""] {
            let refused = action_filter(Some(unknown)).expect_err(unknown);
            assert!(matches!(refused, OpError::Invalid { ref field, .. } if field == "action"));
        }
        assert_eq!(action_filter(None).expect("none"), None);
    }

    /// Every action a source file of this crate names is listed (or is a family of listed
    /// ones), so the filter takes it.
    #[test]
    fn every_action_written_is_listed() {
        let families: Vec<&str> = ACTIONS.iter().filter_map(|a| a.split('.').next()).collect();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![dir.clone()];
        let mut written = Vec::new();
        while let Some(path) = files.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).expect("dir") {
                    files.push(entry.expect("entry").path());
                }
                continue;
            }
            // This file lists them, and its tests name some that are not.
            if path.ends_with("audit.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            for quoted in text.split('"').skip(1).step_by(2) {
                let family = quoted.split('.').next().unwrap_or_default();
                let shaped = quoted.contains('.')
                    && quoted
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.');
                if shaped && families.contains(&family) && !quoted.ends_with(".pem") {
                    written.push(quoted.to_owned());
                }
            }
        }
        assert!(written.iter().any(|action| action == "grant.create"));
        for action in written {
            // A family (`sharing.details`) is a filter value too.
            assert!(
                action_filter(Some(&action)).is_ok(),
                "{action} is not in ACTIONS"
            );
        }
    }
}
