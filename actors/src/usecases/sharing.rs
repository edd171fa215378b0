//! Partnerships, visibility grants, and tenant sharing with its profiles. Every change
//! that alters who receives a unit's points re-binds the affected units' actors and waits
//! for their acknowledgements before it answers (DESIGN section 2's ordering contract).

use std::collections::BTreeSet;

use storage::details::Field;
use storage::model::{Asset, Grant, Partnership, Principal};
use storage::sharing::{Change, GrantRequest};
use storage::tenant::{Kind, ShareRequest, SharingProfile};
use storage::{AccountId, AssetId, GrantId, OpError, PartnershipId};

use super::UseCases;

impl UseCases {
    /// Lets two accounts share assets across their trees (rule 3).
    pub async fn create_partnership(
        &self,
        who: Principal,
        a: AccountId,
        b: AccountId,
    ) -> Result<Partnership, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::sharing::create_partnership(tx, &who, a, b, now)
        })
        .await
    }

    /// Ends a partnership and every grant that relied on it; the units of those grants
    /// are re-bound before this answers. Answers the partnership and the ended grants.
    pub async fn end_partnership(
        &self,
        who: Principal,
        id: PartnershipId,
    ) -> Result<(Partnership, Vec<Grant>), OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let ended = this
                .commit(false, move |tx| {
                    storage::sharing::end_partnership(tx, &who, &id, now)
                })
                .await?;
            this.directory.rebind_grants(&ended.grants).await?;
            for source in &ended.sources {
                this.directory.rebind_asset(source).await?;
            }
            Ok((ended.partnership, ended.grants))
        })
        .await
    }

    /// Creates or changes grants (a dry run changes nothing and re-binds nothing). The
    /// scheduler is woken: a grant's start or end may be its next deadline.
    pub async fn grant(
        &self,
        who: Principal,
        request: GrantRequest,
        dry_run: bool,
    ) -> Result<Vec<(Grant, Change)>, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let outcomes = this
                .commit(dry_run, move |tx| {
                    storage::sharing::grant(tx, &who, request, now)
                })
                .await?;
            if !dry_run {
                let changed: Vec<Grant> = outcomes
                    .iter()
                    .filter(|(_, change)| *change != Change::Unchanged)
                    .map(|(grant, _)| grant.clone())
                    .collect();
                this.directory.rebind_grants(&changed).await?;
                this.scheduler.wake();
            }
            Ok(outcomes)
        })
        .await
    }

    /// Removes `target`'s grants on `assets` of `owner`; the grantee stops receiving
    /// their points before this answers.
    pub async fn remove_grants(
        &self,
        who: Principal,
        owner: AccountId,
        target: AccountId,
        assets: Vec<AssetId>,
        dry_run: bool,
    ) -> Result<Vec<Grant>, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let removed = this
                .commit(dry_run, move |tx| {
                    storage::sharing::remove_grants(tx, &who, &owner, &target, &assets, now)
                })
                .await?;
            if !dry_run {
                this.directory.rebind_grants(&removed).await?;
            }
            Ok(removed)
        })
        .await
    }

    /// Removes one grant by id, like [`UseCases::remove_grants`].
    pub async fn delete_grant(&self, who: Principal, id: GrantId) -> Result<Grant, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let grant = this
                .commit(false, move |tx| {
                    storage::sharing::delete_grant(tx, &who, &id, now)
                })
                .await?;
            this.directory
                .rebind_grants(std::slice::from_ref(&grant))
                .await?;
            Ok(grant)
        })
        .await
    }

    /// Creates a sharing profile: which details a details share copies.
    pub async fn create_profile(
        &self,
        who: Principal,
        account: AccountId,
        name: String,
        fields: BTreeSet<Field>,
    ) -> Result<SharingProfile, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::tenant::create_profile(tx, &who, &account, &name, fields, now)
        })
        .await
    }

    /// Changes a profile's fields; the mirrors that use it are refreshed in the same
    /// transaction.
    pub async fn update_profile(
        &self,
        who: Principal,
        id: String,
        fields: BTreeSet<Field>,
    ) -> Result<SharingProfile, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::tenant::update_profile(tx, &who, &id, fields, now)
        })
        .await
    }

    /// Deletes a sharing profile no details share uses (409 naming those that do).
    pub async fn delete_profile(&self, who: Principal, id: String) -> Result<(), OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::profile_use::delete_profile(tx, &who, &id, now)
        })
        .await
    }

    /// Starts (or moves) tenant sharing (rule 5). Telemetry sharing re-binds the source's
    /// unit before this answers. Answers the source and the mirror.
    pub async fn share(
        &self,
        who: Principal,
        request: ShareRequest,
    ) -> Result<(Asset, Asset), OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let kind = request.kind;
            let (source, mirror) = this
                .commit(false, move |tx| {
                    storage::tenant::share(tx, &who, &request, now)
                })
                .await?;
            if kind == Kind::Telemetry {
                this.directory.rebind_asset(&source).await?;
            }
            Ok((source, mirror))
        })
        .await
    }

    /// Stops tenant sharing of `kind`; after telemetry sharing stops no later point
    /// reaches the target (its unit is re-bound before this answers).
    pub async fn unshare(
        &self,
        who: Principal,
        kind: Kind,
        account: AccountId,
        source: AssetId,
        only: Option<(AccountId, AssetId)>,
    ) -> Result<Asset, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let source = this
                .commit(false, move |tx| {
                    storage::tenant::unshare(tx, &who, kind, &account, &source, only.as_ref(), now)
                })
                .await?;
            if kind == Kind::Telemetry {
                this.directory.rebind_asset(&source).await?;
            }
            Ok(source)
        })
        .await
    }
}
