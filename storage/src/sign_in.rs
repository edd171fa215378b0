//! Console sign-in: passwords, browser sessions and one-time password invitations.
//!
//! A browser should not hold a bearer token (any script on the page could read it), so the
//! console signs in for a session whose secret lives in an HttpOnly cookie. A session speaks
//! for its principal exactly as the principal's API token does: the principal is read fresh
//! for every request, so every rule applies unchanged. What a session adds is its own end:
//! it expires ([`SESSION_TTL_MS`]), ends at sign-out, and ends when its user is disabled,
//! changes role or is deleted ([`remove_sessions`], called by `crate::users`), so a console
//! never shows a user buttons of a role it lost.
//!
//! Passwords are argon2id PHC strings ([`hash_password`]). Hashing and verifying are slow
//! on purpose, so they run outside transactions: the caller hashes, then commits the PHC
//! string; the caller reads the PHC string, verifies, then commits the session.
//!
//! A user gets its first password through a one-time invitation from its account's admin
//! ([`invite`], valid [`INVITATION_TTL_MS`]); the platform admin, who has no admin above it,
//! signs in once with the bootstrap token and sets its own ([`set_password`]).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{OpError, StoreError};
use crate::ids::{AccountId, PrincipalId};
use crate::model::Principal;
use crate::ops::{audit, audit_by, AuditNote, Who};
use crate::store::{decode_as, get};
use crate::tables::*;
use crate::time::Timestamp;
use crate::token;

/// Fewest characters a password may have (NIST SP 800-63B §5.1.1.2 asks for at least 8;
/// a console that grants access to a fleet asks for more).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most bytes a password may have: argon2 hashes any length, so without a bound one
/// request could make the gateway hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// How long a console session lasts from its sign-in, ms (a working day and a half).
pub const SESSION_TTL_MS: u64 = 12 * 3_600_000;
/// Most sessions one principal holds at once; a new sign-in beyond ends the oldest.
pub const MAX_SESSIONS_PER_PRINCIPAL: usize = 16;
/// How long a password invitation link stays usable, ms (three days).
pub const INVITATION_TTL_MS: u64 = 72 * 3_600_000;

/// A password that passed the rules; only [`hash_password`] reads it.
#[derive(Clone)]
pub struct NewPassword(String);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

impl NewPassword {
    /// Errors: [`OpError::Invalid`] naming `field` when the password is shorter than
    /// [`MIN_PASSWORD_CHARS`], longer than [`MAX_PASSWORD_BYTES`], or only spaces.
    pub fn parse(field: &str, raw: String) -> Result<Self, OpError> {
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(OpError::invalid(
                field,
                format!("at most {MAX_PASSWORD_BYTES} bytes"),
            ));
        }
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(OpError::invalid(
                field,
                format!("at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        if raw.trim().is_empty() {
            return Err(OpError::invalid(field, "must not be only spaces"));
        }
        Ok(NewPassword(raw))
    }
}

/// The argon2id PHC string of `password` with a fresh random salt (argon2 crate defaults:
/// 19 MiB, 2 passes, the OWASP minimum). Takes tens of ms: call it off the async threads.
pub fn hash_password(password: &NewPassword) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(password.0.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any input")
        .to_string()
}

/// Whether `candidate` is the password of `phc`. False for a malformed PHC string or an
/// over-long candidate. Slow on purpose, like [`hash_password`].
pub fn verify_password(phc: &str, candidate: &str) -> bool {
    if candidate.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The CSRF token of the session whose secret is `secret`: derived, not stored, so the
/// page can be given it again after a reload (from the cookie the request carries), and a
/// site that cannot read the HttpOnly cookie cannot compute it.
pub fn csrf_token(secret: &str) -> String {
    hex::encode(token::hash(&format!("fleetgate-csrf:{secret}")))
}

/// What authenticates a request: an API token or a console session, each by its SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Token([u8; 32]),
    Session([u8; 32]),
}

/// A console session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub principal_id: PrincipalId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A session just opened: its secrets, shown once (only their hashes are kept).
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie value.
    pub secret: String,
    /// What the page sends back in `X-CSRF-Token` with every change.
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

/// A password invitation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRecord {
    pub principal_id: PrincipalId,
    pub expires_at: Timestamp,
}

