//! What an account sees of an asset (rule 2): its own assets, and assets shared with it by
//! a grant, during the grant's window only. Everything that answers "may this account see
//! this asset, and which part of its history" goes through here.

use redb::{ReadTransaction, ReadableTable};

use crate::error::{OpError, StoreError};
use crate::ids::{AccountId, AssetId};
use crate::model::{Asset, Device, Grant, Principal};
use crate::policy::{self, Need};
use crate::read::{chain, require_in, require_on_account, Page};
use crate::rule::Rule;
use crate::store::{decode_as, get};
use crate::tables::*;
use crate::time::Timestamp;
use crate::window::Window;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Owned,
    Shared,
    /// A tenant-sharing mirror: read-only, fed by another account's asset.
    Mirror,
}

impl Relation {
    /// `owned`, `shared` or `mirror`.
    pub fn parse(raw: &str) -> Option<Relation> {
        [Relation::Owned, Relation::Shared, Relation::Mirror]
            .into_iter()
            .find(|relation| relation.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Owned => "owned",
            Relation::Shared => "shared",
            Relation::Mirror => "mirror",
        }
    }
}

/// An asset as one account sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub asset: Asset,
    pub relation: Relation,
    /// For a shared asset, the grant that shows it.
    pub grant: Option<Grant>,
}

impl Seen {
    /// The asset whose telemetry this account reads (a mirror reads its source's).
    pub fn telemetry_key(&self) -> u64 {
        self.asset
            .mirror
            .as_ref()
            .map_or(self.asset.key, |link| link.source_key)
    }

    /// This account's sight of the asset: all of time for the owner, the grant's window
    /// for a grantee, the shared periods for a mirror (a mirror never shared shows none).
    pub fn access(&self) -> Window {
        if let Some(link) = &self.asset.mirror {
            return Window::periods(link.windows.clone())
                .unwrap_or_else(|| Window::between(Timestamp(u64::MAX), None));
        }
        match &self.grant {
            None => Window::always(),
            Some(grant) => Window::between(grant.from, grant.until),
        }
    }

    /// The span of history this account may read (see [`Window::span`]).
    pub fn window(&self) -> (Timestamp, Timestamp) {
        self.access().span()
    }

    /// The part of the asked span `[from, to)` this account may read: the asked span cut
    /// to [`Seen::window`] (rule 2: a grantee reads inside its grant window only). May be
    /// empty (`from >= to`).
    pub fn readable(&self, from: Timestamp, to: Timestamp) -> (Timestamp, Timestamp) {
        let (window_from, window_to) = self.window();
        (from.max(window_from), to.min(window_to))
    }

    /// Whether a point at `ts` is inside what this account may see: [`Seen::access`]'s
    /// test, made without building the `Window` (history and exports ask it per point).
    pub fn shows(&self, ts: Timestamp) -> bool {
        match (&self.asset.mirror, &self.grant) {
            (Some(link), _) => link.shows(ts),
            (None, Some(grant)) => crate::window::shows(&[(grant.from, grant.until)], ts),
            (None, None) => true,
        }
    }

    /// Rule 2 and rule 5: a grantee or a mirror's account never changes, re-shares or
    /// keys what it only sees.
    pub fn require_owned(&self, action: &'static str) -> Result<(), OpError> {
        match self.relation {
            Relation::Owned => Ok(()),
            Relation::Shared => Err(OpError::Forbidden(Rule::SharedReadOnly {
                asset_id: self.asset.id.clone(),
                action,
            })),
            Relation::Mirror => Err(OpError::Forbidden(Rule::MirrorReadOnly {
                asset_id: self.asset.id.clone(),
                action,
            })),
        }
    }
}

/// An asset of the viewing account itself: owned, or a mirror it holds.
pub fn owned_or_mirror(asset: Asset) -> Seen {
    let relation = if asset.mirror.is_some() {
        Relation::Mirror
    } else {
        Relation::Owned
    };
    Seen {
        asset,
        relation,
        grant: None,
    }
}

fn shared(
    rtx: &ReadTransaction,
    grant_id: &str,
    now: Timestamp,
) -> Result<Option<Seen>, StoreError> {
    let Some(grant) = get::<Grant>(&rtx.open_table(GRANTS)?, "grants", grant_id)? else {
        return Ok(None);
    };
    if !grant.active_at(now) {
        return Ok(None);
    }
    let assets = rtx.open_table(ASSETS)?;
    let found = assets.get((grant.owner_account.as_str(), grant.asset_id.as_str()))?;
    let Some(bytes) = found else {
        return Ok(None);
    };
    Ok(Some(Seen {
        asset: decode_as("assets", bytes.value())?,
        relation: Relation::Shared,
        grant: Some(grant),
    }))
}

