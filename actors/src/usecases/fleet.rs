//! Devices and assets.

use storage::model::{Asset, Capabilities, CertificateRecord, Device, Principal};
use storage::ops::{AssetPatch, NewAsset};
use storage::{AccountId, AssetId, DeviceId, OpError};

use super::UseCases;
use crate::directory::Distribution;

/// A unit to register: its id, what its hardware supports, and the certificate the
/// gateway's CA issued for it (recorded in the same transaction).
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub id: DeviceId,
    pub capabilities: storage::model::Capabilities,
    pub certificate: CertificateRecord,
}

impl UseCases {
    /// Registers a unit of `account` and starts its actor. The certificate is recorded
    /// with the unit, so the transport can refuse it once revoked.
    pub async fn register_device(
        &self,
        who: Principal,
        account: AccountId,
        new: NewDevice,
    ) -> Result<Device, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let device = this
                .commit(false, move |tx| {
                    let device = storage::ops::register_device(
                        tx,
                        &who,
                        &account,
                        new.id,
                        new.capabilities,
                        now,
                    )?;
                    storage::certificates::record(tx, &new.certificate)?;
                    Ok(device)
                })
                .await?;
            this.directory.start_device(&device)?;
            Ok(device)
        })
        .await
    }

    /// Deregisters a unit. In one transaction its key set empties and its certificates
    /// are revoked; then, before this answers: its actor drops whatever the unit still
    /// sends, the empty key set goes to the unit's live session (waiting up to
    /// [`UseCases::key_ack_wait`] for its acknowledgement: after the close the unit can
    /// never be told, and would go on opening for its keys until they end), its
    /// certificates fail every handshake, and its session is closed. Answers where the
    /// empty set reached.
    pub async fn deregister_device(
        &self,
        who: Principal,
        id: DeviceId,
    ) -> Result<Distribution, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let (device, changed, revoked) = this
                .commit(false, move |tx| {
                    let device = storage::ops::deregister_device(tx, &who, &id, now)?;
                    let changed = storage::keys::bump(tx, [device.id.clone()])?;
                    let revoked =
                        storage::certificates::revoke_of_tenant(tx, device.id.as_str(), now)?;
                    Ok((device, changed, revoked))
                })
                .await?;
            this.directory.rebind(&device).await?;
            let distribution = this
                .directory
                .push_keys(&changed, this.key_ack_wait)
                .await?;
            this.sessions.revoke(revoked).await;
            this.sessions.close(device.id.as_str()).await;
            Ok(distribution)
        })
        .await
    }

    /// Records a new certificate for a registered unit (after a revoke, or to rotate its
    /// key), checked and audited in one transaction; `certificate` is what the gateway's CA
    /// signed and is never handed out when this refuses. The unit's older certificates are
    /// untouched, so a unit rotating its key keeps its session until it reconnects.
    pub async fn issue_unit_certificate(
        &self,
        who: Principal,
        id: DeviceId,
        certificate: CertificateRecord,
    ) -> Result<Device, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::certificates::issue_for_unit(tx, &who, &id, &certificate, now)
        })
        .await
    }

    /// Creates an asset of `account`, bound to a unit when it names one: that unit's
    /// actor is re-bound (its points reach the asset's audience) before this answers.
    pub async fn create_asset(
        &self,
        who: Principal,
        account: AccountId,
        new: NewAsset,
    ) -> Result<Asset, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let (asset, bound) = this
                .commit(false, move |tx| {
                    storage::ops::create_asset(tx, &who, &account, new, now)
                })
                .await?;
            if let Some(device) = bound {
                this.directory.rebind(&device).await?;
            }
            Ok(asset)
        })
        .await
    }

    /// Changes an owned asset's name, serial or details (mirrors follow in the same
    /// transaction).
    pub async fn update_asset(
        &self,
        who: Principal,
        account: AccountId,
        id: AssetId,
        patch: AssetPatch,
    ) -> Result<Asset, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::ops::update_asset(tx, &who, &account, &id, patch, now)
        })
        .await
    }

    /// Makes `unit` the unit reporting for an asset (`None`: none): the old unit's key set
    /// empties and the new one gets the asset's keys; both actors are re-bound before this
    /// answers, so the asset's points come from the new unit only. History stays with the
    /// asset. Answers where the new key sets reached within [`UseCases::key_ack_wait`].
    pub async fn swap_unit(
        &self,
        who: Principal,
        account: AccountId,
        asset: AssetId,
        unit: Option<DeviceId>,
    ) -> Result<Distribution, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let rebound = this
                .commit(false, move |tx| {
                    storage::binding::swap_unit(tx, &who, &account, &asset, unit.as_ref(), now)
                })
                .await?;
            for device in &rebound.devices {
                this.directory.rebind(device).await?;
            }
            let distribution = this
                .directory
                .push_keys(&rebound.changed, this.key_ack_wait)
                .await?;
            Ok(distribution)
        })
        .await
    }

    /// Changes what a unit's hardware supports; refused while a live key of its asset needs
    /// a capability being removed.
    pub async fn set_capabilities(
        &self,
        who: Principal,
        id: DeviceId,
        capabilities: Capabilities,
    ) -> Result<Device, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::binding::set_capabilities(tx, &who, &id, capabilities, now)
        })
        .await
    }

    /// Deletes an asset: its grants, tenant shares and keys end in the same transaction;
    /// then, before this answers, its unit is re-bound to no asset (its points reach no
    /// one), the changed key sets are pushed, and the stream guard has ended the streams
    /// that showed it. Its history stays for retention to prune.
    pub async fn delete_asset(
        &self,
        who: Principal,
        account: AccountId,
        asset: AssetId,
    ) -> Result<Distribution, OpError> {
        let (this, now) = (self.clone(), self.now());
        crate::completing(async move {
            let deleted = this
                .commit(false, move |tx| {
                    storage::retire::delete_asset(tx, &who, &account, &asset, now)
                })
                .await?;
            if let Some(unit) = &deleted.unit {
                this.directory.rebind(unit).await?;
            }
            let distribution = this
                .directory
                .push_keys(&deleted.changed, this.key_ack_wait)
                .await?;
            // A key or grant deadline may have gone with the asset.
            this.scheduler.wake();
            Ok(distribution)
        })
        .await
    }
}