/// Who `credential` speaks for at `now`, and for a session its record (the CSRF hash, the
/// expiry). `None` for an unknown token, an unknown or expired session, or a principal
/// gone. Staff get their support access of `now` filled in (rule 4).
pub fn authenticate(
    rtx: &ReadTransaction,
    credential: &Credential,
    now: Timestamp,
) -> Result<Option<(Principal, Option<SessionRecord>)>, StoreError> {
    let hash = match credential {
        Credential::Token(hash) => {
            return Ok(crate::read::authenticate(rtx, hash, now)?.map(|p| (p, None)));
        }
        Credential::Session(hash) => hash,
    };
    let Some(record) = session(rtx, hash)? else {
        return Ok(None);
    };
    if record.expires_at <= now
        || rtx
            .open_table(DISABLED_USERS)?
            .get(record.principal_id.as_str())?
            .is_some()
    {
        return Ok(None);
    }
    let Some(mut principal) = principal(rtx, &record.principal_id)? else {
        return Ok(None);
    };
    if matches!(principal.kind, crate::model::PrincipalKind::Staff { .. }) {
        principal.support = crate::support::active_for(rtx, &principal.id, now)?;
    }
    Ok(Some((principal, Some(record))))
}

fn session(rtx: &ReadTransaction, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
    let sessions = rtx.open_table(SESSIONS)?;
    let row = sessions.get(hash.as_slice())?;
    row.map(|bytes| decode_as("sessions", bytes.value()))
        .transpose()
}

fn principal(rtx: &ReadTransaction, id: &PrincipalId) -> Result<Option<Principal>, StoreError> {
    get(&rtx.open_table(PRINCIPALS)?, "principals", id.as_str())
}

/// The principal's password as a PHC string, if it has one.
pub fn password_of(rtx: &ReadTransaction, id: &PrincipalId) -> Result<Option<String>, StoreError> {
    let passwords = rtx.open_table(PASSWORDS)?;
    let phc = passwords
        .get(id.as_str())?
        .map(|phc| phc.value().to_owned());
    Ok(phc)
}

/// An enabled principal by id, for a password sign-in; `None` if unknown or disabled.
pub fn enabled_principal(rtx: &ReadTransaction, id: &str) -> Result<Option<Principal>, StoreError> {
    if rtx.open_table(DISABLED_USERS)?.get(id)?.is_some() {
        return Ok(None);
    }
    get(&rtx.open_table(PRINCIPALS)?, "principals", id)
}

/// Opens a console session for `who` (whose password or token the caller checked),
/// removing its expired sessions and, past [`MAX_SESSIONS_PER_PRINCIPAL`], its oldest.
/// Audited as `session.start`.
///
/// # Errors
/// [`OpError::NotFound`] when the principal was deleted or disabled meanwhile.
pub fn start_session(
    tx: &WriteTransaction,
    who: &Principal,
    now: Timestamp,
) -> Result<NewSession, OpError> {
    let gone = || OpError::not_found(format!("user {}", who.id));
    if tx
        .open_table(DISABLED_USERS)?
        .get(who.id.as_str())?
        .is_some()
    {
        return Err(gone());
    }
    get::<Principal>(&tx.open_table(PRINCIPALS)?, "principals", who.id.as_str())?
        .ok_or_else(gone)?;
    let mut sessions = tx.open_table(SESSIONS)?;
    let mut own = Vec::new();
    for row in sessions.iter()? {
        let (hash, bytes) = row?;
        let record: SessionRecord = decode_as("sessions", bytes.value())?;
        if record.principal_id == who.id {
            own.push((record.created_at, record.expires_at, hash.value().to_vec()));
        }
    }
    own.sort();
    let keep = MAX_SESSIONS_PER_PRINCIPAL - 1;
    let surplus = own.len().saturating_sub(keep);
    for (index, (_, expires_at, hash)) in own.iter().enumerate() {
        if index < surplus || *expires_at <= now {
            sessions.remove(hash.as_slice())?;
        }
    }
    let secret = token::generate();
    let record = SessionRecord {
        principal_id: who.id.clone(),
        created_at: now,
        expires_at: Timestamp(now.0.saturating_add(SESSION_TTL_MS)),
    };
    sessions.insert(
        token::hash(&secret).as_slice(),
        codec::encode(&record).as_slice(),
    )?;
    drop(sessions);
    note(tx, Who::Principal(who), "session.start", &who.id, now)?;
    Ok(NewSession {
        csrf_token: csrf_token(&secret),
        secret,
        expires_at: record.expires_at,
    })
}

