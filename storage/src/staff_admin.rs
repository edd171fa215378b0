//! Platform staff as the platform admin manages them: disable, enable, delete, rotate a
//! token (creating them is [`crate::ops::create_staff`], listing [`crate::staff::list`]).
//!
//! The same guarantees as an account's users ([`crate::users`]): what a member holds ends
//! with it at the commit — its API token, its console sessions (and, through the stream
//! guard, every live stream opened with either) — and for support and tech support
//! members, their support access: active access is revoked and pending requests declined
//! through [`crate::support::end_for_staff`], audited with the reason. Rules, in order:
//! only a platform admin manages staff ([`Rule::PlatformAdminOnly`], 403 for anyone else:
//! staff hide no object); the member exists (404); the platform keeps one enabled
//! platform admin (409). A disabled member is kept in `DISABLED_USERS`, as a user is, so
//! the password sign-in and the session check refuse it too.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use crate::error::{OpError, StoreError};
use crate::ids::PrincipalId;
use crate::model::{Principal, PrincipalKind, StaffRole};
use crate::ops::{audit, AuditNote, Who};
use crate::policy;
use crate::rule::Rule;
use crate::store::{decode_as, get};
use crate::support::SupportAccess;
use crate::tables::*;
use crate::time::Timestamp;
use crate::token;

/// A staff member as the platform admin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    pub member: Principal,
    pub role: StaffRole,
    /// When a platform admin disabled it; `None` while enabled.
    pub disabled_at: Option<Timestamp>,
}

impl StaffMember {
    fn describe(&self) -> String {
        let state = if self.disabled_at.is_some() {
            "disabled"
        } else {
            "enabled"
        };
        format!("{} ({}, {state})", self.member.id, self.role.as_str())
    }
}

/// What a change to a member ended besides its credentials: its support access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffChange {
    pub member: StaffMember,
    /// The support access it held that ended with it (revoked or declined).
    pub ended_support: Vec<SupportAccess>,
}

/// When each disabled principal was disabled, for the staff list.
///
/// # Errors
/// [`StoreError`] when redb fails.
pub fn disabled_at(
    rtx: &ReadTransaction,
    id: &PrincipalId,
) -> Result<Option<Timestamp>, StoreError> {
    Ok(rtx
        .open_table(DISABLED_USERS)?
        .get(id.as_str())?
        .map(|at| Timestamp(at.value())))
}

/// Disables (`true`) or enables (`false`) a staff member. Disabling removes its token and
/// console sessions and ends its support access, in this one transaction; enabling gives
/// no token back (rotate one). The same state again changes nothing and is not audited.
///
/// # Errors
/// 403 for anyone but a platform admin, 404 for an unknown member, 409 for the last
/// enabled platform admin.
pub fn set_disabled(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &str,
    disabled: bool,
    now: Timestamp,
) -> Result<StaffChange, OpError> {
    let mut member = load(tx, caller, id, "disable or enable staff")?;
    let before = member.describe();
    let mut ended_support = Vec::new();
    match (disabled, member.disabled_at) {
        (true, None) => {
            keep_a_platform_admin(tx, &member.member)?;
            ended_support =
                end_holdings(tx, caller, &member.member.id, "staff member disabled", now)?;
            tx.open_table(DISABLED_USERS)?
                .insert(member.member.id.as_str(), now.0)?;
            member.disabled_at = Some(now);
        }
        (false, Some(_)) => {
            tx.open_table(DISABLED_USERS)?
                .remove(member.member.id.as_str())?;
            member.disabled_at = None;
        }
        _ => {
            return Ok(StaffChange {
                member,
                ended_support,
            })
        }
    }
    let after = member.describe();
    note(
        tx,
        caller,
        "staff.update",
        &member,
        (Some(before), Some(after)),
        now,
    )?;
    Ok(StaffChange {
        member,
        ended_support,
    })
}

/// Deletes a staff member with its token, sessions, password and support access; what it
/// did stays audited under its id. Answers the support access that ended.
///
/// # Errors
/// As [`set_disabled`].
pub fn delete(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &str,
    now: Timestamp,
) -> Result<Vec<SupportAccess>, OpError> {
    let member = load(tx, caller, id, "delete staff")?;
    if member.disabled_at.is_none() {
        keep_a_platform_admin(tx, &member.member)?;
    }
    let ended = end_holdings(tx, caller, &member.member.id, "staff member deleted", now)?;
    crate::sign_in::forget(tx, &member.member.id)?;
    tx.open_table(DISABLED_USERS)?
        .remove(member.member.id.as_str())?;
    tx.open_table(LAST_USED)?
        .remove(member.member.id.as_str())?;
    tx.open_table(PRINCIPALS)?
        .remove(member.member.id.as_str())?;
    let before = member.describe();
    note(
        tx,
        caller,
        "staff.delete",
        &member,
        (Some(before), None),
        now,
    )?;
    Ok(ended)
}

/// Replaces a staff member's token: the old one, and every console session (one may have
/// been opened with a leaked token), stop working at the commit. Answers the new token
/// (shown once, stored hashed).
///
/// # Errors
/// As [`set_disabled`]; 409 while the member is disabled (enable it first).
pub fn rotate_token(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &str,
    now: Timestamp,
) -> Result<String, OpError> {
    let member = load(tx, caller, id, "give staff a token")?;
    if member.disabled_at.is_some() {
        return Err(OpError::Conflict(format!(
            "staff member {id} is disabled: enable it before giving it a token"
        )));
    }
    crate::users::remove_tokens(tx, &member.member.id)?;
    crate::sign_in::remove_sessions(tx, &member.member.id)?;
    let bearer = token::generate();
    tx.open_table(TOKENS)?
        .insert(token::hash(&bearer).as_slice(), member.member.id.as_str())?;
    let described = Some(member.describe());
    note(
        tx,
        caller,
        "staff.token_rotate",
        &member,
        (None, described),
        now,
    )?;
    Ok(bearer)
}

