//! Console sign-in: sessions, passwords and password invitations (rules in
//! `storage::sign_in`). Each method is one transaction; a session's end needs no follow-up
//! here, since the stream guard re-checks open streams after every commit and ends those
//! the session opened.
//!
//! Passwords arrive as argon2id PHC strings: the caller hashes (and verifies) off the
//! store writer, which must not spend tens of ms of a group commit on one sign-in.

use storage::model::Principal;
use storage::sign_in::{self, NewSession};
use storage::time::Timestamp;
use storage::{AccountId, OpError};

use super::UseCases;

impl UseCases {
    /// Opens a console session for `who`, whose password or token the caller checked.
    pub async fn start_session(&self, who: Principal) -> Result<NewSession, OpError> {
        let now = self.now();
        self.commit(false, move |tx| sign_in::start_session(tx, &who, now))
            .await
    }

    /// Ends the session whose secret hashes to `hash` (sign-out).
    pub async fn end_session(&self, hash: [u8; 32]) -> Result<bool, OpError> {
        self.commit(false, move |tx| Ok(sign_in::end_session(tx, &hash)?))
            .await
    }

    /// Sets `who`'s own password; `expected` is the PHC string its current password was
    /// verified against (`None`: it had none).
    pub async fn set_password(
        &self,
        who: Principal,
        expected: Option<String>,
        phc: String,
    ) -> Result<(), OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            sign_in::set_password(tx, &who, expected.as_deref(), &phc, now)
        })
        .await
    }

    /// A one-time link for a user to set its password; `reset` also ends its current
    /// password and sessions. Answers the invitation token and its expiry.
    pub async fn invite_password(
        &self,
        who: Principal,
        account: AccountId,
        user: String,
        reset: bool,
    ) -> Result<(String, Timestamp), OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            sign_in::invite(tx, &who, &account, &user, reset, now)
        })
        .await
    }

    /// Uses a password invitation: its user's password becomes `phc`.
    pub async fn accept_invitation(
        &self,
        hash: [u8; 32],
        phc: String,
    ) -> Result<Principal, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            sign_in::accept_invitation(tx, &hash, &phc, now)
        })
        .await
    }
}
