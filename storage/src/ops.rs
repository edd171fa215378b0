//! Every mutation of the control plane and the telemetry writes, each a function over one
//! redb write transaction. A function checks every rule before it writes anything, and the
//! caller commits or drops the transaction as a whole, so a refusal never leaves a
//! half-written change. Each control-plane mutation appends its audit entry in the same
//! transaction.

use redb::{ReadableTable, WriteTransaction};

use crate::codec;
use crate::error::{OpError, StoreError};
use crate::ids::{AccountId, AssetId, DeviceId, PrincipalId};
use crate::model::*;
use crate::policy::{self, Need};
use crate::read::{chain, require_in, require_on_account};
use crate::rule::Rule;
use crate::store::{decode_as, get, next_counter, put};
use crate::tables::*;
use crate::telemetry::Point;
use crate::time::Timestamp;
use crate::token;

/// Longest free-text name we keep (account, user, asset names).
pub const MAX_NAME: usize = 200;

/// A required, trimmed, bounded free-text field.
pub fn name_field(field: &str, raw: &str) -> Result<String, OpError> {
    crate::text::checked(raw, MAX_NAME).map_err(|rule| OpError::invalid(field, rule))
}

/// What one audit line says, before it gets its sequence number and time.
#[derive(Debug, Clone)]
pub struct AuditNote<'a> {
    pub account_id: Option<&'a AccountId>,
    pub action: &'a str,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Who made a change, for the audit log.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    Principal(&'a Principal),
    /// The scheduler applying a deadline.
    Scheduler,
    /// Someone with the data dir, offline (`fleetgate admin ...`).
    HostOperator,
}

impl Who<'_> {
    /// The id an audit entry or an ended access names as the actor.
    pub fn actor_id(&self) -> PrincipalId {
        match self {
            Who::Principal(principal) => principal.id.clone(),
            Who::Scheduler => crate::sharing::scheduler_id(),
            Who::HostOperator => PrincipalId::parse("hostoperator").expect("a valid id"),
        }
    }
}

/// Audits `caller`'s `action` on `target` in `account`, from `before` to `after`: the line
/// most changes write ([`audit`] with [`Who::Principal`]).
///
/// # Errors
/// [`StoreError`] when the audit table cannot be written.
pub fn audit_by(
    tx: &WriteTransaction,
    caller: &Principal,
    (account, action): (&AccountId, &str),
    target: String,
    (before, after): (Option<String>, Option<String>),
    now: Timestamp,
) -> Result<(), StoreError> {
    let note = AuditNote {
        account_id: Some(account),
        action,
        target,
        before,
        after,
    };
    audit(tx, Who::Principal(caller), note, now)
}

pub fn audit(
    tx: &WriteTransaction,
    who: Who<'_>,
    note: AuditNote<'_>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (actor, via) = match who {
        Who::Principal(principal) => {
            // A staff member acting through support access: name the access in the entry.
            let via = match note.account_id {
                Some(account) if !principal.support.is_empty() => {
                    let chain = chain(&tx.open_table(ACCOUNTS)?, account)?.unwrap_or_default();
                    crate::policy::support_via(principal, &chain).map(str::to_owned)
                }
                _ => None,
            };
            (principal.id.clone(), via)
        }
        Who::Scheduler => (who.actor_id(), None),
        Who::HostOperator => (
            who.actor_id(),
            Some("offline, with the data dir".to_owned()),
        ),
    };
    let seq = next_counter(tx, "audit_seq")?;
    let entry = AuditEntry {
        seq,
        at: now,
        actor,
        via,
        account_id: note.account_id.cloned(),
        action: note.action.to_owned(),
        target: note.target,
        before: note.before,
        after: note.after,
    };
    tx.open_table(AUDIT)?
        .insert(seq, codec::encode(&entry).as_slice())?;
    Ok(())
}