/// What a member holds ends: its token, its console sessions, its support access.
fn end_holdings(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &PrincipalId,
    reason: &str,
    now: Timestamp,
) -> Result<Vec<SupportAccess>, OpError> {
    crate::users::remove_tokens(tx, id)?;
    crate::sign_in::remove_sessions(tx, id)?;
    crate::support::end_for_staff(tx, caller, id, reason, now)
}

/// The staff member `id`, once the caller was found to be a platform admin.
fn load(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &str,
    action: &'static str,
) -> Result<StaffMember, OpError> {
    policy::require_platform_admin(caller, Rule::PlatformAdminOnly { action })?;
    let missing = || OpError::not_found(format!("staff member {id}"));
    let member: Principal =
        get(&tx.open_table(PRINCIPALS)?, "principals", id)?.ok_or_else(missing)?;
    let PrincipalKind::Staff { role } = member.kind else {
        return Err(missing());
    };
    let disabled_at = tx
        .open_table(DISABLED_USERS)?
        .get(id)?
        .map(|at| Timestamp(at.value()));
    Ok(StaffMember {
        member,
        role,
        disabled_at,
    })
}

/// The platform keeps one enabled platform admin: without one nobody could create
/// organizations, partnerships or staff, or enable anyone again (only the offline
/// `fleetgate admin reset-token` would help). `leaving` is about to be disabled or deleted.
fn keep_a_platform_admin(tx: &WriteTransaction, leaving: &Principal) -> Result<(), OpError> {
    if !leaving.is_staff(StaffRole::PlatformAdmin) {
        return Ok(());
    }
    let disabled = tx.open_table(DISABLED_USERS)?;
    for row in tx.open_table(PRINCIPALS)?.iter()? {
        let other: Principal = decode_as("principals", row?.1.value())?;
        if other.is_staff(StaffRole::PlatformAdmin)
            && other.id != leaving.id
            && disabled.get(other.id.as_str())?.is_none()
        {
            return Ok(());
        }
    }
    Err(OpError::Conflict(format!(
        "staff member {} is the last enabled platform_admin: the platform keeps one; \
         create or enable another platform_admin first",
        leaving.id
    )))
}

fn note(
    tx: &WriteTransaction,
    caller: &Principal,
    action: &str,
    member: &StaffMember,
    (before, after): (Option<String>, Option<String>),
    now: Timestamp,
) -> Result<(), StoreError> {
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: None,
            action,
            target: member.member.id.to_string(),
            before,
            after,
        },
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    /// A store with its bootstrap platform admin, and that admin.
    fn platform() -> (tempfile::TempDir, Store, Principal) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("db")).expect("store");
        let bearer = store
            .bootstrap(Timestamp(1))
            .expect("bootstrap")
            .expect("token");
        let rtx = store.begin_read().expect("read");
        let admin = crate::read::authenticate(&rtx, &token::hash(&bearer), Timestamp(2))
            .expect("read")
            .expect("the bootstrap admin");
        (dir, store, admin)
    }

    fn created(store: &Store, caller: &Principal, role: StaffRole, at: u64) -> Principal {
        let tx = store.begin_write().expect("tx");
        let (member, _) =
            crate::ops::create_staff(&tx, caller, "m", role, Timestamp(at)).expect("created");
        tx.commit().expect("commit");
        member
    }

    #[test]
    fn the_last_enabled_platform_admin_is_kept_and_the_reset_skips_a_disabled_one() {
        let (_dir, store, admin) = platform();
        let tx = store.begin_write().expect("tx");
        let own = admin.id.as_str();
        match set_disabled(&tx, &admin, own, true, Timestamp(3)) {
            Err(OpError::Conflict(words)) => assert!(words.contains("last enabled platform_admin")),
            other => panic!("the last platform admin was disabled: {other:?}"),
        }
        assert!(matches!(
            delete(&tx, &admin, own, Timestamp(3)),
            Err(OpError::Conflict(_))
        ));
        drop(tx);
        let second = created(&store, &admin, StaffRole::PlatformAdmin, 5);
        let tx = store.begin_write().expect("tx");
        set_disabled(&tx, &admin, own, true, Timestamp(6)).expect("another one is enabled");
        match set_disabled(&tx, &second, second.id.as_str(), true, Timestamp(6)) {
            Err(OpError::Conflict(_)) => {}
            other => panic!("a disabled platform admin counted: {other:?}"),
        }
        // The offline reset gives the token to the first platform admin still enabled.
        let (reset, _) = crate::users::reset_platform_token(&tx, Timestamp(7)).expect("reset");
        assert_eq!(reset, second.id);
    }

    #[test]
    fn only_a_platform_admin_manages_staff_and_users_are_no_staff() {
        let (_dir, store, admin) = platform();
        let support = created(&store, &admin, StaffRole::Support, 3);
        let tx = store.begin_write().expect("tx");
        match rotate_token(&tx, &support, admin.id.as_str(), Timestamp(4)) {
            Err(OpError::Forbidden(rule)) => assert_eq!(rule.slug(), "platform-admins-only"),
            other => panic!("support managed staff: {other:?}"),
        }
        assert!(matches!(
            rotate_token(&tx, &admin, "stfnobody", Timestamp(4)),
            Err(OpError::NotFound(_))
        ));
        let unchanged = set_disabled(&tx, &admin, support.id.as_str(), false, Timestamp(4));
        assert_eq!(unchanged.expect("enabled").member.disabled_at, None);
    }
}
