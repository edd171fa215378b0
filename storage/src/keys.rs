//! Access keys (rule 6): who may use which assets, with one access type, between
//! `valid_from` and `valid_to`; and the per-unit key set the gateway distributes.
//!
//! Every key change bumps the key-set version of each affected unit in the same
//! transaction, so versions only rise, survive restarts, and a unit's acknowledgement of a
//! version says exactly which set it holds.

use std::collections::BTreeSet;

use rand::Rng;
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{OpError, StoreError};
use crate::ids::{AccountId, AssetId, DeviceId};
use crate::model::{Asset, Capabilities, Device, Principal};
use crate::ops::audit_by;
use crate::policy::Need;
use crate::read::{require_in, require_on_account};
use crate::rule::Rule;
use crate::sharing::check_bulk;
use crate::store::{decode_as, get, rows_where};
use crate::tables::*;
use crate::time::Timestamp;

pub const MAX_DESCRIPTION: usize = 500;
pub const MAX_CREDENTIAL: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AccessType {
    DigitalKey,
    KeypadPin,
    DualidTag,
}

impl AccessType {
    pub const NAMES: &'static str = "digital_key, keypad_pin, dualid_tag";

    pub fn parse(raw: &str) -> Option<AccessType> {
        match raw {
            "digital_key" => Some(AccessType::DigitalKey),
            "keypad_pin" => Some(AccessType::KeypadPin),
            "dualid_tag" => Some(AccessType::DualidTag),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessType::DigitalKey => "digital_key",
            AccessType::KeypadPin => "keypad_pin",
            AccessType::DualidTag => "dualid_tag",
        }
    }

    /// Rule 6: the hardware each access type needs on the unit.
    pub fn supported_by(self, caps: &Capabilities) -> bool {
        match self {
            AccessType::DigitalKey => caps.bluetooth_relay,
            AccessType::KeypadPin => caps.keypad,
            AccessType::DualidTag => caps.dualid,
        }
    }

    fn hardware(self) -> &'static str {
        match self {
            AccessType::DigitalKey => "a Bluetooth unit with relay",
            AccessType::KeypadPin => "a keypad",
            AccessType::DualidTag => "a DualID reader",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub id: String,
    pub account_id: AccountId,
    pub personal: bool,
    pub operator_id: Option<String>,
    /// The assets and their internal keys.
    pub assets: Vec<(AssetId, u64)>,
    pub access_type: AccessType,
    pub credential: String,
    pub valid_from: Timestamp,
    pub valid_to: Timestamp,
    pub description: Option<String>,
    pub created_at: Timestamp,
    /// Whom the key is for (`crate::customers`). Not in the encoded record: kept in
    /// `KEY_CUSTOMERS` and filled in when a key is loaded for the API.
    #[serde(skip)]
    pub customer_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewKey {
    pub personal: bool,
    pub operator_id: Option<String>,
    pub asset_ids: Vec<AssetId>,
    pub access_type: AccessType,
    pub valid_from: Timestamp,
    pub valid_to: Timestamp,
    pub credential: Option<String>,
    pub description: Option<String>,
    pub customer_id: Option<String>,
}

/// A unit whose key set changed, with its new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub device: DeviceId,
    pub version: u64,
}

/// One entry of a unit's key set, as the unit receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    pub id: String,
    pub access_type: AccessType,
    pub credential: String,
    pub valid_from: Timestamp,
    pub valid_to: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeySet {
    pub version: u64,
    pub keys: Vec<KeyEntry>,
}

fn description(raw: Option<String>) -> Result<Option<String>, OpError> {
    match raw {
        Some(text) if text.chars().count() > MAX_DESCRIPTION => Err(OpError::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        )),
        other => Ok(other),
    }
}

