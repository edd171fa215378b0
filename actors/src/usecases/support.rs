//! Support access (rule 4) and the deadlines the scheduler applies. An approval or case
//! may move the scheduler's next deadline, so those wake it; a revoke, expiry or case
//! close ends the staff member's open streams through the stream guard before it answers.

use std::time::Duration;

use storage::model::{Grant, Principal};
use storage::support::{Decision, SupportAccess, SupportDuration};
use storage::{AccountId, OpError};

use super::UseCases;

/// What one scheduler pass applied.
#[derive(Debug, Default)]
pub struct Applied {
    /// Grants that started or ended (their units were re-bound).
    pub grants: Vec<Grant>,
    /// Support access that expired.
    pub support: Vec<SupportAccess>,
    /// Units whose key set changed (a key's window opened or closed).
    pub keys: usize,
}

impl UseCases {
    /// A staff member asks for time-limited Admin rights in `account`.
    pub async fn request_support(
        &self,
        who: Principal,
        account: AccountId,
        purpose: String,
        duration: SupportDuration,
    ) -> Result<SupportAccess, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::support::request(tx, &who, &account, &purpose, duration, now)
        })
        .await
    }

    /// The account's admin approves, declines or revokes a request.
    pub async fn decide_support(
        &self,
        who: Principal,
        id: String,
        decision: Decision,
    ) -> Result<SupportAccess, OpError> {
        let now = self.now();
        let access = self
            .commit(false, move |tx| {
                storage::support::decide(tx, &who, &id, decision, now)
            })
            .await?;
        self.scheduler.wake();
        Ok(access)
    }

    /// Opens a support case: access for the tech_support member who opens it, or the one
    /// a platform_admin names (`for_staff`).
    pub async fn open_case(
        &self,
        who: Principal,
        account: AccountId,
        ticket_id: String,
        for_staff: Option<String>,
    ) -> Result<SupportAccess, OpError> {
        let now = self.now();
        let access = self
            .commit(false, move |tx| {
                let staff = for_staff.as_deref();
                storage::support::open_case(tx, &who, &account, &ticket_id, staff, now)
            })
            .await?;
        self.scheduler.wake();
        Ok(access)
    }

    /// Closes a support case: its access ends now.
    pub async fn close_case(&self, who: Principal, id: String) -> Result<SupportAccess, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::support::close_case(tx, &who, &id, now)
        })
        .await
    }

    /// Applies every grant start and end, support expiry and key window that fell due by
    /// now, in one transaction, then re-binds the grants' units and pushes the changed key
    /// sets (nobody waits for those acknowledgements here). Expired support needs no
    /// follow-up: the stream guard ends its streams after the commit.
    pub async fn apply_due(&self) -> Result<Applied, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let (grants, support, keys) = this
                .commit(false, move |tx| {
                    let grants = storage::sharing::apply_due(tx, now)?;
                    let support = storage::support::apply_due(tx, now)?;
                    let keys = storage::keys::apply_due(tx, now)?;
                    Ok((grants, support, keys))
                })
                .await?;
            if !keys.is_empty() {
                this.directory.push_keys(&keys, Duration::ZERO).await?;
            }
            if !grants.is_empty() {
                this.directory.rebind_grants(&grants).await?;
            }
            Ok(Applied {
                grants,
                support,
                keys: keys.len(),
            })
        })
        .await
    }
}
