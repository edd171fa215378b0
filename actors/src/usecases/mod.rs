//! The use-case core: every mutation of Fleetgate is one method of [`UseCases`], used by
//! the HTTP API, the scheduler and (later) the console, so authorization and ordering are
//! decided in one place.
//!
//! Each method runs the storage transaction through the store writer (one transaction per
//! mutation), then every follow-up the change needs — re-binding device actors and waiting
//! for their acknowledgements, closing or narrowing live sessions, pushing key sets, waking
//! the scheduler or the SMS outbox — inside [`crate::completing`]: a caller that goes away
//! (an HTTP client hanging up) cannot cancel a follow-up of a change already committed.
//! Open SSE streams need no call here: the stream guard re-checks them after every commit
//! ([`crate::directory::Directory::guard_streams`]).
//!
//! Methods take the domain types of `storage` (parsing is the caller's job) and answer
//! [`OpError`], whose variants name the field or the rule that refused.
//!
//! - [`fleet`]: devices and assets.
//! - [`sharing`]: partnerships, visibility grants, tenant sharing and its profiles.
//! - [`support`]: support access, support cases, and the scheduler's deadlines.
//! - [`keys`]: access keys and operators.
//! - [`retention`]: accounts' telemetry retention, the prune and the compaction.
//! - [`sign_in`]: console sessions, passwords and password invitations.
//! - [`staff`]: platform staff as the platform admin manages them (disable, delete, token).

pub mod fleet;
pub mod keys;
pub mod retention;
pub mod sharing;
pub mod sign_in;
pub mod staff;
pub mod streams;
pub mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use storage::model::{Account, CertificateRecord, Principal, Role, StaffRole};
use storage::time::{Clock, Timestamp};
use storage::users::{UserPatch, UserRecord};
use storage::{AccountId, OpError};
use tokio::sync::Notify;

use crate::directory::Directory;
use crate::scheduler::SchedulerHandle;
use crate::writer::WriterHandle;

/// A future a [`SessionControl`] returns: resolves once the sessions are closed.
pub type Closing = Pin<Box<dyn Future<Output = ()>>>;

/// The live MQTT sessions, as the use cases need them: the transport implements it (this
/// crate knows nothing of MQTT). Both calls resolve once the sessions are gone, so the
/// mutation that ended them answers after them.
pub trait SessionControl: Send + Sync + std::fmt::Debug {
    /// Closes the live session of the unit or integration whose tenant id is `tenant`.
    fn close(&self, tenant: &str) -> Closing;
    /// Refuses these certificate serials from now on and closes their live sessions.
    fn revoke(&self, serials: Vec<String>) -> Closing;
    /// Refuses every certificate of `tenant` issued before `before` from now on, and
    /// closes the tenant's live session.
    fn revoke_issued_before(&self, tenant: String, before: Timestamp) -> Closing;
}

/// What the use cases reach: the store writer, the actors, the clock and the wake-ups.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct UseCases {
    pub writer: WriterHandle,
    pub directory: Arc<Directory>,
    pub clock: Arc<dyn Clock>,
    pub scheduler: SchedulerHandle,
    pub sessions: Arc<dyn SessionControl>,
    /// Notified after SMS invitations are queued: the outbox drainer sends them now.
    pub outbox: Arc<Notify>,
    /// How long a key change waits for the units' acknowledgements before it answers
    /// (units that miss it get the set when they next subscribe).
    pub key_ack_wait: Duration,
    /// Whether the SMS that tells an operator of a personal keypad key carries its PIN
    /// (`--sms-key-pin`; on by default: it is what the operator needs at the machine).
    pub sms_key_pin: bool,
    /// The global retention settings (days; 0 keeps forever): the default an account's own
    /// telemetry setting overrides, and the access-event and audit retention.
    pub retention: storage::retention::Retention,
}

impl UseCases {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Runs `op` as one transaction (or as a dry run, which aborts), with nothing after it.
    async fn commit<R, F>(&self, dry_run: bool, op: F) -> Result<R, OpError>
    where
        R: Send + 'static,
        F: FnOnce(&storage::redb::WriteTransaction) -> Result<R, OpError> + Send + 'static,
    {
        self.writer.execute_or_dry(dry_run, op).await
    }