/// The asset `asset_id` as account `account` knows it, if `caller` may see it there.
pub fn resolve(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: &AccountId,
    asset_id: &AssetId,
    now: Timestamp,
) -> Result<Seen, OpError> {
    let what = format!("asset {asset_id}");
    require_in(
        &rtx.open_table(ACCOUNTS)?,
        caller,
        account,
        Need::View,
        &what,
    )?;
    seen_by(rtx, account, asset_id, now)?.ok_or_else(|| OpError::not_found(what))
}

/// The asset `asset_id` as account `account` knows it at `now` (owned, a mirror it holds,
/// or shared by a grant in force), whoever asks; `None` when it does not see it. The
/// principal's own right to read the account is [`resolve`]'s to check.
///
/// # Errors
/// [`StoreError`] when redb fails or a record does not decode.
pub fn seen_by(
    rtx: &ReadTransaction,
    account: &AccountId,
    asset_id: &AssetId,
    now: Timestamp,
) -> Result<Option<Seen>, StoreError> {
    let assets = rtx.open_table(ASSETS)?;
    if let Some(bytes) = assets.get((account.as_str(), asset_id.as_str()))? {
        return Ok(Some(owned_or_mirror(decode_as("assets", bytes.value())?)));
    }
    drop(assets);
    let by_target = rtx.open_table(GRANT_BY_TARGET)?;
    let grant_id = by_target.get((account.as_str(), asset_id.as_str()))?;
    match grant_id {
        Some(id) => shared(rtx, id.value(), now),
        None => Ok(None),
    }
}

/// Which of an account's assets a list shows: every criterion given must hold.
#[derive(Debug, Clone, Default)]
pub struct AssetFilter {
    /// Part of the asset's id, name or serial, in any case.
    pub q: Option<String>,
    pub relation: Option<Relation>,
}

impl AssetFilter {
    pub fn keeps(&self, seen: &Seen) -> bool {
        let asset = &seen.asset;
        let found = |q: &String| {
            [asset.id.as_str(), asset.name.as_str()]
                .into_iter()
                .chain(asset.serial.as_deref())
                .any(|text| crate::paging::matches(q, text))
        };
        self.relation.is_none_or(|wanted| seen.relation == wanted)
            && self.q.as_ref().is_none_or(found)
    }
}

/// The account's assets that `filter` keeps, owned and shared, ordered by id and paged
/// (the cursor is the previous page's last id).
pub fn list(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: &AccountId,
    filter: &AssetFilter,
    (cursor, limit): (Option<&str>, usize),
    now: Timestamp,
) -> Result<Page<Seen>, OpError> {
    require_on_account(rtx, caller, account, Need::View)?;
    let after = cursor.unwrap_or("");
    let mut items: Vec<Seen> = Vec::new();
    // Up to limit + 1 of each source, merged by id: enough to fill a page and know
    // whether another follows.
    let assets = rtx.open_table(ASSETS)?;
    for row in assets.range((account.as_str(), after)..)? {
        let (key, value) = row?;
        let (owner, id) = key.value();
        if owner != account.as_str() || items.len() > limit {
            break;
        }
        if cursor.is_some() && id <= after {
            continue;
        }
        let seen = owned_or_mirror(decode_as("assets", value.value())?);
        if filter.keeps(&seen) {
            items.push(seen);
        }
    }
    let by_target = rtx.open_table(GRANT_BY_TARGET)?;
    let mut shared_count = 0;
    for row in by_target.range((account.as_str(), after)..)? {
        let (key, grant_id) = row?;
        let (target, id) = key.value();
        if target != account.as_str() || shared_count > limit {
            break;
        }
        if cursor.is_some() && id <= after {
            continue;
        }
        if let Some(seen) = shared(rtx, grant_id.value(), now)?.filter(|s| filter.keeps(s)) {
            items.push(seen);
            shared_count += 1;
        }
    }
    items.sort_by(|a, b| a.asset.id.cmp(&b.asset.id));
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|seen| seen.asset.id.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// One account of an asset's audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub account_id: AccountId,
    /// The id this account knows the asset by.
    pub asset_id: AssetId,
    /// For a telemetry mirror, the mirror asset's key: its view of a point has an id of
    /// its own (design 5.4, [`crate::arrivals::Arrived::View`]).
    pub mirror: Option<u64>,
    /// This account's sight: the device actor delivers a point only when its `ts` is in
    /// it and the access is in force at arrival (so a window closes at its instant even
    /// before the scheduler re-binds the unit).
    pub window: Window,
}

