//! Queries over a read transaction. Readers never wait for the writer (redb MVCC), so HTTP
//! handlers call these directly. Every function that takes a caller applies
//! [`crate::policy`] before returning anything.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use crate::error::{OpError, StoreError};
use crate::ids::{AccountId, DeviceId};
use crate::model::{Account, Device, DeviceStatus, Principal};
use crate::policy::{self, Need};
use crate::store::{decode_as, get, rows_where};
use crate::tables::*;
use crate::telemetry::stored::{Order, Stored};
use crate::telemetry::Point;
use crate::time::Timestamp;
use crate::token;

/// Deepest account tree we walk; deeper means a corrupt parent loop, not a real fleet.
const MAX_DEPTH: usize = 32;

/// The whole history, for the owner's reads.
pub const ALL_TIME: (Timestamp, Timestamp) = (Timestamp(0), Timestamp(u64::MAX));

/// One page of a list answer; `next_cursor` is opaque to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub fn principal_for_token(
    rtx: &ReadTransaction,
    bearer: &str,
) -> Result<Option<Principal>, StoreError> {
    principal_for_token_hash(rtx, &token::hash(bearer))
}

/// The principal a token speaks for, by the token's SHA-256 (what the store keeps).
pub fn principal_for_token_hash(
    rtx: &ReadTransaction,
    hash: &[u8; 32],
) -> Result<Option<Principal>, StoreError> {
    let tokens = rtx.open_table(TOKENS)?;
    let Some(principal_id) = tokens.get(hash.as_slice())? else {
        return Ok(None);
    };
    let principals = rtx.open_table(PRINCIPALS)?;
    get(&principals, "principals", principal_id.value())
}

/// A principal's name, if the principal exists (a deleted user's id names nobody).
pub fn principal_name(
    rtx: &ReadTransaction,
    id: &crate::ids::PrincipalId,
) -> Result<Option<String>, StoreError> {
    let principals = rtx.open_table(PRINCIPALS)?;
    let principal: Option<Principal> = get(&principals, "principals", id.as_str())?;
    Ok(principal.map(|p| p.name))
}

/// Who a request (or an open stream) acts as at `now`: the token's principal with, for
/// staff, the support access active at that instant (rule 4). Read fresh for every request
/// and every stream check, so a revoke, an expiry or a rotated token applies at once.
pub fn authenticate(
    rtx: &ReadTransaction,
    token_hash: &[u8; 32],
    now: Timestamp,
) -> Result<Option<Principal>, StoreError> {
    let Some(mut principal) = principal_for_token_hash(rtx, token_hash)? else {
        return Ok(None);
    };
    if matches!(principal.kind, crate::model::PrincipalKind::Staff { .. }) {
        principal.support = crate::support::active_for(rtx, &principal.id, now)?;
    }
    Ok(Some(principal))
}

pub fn account(rtx: &ReadTransaction, id: &AccountId) -> Result<Option<Account>, StoreError> {
    get(&rtx.open_table(ACCOUNTS)?, "accounts", id.as_str())
}

/// The account followed by its ancestors up to the root; `None` if the account is unknown.
pub fn chain(
    accounts: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &AccountId,
) -> Result<Option<Vec<AccountId>>, StoreError> {
    let mut out = Vec::new();
    let mut next = Some(id.clone());
    while let Some(current) = next {
        let Some(account) = get::<Account>(accounts, "accounts", current.as_str())? else {
            return Ok(if out.is_empty() { None } else { Some(out) });
        };
        out.push(current);
        if out.len() > MAX_DEPTH {
            break;
        }
        next = account.parent_id;
    }
    Ok(Some(out))
}

/// The account an account-scoped call acts in: the explicit one, else the caller's own.
/// Staff have no account of their own, so for them an account must be named.
pub fn acting_account(
    caller: &Principal,
    explicit: Option<&AccountId>,
) -> Result<AccountId, OpError> {
    explicit
        .or(caller.home_account())
        .cloned()
        .ok_or_else(|| OpError::invalid("account_id", "required for staff principals"))
}

/// Checks `need` for `caller` in `account`; unknown and invisible accounts are both 404.
pub fn require_in(
    accounts: &impl ReadableTable<&'static str, &'static [u8]>,
    caller: &Principal,
    account: &AccountId,
    need: Need,
    what: &str,
) -> Result<(), OpError> {
    let chain = chain(accounts, account)?.ok_or_else(|| OpError::not_found(what))?;
    policy::require(caller, &chain, need, what).map(|_| ())
}

/// A read or a write transaction as far as checking a caller goes: both open the accounts
/// table, so [`require_on_account`] reads the same inside either.
pub trait OpensAccounts {
    /// The accounts table of this transaction.
    fn accounts(&self) -> Result<impl ReadableTable<&'static str, &'static [u8]> + '_, OpError>;
}

