//! Tenant sharing (rule 5): an asset's telemetry and/or profile-selected details are
//! mirrored into another account under a target asset id. The principal needs admin
//! rights in both accounts. The target asset is created, or must already be a mirror of
//! the same source; a mirror is read-only and is never shared onward.
//!
//! Decisions (also in the README): the target sees telemetry from the moment sharing
//! starts, not the source's older history; when sharing ends the mirror stays, with the
//! history of the periods it was shared and the details last copied. A `PUT` to another
//! target moves the sharing there.

use std::collections::BTreeSet;

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::details::{project, Field};
use crate::error::{OpError, StoreError};
use crate::ids::{AccountId, AssetId};
use crate::model::{Asset, Principal};
use crate::ops::{audit, AuditNote, Who};
use crate::policy::Need;
use crate::read::require_in;
use crate::rule::Rule;
use crate::store::{decode_as, get, next_counter, put};
use crate::tables::*;
use crate::time::Timestamp;

/// How a mirror relates to its source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mirror {
    pub source_account: AccountId,
    pub source_asset: AssetId,
    pub source_key: u64,
    /// Periods the source's telemetry was shared, oldest first; the last may be open.
    pub windows: Vec<(Timestamp, Option<Timestamp>)>,
    /// The profile whose fields are copied, while details sharing is on.
    pub profile: Option<String>,
}

impl Mirror {
    pub fn telemetry_live(&self) -> bool {
        self.windows
            .last()
            .is_some_and(|(_, until)| until.is_none())
    }

    pub fn shows(&self, ts: Timestamp) -> bool {
        crate::window::shows(&self.windows, ts)
    }
}

/// A source asset's current targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSharing {
    pub telemetry: Option<(AccountId, AssetId)>,
    pub details: Option<(AccountId, AssetId, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingProfile {
    pub id: String,
    pub account_id: AccountId,
    pub name: String,
    pub fields: BTreeSet<Field>,
}

fn load_asset(
    tx: &WriteTransaction,
    account: &AccountId,
    id: &AssetId,
) -> Result<Option<Asset>, StoreError> {
    let assets = tx.open_table(ASSETS)?;
    let found = assets.get((account.as_str(), id.as_str()))?;
    match found {
        Some(bytes) => Ok(Some(decode_as("assets", bytes.value())?)),
        None => Ok(None),
    }
}

fn save_asset(tx: &WriteTransaction, asset: &Asset) -> Result<(), StoreError> {
    tx.open_table(ASSETS)?.insert(
        (asset.account_id.as_str(), asset.id.as_str()),
        codec::encode(asset).as_slice(),
    )?;
    Ok(())
}

pub fn create_profile(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    name: &str,
    fields: BTreeSet<Field>,
    now: Timestamp,
) -> Result<SharingProfile, OpError> {
    require_in(
        &tx.open_table(ACCOUNTS)?,
        caller,
        account,
        Need::Administer,
        &format!("account {account}"),
    )?;
    let name = crate::ops::name_field("name", name)?;
    let profile = SharingProfile {
        id: crate::ids::generate("prf"),
        account_id: account.clone(),
        name,
        fields,
    };
    put(&mut tx.open_table(PROFILES)?, &profile.id, &profile)?;
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: Some(account),
            action: "profile.create",
            target: profile.id.clone(),
            before: None,
            after: Some(fields_text(&profile.fields)),
        },
        now,
    )?;
    Ok(profile)
}