/// The accounts that may see a unit's points right now: the owner, and every grantee
/// whose window is open.
pub fn audience(
    rtx: &ReadTransaction,
    device: &Device,
    now: Timestamp,
) -> Result<Vec<Member>, StoreError> {
    let Some(bound) = &device.bound_asset else {
        return Ok(Vec::new());
    };
    let mut out = vec![Member {
        account_id: device.account_id.clone(),
        asset_id: bound.asset_id.clone(),
        mirror: None,
        window: Window::always(),
    }];
    let assets = rtx.open_table(ASSETS)?;
    let source = get_asset(&assets, &device.account_id, &bound.asset_id)?;
    let mirrors = source
        .map(|source| source.sharing.telemetry)
        .unwrap_or_default();
    for (account_id, asset_id) in mirrors {
        let Some(mirror) = get_asset(&assets, &account_id, &asset_id)? else {
            continue;
        };
        let windows = mirror.mirror.map(|link| link.windows).unwrap_or_default();
        if let Some(window) = Window::periods(windows) {
            out.push(Member {
                account_id,
                asset_id,
                mirror: Some(mirror.key),
                window,
            });
        }
    }
    let pairs = rtx.open_table(GRANT_BY_PAIR)?;
    let grants = rtx.open_table(GRANTS)?;
    for row in pairs.range((bound.asset_key, "")..(bound.asset_key + 1, ""))? {
        let (_, grant_id) = row?;
        if let Some(grant) = get::<Grant>(&grants, "grants", grant_id.value())? {
            if grant.active_at(now) {
                out.push(Member {
                    account_id: grant.target,
                    asset_id: grant.asset_id,
                    mirror: None,
                    window: Window::between(grant.from, grant.until),
                });
            }
        }
    }
    Ok(out)
}

fn get_asset(
    assets: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    account: &AccountId,
    asset: &AssetId,
) -> Result<Option<Asset>, StoreError> {
    match assets.get((account.as_str(), asset.as_str()))? {
        Some(bytes) => Ok(Some(decode_as("assets", bytes.value())?)),
        None => Ok(None),
    }
}

/// Grants the caller may list: all of an owner account it has a role in, and the ones
/// made to its own account(s) as grantee. Optional filters narrow the list.
pub fn grants(
    rtx: &ReadTransaction,
    caller: &Principal,
    asset_id: Option<&AssetId>,
    account_id: Option<&AccountId>,
) -> Result<Vec<Grant>, StoreError> {
    let accounts = rtx.open_table(ACCOUNTS)?;
    let table = rtx.open_table(GRANTS)?;
    let sees = |account: &AccountId| {
        chain(&accounts, account)
            .ok()
            .flatten()
            .is_some_and(|chain| policy::role_in(caller, &chain).is_some())
    };
    let mut out = Vec::new();
    for row in table.iter()? {
        let grant: Grant = decode_as("grants", row?.1.value())?;
        if asset_id.is_some_and(|wanted| wanted != &grant.asset_id)
            || account_id.is_some_and(|wanted| wanted != &grant.target)
        {
            continue;
        }
        if sees(&grant.owner_account) || sees(&grant.target) {
            out.push(grant);
        }
    }
    Ok(out)
}

/// The devices of the given asset keys' owners, for re-binding after a change.
pub fn devices_of(rtx: &ReadTransaction, grants: &[Grant]) -> Result<Vec<Device>, StoreError> {
    let assets = rtx.open_table(ASSETS)?;
    let devices = rtx.open_table(DEVICES)?;
    let mut out: Vec<Device> = Vec::new();
    for grant in grants {
        let found = assets.get((grant.owner_account.as_str(), grant.asset_id.as_str()))?;
        let Some(bytes) = found else { continue };
        let asset: Asset = decode_as("assets", bytes.value())?;
        if let Some(device_id) = asset.device_id {
            if out.iter().any(|device| device.id == device_id) {
                continue;
            }
            if let Some(device) = get::<Device>(&devices, "devices", device_id.as_str())? {
                out.push(device);
            }
        }
    }
    Ok(out)
}