pub fn create_account(
    tx: &WriteTransaction,
    caller: &Principal,
    name: &str,
    parent_id: Option<AccountId>,
    now: Timestamp,
) -> Result<Account, OpError> {
    let name = name_field("name", name)?;
    let mut accounts = tx.open_table(ACCOUNTS)?;
    match &parent_id {
        None => policy::require_platform_admin(
            caller,
            Rule::PlatformAdminOnly {
                action: "create an organization root account",
            },
        )?,
        Some(parent) if caller.is_staff(StaffRole::PlatformAdmin) => {
            chain(&accounts, parent)?
                .ok_or_else(|| OpError::not_found(format!("account {parent}")))?;
        }
        Some(parent) => require_in(
            &accounts,
            caller,
            parent,
            Need::Administer,
            &format!("account {parent}"),
        )?,
    }
    let account = Account {
        id: AccountId::generate("acc"),
        name,
        parent_id,
        created_at: now,
    };
    put(&mut accounts, account.id.as_str(), &account)?;
    drop(accounts);
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: Some(&account.id),
            action: "account.create",
            target: account.id.to_string(),
            before: None,
            after: Some(account.id.to_string()),
        },
        now,
    )?;
    // The parent's admins see who made an account under theirs (staff under support
    // access too): its own log is the new account's, which they may never open.
    if let Some(parent) = &account.parent_id {
        let named = Some(format!("sub-account \"{}\" ({})", account.name, account.id));
        audit_by(
            tx,
            caller,
            (parent, "account.create"),
            account.id.to_string(),
            (None, named),
            now,
        )?;
    }
    Ok(account)
}

fn insert_principal(tx: &WriteTransaction, principal: &Principal) -> Result<String, StoreError> {
    put(
        &mut tx.open_table(PRINCIPALS)?,
        principal.id.as_str(),
        principal,
    )?;
    let bearer = token::generate();
    tx.open_table(TOKENS)?
        .insert(token::hash(&bearer).as_slice(), principal.id.as_str())?;
    Ok(bearer)
}

/// Creates a user and returns it with its token (shown once, stored hashed).
pub fn create_user(
    tx: &WriteTransaction,
    caller: &Principal,
    account_id: &AccountId,
    name: &str,
    role: Role,
    now: Timestamp,
) -> Result<(Principal, String), OpError> {
    let name = name_field("name", name)?;
    {
        let accounts = tx.open_table(ACCOUNTS)?;
        let what = format!("account {account_id}");
        if caller.is_staff(StaffRole::PlatformAdmin) {
            chain(&accounts, account_id)?.ok_or_else(|| OpError::not_found(&what))?;
        } else {
            require_in(&accounts, caller, account_id, Need::Administer, &what)?;
            crate::policy::refuse_lasting_access(caller, "a user")?;
        }
    }
    let user = Principal {
        id: PrincipalId::generate("usr"),
        name,
        kind: PrincipalKind::User {
            account_id: account_id.clone(),
            role,
        },
        created_at: now,
        support: Vec::new(),
    };
    let bearer = insert_principal(tx, &user)?;
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: Some(account_id),
            action: "user.create",
            target: user.id.to_string(),
            before: None,
            after: Some(format!("{} ({})", user.id, role.as_str())),
        },
        now,
    )?;
    Ok((user, bearer))
}

pub fn create_staff(
    tx: &WriteTransaction,
    caller: &Principal,
    name: &str,
    role: StaffRole,
    now: Timestamp,
) -> Result<(Principal, String), OpError> {
    policy::require_platform_admin(
        caller,
        Rule::PlatformAdminOnly {
            action: "create staff",
        },
    )?;
    let name = name_field("name", name)?;
    let staff = Principal {
        id: PrincipalId::generate("stf"),
        name,
        kind: PrincipalKind::Staff { role },
        created_at: now,
        support: Vec::new(),
    };
    let bearer = insert_principal(tx, &staff)?;
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: None,
            action: "staff.create",
            target: staff.id.to_string(),
            before: None,
            after: Some(format!("{} ({})", staff.id, role.as_str())),
        },
        now,
    )?;
    Ok((staff, bearer))
}