fn fields_text(fields: &BTreeSet<Field>) -> String {
    fields
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn load_profile(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &str,
) -> Result<SharingProfile, OpError> {
    let what = format!("sharing profile {id}");
    let profile: SharingProfile =
        get(&tx.open_table(PROFILES)?, "profiles", id)?.ok_or_else(|| OpError::not_found(&what))?;
    require_in(
        &tx.open_table(ACCOUNTS)?,
        caller,
        &profile.account_id,
        Need::Administer,
        &what,
    )?;
    Ok(profile)
}

/// Changes a profile's fields and re-copies every mirror that uses it, in one transaction.
pub fn update_profile(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &str,
    fields: BTreeSet<Field>,
    now: Timestamp,
) -> Result<SharingProfile, OpError> {
    let mut profile = load_profile(tx, caller, id)?;
    let before = fields_text(&profile.fields);
    profile.fields = fields;
    put(&mut tx.open_table(PROFILES)?, &profile.id, &profile)?;
    let sources: Vec<Asset> = {
        let assets = tx.open_table(ASSETS)?;
        let mut sources = Vec::new();
        for row in assets.range((profile.account_id.as_str(), "")..)? {
            let (key, value) = row?;
            if key.value().0 != profile.account_id.as_str() {
                break;
            }
            let asset: Asset = decode_as("assets", value.value())?;
            if asset
                .sharing
                .details
                .as_ref()
                .is_some_and(|(_, _, p)| p == &profile.id)
            {
                sources.push(asset);
            }
        }
        sources
    };
    for source in &sources {
        copy_details(tx, source, &profile)?;
    }
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: Some(&profile.account_id),
            action: "profile.update",
            target: profile.id.clone(),
            before: Some(before),
            after: Some(fields_text(&profile.fields)),
        },
        now,
    )?;
    Ok(profile)
}

pub fn profiles(
    rtx: &redb::ReadTransaction,
    caller: &Principal,
    account: &AccountId,
) -> Result<Vec<SharingProfile>, OpError> {
    require_in(
        &rtx.open_table(ACCOUNTS)?,
        caller,
        account,
        Need::Administer,
        &format!("account {account}"),
    )?;
    let table = rtx.open_table(PROFILES)?;
    let mut out = Vec::new();
    for row in table.iter()? {
        let profile: SharingProfile = decode_as("profiles", row?.1.value())?;
        if &profile.account_id == account {
            out.push(profile);
        }
    }
    Ok(out)
}

/// Copies exactly the profile's fields of `source` into its details mirror.
fn copy_details(
    tx: &WriteTransaction,
    source: &Asset,
    profile: &SharingProfile,
) -> Result<(), StoreError> {
    let Some((account, id, _)) = &source.sharing.details else {
        return Ok(());
    };
    let Some(mut mirror) = load_asset(tx, account, id)? else {
        return Ok(());
    };
    mirror.details = project(&source.details, &profile.fields);
    mirror.name = if profile.fields.contains(&Field::Name) {
        source.name.clone()
    } else {
        mirror.id.to_string()
    };
    mirror.serial = source
        .serial
        .clone()
        .filter(|_| profile.fields.contains(&Field::Serial));
    if let Some(link) = mirror.mirror.as_mut() {
        link.profile = Some(profile.id.clone());
    }
    save_asset(tx, &mirror)
}

/// After the owner changed a source asset: its details mirror follows in the same
/// transaction.
pub fn propagate(tx: &WriteTransaction, source: &Asset) -> Result<(), StoreError> {
    if let Some((_, _, profile_id)) = &source.sharing.details {
        if let Some(profile) =
            get::<SharingProfile>(&tx.open_table(PROFILES)?, "profiles", profile_id)?
        {
            copy_details(tx, source, &profile)?;
        }
    }
    Ok(())
}

/// Which kind of sharing a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Telemetry,
    Details,
}

/// The source asset, if the caller is an admin of its owner and it is the owner's own
/// asset (not a grant's, not a mirror).
fn source_asset(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    id: &AssetId,
) -> Result<Asset, OpError> {
    let what = format!("asset {id}");
    require_in(
        &tx.open_table(ACCOUNTS)?,
        caller,
        account,
        Need::View,
        &what,
    )?;
    let Some(asset) = load_asset(tx, account, id)? else {
        if tx
            .open_table(GRANT_BY_TARGET)?
            .get((account.as_str(), id.as_str()))?
            .is_some()
        {
            return Err(OpError::Forbidden(Rule::SharedReadOnly {
                asset_id: id.clone(),
                action: "share",
            }));
        }
        return Err(OpError::not_found(what));
    };
    if asset.mirror.is_some() {
        return Err(OpError::Forbidden(Rule::MirrorReadOnly {
            asset_id: id.clone(),
            action: "share",
        }));
    }
    require_in(
        &tx.open_table(ACCOUNTS)?,
        caller,
        account,
        Need::Administer,
        &what,
    )?;
    Ok(asset)
}

