//! An account's users and their credentials, as its admin manages them: list, change a
//! role, disable, enable, delete, rotate the token (console passwords and sessions:
//! [`crate::sign_in`]).
//!
//! What a user created belongs to the account and stays; what the user holds (its token,
//! and with it every request and live stream it could make) ends with it: a disabled or
//! deleted user's token is gone at the commit, and the stream guard ends its streams
//! before the call answers. Rules, in order: the caller administers the account (a
//! stranger gets 404); support access manages no credentials (rule 4: what it made would
//! outlast it); the user is one of the account's own; an account keeps one enabled admin.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use crate::error::{OpError, StoreError};
use crate::ids::{AccountId, PrincipalId};
use crate::model::{Principal, PrincipalKind, Role, StaffRole};
use crate::ops::{audit, audit_by, AuditNote, Who};
use crate::store::{decode_as, get, put};
use crate::tables::*;
use crate::time::Timestamp;
use crate::token;

/// A user as its account's admin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub user: Principal,
    pub role: Role,
    /// When an admin disabled it; `None` while enabled.
    pub disabled_at: Option<Timestamp>,
    /// When its token last authenticated a request, as last flushed to the store (the
    /// gateway keeps newer instants in memory); `None` if never.
    pub last_used_at: Option<Timestamp>,
}

/// What an admin changes on a user; absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// The account's users (not those of its sub-accounts), by id.
pub fn list(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: &AccountId,
) -> Result<Vec<UserRecord>, OpError> {
    crate::read::administers(&rtx.open_table(ACCOUNTS)?, caller, account)?;
    let disabled = rtx.open_table(DISABLED_USERS)?;
    let last_used = rtx.open_table(LAST_USED)?;
    let mut out = Vec::new();
    for row in rtx.open_table(PRINCIPALS)?.iter()? {
        let user: Principal = decode_as("principals", row?.1.value())?;
        if let PrincipalKind::User { account_id, role } = &user.kind {
            if account_id == account {
                let disabled_at = disabled
                    .get(user.id.as_str())?
                    .map(|at| Timestamp(at.value()));
                let last_used_at = last_used
                    .get(user.id.as_str())?
                    .map(|at| Timestamp(at.value()));
                let role = *role;
                out.push(UserRecord {
                    user,
                    role,
                    disabled_at,
                    last_used_at,
                });
            }
        }
    }
    Ok(out)
}

/// Changes a user's role or enables/disables it. Disabling removes its token and console
/// sessions at once, a new role its console sessions; an enabled user gets back in with
/// a rotated token or its password.
pub fn update(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    id: &str,
    patch: UserPatch,
    now: Timestamp,
) -> Result<UserRecord, OpError> {
    let mut record = load(tx, caller, account, id)?;
    let before = describe(&record);
    if let Some(role) = patch.role.filter(|role| *role != record.role) {
        // The console shows a role's buttons: a session outliving its role would too.
        crate::sign_in::remove_sessions(tx, &record.user.id)?;
        record.role = role;
        record.user.kind = PrincipalKind::User {
            account_id: account.clone(),
            role,
        };
    }
    match patch.disabled {
        Some(true) if record.disabled_at.is_none() => {
            remove_tokens(tx, &record.user.id)?;
            crate::sign_in::remove_sessions(tx, &record.user.id)?;
            tx.open_table(DISABLED_USERS)?
                .insert(record.user.id.as_str(), now.0)?;
            record.disabled_at = Some(now);
        }
        Some(false) if record.disabled_at.is_some() => {
            tx.open_table(DISABLED_USERS)?
                .remove(record.user.id.as_str())?;
            record.disabled_at = None;
        }
        _ => {}
    }
    keep_an_admin(tx, account, &record)?;
    put(
        &mut tx.open_table(PRINCIPALS)?,
        record.user.id.as_str(),
        &record.user,
    )?;
    note(
        tx,
        caller,
        account,
        "user.update",
        &record,
        Some(before),
        now,
    )?;
    Ok(record)
}

