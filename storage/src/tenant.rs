//! Tenant sharing (rule 5): an asset's telemetry and/or profile-selected details are
//! mirrored into another account under a target asset id. The principal needs admin
//! rights in the source's account, and in the target account or else a partnership
//! between the two (a service provider's or another country's organization, Perspio's
//! cases): that account's admin may then stop the share from the mirror's side, and the
//! share ends with the partnership. The target asset is created, or must already be a mirror of
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
use crate::ops::{audit, audit_by, AuditNote, Who};
use crate::policy::Need;
use crate::read::{require_in, require_on_account};
use crate::rule::Rule;
use crate::store::{decode_as, get, next_counter, put, rows_where};
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

/// A source asset's current targets, per kind, each its own mirror.
///
/// Lists since several targets per asset exist; each field was an `Option` before, and
/// stays readable: postcard writes an `Option` as a 0/1 tag and a sequence as its length,
/// so a stored `None` reads as no target and a `Some` as one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSharing {
    pub telemetry: Vec<(AccountId, AssetId)>,
    /// With the profile that selects what is copied.
    pub details: Vec<(AccountId, AssetId, String)>,
}

impl SourceSharing {
    /// The target accounts and assets of the sharing of `kind`.
    pub fn targets(&self, kind: Kind) -> Vec<(AccountId, AssetId)> {
        match kind {
            Kind::Telemetry => self.telemetry.clone(),
            Kind::Details => self
                .details
                .iter()
                .map(|(account, id, _)| (account.clone(), id.clone()))
                .collect(),
        }
    }