pub fn register_device(
    tx: &WriteTransaction,
    caller: &Principal,
    account_id: &AccountId,
    id: DeviceId,
    capabilities: Capabilities,
    now: Timestamp,
) -> Result<Device, OpError> {
    require_on_account(tx, caller, account_id, Need::ManageFleet)?;
    // Rule 4: registration hands out the unit's certificate and key, which would let staff
    // speak as the unit after their support access ends.
    crate::policy::refuse_lasting_access(caller, "a unit certificate")?;
    if is_account_shaped(id.as_str()) {
        return Err(OpError::invalid(
            "id",
            "ids of the form acc + 16 hex digits are reserved for accounts (their MQTT tenant)",
        ));
    }
    let mut devices = tx.open_table(DEVICES)?;
    // Device ids are one global namespace (they are MQTT tenants), so a taken id is a
    // conflict whoever holds it.
    if let Some(existing) = get::<Device>(&devices, "devices", id.as_str())? {
        return Err(OpError::Conflict(match existing.deregistered_at {
            Some(_) => format!(
                "device id {id} was deregistered and cannot be reused: a certificate issued for it may still be valid"
            ),
            None => format!("device {id} is already registered"),
        }));
    }
    let device = Device {
        id,
        account_id: account_id.clone(),
        capabilities,
        bound_asset: None,
        created_at: now,
        deregistered_at: None,
    };
    put(&mut devices, device.id.as_str(), &device)?;
    drop(devices);
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: Some(account_id),
            action: "device.register",
            target: device.id.to_string(),
            before: None,
            after: Some(device.id.to_string()),
        },
        now,
    )?;
    Ok(device)
}

/// Account ids are `acc` + 16 hex digits and are MQTT tenants too (integration topics):
/// a device with such an id could subscribe under another account's prefix.
pub fn is_account_shaped(id: &str) -> bool {
    id.len() == 19 && id.starts_with("acc") && id[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// An asset of `account` the caller may change (rule 1): owned, neither seen through a
/// grant (403, rule 2) nor a mirror (403, rule 5); 404 when the caller cannot see it.
pub(crate) fn asset_to_change(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    asset_id: &AssetId,
) -> Result<Asset, OpError> {
    let what = format!("asset {asset_id}");
    require_in(
        &tx.open_table(ACCOUNTS)?,
        caller,
        account,
        Need::View,
        &what,
    )?;
    let found = tx
        .open_table(ASSETS)?
        .get((account.as_str(), asset_id.as_str()))?
        .map(|bytes| decode_as::<Asset>("assets", bytes.value()))
        .transpose()?;
    let Some(asset) = found else {
        return Err(crate::sharing::not_owned(
            tx, account, asset_id, "change", what,
        ));
    };
    if asset.mirror.is_some() {
        return Err(OpError::Forbidden(Rule::MirrorReadOnly {
            asset_id: asset_id.clone(),
            action: "change",
        }));
    }
    require_in(
        &tx.open_table(ACCOUNTS)?,
        caller,
        account,
        Need::ManageFleet,
        &what,
    )?;
    Ok(asset)
}

/// A registered (not deregistered) unit the caller may change (rule 1); 404 otherwise.
pub(crate) fn device_to_change(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &DeviceId,
) -> Result<Device, OpError> {
    let what = format!("device {id}");
    let device = get::<Device>(&tx.open_table(DEVICES)?, "devices", id.as_str())?
        .filter(|device| device.deregistered_at.is_none())
        .ok_or_else(|| OpError::not_found(&what))?;
    // Not held open: the audit entry of a staff member under support access reads it too.
    require_in(
        &tx.open_table(ACCOUNTS)?,
        caller,
        &device.account_id,
        Need::ManageFleet,
        &what,
    )?;
    Ok(device)
}

/// Deregisters a unit: from the commit on, the gateway ignores whatever it sends, and its
/// asset shows it unbound. Returns the device as it is now (a tombstone) for the actor.
pub fn deregister_device(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &DeviceId,
    now: Timestamp,
) -> Result<Device, OpError> {
    let mut device = device_to_change(tx, caller, id)?;
    let mut devices = tx.open_table(DEVICES)?;
    if let Some(bound) = device.bound_asset.take() {
        let mut assets = tx.open_table(ASSETS)?;
        let key = (device.account_id.as_str(), bound.asset_id.as_str());
        let found = assets
            .get(key)?
            .map(|guard| decode_as::<Asset>("assets", guard.value()));
        if let Some(asset) = found {
            let mut asset = asset?;
            asset.device_id = None;
            assets.insert(key, codec::encode(&asset).as_slice())?;
        }
    }
    device.deregistered_at = Some(now);
    put(&mut devices, id.as_str(), &device)?;
    drop(devices);
    let account_id = device.account_id.clone();
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: Some(&account_id),
            action: "device.deregister",
            target: id.to_string(),
            before: Some(id.to_string()),
            after: None,
        },
        now,
    )?;
    Ok(device)
}

/// The fields of a new asset, as the caller gave them.
#[derive(Debug, Clone)]
pub struct NewAsset {
    pub id: AssetId,
    pub name: String,
    pub serial: Option<String>,
    pub device_id: Option<DeviceId>,
    pub details: crate::details::AssetDetails,
}