/// Deletes a user and its token; what it created stays with the account.
pub fn delete(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    id: &str,
    now: Timestamp,
) -> Result<(), OpError> {
    let record = load(tx, caller, account, id)?;
    let gone = UserRecord {
        disabled_at: Some(now),
        ..record.clone()
    };
    keep_an_admin(tx, account, &gone)?;
    remove_tokens(tx, &record.user.id)?;
    crate::sign_in::forget(tx, &record.user.id)?;
    tx.open_table(DISABLED_USERS)?
        .remove(record.user.id.as_str())?;
    tx.open_table(LAST_USED)?.remove(record.user.id.as_str())?;
    tx.open_table(PRINCIPALS)?.remove(record.user.id.as_str())?;
    let before = describe(&record);
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: Some(account),
            action: "user.delete",
            target: record.user.id.to_string(),
            before: Some(before),
            after: None,
        },
        now,
    )?;
    Ok(())
}

/// Replaces a user's token: the old one stops working at the commit, and so does every
/// console session of the user (a session opened with the old token is that token's
/// authority: rotating is the remedy for a leaked one; which credential opened a session
/// is not recorded, so all end). Returns the new one (shown once, stored hashed).
pub fn rotate_token(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    id: &str,
    now: Timestamp,
) -> Result<String, OpError> {
    let record = load(tx, caller, account, id)?;
    if record.disabled_at.is_some() {
        return Err(OpError::Conflict(format!(
            "user {id} is disabled: enable it before giving it a token"
        )));
    }
    remove_tokens(tx, &record.user.id)?;
    crate::sign_in::remove_sessions(tx, &record.user.id)?;
    let bearer = token::generate();
    tx.open_table(TOKENS)?
        .insert(token::hash(&bearer).as_slice(), record.user.id.as_str())?;
    note(tx, caller, account, "user.token_rotate", &record, None, now)?;
    Ok(bearer)
}

/// Offline recovery (`fleetgate admin reset-token`): the bootstrap platform_admin (the
/// first one created that is not disabled: see [`crate::staff_admin`]) gets a new token, its old ones stop working. Returns its id and the
/// token. Errors: no platform_admin in the store (an empty or foreign database).
pub fn reset_platform_token(
    tx: &WriteTransaction,
    now: Timestamp,
) -> Result<(PrincipalId, String), OpError> {
    let mut first: Option<Principal> = None;
    for row in tx.open_table(PRINCIPALS)?.iter()? {
        let principal: Principal = decode_as("principals", row?.1.value())?;
        let earlier = first
            .as_ref()
            .is_none_or(|seen| principal.created_at < seen.created_at);
        // A disabled one stays shut out: the platform keeps an enabled one to reset.
        let enabled = tx
            .open_table(DISABLED_USERS)?
            .get(principal.id.as_str())?
            .is_none();
        if principal.is_staff(StaffRole::PlatformAdmin) && enabled && earlier {
            first = Some(principal);
        }
    }
    let admin = first.ok_or_else(|| OpError::not_found("a platform_admin in this store"))?;
    // The old token's console sessions end with it, as for a rotation.
    remove_tokens(tx, &admin.id)?;
    crate::sign_in::remove_sessions(tx, &admin.id)?;
    let bearer = token::generate();
    tx.open_table(TOKENS)?
        .insert(token::hash(&bearer).as_slice(), admin.id.as_str())?;
    audit(
        tx,
        Who::HostOperator,
        AuditNote {
            account_id: None,
            action: "platform_admin.token_reset",
            target: admin.id.to_string(),
            before: None,
            after: Some("token reset offline (fleetgate admin reset-token)".into()),
        },
        now,
    )?;
    Ok((admin.id, bearer))
}