impl OpensAccounts for ReadTransaction {
    fn accounts(&self) -> Result<impl ReadableTable<&'static str, &'static [u8]> + '_, OpError> {
        Ok(self.open_table(ACCOUNTS)?)
    }
}

impl OpensAccounts for WriteTransaction {
    fn accounts(&self) -> Result<impl ReadableTable<&'static str, &'static [u8]> + '_, OpError> {
        Ok(self.open_table(ACCOUNTS)?)
    }
}

/// [`require_in`] on the account itself, named `account {id}` in the 404 or the refusal:
/// the one check every operation on a whole account makes of its caller. Inside a write
/// that holds the accounts table open already, call [`require_in`] with that table.
pub fn require_on_account(
    tx: &impl OpensAccounts,
    caller: &Principal,
    account: &AccountId,
    need: Need,
) -> Result<(), OpError> {
    let what = format!("account {account}");
    require_in(&tx.accounts()?, caller, account, need, &what)
}

/// The account's admin, or a platform_admin (who creates accounts' first users and
/// recovers an account whose admins are locked out); anyone else who cannot see the
/// account gets 404.
pub fn administers(
    accounts: &impl ReadableTable<&'static str, &'static [u8]>,
    caller: &Principal,
    account: &AccountId,
) -> Result<(), OpError> {
    let what = format!("account {account}");
    if caller.is_staff(crate::model::StaffRole::PlatformAdmin) {
        chain(accounts, account)?.ok_or_else(|| OpError::not_found(&what))?;
        return Ok(());
    }
    require_in(accounts, caller, account, Need::Administer, &what)
}

pub fn device(rtx: &ReadTransaction, id: &DeviceId) -> Result<Option<Device>, StoreError> {
    get(&rtx.open_table(DEVICES)?, "devices", id.as_str())
}

/// The registered (not deregistered) units of `account` whose id or bound asset id contains
/// `q` (any case), in id order; 404 unless the caller may view the account.
pub fn account_devices(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: &AccountId,
    q: Option<&str>,
) -> Result<Vec<Device>, OpError> {
    require_view(rtx, caller, account)?;
    let found = |device: &Device| {
        q.is_none_or(|q| {
            crate::paging::matches(q, device.id.as_str())
                || device
                    .bound_asset
                    .as_ref()
                    .is_some_and(|bound| crate::paging::matches(q, bound.asset_id.as_str()))
        })
    };
    Ok(all_devices(rtx)?
        .into_iter()
        .filter(|d| &d.account_id == account && d.deregistered_at.is_none() && found(d))
        .collect())
}

/// A device the caller's account owns (or administers through the tree); else 404.
pub fn visible_device(
    rtx: &ReadTransaction,
    caller: &Principal,
    id: &DeviceId,
) -> Result<Device, OpError> {
    let what = format!("device {id}");
    let device = device(rtx, id)?
        .filter(|device| device.deregistered_at.is_none())
        .ok_or_else(|| OpError::not_found(&what))?;
    require_in(
        &rtx.open_table(ACCOUNTS)?,
        caller,
        &device.account_id,
        Need::View,
        &what,
    )?;
    Ok(device)
}

pub fn all_devices(rtx: &ReadTransaction) -> Result<Vec<Device>, StoreError> {
    rows_where(&rtx.open_table(DEVICES)?, "devices", |_: &Device| true)
}

pub fn device_status(
    rtx: &ReadTransaction,
    id: &DeviceId,
) -> Result<Option<DeviceStatus>, StoreError> {
    get(
        &rtx.open_table(DEVICE_STATUS)?,
        "device_status",
        id.as_str(),
    )
}

/// One asset's points with `from <= ts < to` that `keep` accepts, oldest first (readings of
/// one millisecond in arrival order). The cursor is the first timestamp of the next page;
/// a page holds whole milliseconds, so it may hold fewer than `limit` points.
pub fn history(
    rtx: &ReadTransaction,
    asset_key: u64,
    (from, to): (Timestamp, Timestamp),
    cursor: Option<u64>,
    limit: usize,
    keep: impl Fn(Timestamp) -> bool,
) -> Result<Page<Point>, StoreError> {
    let start = cursor.map_or(from.0, |c| c.max(from.0));
    let mut items = Vec::new();
    let mut next_cursor = None;
    Stored::open(rtx)?.walk(asset_key, (start, to.0), Order::Oldest, |(ts, readings)| {
        if !keep(Timestamp(ts)) {
            return Ok(true);
        }
        // A page never splits a millisecond (the cursor is one); a first millisecond with
        // more readings than the page is served whole rather than never.
        if !items.is_empty() && items.len() + readings.len() > limit {
            next_cursor = Some(ts.to_string());
            return Ok(false);
        }
        items.extend(readings);
        Ok(true)
    })?;
    Ok(Page { items, next_cursor })
}