/// Finds or creates the mirror `target_id` in `target` for `source`; 409 if that id is
/// taken by anything else.
fn mirror_for(
    tx: &WriteTransaction,
    caller: &Principal,
    source: &Asset,
    target: &AccountId,
    target_id: &AssetId,
    now: Timestamp,
) -> Result<Asset, OpError> {
    require_in(
        &tx.open_table(ACCOUNTS)?,
        caller,
        target,
        Need::Administer,
        &format!("account {target}"),
    )?;
    if target == &source.account_id {
        return Err(OpError::invalid(
            "target_account_id",
            "must be another account than the source's",
        ));
    }
    if let Some(existing) = load_asset(tx, target, target_id)? {
        return match &existing.mirror {
            Some(link) if link.source_key == source.key => Ok(existing),
            _ => Err(OpError::Conflict(format!(
                "asset {target_id} already exists in account {target} and is not a mirror of {}",
                source.id
            ))),
        };
    }
    if tx
        .open_table(GRANT_BY_TARGET)?
        .get((target.as_str(), target_id.as_str()))?
        .is_some()
    {
        return Err(OpError::Conflict(format!(
            "account {target} already sees a shared asset as {target_id}"
        )));
    }
    Ok(Asset {
        key: next_counter(tx, "asset_key")?,
        account_id: target.clone(),
        id: target_id.clone(),
        name: target_id.to_string(),
        serial: None,
        device_id: None,
        created_at: now,
        details: Default::default(),
        mirror: Some(Mirror {
            source_account: source.account_id.clone(),
            source_asset: source.id.clone(),
            source_key: source.key,
            windows: Vec::new(),
            profile: None,
        }),
        sharing: Default::default(),
    })
}

/// What a share call asks for: `source` of `source_account` mirrored as `target_asset`
/// in `target`; details sharing names the profile that selects what is copied.
#[derive(Debug, Clone)]
pub struct ShareRequest {
    pub kind: Kind,
    pub source_account: AccountId,
    pub source: AssetId,
    pub target: AccountId,
    pub target_asset: AssetId,
    /// Details sharing only (required there, refused for telemetry).
    pub profile_id: Option<String>,
}

/// Starts (or moves) telemetry or details sharing of the request's source to its target
/// asset. Returns the source (with its new targets) and the mirror.
pub fn share(
    tx: &WriteTransaction,
    caller: &Principal,
    request: &ShareRequest,
    now: Timestamp,
) -> Result<(Asset, Asset), OpError> {
    let ShareRequest {
        kind,
        source_account,
        source: source_id,
        target,
        target_asset: target_id,
        profile_id,
    } = request;
    let kind = *kind;
    let mut source = source_asset(tx, caller, source_account, source_id)?;
    let profile = match (kind, profile_id.as_deref()) {
        (Kind::Details, Some(id)) => {
            let profile = load_profile(tx, caller, id)?;
            if &profile.account_id != source_account {
                return Err(OpError::not_found(format!("sharing profile {id}")));
            }
            Some(profile)
        }
        (Kind::Details, None) => {
            return Err(OpError::invalid(
                "profile_id",
                "is required for details sharing",
            ))
        }
        (Kind::Telemetry, Some(_)) => {
            return Err(OpError::invalid(
                "profile_id",
                "applies to details sharing only",
            ))
        }
        (Kind::Telemetry, None) => None,
    };
    // Moving to another target ends the old sharing first.
    let current = match kind {
        Kind::Telemetry => source.sharing.telemetry.clone(),
        Kind::Details => source.sharing.details.clone().map(|(a, x, _)| (a, x)),
    };
    if current
        .as_ref()
        .is_some_and(|(a, x)| a != target || x != target_id)
    {
        end_on_mirror(tx, &source, kind, now)?;
    }
    let mut mirror = mirror_for(tx, caller, &source, target, target_id, now)?;
    match kind {
        Kind::Telemetry => {
            if let Some(link) = mirror.mirror.as_mut() {
                if !link.telemetry_live() {
                    link.windows.push((now, None));
                }
            }
            source.sharing.telemetry = Some((target.clone(), target_id.clone()));
        }
        Kind::Details => {
            let profile_id = profile.as_ref().map(|p| p.id.clone()).unwrap_or_default();
            source.sharing.details = Some((target.clone(), target_id.clone(), profile_id));
        }
    }
    save_asset(tx, &source)?;
    save_asset(tx, &mirror)?;
    if let Some(profile) = &profile {
        copy_details(tx, &source, profile)?;
        mirror = load_asset(tx, target, target_id)?.unwrap_or(mirror);
    }
    let action = match kind {
        Kind::Telemetry => "sharing.telemetry.start",
        Kind::Details => "sharing.details.start",
    };
    for account in [source_account, target] {
        audit(
            tx,
            Who::Principal(caller),
            AuditNote {
                account_id: Some(account),
                action,
                target: source_id.to_string(),
                before: None,
                after: Some(format!("{target}/{target_id}")),
            },
            now,
        )?;
    }
    Ok((source, mirror))
}