/// Creates an asset and, if asked, binds a unit of the same account to it. Returns the
/// asset and the device as it is after binding (the caller tells that device's actor).
pub fn create_asset(
    tx: &WriteTransaction,
    caller: &Principal,
    account_id: &AccountId,
    new: NewAsset,
    now: Timestamp,
) -> Result<(Asset, Option<Device>), OpError> {
    let name = name_field("name", &new.name)?;
    new.details.validate()?;
    let serial = match new.serial {
        Some(serial) => Some(name_field("serial", &serial)?),
        None => None,
    };
    require_on_account(tx, caller, account_id, Need::ManageFleet)?;
    let mut assets = tx.open_table(ASSETS)?;
    if assets
        .get((account_id.as_str(), new.id.as_str()))?
        .is_some()
    {
        return Err(OpError::Conflict(format!(
            "asset {} already exists in this account",
            new.id
        )));
    }
    if crate::sharing::sees_shared(tx, account_id, &new.id)? {
        return Err(OpError::Conflict(format!(
            "this account already sees a shared asset as {}; an account knows each asset id once",
            new.id
        )));
    }
    let key = next_counter(tx, "asset_key")?;
    let bound = match &new.device_id {
        Some(device_id) => Some(bind_device(tx, account_id, device_id, &new.id, key)?),
        None => None,
    };
    let asset = Asset {
        key,
        account_id: account_id.clone(),
        id: new.id,
        name,
        serial,
        device_id: new.device_id,
        created_at: now,
        details: new.details,
        mirror: None,
        sharing: Default::default(),
    };
    assets.insert(
        (account_id.as_str(), asset.id.as_str()),
        codec::encode(&asset).as_slice(),
    )?;
    drop(assets);
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: Some(account_id),
            action: "asset.create",
            target: asset.id.to_string(),
            before: None,
            after: Some(match &asset.device_id {
                Some(device) => format!("{} bound to {device}", asset.id),
                None => asset.id.to_string(),
            }),
        },
        now,
    )?;
    Ok((asset, bound))
}

/// Binds `device_id` (a registered unit of `account_id` reporting for no asset) to the new
/// asset `asset_id` of telemetry key `asset_key`; answers the bound device.
fn bind_device(
    tx: &WriteTransaction,
    account_id: &AccountId,
    device_id: &DeviceId,
    asset_id: &AssetId,
    asset_key: u64,
) -> Result<Device, OpError> {
    let mut devices = tx.open_table(DEVICES)?;
    let mut device: Device = get(&devices, "devices", device_id.as_str())?
        .filter(|device: &Device| {
            &device.account_id == account_id && device.deregistered_at.is_none()
        })
        .ok_or_else(|| OpError::not_found(format!("device {device_id}")))?;
    if let Some(existing) = &device.bound_asset {
        return Err(OpError::Conflict(format!(
            "device {device_id} already reports for asset {}",
            existing.asset_id
        )));
    }
    device.bound_asset = Some(BoundAsset {
        asset_id: asset_id.clone(),
        asset_key,
    });
    put(&mut devices, device_id.as_str(), &device)?;
    Ok(device)
}

/// Telemetry rows of one group commit. Only the store writer calls this. Answers, for
/// each point in order, its position among the readings of its millisecond (0 for the
/// first; an equal reading already stored answers that one's position): the arrival index
/// records it, so a resumed stream replays this very reading.
pub fn write_points<'a>(
    tx: &WriteTransaction,
    points: impl IntoIterator<Item = (u64, &'a Point)>,
) -> Result<Vec<u32>, StoreError> {
    let mut telemetry = tx.open_table(TELEMETRY)?;
    let chunks = tx.open_table(TELEMETRY_CHUNKS)?;
    let mut positions = Vec::new();
    let mut record = Vec::with_capacity(128);
    for (asset_key, point) in points {
        // A reading of a sealed bucket (a late upload, a resend) counts the chunk's
        // readings of its millisecond first; almost always the bucket is not sealed.
        let sealed = crate::telemetry::stored::sealed_at(&chunks, asset_key, point.ts.0)?;
        if let Some(found) = sealed.iter().position(|reading| reading == point) {
            positions.push(u32::try_from(found).unwrap_or(u32::MAX));
            continue;
        }
        codec::encode_into(point, &mut record);
        let key = (asset_key, point.ts.0);
        // Almost always a new millisecond: one insert. Otherwise the row keeps every
        // distinct reading of its millisecond (see `telemetry::row`).
        let stored = telemetry
            .insert(key, record.as_slice())?
            .map(|old| old.value().to_vec());
        let position = match stored {
            None => 0,
            Some(stored) => {
                let (row, position) =
                    crate::telemetry::row::merge(&stored, point).map_err(|source| {
                        StoreError::Codec {
                            table: "telemetry",
                            source,
                        }
                    })?;
                // The insert above replaced the row: put back the merged one, or the stored one.
                telemetry.insert(key, row.as_deref().unwrap_or(&stored))?;
                position
            }
        };
        positions.push(u32::try_from(sealed.len() + position).unwrap_or(u32::MAX));
    }
    Ok(positions)
}

