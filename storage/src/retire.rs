//! Deleting an asset (rule 1: its owner's admin or fleet admin). Everything that gave
//! someone access through it ends first, in the same transaction and audited like any
//! other end: its visibility grants (`grant.remove`), its tenant shares
//! (`sharing.*.stop`; mirrors keep what they showed until then, as after any stop), and
//! its keys (a key of this asset alone is deleted, a key of more assets loses this one).
//! Its unit reports for no asset from then on and its key set empties.
//!
//! Its history is not deleted with it: it stays under the asset's internal key, which
//! [`RETIRED_ASSETS`] keeps with the owner, so retention prunes it on the owner's
//! schedule like any other. Nobody reads it meanwhile (no asset id leads to that key; an
//! asset created later under the same id gets a new key), so a deletion cannot be undone
//! through the API. Once retention has passed the deletion by [`FORGET_MARGIN_MS`] for
//! both telemetry and access events, nothing of the asset can be left and its row goes
//! too ([`forget_pruned`]).

use redb::{ReadableTable, WriteTransaction};

use crate::error::OpError;
use crate::ids::{AccountId, AssetId, DeviceId};
use crate::keys::{bump, Changed};
use crate::model::{Device, Principal};
use crate::ops::{audit, AuditNote, Who};
use crate::store::{get, put};
use crate::tables::*;
use crate::tenant::Kind;
use crate::time::Timestamp;

/// What a deletion changed, for the follow-ups: the unit (re-bound to no asset, which
/// takes the asset's viewers, grantees included, off its live path) and the key sets to
/// push. Streams that showed the asset end by the stream guard after the commit.
#[derive(Debug, Clone, Default)]
pub struct Deleted {
    pub unit: Option<Device>,
    pub changed: Vec<Changed>,
}

/// Deletes asset `asset_id` of `account`; see the module doc. Audited as `asset.delete`.
///
/// # Errors
/// 404 for an asset the caller cannot see; 403 by rule 1, or rule 2 for a shared asset
/// and a mirror (deleted by their owner only).
pub fn delete_asset(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    asset_id: &AssetId,
    now: Timestamp,
) -> Result<Deleted, OpError> {
    let mut asset = crate::ops::asset_to_change(tx, caller, account, asset_id)?;
    crate::sharing::end_grants_of_asset(tx, caller, asset.key, now)?;
    for kind in [Kind::Telemetry, Kind::Details] {
        crate::tenant::end_share(tx, caller, kind, &mut asset, now)?;
    }
    let mut touched: Vec<DeviceId> = crate::keys::drop_asset(tx, caller, asset.key, now)?;
    let mut unit = None;
    if let Some(id) = &asset.device_id {
        let mut devices = tx.open_table(DEVICES)?;
        if let Some(mut device) = get::<Device>(&devices, "devices", id.as_str())? {
            device.bound_asset = None;
            put(&mut devices, id.as_str(), &device)?;
            touched.push(device.id.clone());
            unit = Some(device);
        }
    }
    tx.open_table(ASSETS)?
        .remove((account.as_str(), asset_id.as_str()))?;
    tx.open_table(RETIRED_ASSETS)?
        .insert(asset.key, (account.as_str(), now.0))?;
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: Some(account),
            action: "asset.delete",
            target: asset_id.to_string(),
            before: Some(match &asset.device_id {
                Some(device) => format!("{asset_id} bound to {device}"),
                None => asset_id.to_string(),
            }),
            after: None,
        },
        now,
    )?;
    let changed = bump(tx, touched)?;
    Ok(Deleted { unit, changed })
}

/// How far past a deletion both retention cutoffs must be before a retired asset is
/// forgotten, ms: a unit's readings may be stamped up to minutes ahead of their arrival,
/// so rows up to a little after the deletion may exist. An hour covers it with room.
pub const FORGET_MARGIN_MS: u64 = 3_600_000;

/// Removes the [`RETIRED_ASSETS`] rows whose history `plan` has pruned to the end: both
/// its telemetry and its access-event cutoffs lie [`FORGET_MARGIN_MS`] past the deletion.
/// Run after the plan's prune. Answers how many were forgotten.
pub fn forget_pruned(
    tx: &WriteTransaction,
    plan: &crate::retention::Plan,
) -> Result<usize, crate::error::StoreError> {
    let cutoff = |list: &[(u64, u64)], key: u64| {
        list.iter()
            .find(|(asset, _)| *asset == key)
            .map(|(_, at)| *at)
    };
    let mut done = Vec::new();
    for row in tx.open_table(RETIRED_ASSETS)?.iter()? {
        let (key, owner) = row?;
        let (key, deleted_at) = (key.value(), owner.value().1);
        let gone = |list: &[(u64, u64)]| {
            cutoff(list, key).is_some_and(|at| at > deleted_at.saturating_add(FORGET_MARGIN_MS))
        };
        if gone(&plan.telemetry) && gone(&plan.access_events) {
            done.push(key);
        }
    }
    let mut retired = tx.open_table(RETIRED_ASSETS)?;
    for key in &done {
        retired.remove(*key)?;
    }
    Ok(done.len())
}