/// An asset of `account` that may be keyed; shared and mirrored assets never may.
fn keyable_asset(
    tx: &WriteTransaction,
    account: &AccountId,
    id: &AssetId,
) -> Result<(Asset, Device), OpError> {
    let assets = tx.open_table(ASSETS)?;
    let found = assets.get((account.as_str(), id.as_str()))?;
    let Some(bytes) = found else {
        let what = format!("asset {id}");
        return Err(crate::sharing::not_owned(tx, account, id, "key", what));
    };
    let asset: Asset = decode_as("assets", bytes.value())?;
    if asset.mirror.is_some() {
        return Err(OpError::Forbidden(Rule::MirrorReadOnly {
            asset_id: id.clone(),
            action: "key",
        }));
    }
    let device = asset
        .device_id
        .as_ref()
        .map(|device| get::<Device>(&tx.open_table(DEVICES)?, "devices", device.as_str()))
        .transpose()?
        .flatten()
        .filter(|device| device.deregistered_at.is_none())
        .ok_or_else(|| {
            OpError::invalid(
                "asset_ids",
                format!("asset {id} has no unit to enforce keys"),
            )
        })?;
    Ok((asset, device))
}

/// Gives each unit a new key-set version; also used when a unit's set empties for
/// another reason (deregistration).
pub fn bump(
    tx: &WriteTransaction,
    devices: impl IntoIterator<Item = DeviceId>,
) -> Result<Vec<Changed>, StoreError> {
    let mut versions = tx.open_table(KEY_VERSIONS)?;
    let unique: BTreeSet<DeviceId> = devices.into_iter().collect();
    let mut out = Vec::new();
    for device in unique {
        let version = versions
            .get(device.as_str())?
            .map(|v| v.value())
            .unwrap_or(0)
            + 1;
        versions.insert(device.as_str(), version)?;
        out.push(Changed { device, version });
    }
    Ok(out)
}

fn devices_of(tx: &WriteTransaction, key: &Key) -> Result<Vec<DeviceId>, StoreError> {
    let assets = tx.open_table(ASSETS)?;
    let mut out = Vec::new();
    for (asset_id, _) in &key.assets {
        let found = assets.get((key.account_id.as_str(), asset_id.as_str()))?;
        if let Some(bytes) = found {
            let asset: Asset = decode_as("assets", bytes.value())?;
            out.extend(asset.device_id);
        }
    }
    Ok(out)
}

/// A PIN of six digits that no other keypad key of these assets uses.
fn fresh_pin(tx: &WriteTransaction, asset_keys: &[u64]) -> Result<String, OpError> {
    // A key spanning many assets is listed under each: read each key once.
    let mut ids = BTreeSet::new();
    let index = tx.open_table(KEYS_BY_ASSET)?;
    for asset_key in asset_keys {
        for row in index.range((*asset_key, "")..(*asset_key + 1, ""))? {
            ids.insert(row?.0.value().1.to_owned());
        }
    }
    let keys = tx.open_table(KEYS)?;
    let mut taken = BTreeSet::new();
    for id in &ids {
        if let Some(key) = get::<Key>(&keys, "keys", id)? {
            if key.access_type == AccessType::KeypadPin {
                taken.insert(key.credential);
            }
        }
    }
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let pin = format!("{:06}", rng.random_range(0..1_000_000u32));
        if !taken.contains(&pin) {
            return Ok(pin);
        }
    }
    Err(OpError::Conflict(
        "no free keypad PIN left for these assets".into(),
    ))
}

fn write_rows(tx: &WriteTransaction, key: &Key) -> Result<(), StoreError> {
    tx.open_table(KEYS)?
        .insert(key.id.as_str(), codec::encode(key).as_slice())?;
    let mut by_asset = tx.open_table(KEYS_BY_ASSET)?;
    for (_, asset_key) in &key.assets {
        by_asset.insert((*asset_key, key.id.as_str()), ())?;
    }
    if let Some(operator) = &key.operator_id {
        tx.open_table(KEYS_BY_OPERATOR)?
            .insert((operator.as_str(), key.id.as_str()), ())?;
    }
    tx.open_table(KEY_DEADLINES)?
        .insert((key.valid_to.0, key.id.as_str()), ())?;
    crate::customers::link(tx, &key.id, key.customer_id.as_deref())
}

fn delete_rows(tx: &WriteTransaction, key: &Key) -> Result<(), StoreError> {
    tx.open_table(KEYS)?.remove(key.id.as_str())?;
    let mut by_asset = tx.open_table(KEYS_BY_ASSET)?;
    for (_, asset_key) in &key.assets {
        by_asset.remove((*asset_key, key.id.as_str()))?;
    }
    if let Some(operator) = &key.operator_id {
        tx.open_table(KEYS_BY_OPERATOR)?
            .remove((operator.as_str(), key.id.as_str()))?;
    }
    tx.open_table(KEY_DEADLINES)?
        .remove((key.valid_to.0, key.id.as_str()))?;
    crate::customers::link(tx, &key.id, None)
}