    /// Takes `target` off the sharing of `kind`; false if it was not a target.
    fn remove(&mut self, kind: Kind, (account, id): &(AccountId, AssetId)) -> bool {
        let before = self.telemetry.len() + self.details.len();
        match kind {
            Kind::Telemetry => self.telemetry.retain(|(a, x)| a != account || x != id),
            Kind::Details => self.details.retain(|(a, x, _)| a != account || x != id),
        }
        before != self.telemetry.len() + self.details.len()
    }
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
    require_on_account(tx, caller, account, Need::Administer)?;
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

pub(crate) fn load_profile(
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
    // Every details target this profile selects for, across the account's sources.
    let targets: Vec<(Asset, (AccountId, AssetId))> = {
        let assets = tx.open_table(ASSETS)?;
        let mut targets = Vec::new();
        for row in assets.range((profile.account_id.as_str(), "")..)? {
            let (key, value) = row?;
            if key.value().0 != profile.account_id.as_str() {
                break;
            }
            let asset: Asset = decode_as("assets", value.value())?;
            for (account, id, p) in &asset.sharing.details {
                if p == &profile.id {
                    targets.push((asset.clone(), (account.clone(), id.clone())));
                }
            }
        }
        targets
    };
    for (source, target) in &targets {
        copy_details(tx, source, target, &profile)?;
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
    require_on_account(rtx, caller, account, Need::Administer)?;
    let profiles = &rtx.open_table(PROFILES)?;
    Ok(rows_where(
        profiles,
        "profiles",
        |profile: &SharingProfile| &profile.account_id == account,
    )?)
}

/// Copies exactly the profile's fields of `source` into its details mirror.
fn copy_details(
    tx: &WriteTransaction,
    source: &Asset,
    (account, id): &(AccountId, AssetId),
    profile: &SharingProfile,
) -> Result<(), StoreError> {
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
    for (account, id, profile_id) in &source.sharing.details {
        if let Some(profile) =
            get::<SharingProfile>(&tx.open_table(PROFILES)?, "profiles", profile_id)?
        {
            copy_details(tx, source, &(account.clone(), id.clone()), &profile)?;
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
        return Err(crate::sharing::not_owned(tx, account, id, "share", what));
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
    if let Err(refusal) = require_on_account(tx, caller, target, Need::Administer) {
        // Not the target's admin: a partnership between the two accounts still lets the
        // source's admin share into it.
        if crate::sharing::partnership_between(tx, &source.account_id, target)?.is_none() {
            return Err(refusal);
        }
    }
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
    if crate::sharing::sees_shared(tx, target, target_id)? {
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
    /// `true` (a `PUT`): this target replaces the kind's others; `false` adds it to them.
    pub replace: bool,
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
        replace: _,
    } = request;
    let kind = *kind;
    let mut source = source_asset(tx, caller, source_account, source_id)?;
    // Rule 4: a share feeds another account for good, across organizations too; made
    // under support access it would outlive the access (and no customer asked for it).
    crate::policy::refuse_lasting_access(caller, "a tenant share")?;
    let profile = profile_for(tx, caller, kind, source_account, profile_id.as_deref())?;
    let wanted = (target.clone(), target_id.clone());
    if request.replace {
        // A `PUT`: this target becomes the only one; the others end first.
        for other in source.sharing.targets(kind) {
            if other != wanted {
                end_target(tx, caller, kind, &mut source, &other, now)?;
            }
        }
    }
    let mut mirror = mirror_for(tx, caller, &source, target, target_id, now)?;
    source.sharing.remove(kind, &wanted);
    match kind {
        Kind::Telemetry => {
            if let Some(link) = mirror.mirror.as_mut() {
                if !link.telemetry_live() {
                    link.windows.push((now, None));
                }
            }
            source.sharing.telemetry.push(wanted.clone());
        }
        Kind::Details => {
            let profile_id = profile.as_ref().map(|p| p.id.clone()).unwrap_or_default();
            let (account, id) = wanted.clone();
            source.sharing.details.push((account, id, profile_id));
        }
    }
    save_asset(tx, &source)?;
    save_asset(tx, &mirror)?;
    if let Some(profile) = &profile {
        copy_details(tx, &source, &wanted, profile)?;
        mirror = load_asset(tx, target, target_id)?.unwrap_or(mirror);
    }
    let action = match kind {
        Kind::Telemetry => "sharing.telemetry.start",
        Kind::Details => "sharing.details.start",
    };
    for account in [source_account, target] {
        let change = (None, Some(format!("{target}/{target_id}")));
        audit_by(
            tx,
            caller,
            (account, action),
            source_id.to_string(),
            change,
            now,
        )?;
    }
    Ok((source, mirror))
}

/// The profile a share uses: one of the source account's for details sharing (required
/// there), none for telemetry sharing (refused there).
fn profile_for(
    tx: &WriteTransaction,
    caller: &Principal,
    kind: Kind,
    source_account: &AccountId,
    profile_id: Option<&str>,
) -> Result<Option<SharingProfile>, OpError> {
    let profile = match (kind, profile_id) {
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
    Ok(profile)
}

/// Closes the mirror's side of one kind of sharing; the mirror and its data stay.
fn end_on_mirror(
    tx: &WriteTransaction,
    kind: Kind,
    (account, id): &(AccountId, AssetId),
    now: Timestamp,
) -> Result<(), StoreError> {
    if let Some(mut mirror) = load_asset(tx, account, id)? {
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

/// Stops one kind of sharing of a source asset: into `only` that target, else into every
/// target. Asked of a mirror (by its account's admin), it stops the sharing into that
/// mirror. Returns the source as it is now.
pub fn unshare(
    tx: &WriteTransaction,
    caller: &Principal,
    kind: Kind,
    source_account: &AccountId,
    source_id: &AssetId,
    only: Option<&(AccountId, AssetId)>,
    now: Timestamp,
) -> Result<Asset, OpError> {
    let missing = || {
        let kind = match kind {
            Kind::Telemetry => "telemetry",
            Kind::Details => "details",
        };
        OpError::not_found(format!("{kind} sharing of asset {source_id}"))
    };
    if let Some(mut source) = source_of_mirror(tx, caller, kind, source_account, source_id)? {
        let mirror = (source_account.clone(), source_id.clone());
        if only.is_some_and(|target| target != &mirror) {
            return Err(missing());
        }
        end_target(tx, caller, kind, &mut source, &mirror, now)?;
        return Ok(source);
    }
    let mut source = source_asset(tx, caller, source_account, source_id)?;
    let ended = match only {
        Some(target) => end_target(tx, caller, kind, &mut source, target, now)?,
        None => end_share(tx, caller, kind, &mut source, now)?,
    };
    if !ended {
        return Err(missing());
    }
    Ok(source)
}

/// For a stop asked from the mirror's side (`mirror_id` in `account` is a mirror whose
/// source shares `kind` into it, and the caller administers `account`): the source.
/// `None` when the asset is not such a mirror, so the source's own rules apply.
fn source_of_mirror(
    tx: &WriteTransaction,
    caller: &Principal,
    kind: Kind,
    account: &AccountId,
    mirror_id: &AssetId,
) -> Result<Option<Asset>, OpError> {
    let Some(link) = load_asset(tx, account, mirror_id)?.and_then(|asset| asset.mirror) else {
        return Ok(None);
    };
    let what = format!("asset {mirror_id}");
    require_in(
        &tx.open_table(ACCOUNTS)?,
        caller,
        account,
        Need::Administer,
        &what,
    )?;
    let mirror = (account.clone(), mirror_id.clone());
    match load_asset(tx, &link.source_account, &link.source_asset)? {
        Some(source) if source.sharing.targets(kind).contains(&mirror) => Ok(Some(source)),
        _ => Err(OpError::not_found(format!(
            "{} sharing into asset {mirror_id}",
            match kind {
                Kind::Telemetry => "telemetry",
                Kind::Details => "details",
            }
        ))),
    }
}

/// Ends the shares between accounts `a` and `b` (either way) whose target is not below
/// their source's account: those a partnership allowed, when it ends. Answers the sources.
pub(crate) fn end_shares_across(
    tx: &WriteTransaction,
    caller: &Principal,
    a: &AccountId,
    b: &AccountId,
    now: Timestamp,
) -> Result<Vec<Asset>, StoreError> {
    let across = |source: &AccountId, target: &AccountId| {
        (source == a && target == b) || (source == b && target == a)
    };
    let mut sources = Vec::new();
    for row in tx.open_table(ASSETS)?.iter()? {
        let asset: Asset = decode_as("assets", row?.1.value())?;
        let shared_across = [Kind::Telemetry, Kind::Details]
            .into_iter()
            .flat_map(|kind| asset.sharing.targets(kind))
            .any(|(target, _)| across(&asset.account_id, &target));
        if shared_across {
            sources.push(asset);
        }
    }
    for source in &mut sources {
        for kind in [Kind::Telemetry, Kind::Details] {
            for target in source.sharing.targets(kind) {
                let chain = crate::read::chain(&tx.open_table(ACCOUNTS)?, &target.0)?;
                let below_owner = chain
                    .unwrap_or_default()
                    .iter()
                    .skip(1)
                    .any(|up| up == &source.account_id);
                if across(&source.account_id, &target.0) && !below_owner {
                    end_target(tx, caller, kind, source, &target, now)?;
                }
            }
        }
    }
    Ok(sources)
}

/// Ends `source`'s sharing of `kind` into every target; false when there was none. The
/// caller checked the right to.
pub(crate) fn end_share(
    tx: &WriteTransaction,
    caller: &Principal,
    kind: Kind,
    source: &mut Asset,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let targets = source.sharing.targets(kind);
    for target in &targets {
        end_target(tx, caller, kind, source, target, now)?;
    }
    Ok(!targets.is_empty())
}

/// Ends `source`'s sharing of `kind` into `target` on its mirror, saves the source and
/// audits the stop in both accounts; false when it was not a target. The caller checked
/// the right to.
fn end_target(
    tx: &WriteTransaction,
    caller: &Principal,
    kind: Kind,
    source: &mut Asset,
    target: &(AccountId, AssetId),
    now: Timestamp,
) -> Result<bool, StoreError> {
    if !source.sharing.remove(kind, target) {
        return Ok(false);
    }
    end_on_mirror(tx, kind, target, now)?;
    save_asset(tx, source)?;
    let action = match kind {
        Kind::Telemetry => "sharing.telemetry.stop",
        Kind::Details => "sharing.details.stop",
    };
    let (account, id) = target;
    for affected in [&source.account_id, account] {
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

#[cfg(test)]
mod wire {
    use super::*;

    /// The shape [`SourceSharing`] had when an asset had one target per kind.
    #[derive(Serialize)]
    struct SingleTarget {
        telemetry: Option<(AccountId, AssetId)>,
        details: Option<(AccountId, AssetId, String)>,
    }

    #[test]
    fn a_stored_single_target_reads_as_a_list_of_one() {
        let account = AccountId::parse("acc0123456789abcdef").expect("id");
        let asset = AssetId::parse("m1").expect("id");
        let old = SingleTarget {
            telemetry: Some((account.clone(), asset.clone())),
            details: None,
        };
        let read: SourceSharing = codec::decode(&codec::encode(&old)).expect("decodes");
        assert_eq!(read.telemetry, vec![(account, asset)]);
        assert!(read.details.is_empty());
    }
}