pub fn write_status(
    tx: &WriteTransaction,
    device: &DeviceId,
    status: &DeviceStatus,
) -> Result<(), StoreError> {
    put(&mut tx.open_table(DEVICE_STATUS)?, device.as_str(), status)
}

/// What the owner may change on an asset.
#[derive(Debug, Clone, Default)]
pub struct AssetPatch {
    pub name: Option<String>,
    pub serial: Option<String>,
    /// Sections given replace the asset's; sections absent are kept.
    pub details: Option<crate::details::AssetDetails>,
}

/// Changes an owned asset's name, serial or details. A grantee is told rule 2 (403); a stranger
/// gets 404.
pub fn update_asset(
    tx: &WriteTransaction,
    caller: &Principal,
    account_id: &AccountId,
    asset_id: &AssetId,
    patch: AssetPatch,
    now: Timestamp,
) -> Result<Asset, OpError> {
    let mut asset = asset_to_change(tx, caller, account_id, asset_id)?;
    let before = asset_words(&asset);
    if let Some(name) = patch.name {
        asset.name = name_field("name", &name)?;
    }
    if let Some(serial) = patch.serial {
        asset.serial = Some(name_field("serial", &serial)?);
    }
    if let Some(details) = patch.details {
        details.validate()?;
        asset.details.merge(details);
    }
    tx.open_table(ASSETS)?.insert(
        (account_id.as_str(), asset_id.as_str()),
        codec::encode(&asset).as_slice(),
    )?;
    // A details mirror follows its source in the same transaction.
    crate::tenant::propagate(tx, &asset)?;
    let change = (Some(before), Some(asset_words(&asset)));
    let action = (account_id, "asset.update");
    audit_by(tx, caller, action, asset_id.to_string(), change, now)?;
    Ok(asset)
}

/// An asset's name and serial as the audit log shows them: `name "Excavator", serial "X1"`
/// (`no serial` when it has none), in words rather than Rust's debug text.
fn asset_words(asset: &Asset) -> String {
    match &asset.serial {
        Some(serial) => format!("name \"{}\", serial \"{serial}\"", asset.name),
        None => format!("name \"{}\", no serial", asset.name),
    }
}

/// Access events of one group commit. Only the store writer calls this.
pub fn write_access_events<'a>(
    tx: &WriteTransaction,
    events: impl IntoIterator<Item = (u64, u64, &'a crate::access::AccessEvent)>,
) -> Result<(), StoreError> {
    let mut table = tx.open_table(ACCESS_EVENTS)?;
    for (asset_key, seq, event) in events {
        table.insert(
            (asset_key, event.ts.0, seq),
            codec::encode(event).as_slice(),
        )?;
    }
    Ok(())
}

/// Records that an account admin took a client certificate for the account's MQTT
/// integration (the certificate is the gateway's to issue; this checks and audits it).
pub fn issue_integration_cert(
    tx: &WriteTransaction,
    caller: &Principal,
    account_id: &AccountId,
    now: Timestamp,
) -> Result<(), OpError> {
    require_on_account(tx, caller, account_id, Need::Administer)?;
    crate::policy::refuse_lasting_access(caller, "an integration certificate")?;
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: Some(account_id),
            action: "integration_cert.issue",
            target: account_id.to_string(),
            before: None,
            after: Some(
                "client certificate for /tenants/{account}/"
                    .replace("{account}", account_id.as_str()),
            ),
        },
        now,
    )?;
    Ok(())
}