fn audit_key(
    tx: &WriteTransaction,
    caller: &Principal,
    key: &Key,
    action: &str,
    before: Option<String>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let after = (action != "key.delete").then(|| key_state(key));
    let target = key.id.clone();
    audit_by(
        tx,
        caller,
        (&key.account_id, action),
        target,
        (before, after),
        now,
    )
}

/// A key as the audit log shows it before and after a change, in words an admin reads:
/// `keypad_pin on ex1,ex2 [from, to), description "Gate", customer cus1`.
fn key_state(key: &Key) -> String {
    let assets: Vec<&str> = key.assets.iter().map(|(id, _)| id.as_str()).collect();
    let description = match &key.description {
        Some(text) => format!("description \"{text}\""),
        None => "no description".to_owned(),
    };
    let customer = match &key.customer_id {
        Some(id) => format!("customer {id}"),
        None => "no customer".to_owned(),
    };
    format!(
        "{} on {} [{}, {}), {description}, {customer}",
        key.access_type.as_str(),
        assets.join(","),
        key.valid_from,
        key.valid_to
    )
}

pub fn create(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    new: NewKey,
    now: Timestamp,
) -> Result<(Key, Vec<Changed>), OpError> {
    require_on_account(tx, caller, account, Need::ManageFleet)?;
    // Rule 4: the caller sees the PIN or secret (or names the tag): made under support
    // access, the key would open the machine after the access ends.
    crate::policy::refuse_lasting_access(caller, "a key")?;
    check_bulk("asset_ids", &new.asset_ids)?;
    check_operator(tx, account, new.personal, new.operator_id.as_ref())?;
    if let Some(customer) = &new.customer_id {
        crate::customers::check_for_key(tx, account, customer)?;
    }
    if new.valid_to <= new.valid_from {
        return Err(OpError::invalid("valid_to", "must be after valid_from"));
    }
    if new.valid_to <= now {
        return Err(OpError::invalid("valid_to", "must be in the future"));
    }
    let (assets, devices) = keyable_assets(tx, account, &new.asset_ids, new.access_type)?;
    let credential = credential_for(tx, new.access_type, new.credential, &assets)?;
    let key = Key {
        id: crate::ids::generate("key"),
        account_id: account.clone(),
        personal: new.personal,
        operator_id: new.operator_id,
        assets,
        access_type: new.access_type,
        credential,
        valid_from: new.valid_from,
        valid_to: new.valid_to,
        description: description(new.description)?,
        created_at: now,
        customer_id: new.customer_id,
    };
    write_rows(tx, &key)?;
    let changed = bump(tx, devices)?;
    audit_key(tx, caller, &key, "key.create", None, now)?;
    Ok((key, changed))
}

/// A key's assets as (asset id, telemetry key), as [`Key::assets`] holds them.
type KeyedAssets = Vec<(AssetId, u64)>;

/// A personal key names an operator of `account`; a non-personal key names none.
fn check_operator(
    tx: &WriteTransaction,
    account: &AccountId,
    personal: bool,
    operator: Option<&String>,
) -> Result<(), OpError> {
    match (personal, operator) {
        (true, None) => {
            return Err(OpError::invalid(
                "operator_id",
                "is required for a personal key",
            ))
        }
        (false, Some(_)) => {
            return Err(OpError::invalid(
                "operator_id",
                "a non-personal key has no operator",
            ))
        }
        (true, Some(operator)) => {
            let belongs = get::<crate::operators::Operator>(
                &tx.open_table(OPERATORS)?,
                "operators",
                operator,
            )?
            .is_some_and(|found| &found.account_id == account);
            if !belongs {
                return Err(OpError::not_found(format!("operator {operator}")));
            }
        }
        (false, None) => {}
    }
    Ok(())
}

