//! Access keys, operators and customers (rule 6). A key change is committed, then the new key set of
//! every affected unit is pushed, and the answer says which units acknowledged it within
//! [`UseCases::key_ack_wait`] (the others get it when they next subscribe).

use storage::customers::{self, Customer};
use storage::keys::{Changed, Key, KeyEdit, NewKey};
use storage::model::Principal;
use storage::operators::{self as ops, Operator, OperatorEdit, OperatorId, OperatorInput};
use storage::{AccountId, OpError};

use super::UseCases;
use crate::directory::Distribution;

/// Keys a change touched, and where their units' new sets reached.
pub type KeysChanged = (Vec<Key>, Distribution);

impl UseCases {
    async fn distribute(&self, changed: &[Changed]) -> Result<Distribution, OpError> {
        let distribution = self.directory.push_keys(changed, self.key_ack_wait).await?;
        // A key's window start or end may now be the scheduler's next deadline.
        self.scheduler.wake();
        Ok(distribution)
    }

    /// Creates a key and distributes it to the units of its assets; a personal key's
    /// operator is told by SMS, in the same transaction (the outbox). A dry run (the
    /// wizard's review) checks every rule, stores nothing, pushes nothing, and answers the
    /// units that would receive it as `pending`.
    pub async fn create_key(
        &self,
        who: Principal,
        account: AccountId,
        new: NewKey,
        dry_run: bool,
    ) -> Result<(Key, Distribution), OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let include_pin = this.sms_key_pin;
            let (key, changed, notified) = this
                .commit(dry_run, move |tx| {
                    let (key, changed) = storage::keys::create(tx, &who, &account, new, now)?;
                    let notified = ops::queue_key_notice(tx, &key, include_pin, now)?;
                    Ok((key, changed, notified))
                })
                .await?;
            if notified && !dry_run {
                this.outbox.notify_one();
            }
            if dry_run {
                let pending = changed.into_iter().map(|c| c.device).collect();
                return Ok((
                    key,
                    Distribution {
                        delivered: Vec::new(),
                        pending,
                    },
                ));
            }
            Ok((key, this.distribute(&changed).await?))
        })
        .await
    }

    /// Edits keys' end date or description (all or none); a dry run pushes nothing.
    pub async fn edit_keys(
        &self,
        who: Principal,
        ids: Vec<String>,
        edit: KeyEdit,
        dry_run: bool,
    ) -> Result<KeysChanged, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let (keys, changed) = this
                .commit(dry_run, move |tx| {
                    storage::keys::edit(tx, &who, &ids, &edit, now)
                })
                .await?;
            this.distributed(keys, &changed, dry_run).await
        })
        .await
    }

    /// Deletes keys (all or none); they leave the units before this answers, as far as
    /// the units acknowledge within the wait. A dry run pushes nothing.
    pub async fn delete_keys(
        &self,
        who: Principal,
        ids: Vec<String>,
        dry_run: bool,
    ) -> Result<KeysChanged, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let (keys, changed) = this
                .commit(dry_run, move |tx| {
                    storage::keys::delete(tx, &who, &ids, now)
                })
                .await?;
            this.distributed(keys, &changed, dry_run).await
        })
        .await
    }

    async fn distributed(
        &self,
        keys: Vec<Key>,
        changed: &[Changed],
        dry_run: bool,
    ) -> Result<KeysChanged, OpError> {
        let distribution = if dry_run {
            Distribution::default()
        } else {
            self.distribute(changed).await?
        };
        Ok((keys, distribution))
    }

    /// Creates an operator (rule 6: a name, a phone in E.164 when given); an SMS
    /// invitation, when asked for, is queued in the same transaction and sent by the
    /// outbox. Refuses with the first field error.
    pub async fn create_operator(
        &self,
        who: Principal,
        account: AccountId,
        input: OperatorInput,
    ) -> Result<Operator, OpError> {
        let new = ops::check(&input).map_err(|mut errors| OpError::from(errors.remove(0)))?;
        let now = self.now();
        let operator = self
            .commit(false, move |tx| ops::create(tx, &who, &account, new, now))
            .await?;
        self.wake_outbox(std::slice::from_ref(&operator));
        Ok(operator)
    }

    /// Creates every operator of an import, all or none (a dry run creates none).
    pub async fn import_operators(
        &self,
        who: Principal,
        account: AccountId,
        rows: Vec<ops::NewOperator>,
        dry_run: bool,
    ) -> Result<Vec<Operator>, OpError> {
        let now = self.now();
        let created = self
            .commit(dry_run, move |tx| {
                ops::create_many(tx, &who, &account, rows, now)
            })
            .await?;
        if !dry_run {
            self.wake_outbox(&created);
        }
        Ok(created)
    }

    /// Changes an operator's name, phone or access type.
    pub async fn update_operator(
        &self,
        who: Principal,
        id: OperatorId,
        edit: OperatorEdit,
    ) -> Result<Operator, OpError> {
        let now = self.now();
        self.commit(false, move |tx| ops::update(tx, &who, &id, edit, now))
            .await
    }

    /// Queues an operator's SMS invitation again and wakes the outbox.
    pub async fn resend_invitation(
        &self,
        who: Principal,
        id: OperatorId,
    ) -> Result<Operator, OpError> {
        let now = self.now();
        let operator = self
            .commit(false, move |tx| ops::resend_invitation(tx, &who, &id, now))
            .await?;
        self.wake_outbox(std::slice::from_ref(&operator));
        Ok(operator)
    }

    /// Deletes an operator with any invitation still pending (refused while it holds
    /// personal keys).
    pub async fn delete_operator(&self, who: Principal, id: OperatorId) -> Result<(), OpError> {
        let now = self.now();
        self.commit(false, move |tx| ops::delete(tx, &who, &id, now))
            .await
            .map(|_| ())
    }

    fn wake_outbox(&self, operators: &[Operator]) {
        let queued = operators
            .iter()
            .any(|operator| operator.invitation.is_some_and(|i| i.sent_at.is_none()));
        if queued {
            self.outbox.notify_one();
        }
    }
}

impl UseCases {
    /// Creates a customer of `account`, whom keys may name.
    pub async fn create_customer(
        &self,
        who: Principal,
        account: AccountId,
        name: String,
    ) -> Result<Customer, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            customers::create(tx, &who, &account, &name, now)
        })
        .await
    }

    /// Renames a customer; the keys naming it keep naming it.
    pub async fn rename_customer(
        &self,
        who: Principal,
        id: String,
        name: String,
    ) -> Result<Customer, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            customers::rename(tx, &who, &id, &name, now)
        })
        .await
    }

    /// Deletes a customer no key names.
    pub async fn delete_customer(&self, who: Principal, id: String) -> Result<(), OpError> {
        let now = self.now();
        self.commit(false, move |tx| customers::delete(tx, &who, &id, now))
            .await
    }
}