/// Ends the session `hash` names (sign-out); its streams end with it. False when there
/// was none (already ended or expired and removed).
pub fn end_session(tx: &WriteTransaction, hash: &[u8; 32]) -> Result<bool, StoreError> {
    Ok(tx.open_table(SESSIONS)?.remove(hash.as_slice())?.is_some())
}

/// Ends every console session of `id` (a scan: sessions are few, keyed by their hash).
pub fn remove_sessions(tx: &WriteTransaction, id: &PrincipalId) -> Result<(), StoreError> {
    let mut sessions = tx.open_table(SESSIONS)?;
    let mut ended = Vec::new();
    for row in sessions.iter()? {
        let (hash, bytes) = row?;
        let record: SessionRecord = decode_as("sessions", bytes.value())?;
        if record.principal_id == *id {
            ended.push(hash.value().to_vec());
        }
    }
    for hash in ended {
        sessions.remove(hash.as_slice())?;
    }
    Ok(())
}

/// Removes what a deleted principal held here: its password, sessions and invitations.
pub fn forget(tx: &WriteTransaction, id: &PrincipalId) -> Result<(), StoreError> {
    tx.open_table(PASSWORDS)?.remove(id.as_str())?;
    remove_sessions(tx, id)?;
    remove_invitations(tx, id)
}

/// Sets the caller's own password to `phc` (from [`hash_password`]). `expected` is the
/// PHC string the caller verified the current password against (`None`: it had none), so
/// a password changed meanwhile by another sign-in is not overwritten blindly.
/// Audited as `user.password_set`.
///
/// # Errors
/// [`OpError::Conflict`] when the stored password is no longer `expected`.
pub fn set_password(
    tx: &WriteTransaction,
    who: &Principal,
    expected: Option<&str>,
    phc: &str,
    now: Timestamp,
) -> Result<(), OpError> {
    let mut passwords = tx.open_table(PASSWORDS)?;
    let stored = passwords
        .get(who.id.as_str())?
        .map(|v| v.value().to_owned());
    if stored.as_deref() != expected {
        return Err(OpError::Conflict(
            "the password changed meanwhile; sign in again".into(),
        ));
    }
    passwords.insert(who.id.as_str(), phc)?;
    drop(passwords);
    note(tx, Who::Principal(who), "user.password_set", &who.id, now)?;
    Ok(())
}

/// A one-time link for user `id` of `account` to set its password, replacing any earlier
/// invitation of the user. With `reset`, the user's current password and console sessions
/// end now (a forgotten or leaked password). Answers the invitation token (shown once) and
/// its expiry. Audited as `user.password_invite` or `user.password_reset`.
///
/// # Errors
/// As the admin's other user changes (`crate::users`): 404 for a stranger's or unknown
/// user, rule 4 for staff under support access.
pub fn invite(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    id: &str,
    reset: bool,
    now: Timestamp,
) -> Result<(String, Timestamp), OpError> {
    let record = crate::users::load(tx, caller, account, id)?;
    if record.disabled_at.is_some() {
        return Err(OpError::Conflict(format!(
            "user {id} is disabled: enable it before inviting it"
        )));
    }
    let user = &record.user.id;
    remove_invitations(tx, user)?;
    if reset {
        tx.open_table(PASSWORDS)?.remove(user.as_str())?;
        remove_sessions(tx, user)?;
    }
    let secret = token::generate();
    let invitation = InvitationRecord {
        principal_id: user.clone(),
        expires_at: Timestamp(now.0.saturating_add(INVITATION_TTL_MS)),
    };
    tx.open_table(PASSWORD_INVITATIONS)?.insert(
        token::hash(&secret).as_slice(),
        codec::encode(&invitation).as_slice(),
    )?;
    let action = if reset {
        "user.password_reset"
    } else {
        "user.password_invite"
    };
    audit_by(
        tx,
        caller,
        (account, action),
        user.to_string(),
        (None, None),
        now,
    )?;
    Ok((secret, invitation.expires_at))
}

