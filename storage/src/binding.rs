//! Which unit reports for which asset, and what its hardware can do: swapping the unit of
//! an asset (a broken telematics box replaced in the field) and changing a unit's
//! capabilities (a keypad fitted or removed).
//!
//! The asset keeps its history: telemetry is keyed by the asset's internal key, never by
//! the unit. Keys belong to the asset too, so a swap moves them: the old unit's key set
//! empties and the new unit gets the asset's keys, each by a version bump in the same
//! transaction (the caller pushes the new sets). A change that would leave a live key on a
//! unit that cannot use it is refused with 409 naming those keys (rule 6: a key's access
//! type needs its hardware on the unit).

use std::collections::BTreeSet;

use redb::{ReadableTable, WriteTransaction};

use crate::codec;
use crate::error::{OpError, StoreError};
use crate::ids::{AccountId, AssetId, DeviceId};
use crate::keys::{bump, Changed, Key};
use crate::model::{BoundAsset, Capabilities, Device, Principal};
use crate::ops::{audit, AuditNote, Who};
use crate::store::{get, put};
use crate::tables::*;
use crate::time::Timestamp;

/// What a swap or a capability change did: the units whose binding changed (their actors
/// are re-bound) and the key sets to push.
#[derive(Debug, Clone, Default)]
pub struct Rebound {
    pub devices: Vec<Device>,
    pub changed: Vec<Changed>,
}

/// Makes `unit` the unit reporting for asset `asset_id` of `account` (`None`: no unit).
/// The old unit, if any, reports for no asset from now on. Audited as `asset.unit`.
///
/// # Errors
/// 404 for an asset or unit the caller cannot see; 403 by rule 1, or rule 2 for a
/// shared asset and a mirror; 409 when the new unit reports for another asset, or cannot
/// use a live key of the asset (named).
pub fn swap_unit(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    asset_id: &AssetId,
    unit: Option<&DeviceId>,
    now: Timestamp,
) -> Result<Rebound, OpError> {
    let mut asset = crate::ops::asset_to_change(tx, caller, account, asset_id)?;
    let old = asset.device_id.clone();
    if old.as_ref() == unit {
        return Ok(Rebound::default());
    }
    let mut devices = tx.open_table(DEVICES)?;
    let mut rebound = Vec::new();
    if let Some(new_id) = unit {
        let mut device: Device = get(&devices, "devices", new_id.as_str())?
            .filter(|d: &Device| &d.account_id == account && d.deregistered_at.is_none())
            .ok_or_else(|| OpError::not_found(format!("device {new_id}")))?;
        if let Some(existing) = &device.bound_asset {
            return Err(OpError::Conflict(format!(
                "device {new_id} already reports for asset {}: give that asset another unit first",
                existing.asset_id
            )));
        }
        let unusable = keys_needing(tx, asset.key, &device.capabilities, now)?;
        refuse_unusable(&unusable, &format!("device {new_id}"))?;
        device.bound_asset = Some(BoundAsset {
            asset_id: asset.id.clone(),
            asset_key: asset.key,
        });
        put(&mut devices, new_id.as_str(), &device)?;
        rebound.push(device);
    }
    if let Some(old_id) = &old {
        if let Some(mut device) = get::<Device>(&devices, "devices", old_id.as_str())? {
            device.bound_asset = None;
            put(&mut devices, old_id.as_str(), &device)?;
            rebound.push(device);
        }
    }
    drop(devices);
    asset.device_id = unit.cloned();
    tx.open_table(ASSETS)?.insert(
        (account.as_str(), asset_id.as_str()),
        codec::encode(&asset).as_slice(),
    )?;
    let note = |id: &Option<DeviceId>| id.as_ref().map_or("none".to_owned(), |d| d.to_string());
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: Some(account),
            action: "asset.unit",
            target: asset_id.to_string(),
            before: Some(note(&old)),
            after: Some(note(&asset.device_id)),
        },
        now,
    )?;
    let changed = bump(tx, rebound.iter().map(|device| device.id.clone()))?;
    Ok(Rebound {
        devices: rebound,
        changed,
    })
}

/// Sets unit `id`'s capabilities. Audited as `device.capabilities`.
///
/// # Errors
/// 404 for a unit the caller cannot see, 403 by rule 1, 409 naming the live keys of its
/// asset that need a capability being removed.
pub fn set_capabilities(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &DeviceId,
    capabilities: Capabilities,
    now: Timestamp,
) -> Result<Device, OpError> {
    let what = format!("device {id}");
    let mut device = crate::ops::device_to_change(tx, caller, id)?;
    if let Some(bound) = &device.bound_asset {
        let unusable = keys_needing(tx, bound.asset_key, &capabilities, now)?;
        refuse_unusable(&unusable, &what)?;
    }
    let before = device.capabilities.describe();
    device.capabilities = capabilities;
    put(&mut tx.open_table(DEVICES)?, id.as_str(), &device)?;
    let change = (Some(before), Some(device.capabilities.describe()));
    let action = (&device.account_id, "device.capabilities");
    crate::ops::audit_by(tx, caller, action, id.to_string(), change, now)?;
    Ok(device)
}

/// The ids of the asset's keys, not yet expired at `now`, that a unit with `capabilities`
/// could not use.
fn keys_needing(
    tx: &WriteTransaction,
    asset_key: u64,
    capabilities: &Capabilities,
    now: Timestamp,
) -> Result<Vec<(String, &'static str)>, StoreError> {
    let mut ids = BTreeSet::new();
    for row in tx
        .open_table(KEYS_BY_ASSET)?
        .range((asset_key, "")..(asset_key + 1, ""))?
    {
        ids.insert(row?.0.value().1.to_owned());
    }
    let keys = tx.open_table(KEYS)?;
    let mut out = Vec::new();
    for id in ids {
        let Some(key) = get::<Key>(&keys, "keys", &id)? else {
            continue;
        };
        if key.valid_to > now && !key.access_type.supported_by(capabilities) {
            out.push((key.id, key.access_type.as_str()));
        }
    }
    Ok(out)
}

fn refuse_unusable(unusable: &[(String, &'static str)], unit: &str) -> Result<(), OpError> {
    if unusable.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = unusable
        .iter()
        .map(|(id, access)| format!("{id} ({access})"))
        .collect();
    Err(OpError::Conflict(format!(
        "{unit} could not use keys {}: end or delete them first, or keep the capability",
        named.join(", ")
    )))
}