/// Closes the mirror's side of one kind of sharing; the mirror and its data stay.
fn end_on_mirror(
    tx: &WriteTransaction,
    source: &Asset,
    kind: Kind,
    now: Timestamp,
) -> Result<(), StoreError> {
    let target = match kind {
        Kind::Telemetry => source.sharing.telemetry.clone(),
        Kind::Details => source.sharing.details.clone().map(|(a, x, _)| (a, x)),
    };
    let Some((account, id)) = target else {
        return Ok(());
    };
    if let Some(mut mirror) = load_asset(tx, &account, &id)? {
        if let Some(link) = mirror.mirror.as_mut() {
            match kind {
                Kind::Telemetry => {
                    if let Some(last) = link.windows.last_mut() {
                        if last.1.is_none() {
                            last.1 = Some(now);
                        }
                    }
                }
                Kind::Details => link.profile = None,
            }
        }
        save_asset(tx, &mirror)?;
    }
    Ok(())
}

/// Stops one kind of sharing of a source asset. Returns the source as it is now.
pub fn unshare(
    tx: &WriteTransaction,
    caller: &Principal,
    kind: Kind,
    source_account: &AccountId,
    source_id: &AssetId,
    now: Timestamp,
) -> Result<Asset, OpError> {
    let mut source = source_asset(tx, caller, source_account, source_id)?;
    if !end_share(tx, caller, kind, &mut source, now)? {
        return Err(OpError::not_found(format!(
            "{} sharing of asset {source_id}",
            match kind {
                Kind::Telemetry => "telemetry",
                Kind::Details => "details",
            }
        )));
    }
    Ok(source)
}

/// Ends `source`'s sharing of `kind` on its mirror, saves the source and audits the stop
/// in both accounts; false when there was none. The caller checked the right to.
pub(crate) fn end_share(
    tx: &WriteTransaction,
    caller: &Principal,
    kind: Kind,
    source: &mut Asset,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let target = match kind {
        Kind::Telemetry => source.sharing.telemetry.clone(),
        Kind::Details => source.sharing.details.clone().map(|(a, x, _)| (a, x)),
    };
    let Some((account, id)) = target else {
        return Ok(false);
    };
    end_on_mirror(tx, source, kind, now)?;
    match kind {
        Kind::Telemetry => source.sharing.telemetry = None,
        Kind::Details => source.sharing.details = None,
    }
    save_asset(tx, source)?;
    let action = match kind {
        Kind::Telemetry => "sharing.telemetry.stop",
        Kind::Details => "sharing.details.stop",
    };
    for affected in [&source.account_id, &account] {
        audit(
            tx,
            Who::Principal(caller),
            AuditNote {
                account_id: Some(affected),
                action,
                target: source.id.to_string(),
                before: Some(format!("{account}/{id}")),
                after: None,
            },
            now,
        )?;
    }
    Ok(true)
}