/// The user an unused, unexpired invitation is for.
pub fn invitation(
    rtx: &ReadTransaction,
    hash: &[u8; 32],
    now: Timestamp,
) -> Result<Option<(Principal, InvitationRecord)>, StoreError> {
    let invitations = rtx.open_table(PASSWORD_INVITATIONS)?;
    let Some(bytes) = invitations.get(hash.as_slice())? else {
        return Ok(None);
    };
    let record: InvitationRecord = decode_as("password_invitations", bytes.value())?;
    if record.expires_at <= now {
        return Ok(None);
    }
    Ok(principal(rtx, &record.principal_id)?.map(|p| (p, record)))
}

/// Uses invitation `hash`: the user's password becomes `phc`, the invitation is gone.
/// Audited as `user.password_set`.
///
/// # Errors
/// [`OpError::NotFound`] when the invitation is unknown, used or expired, or its user
/// disabled or deleted.
pub fn accept_invitation(
    tx: &WriteTransaction,
    hash: &[u8; 32],
    phc: &str,
    now: Timestamp,
) -> Result<Principal, OpError> {
    let missing = || OpError::not_found("invitation");
    let record: InvitationRecord = {
        let mut invitations = tx.open_table(PASSWORD_INVITATIONS)?;
        let bytes = invitations.remove(hash.as_slice())?.ok_or_else(missing)?;
        decode_as("password_invitations", bytes.value())?
    };
    let user: Principal = get(
        &tx.open_table(PRINCIPALS)?,
        "principals",
        record.principal_id.as_str(),
    )?
    .ok_or_else(missing)?;
    let disabled = tx
        .open_table(DISABLED_USERS)?
        .get(user.id.as_str())?
        .is_some();
    if record.expires_at <= now || disabled {
        return Err(missing());
    }
    tx.open_table(PASSWORDS)?.insert(user.id.as_str(), phc)?;
    note(
        tx,
        Who::Principal(&user),
        "user.password_set",
        &user.id,
        now,
    )?;
    Ok(user)
}

fn remove_invitations(tx: &WriteTransaction, id: &PrincipalId) -> Result<(), StoreError> {
    let mut invitations = tx.open_table(PASSWORD_INVITATIONS)?;
    let mut used = Vec::new();
    for row in invitations.iter()? {
        let (hash, bytes) = row?;
        let record: InvitationRecord = decode_as("password_invitations", bytes.value())?;
        if record.principal_id == *id {
            used.push(hash.value().to_vec());
        }
    }
    for hash in used {
        invitations.remove(hash.as_slice())?;
    }
    Ok(())
}

/// An audit entry about the principal's own credentials, in its home account's log.
fn note(
    tx: &WriteTransaction,
    who: Who<'_>,
    action: &str,
    target: &PrincipalId,
    now: Timestamp,
) -> Result<(), StoreError> {
    let account = match who {
        Who::Principal(principal) => principal.home_account().cloned(),
        _ => None,
    };
    audit(
        tx,
        who,
        AuditNote {
            account_id: account.as_ref(),
            action,
            target: target.to_string(),
            before: None,
            after: None,
        },
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules_name_the_field() {
        let short = NewPassword::parse("password", "elevenchars".into()).unwrap_err();
        assert!(
            short.to_string().contains("password: at least 12"),
            "{short}"
        );
        let long = NewPassword::parse("password", "x".repeat(MAX_PASSWORD_BYTES + 1));
        assert!(long.unwrap_err().to_string().contains("at most 1024 bytes"));
        let blank = NewPassword::parse("password", " ".repeat(20)).unwrap_err();
        assert!(blank.to_string().contains("only spaces"));
        // Twelve characters, not twelve bytes: a passphrase in any script counts by letter.
        assert!(NewPassword::parse("password", "pässwörtçhén".into()).is_ok());
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let password = NewPassword::parse("password", "correct horse battery".into()).unwrap();
        let phc = hash_password(&password);
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse batterY"));
        assert!(!verify_password(
            "not a phc string",
            "correct horse battery"
        ));
        // Salted: the same password hashes differently each time.
        assert_ne!(phc, hash_password(&password));
    }
}