/// The newest point with `from <= ts < to` that `keep` accepts.
pub fn latest(
    rtx: &ReadTransaction,
    asset_key: u64,
    (from, to): (Timestamp, Timestamp),
    keep: impl Fn(Timestamp) -> bool,
) -> Result<Option<Point>, StoreError> {
    let mut newest = None;
    Stored::open(rtx)?.walk(
        asset_key,
        (from.0, to.0),
        Order::Newest,
        |(ts, mut readings)| {
            if !keep(Timestamp(ts)) {
                return Ok(true);
            }
            newest = readings.pop();
            Ok(false)
        },
    )?;
    Ok(newest)
}

/// An account's record for `GET /accounts/{a}`: its members, its ancestors' users and
/// platform staff may read it; anyone else gets 404.
pub fn visible_account(
    rtx: &ReadTransaction,
    caller: &Principal,
    id: &AccountId,
) -> Result<Account, OpError> {
    let what = format!("account {id}");
    if !matches!(caller.kind, crate::model::PrincipalKind::Staff { .. }) {
        require_in(&rtx.open_table(ACCOUNTS)?, caller, id, Need::View, &what)?;
    }
    account(rtx, id)?.ok_or_else(|| OpError::not_found(what))
}

/// `GET /accounts`: the accounts the caller may read, as [`visible_account`] decides one by
/// one (staff: every account, for the console's account picker; a user: its own account
/// and its descendants), with `q` part of the name or id, any case; in id order.
pub fn visible_accounts(
    rtx: &ReadTransaction,
    caller: &Principal,
    q: Option<&str>,
) -> Result<Vec<Account>, OpError> {
    let table = rtx.open_table(ACCOUNTS)?;
    let q = q.map(str::to_lowercase);
    let matching = rows_where(&table, "accounts", |account: &Account| {
        q.as_deref().is_none_or(|q| {
            account.name.to_lowercase().contains(q)
                || account.id.as_str().to_lowercase().contains(q)
        })
    })?;
    if matches!(caller.kind, crate::model::PrincipalKind::Staff { .. }) {
        return Ok(matching);
    }
    let mut readable = Vec::with_capacity(matching.len());
    for account in matching {
        if require_in(&table, caller, &account.id, Need::View, "").is_ok() {
            readable.push(account);
        }
    }
    Ok(readable)
}

/// Fails unless the caller may view the account (404 otherwise).
pub fn require_view(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: &AccountId,
) -> Result<(), OpError> {
    require_on_account(rtx, caller, account, Need::View)
}

/// Direct sub-accounts of `id`.
pub fn children(rtx: &ReadTransaction, id: &AccountId) -> Result<Vec<Account>, StoreError> {
    rows_where(
        &rtx.open_table(ACCOUNTS)?,
        "accounts",
        |account: &Account| account.parent_id.as_ref() == Some(id),
    )
}

/// One asset's access events with `from <= ts < to`, oldest first; the cursor is
/// `ts:seq` of the next event.
pub fn access_events(
    rtx: &ReadTransaction,
    asset_key: u64,
    (from, to): (Timestamp, Timestamp),
    cursor: Option<(u64, u64)>,
    limit: usize,
) -> Result<Page<crate::access::AccessEvent>, StoreError> {
    let table = rtx.open_table(ACCESS_EVENTS)?;
    let (start_ts, start_seq) = cursor.map_or((from.0, 0), |(ts, seq)| (ts.max(from.0), seq));
    let mut items = Vec::new();
    let mut next_cursor = None;
    if start_ts < to.0 {
        for row in table.range((asset_key, start_ts, start_seq)..(asset_key, to.0, 0))? {
            let (key, value) = row?;
            if items.len() == limit {
                let (_, ts, seq) = key.value();
                next_cursor = Some(format!("{ts}:{seq}"));
                break;
            }
            items.push(decode_as("access_events", value.value())?);
        }
    }
    Ok(Page { items, next_cursor })
}

/// Visits one asset's points with `from <= ts < to` that `keep` accepts, oldest first
/// (readings of a millisecond in arrival order), until `visit` answers `false`: an export
/// streams a whole range through this without holding it in memory.
///
/// # Errors
/// [`StoreError`] when redb fails or a row does not decode.
pub fn scan(
    rtx: &ReadTransaction,
    asset_key: u64,
    (from, to): (Timestamp, Timestamp),
    keep: impl Fn(Timestamp) -> bool,
    mut visit: impl FnMut(&Point) -> bool,
) -> Result<(), StoreError> {
    Stored::open(rtx)?.walk(
        asset_key,
        (from.0, to.0),
        Order::Oldest,
        |(ts, readings)| Ok(!keep(Timestamp(ts)) || readings.iter().all(&mut visit)),
    )
}