/// The user `id` of `account`, after the caller's rights were checked.
pub(crate) fn load(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    id: &str,
) -> Result<UserRecord, OpError> {
    crate::read::administers(&tx.open_table(ACCOUNTS)?, caller, account)?;
    if !caller.is_staff(StaffRole::PlatformAdmin) {
        crate::policy::refuse_lasting_access(caller, "a user's role, state or token")?;
    }
    let missing = || OpError::not_found(format!("user {id}"));
    let user: Principal =
        get(&tx.open_table(PRINCIPALS)?, "principals", id)?.ok_or_else(missing)?;
    let role = match &user.kind {
        PrincipalKind::User { account_id, role } if account_id == account => *role,
        _ => return Err(missing()),
    };
    let disabled_at = tx
        .open_table(DISABLED_USERS)?
        .get(id)?
        .map(|at| Timestamp(at.value()));
    let last_used_at = tx
        .open_table(LAST_USED)?
        .get(id)?
        .map(|at| Timestamp(at.value()));
    Ok(UserRecord {
        user,
        role,
        disabled_at,
        last_used_at,
    })
}

/// An account keeps at least one enabled admin user: without one nobody could approve
/// support access or manage its users (only a platform admin could create one again).
fn keep_an_admin(
    tx: &WriteTransaction,
    account: &AccountId,
    changed: &UserRecord,
) -> Result<(), OpError> {
    if changed.role == Role::Admin && changed.disabled_at.is_none() {
        return Ok(());
    }
    let disabled = tx.open_table(DISABLED_USERS)?;
    for row in tx.open_table(PRINCIPALS)?.iter()? {
        let other: Principal = decode_as("principals", row?.1.value())?;
        let enabled_admin = matches!(&other.kind,
            PrincipalKind::User { account_id, role: Role::Admin } if account_id == account)
            && disabled.get(other.id.as_str())?.is_none();
        if enabled_admin && other.id != changed.user.id {
            return Ok(());
        }
    }
    Err(OpError::Conflict(format!(
        "account {account} would have no enabled admin left; make another user admin first"
    )))
}

/// Removes every token of `user` (a scan: tokens are few, and keyed by their hash).
pub(crate) fn remove_tokens(tx: &WriteTransaction, user: &PrincipalId) -> Result<(), StoreError> {
    let mut tokens = tx.open_table(TOKENS)?;
    let mut hashes = Vec::new();
    for row in tokens.iter()? {
        let (hash, owner) = row?;
        if owner.value() == user.as_str() {
            hashes.push(hash.value().to_vec());
        }
    }
    for hash in hashes {
        tokens.remove(hash.as_slice())?;
    }
    Ok(())
}

fn describe(record: &UserRecord) -> String {
    let state = if record.disabled_at.is_some() {
        "disabled"
    } else {
        "enabled"
    };
    format!("{} ({}, {state})", record.user.id, record.role.as_str())
}

fn note(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    action: &str,
    record: &UserRecord,
    before: Option<String>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let target = record.user.id.to_string();
    let change = (before, Some(describe(record)));
    audit_by(tx, caller, (account, action), target, change, now)
}

/// Stores when principals' tokens last authenticated a request: each instant replaces the
/// stored one only when later, and principals deleted meanwhile are skipped (no row
/// outlives its principal). Bookkeeping, not audited.
///
/// # Errors
/// [`StoreError`] when redb fails.
pub fn record_last_used(
    tx: &WriteTransaction,
    seen: &[(PrincipalId, Timestamp)],
) -> Result<(), StoreError> {
    let principals = tx.open_table(PRINCIPALS)?;
    let mut last_used = tx.open_table(LAST_USED)?;
    for (id, at) in seen {
        if principals.get(id.as_str())?.is_none() {
            continue;
        }
        let stored = last_used.get(id.as_str())?.map(|v| v.value());
        if stored.is_none_or(|stored| stored < at.0) {
            last_used.insert(id.as_str(), at.0)?;
        }
    }
    Ok(())
}