    /// Creates an account under `parent` (or a root account, for a platform admin).
    pub async fn create_account(
        &self,
        who: Principal,
        name: String,
        parent: Option<AccountId>,
    ) -> Result<Account, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::ops::create_account(tx, &who, &name, parent, now)
        })
        .await
    }

    /// Creates a user of `account` with `role`; answers the user and its first API token.
    pub async fn create_user(
        &self,
        who: Principal,
        account: AccountId,
        name: String,
        role: Role,
    ) -> Result<(Principal, String), OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::ops::create_user(tx, &who, &account, &name, role, now)
        })
        .await
    }

    /// Creates a platform staff member; answers the staff member and its API token.
    pub async fn create_staff(
        &self,
        who: Principal,
        name: String,
        role: StaffRole,
    ) -> Result<(Principal, String), OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::ops::create_staff(tx, &who, &name, role, now)
        })
        .await
    }

    /// Changes a user's role or disables it. Its open streams are re-checked by the
    /// stream guard before this answers (a demoted or disabled user's streams end).
    pub async fn update_user(
        &self,
        who: Principal,
        account: AccountId,
        user: String,
        patch: UserPatch,
    ) -> Result<UserRecord, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::users::update(tx, &who, &account, &user, patch, now)
        })
        .await
    }

    /// Deletes a user: its token dies and its streams end; what it created stays.
    pub async fn delete_user(
        &self,
        who: Principal,
        account: AccountId,
        user: String,
    ) -> Result<(), OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::users::delete(tx, &who, &account, &user, now)
        })
        .await
    }

    /// Gives a user a new API token; the old one (and the streams opened with it) ends.
    pub async fn rotate_token(
        &self,
        who: Principal,
        account: AccountId,
        user: String,
    ) -> Result<String, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::users::rotate_token(tx, &who, &account, &user, now)
        })
        .await
    }

    /// Stores when principals' tokens were last used (the gateway's tracker flushes its
    /// in-memory instants here). Only later instants replace stored ones.
    pub async fn record_last_used(
        &self,
        seen: Vec<(storage::PrincipalId, Timestamp)>,
    ) -> Result<(), OpError> {
        self.commit(false, move |tx| {
            Ok(storage::users::record_last_used(tx, &seen)?)
        })
        .await
    }

    /// Records an integration certificate the CA issued for `account` (the caller must
    /// administer it, and support access may not: rule 4). `record` is what the gateway's
    /// CA signed; it is never handed out when this refuses.
    pub async fn record_integration_cert(
        &self,
        who: Principal,
        account: AccountId,
        record: CertificateRecord,
    ) -> Result<(), OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::ops::issue_integration_cert(tx, &who, &account, now)?;
            storage::certificates::record(tx, &record)?;
            Ok(())
        })
        .await
    }

    /// Revokes one certificate of `account`: committed, then the transport refuses the
    /// serial and closes its live sessions, before this answers.
    pub async fn revoke_certificate(
        &self,
        who: Principal,
        account: AccountId,
        serial: String,
    ) -> Result<CertificateRecord, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let (cert, _) = this
                .commit(false, move |tx| {
                    storage::certificates::revoke_one(tx, &who, &account, &serial, now)
                })
                .await?;
            this.sessions.revoke(vec![cert.serial.clone()]).await;
            Ok(cert)
        })
        .await
    }

    /// Revokes every certificate of `tenant` (a device of `account`, or the account's
    /// integrations) issued before `issued_before`, recorded or not; then, before this
    /// answers, the transport refuses them at the handshake and closes the tenant's
    /// session.
    pub async fn revoke_issued_before(
        &self,
        who: Principal,
        account: AccountId,
        tenant: String,
        issued_before: Timestamp,
    ) -> Result<storage::certificates::SubjectRevocation, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let done = this
                .commit(false, move |tx| {
                    storage::certificates::revoke_issued_before(
                        tx,
                        &who,
                        &account,
                        &tenant,
                        issued_before,
                        now,
                    )
                })
                .await?;
            this.sessions
                .revoke_issued_before(done.tenant.clone(), done.issued_before)
                .await;
            Ok(done)
        })
        .await
    }
}