/// The assets a key opens, as (id, telemetry key), and the units to push it to: each asset
/// of `account` must carry a unit whose hardware supports `access_type`.
fn keyable_assets(
    tx: &WriteTransaction,
    account: &AccountId,
    asset_ids: &[AssetId],
    access_type: AccessType,
) -> Result<(KeyedAssets, Vec<DeviceId>), OpError> {
    let mut assets = Vec::with_capacity(asset_ids.len());
    let mut devices = Vec::new();
    for id in asset_ids {
        let (asset, device) = keyable_asset(tx, account, id)?;
        if !access_type.supported_by(&device.capabilities) {
            return Err(OpError::invalid(
                "access_type",
                format!(
                    "asset {id}: {} needs {} on the unit",
                    access_type.as_str(),
                    access_type.hardware()
                ),
            ));
        }
        assets.push((asset.id, asset.key));
        devices.push(device.id);
    }
    Ok((assets, devices))
}

/// The key's credential: a DualID tag as given (1 to 64 ASCII letters and digits), a
/// fresh PIN unique on the assets' units, or a random digital-key secret; a PIN or secret
/// given by the caller is refused.
fn credential_for(
    tx: &WriteTransaction,
    access_type: AccessType,
    given: Option<String>,
    assets: &[(AssetId, u64)],
) -> Result<String, OpError> {
    let credential = match (access_type, given) {
        (AccessType::DualidTag, Some(tag)) => {
            if tag.is_empty()
                || tag.len() > MAX_CREDENTIAL
                || !tag.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(OpError::invalid(
                    "credential",
                    "a DualID tag id is 1 to 64 ASCII letters and digits",
                ));
            }
            tag
        }
        (AccessType::DualidTag, None) => {
            return Err(OpError::invalid(
                "credential",
                "a DualID key needs the tag id",
            ))
        }
        (_, Some(_)) => {
            return Err(OpError::invalid(
                "credential",
                "PINs and digital-key secrets are generated by the gateway",
            ))
        }
        (AccessType::KeypadPin, None) => {
            fresh_pin(tx, &assets.iter().map(|(_, k)| *k).collect::<Vec<_>>())?
        }
        (AccessType::DigitalKey, None) => {
            let secret: [u8; 16] = rand::rng().random();
            hex::encode(secret)
        }
    };
    Ok(credential)
}

fn load(tx: &WriteTransaction, caller: &Principal, id: &str) -> Result<Key, OpError> {
    let what = format!("key {id}");
    let mut key: Key =
        get(&tx.open_table(KEYS)?, "keys", id)?.ok_or_else(|| OpError::not_found(&what))?;
    key.customer_id = crate::customers::of_key(&tx.open_table(KEY_CUSTOMERS)?, id)?;
    require_in(
        &tx.open_table(ACCOUNTS)?,
        caller,
        &key.account_id,
        Need::ManageFleet,
        &what,
    )?;
    Ok(key)
}

/// After creation only `valid_to`, the description and the customer change (rule 6).
#[derive(Debug, Clone, Default)]
pub struct KeyEdit {
    pub valid_to: Option<Timestamp>,
    pub description: Option<String>,
    /// `Some(None)` takes the customer away.
    pub customer: Option<Option<String>>,
}

fn edit_one(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &str,
    edit: &KeyEdit,
    now: Timestamp,
) -> Result<(Key, Vec<DeviceId>), OpError> {
    let old = load(tx, caller, id)?;
    let mut key = old.clone();
    if let Some(valid_to) = edit.valid_to {
        if valid_to <= key.valid_from {
            return Err(OpError::invalid(
                "valid_to",
                format!("key {id}: must be after valid_from"),
            ));
        }
        if valid_to <= now {
            return Err(OpError::invalid(
                "valid_to",
                format!("key {id}: must be in the future"),
            ));
        }
        if valid_to > key.valid_to {
            // Rule 4: a key lasting longer under support access is lasting access.
            crate::policy::refuse_lasting_access(caller, "a longer key")?;
        }
        key.valid_to = valid_to;
    }
    if edit.description.is_some() {
        key.description = description(edit.description.clone())?;
    }
    if let Some(customer) = &edit.customer {
        if let Some(customer) = customer {
            crate::customers::check_for_key(tx, &key.account_id, customer)?;
        }
        key.customer_id = customer.clone();
    }
    delete_rows(tx, &old)?;
    write_rows(tx, &key)?;
    audit_key(tx, caller, &key, "key.update", Some(key_state(&old)), now)?;
    let devices = if old.valid_to != key.valid_to {
        devices_of(tx, &key)?
    } else {
        Vec::new()
    };
    Ok((key, devices))
}

