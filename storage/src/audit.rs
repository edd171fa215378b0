//! Reading the audit log. Entries are written by every mutation in [`crate::ops`] and
//! [`crate::sharing`] inside the mutation's own transaction; this module decides who may
//! read which entries: an account's admin its account's, platform admins all.

use redb::{ReadTransaction, ReadableTable};

use crate::error::OpError;
use crate::ids::AccountId;
use crate::model::{AuditEntry, Principal, StaffRole};
use crate::policy::Need;
use crate::read::require_in;
use crate::store::decode_as;
use crate::tables::{ACCOUNTS, AUDIT};
use crate::time::Timestamp;

/// Up to `limit` entries with `from <= at < to`, oldest first. Without an account, a
/// platform admin reads all and a user its own account's.
pub fn entries(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: Option<&AccountId>,
    (from, to): (Timestamp, Timestamp),
    limit: usize,
) -> Result<Vec<AuditEntry>, OpError> {
    let platform = caller.is_staff(StaffRole::PlatformAdmin);
    let account = match account.or(caller.home_account()) {
        Some(account) => {
            if !platform {
                require_in(
                    &rtx.open_table(ACCOUNTS)?,
                    caller,
                    account,
                    Need::Administer,
                    &format!("account {account}"),
                )?;
            }
            Some(account.clone())
        }
        None if platform => None,
        None => {
            return Err(OpError::invalid(
                "account_id",
                "required for staff principals",
            ))
        }
    };
    let table = rtx.open_table(AUDIT)?;
    let mut out = Vec::new();
    for row in table.iter()? {
        let entry: AuditEntry = decode_as("audit", row?.1.value())?;
        if entry.at < from || entry.at >= to {
            continue;
        }
        if account.is_none() || entry.account_id == account {
            out.push(entry);
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}