/// Edits every key in `ids`; all-or-nothing.
pub fn edit(
    tx: &WriteTransaction,
    caller: &Principal,
    ids: &[String],
    edit: &KeyEdit,
    now: Timestamp,
) -> Result<(Vec<Key>, Vec<Changed>), OpError> {
    check_bulk("ids", ids)?;
    if edit.valid_to.is_none() && edit.description.is_none() && edit.customer.is_none() {
        return Err(OpError::invalid(
            "valid_to",
            "name valid_to, description or customer_id: nothing else of a key changes",
        ));
    }
    let mut keys = Vec::new();
    let mut devices = Vec::new();
    for id in ids {
        let (key, touched) = edit_one(tx, caller, id, edit, now)?;
        keys.push(key);
        devices.extend(touched);
    }
    Ok((keys, bump(tx, devices)?))
}

/// Takes the asset with internal key `asset_key` out of every key that opens it (its
/// deletion): a key of that asset alone is deleted (`key.delete`), a key of more assets
/// keeps the others (`key.update`). Answers the units whose sets change (the asset's own
/// unit is the caller's to bump). The caller checked the right to.
pub(crate) fn drop_asset(
    tx: &WriteTransaction,
    caller: &Principal,
    asset_key: u64,
    now: Timestamp,
) -> Result<Vec<DeviceId>, OpError> {
    let mut ids = BTreeSet::new();
    for row in tx
        .open_table(KEYS_BY_ASSET)?
        .range((asset_key, "")..(asset_key + 1, ""))?
    {
        ids.insert(row?.0.value().1.to_owned());
    }
    let mut devices = Vec::new();
    for id in ids {
        let old = load(tx, caller, &id)?;
        delete_rows(tx, &old)?;
        let mut key = old.clone();
        key.assets
            .retain(|(_, key_of_asset)| *key_of_asset != asset_key);
        if key.assets.is_empty() {
            audit_key(tx, caller, &old, "key.delete", Some(old.id.clone()), now)?;
            continue;
        }
        write_rows(tx, &key)?;
        devices.extend(devices_of(tx, &key)?);
        audit_key(tx, caller, &key, "key.update", Some(key_state(&old)), now)?;
    }
    Ok(devices)
}

/// Deletes every key in `ids`; all-or-nothing.
pub fn delete(
    tx: &WriteTransaction,
    caller: &Principal,
    ids: &[String],
    now: Timestamp,
) -> Result<(Vec<Key>, Vec<Changed>), OpError> {
    check_bulk("ids", ids)?;
    let mut keys = Vec::new();
    let mut devices = Vec::new();
    for id in ids {
        let key = load(tx, caller, id)?;
        devices.extend(devices_of(tx, &key)?);
        delete_rows(tx, &key)?;
        audit_key(tx, caller, &key, "key.delete", Some(key.id.clone()), now)?;
        keys.push(key);
    }
    Ok((keys, bump(tx, devices)?))
}

/// Keys that ended at or before `now` leave their units' sets: the key rows stay (the
/// API still lists them as expired) but the units get a new version without them.
pub fn apply_due(tx: &WriteTransaction, now: Timestamp) -> Result<Vec<Changed>, StoreError> {
    let due = crate::store::due_deadlines(tx, KEY_DEADLINES, now)?;
    let mut devices = Vec::new();
    for (at, id) in due {
        tx.open_table(KEY_DEADLINES)?.remove((at, id.as_str()))?;
        if let Some(key) = get::<Key>(&tx.open_table(KEYS)?, "keys", &id)? {
            devices.extend(devices_of(tx, &key)?);
        }
    }
    bump(tx, devices)
}

pub fn next_deadline(rtx: &ReadTransaction) -> Result<Option<Timestamp>, StoreError> {
    crate::store::first_deadline(rtx, KEY_DEADLINES)
}

/// The set a unit must hold now: every key of its asset valid now or later.
pub fn key_set(
    rtx: &ReadTransaction,
    device: &Device,
    now: Timestamp,
) -> Result<KeySet, StoreError> {
    key_set_cached(rtx, device, now, &mut std::collections::HashMap::new())
}

/// [`key_set`] for many units at once: a key spanning many assets (and so many units)
/// is read and decoded once, not once per unit.
pub fn key_set_cached(
    rtx: &ReadTransaction,
    device: &Device,
    now: Timestamp,
    cache: &mut std::collections::HashMap<String, Option<KeyEntry>>,
) -> Result<KeySet, StoreError> {
    let version = rtx
        .open_table(KEY_VERSIONS)?
        .get(device.id.as_str())?
        .map(|v| v.value())
        .unwrap_or(0);
    let mut keys = Vec::new();
    if let (Some(bound), None) = (&device.bound_asset, device.deregistered_at) {
        let index = rtx.open_table(KEYS_BY_ASSET)?;
        let table = rtx.open_table(KEYS)?;
        for row in index.range((bound.asset_key, "")..(bound.asset_key + 1, ""))? {
            let (entry, _) = row?;
            let id = entry.value().1;
            let cached = match cache.get(id) {
                Some(cached) => cached.clone(),
                None => {
                    let decoded = get::<Key>(&table, "keys", id)?.map(|key| KeyEntry {
                        id: key.id,
                        access_type: key.access_type,
                        credential: key.credential,
                        valid_from: key.valid_from,
                        valid_to: key.valid_to,
                    });
                    cache.insert(id.to_owned(), decoded.clone());
                    decoded
                }
            };
            if let Some(key) = cached.filter(|key| key.valid_to > now) {
                keys.push(key);
            }
        }
    }
    Ok(KeySet { version, keys })
}

/// The account's keys, optionally of one asset. They carry credentials (PINs, digital-key
/// secrets), so only those who manage keys read them: admins and fleet admins (DESIGN 5.1).
pub fn list(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: &AccountId,
    filter: &KeyFilter,
    now: Timestamp,
) -> Result<Vec<Key>, OpError> {
    require_on_account(rtx, caller, account, Need::ReadAccessData)?;
    let own = rows_where(&rtx.open_table(KEYS)?, "keys", |key: &Key| {
        &key.account_id == account
    })?;
    let customers = rtx.open_table(KEY_CUSTOMERS)?;
    let mut out = Vec::with_capacity(own.len());
    for mut key in own {
        key.customer_id = crate::customers::of_key(&customers, &key.id)?;
        if filter.keeps(&key, now) {
            out.push(key);
        }
    }
    Ok(out)
}

/// Where a key's date window stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// `now < valid_from`: sent to the units, not yet usable.
    Future,
    /// `valid_from <= now < valid_to`.
    Active,
    /// `valid_to <= now`: gone from the units.
    Expired,
}

impl KeyState {
    pub fn of(key: &Key, now: Timestamp) -> KeyState {
        match () {
            _ if now < key.valid_from => KeyState::Future,
            _ if now < key.valid_to => KeyState::Active,
            _ => KeyState::Expired,
        }
    }

    /// `future`, `active` or `expired`.
    pub fn parse(raw: &str) -> Option<KeyState> {
        match raw {
            "future" => Some(KeyState::Future),
            "active" => Some(KeyState::Active),
            "expired" => Some(KeyState::Expired),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Future => "future",
            KeyState::Active => "active",
            KeyState::Expired => "expired",
        }
    }
}

/// Which keys a list shows: every criterion given must hold.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    /// Keys that open this asset.
    pub asset: Option<AssetId>,
    /// Keys assigned to this operator.
    pub operator: Option<String>,
    /// Keys for this customer.
    pub customer: Option<String>,
    pub state: Option<KeyState>,
}

impl KeyFilter {
    pub fn keeps(&self, key: &Key, now: Timestamp) -> bool {
        self.asset
            .as_ref()
            .is_none_or(|wanted| key.assets.iter().any(|(id, _)| id == wanted))
            && self
                .operator
                .as_ref()
                .is_none_or(|wanted| key.operator_id.as_ref() == Some(wanted))
            && self
                .customer
                .as_ref()
                .is_none_or(|wanted| key.customer_id.as_ref() == Some(wanted))
            && self
                .state
                .is_none_or(|wanted| KeyState::of(key, now) == wanted)
    }
}
