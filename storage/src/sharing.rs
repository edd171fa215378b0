//! Partnerships (rule 3) and visibility grants (rule 2), and the schedule that starts and
//! ends grants at their instants.
//!
//! Every function runs inside one write transaction and checks every rule before it writes,
//! so a bulk call is all-or-nothing: the first refused asset aborts the whole transaction.
//! A dry run is the same call in a transaction that is then aborted, so it returns exactly
//! what would change.

use std::collections::BTreeSet;

use redb::{ReadableTable, WriteTransaction};

use crate::codec;
use crate::error::{OpError, StoreError};
use crate::ids::{AccountId, AssetId, GrantId, PartnershipId, PrincipalId};
use crate::model::{Asset, Grant, Partnership, Principal, StaffRole};
use crate::ops::{audit, AuditNote, Who};
use crate::policy::{self, Need};
use crate::read::{chain, require_on_account};
use crate::rule::Rule;
use crate::store::{decode_as, get, put};
use crate::tables::*;
use crate::time::Timestamp;

/// Largest list a bulk call takes; larger lists are refused, not truncated.
pub const MAX_BULK: usize = 1000;

/// The principal the scheduler acts as in the audit log.
pub fn scheduler_id() -> PrincipalId {
    PrincipalId::parse("scheduler").expect("a valid id")
}

/// Refuses empty, oversized and repetitive lists, naming the field.
pub fn check_bulk<T: Ord + std::fmt::Display>(field: &str, items: &[T]) -> Result<(), OpError> {
    if items.is_empty() {
        return Err(OpError::invalid(field, "must name at least one item"));
    }
    if items.len() > MAX_BULK {
        return Err(OpError::invalid(
            field,
            format!("at most {MAX_BULK} items per call"),
        ));
    }
    let mut seen = BTreeSet::new();
    if let Some(repeated) = items.iter().find(|item| !seen.insert(*item)) {
        return Err(OpError::invalid(
            field,
            format!("{repeated} is listed twice"),
        ));
    }
    Ok(())
}

/// The partnership between accounts `a` and `b`, if there is one.
pub(crate) fn partnership_between(
    tx: &WriteTransaction,
    a: &AccountId,
    b: &AccountId,
) -> Result<Option<String>, StoreError> {
    let pairs = tx.open_table(PARTNER_PAIRS)?;
    let found = pairs.get(pair_key(a, b))?.map(|id| id.value().to_owned());
    Ok(found)
}

fn pair_key<'a>(a: &'a AccountId, b: &'a AccountId) -> (&'a str, &'a str) {
    if a.as_str() <= b.as_str() {
        (a.as_str(), b.as_str())
    } else {
        (b.as_str(), a.as_str())
    }
}

pub fn create_partnership(
    tx: &WriteTransaction,
    caller: &Principal,
    account_a: AccountId,
    account_b: AccountId,
    now: Timestamp,
) -> Result<Partnership, OpError> {
    policy::require_platform_admin(
        caller,
        Rule::PartnershipsByPlatformAdmin { action: "create" },
    )?;
    if account_a == account_b {
        return Err(OpError::invalid("account_b", "must differ from account_a"));
    }
    {
        let accounts = tx.open_table(ACCOUNTS)?;
        for account in [&account_a, &account_b] {
            chain(&accounts, account)?
                .ok_or_else(|| OpError::not_found(format!("account {account}")))?;
        }
    }
    let mut pairs = tx.open_table(PARTNER_PAIRS)?;
    if let Some(existing) = pairs.get(pair_key(&account_a, &account_b))? {
        return Err(OpError::Conflict(format!(
            "accounts {account_a} and {account_b} are already partners ({})",
            existing.value()
        )));
    }
    let partnership = Partnership {
        id: PartnershipId::generate("prt"),
        account_a,
        account_b,
        created_at: now,
    };
    pairs.insert(
        pair_key(&partnership.account_a, &partnership.account_b),
        partnership.id.as_str(),
    )?;
    drop(pairs);
    put(
        &mut tx.open_table(PARTNERSHIPS)?,
        partnership.id.as_str(),
        &partnership,
    )?;
    for (account, other) in [
        (&partnership.account_a, &partnership.account_b),
        (&partnership.account_b, &partnership.account_a),
    ] {
        audit(
            tx,
            Who::Principal(caller),
            AuditNote {
                account_id: Some(account),
                action: "partnership.create",
                target: partnership.id.to_string(),
                before: None,
                after: Some(format!("partner {other}")),
            },
            now,
        )?;
    }
    Ok(partnership)
}

/// What ending a partnership ended with it: the grants and the tenant shares (their
/// sources, for re-binding) that relied on it.
#[derive(Debug, Clone)]
pub struct PartnershipEnded {
    pub partnership: Partnership,
    pub grants: Vec<Grant>,
    pub sources: Vec<Asset>,
}

/// Ends a partnership and every grant that depended on it; returns the ended grants so
/// the caller can cut their audiences before it answers.
pub fn end_partnership(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &PartnershipId,
    now: Timestamp,
) -> Result<PartnershipEnded, OpError> {
    policy::require_platform_admin(caller, Rule::PartnershipsByPlatformAdmin { action: "end" })?;
    let mut partnerships = tx.open_table(PARTNERSHIPS)?;
    let partnership: Partnership = get(&partnerships, "partnerships", id.as_str())?
        .ok_or_else(|| OpError::not_found(format!("partnership {id}")))?;
    partnerships.remove(id.as_str())?;
    drop(partnerships);
    tx.open_table(PARTNER_PAIRS)?
        .remove(pair_key(&partnership.account_a, &partnership.account_b))?;
    let dependent: Vec<Grant> = all_grants(tx)?
        .into_iter()
        .filter(|grant| grant.partnership.as_ref() == Some(id))
        .collect();
    for grant in &dependent {
        delete_grant_rows(tx, grant)?;
        audit_grant(
            tx,
            Who::Principal(caller),
            grant,
            "grant.end",
            "partnership ended",
            now,
        )?;
    }
    let sources = crate::tenant::end_shares_across(
        tx,
        caller,
        &partnership.account_a,
        &partnership.account_b,
        now,
    )?;
    for account in [&partnership.account_a, &partnership.account_b] {
        audit(
            tx,
            Who::Principal(caller),
            AuditNote {
                account_id: Some(account),
                action: "partnership.end",
                target: id.to_string(),
                before: Some(id.to_string()),
                after: None,
            },
            now,
        )?;
    }
    Ok(PartnershipEnded {
        partnership,
        grants: dependent,
        sources,
    })
}

fn all_grants(tx: &WriteTransaction) -> Result<Vec<Grant>, StoreError> {
    let grants = tx.open_table(GRANTS)?;
    let mut out = Vec::new();
    for row in grants.iter()? {
        out.push(decode_as("grants", row?.1.value())?);
    }
    Ok(out)
}

/// Rule 2's reach: a descendant of the owner needs nothing, anyone else a partnership.
/// An unknown target gets the same refusal as a stranger, so grants reveal no accounts.
fn reach(
    tx: &WriteTransaction,
    owner: &AccountId,
    target: &AccountId,
) -> Result<Option<PartnershipId>, OpError> {
    let refusal = || {
        OpError::Forbidden(Rule::GrantOutOfReach {
            owner: owner.clone(),
            target: target.clone(),
        })
    };
    let target_chain = chain(&tx.open_table(ACCOUNTS)?, target)?.ok_or_else(refusal)?;
    if target_chain
        .iter()
        .skip(1)
        .any(|ancestor| ancestor == owner)
    {
        return Ok(None);
    }
    let pairs = tx.open_table(PARTNER_PAIRS)?;
    let found = pairs.get(pair_key(owner, target))?;
    match found {
        Some(id) => Ok(Some(
            PartnershipId::parse(id.value()).map_err(|_| refusal())?,
        )),
        None => Err(refusal()),
    }
}

/// What a grant call did to one asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone)]
pub struct GrantRequest {
    pub owner: AccountId,
    pub target: AccountId,
    pub asset_ids: Vec<AssetId>,
    /// Absent: now for a new grant, the current start for an existing one.
    pub from: Option<Timestamp>,
    /// Absent: permanent.
    pub until: Option<Timestamp>,
}

fn owned_asset(
    tx: &WriteTransaction,
    owner: &AccountId,
    asset_id: &AssetId,
) -> Result<Asset, OpError> {
    let assets = tx.open_table(ASSETS)?;
    if let Some(bytes) = assets.get((owner.as_str(), asset_id.as_str()))? {
        let asset: Asset = decode_as("assets", bytes.value())?;
        if asset.mirror.is_some() {
            return Err(OpError::Forbidden(Rule::MirrorReadOnly {
                asset_id: asset_id.clone(),
                action: "share",
            }));
        }
        return Ok(asset);
    }
    Err(not_owned(
        tx,
        owner,
        asset_id,
        "share",
        format!("asset {asset_id}"),
    ))
}

/// Whether `account` sees an asset as `asset_id` through a grant: a shared asset it does
/// not own, whose id it cannot take for an asset of its own.
pub(crate) fn sees_shared(
    tx: &WriteTransaction,
    account: &AccountId,
    asset_id: &AssetId,
) -> Result<bool, StoreError> {
    Ok(tx
        .open_table(GRANT_BY_TARGET)?
        .get((account.as_str(), asset_id.as_str()))?
        .is_some())
}

/// The answer to `action` on an asset `account` does not own: 403 when it sees the asset
/// through a grant (read-only to it), else 404 naming `what`.
pub(crate) fn not_owned(
    tx: &WriteTransaction,
    account: &AccountId,
    asset_id: &AssetId,
    action: &'static str,
    what: String,
) -> OpError {
    match sees_shared(tx, account, asset_id) {
        Ok(true) => OpError::Forbidden(Rule::SharedReadOnly {
            asset_id: asset_id.clone(),
            action,
        }),
        Ok(false) => OpError::not_found(what),
        Err(error) => error.into(),
    }
}

fn grant_by_pair(
    tx: &WriteTransaction,
    asset_key: u64,
    target: &AccountId,
) -> Result<Option<Grant>, StoreError> {
    let pairs = tx.open_table(GRANT_BY_PAIR)?;
    let Some(id) = pairs.get((asset_key, target.as_str()))? else {
        return Ok(None);
    };
    get(&tx.open_table(GRANTS)?, "grants", id.value())
}

/// Grants `target` sight of each asset; all-or-nothing. Re-granting updates the window.
pub fn grant(
    tx: &WriteTransaction,
    caller: &Principal,
    request: GrantRequest,
    now: Timestamp,
) -> Result<Vec<(Grant, Change)>, OpError> {
    check_bulk("asset_ids", &request.asset_ids)?;
    let owner = &request.owner;
    let target = &request.target;
    require_on_account(tx, caller, owner, Need::ManageFleet)?;
    if target == owner {
        return Err(OpError::invalid(
            "account_id",
            "is the owner itself; grant to another account",
        ));
    }
    // The caller's own assets first: asking about assets it does not have is a 404
    // whatever the target, so a stranger learns nothing from the reach rule below.
    for asset_id in &request.asset_ids {
        owned_asset(tx, owner, asset_id)?;
    }
    let partnership = reach(tx, owner, target)?;
    let mut outcomes = Vec::with_capacity(request.asset_ids.len());
    for asset_id in &request.asset_ids {
        let asset = owned_asset(tx, owner, asset_id)?;
        let existing = grant_by_pair(tx, asset.key, target)?;
        let from = request
            .from
            .or(existing.as_ref().map(|grant| grant.from))
            .unwrap_or(now);
        check_grant(
            tx,
            (from, request.until),
            now,
            target,
            asset_id,
            existing.is_some(),
        )?;
        let (grant, change) = match existing {
            Some(old) if old.from == from && old.until == request.until => (old, Change::Unchanged),
            Some(old) => {
                remove_deadlines(tx, &old)?;
                let updated = Grant {
                    from,
                    until: request.until,
                    partnership: partnership.clone(),
                    ..old
                };
                (updated, Change::Updated)
            }
            None => {
                let window = (from, request.until);
                let created = new_grant(owner, &asset, target, window, partnership.clone(), now);
                (created, Change::Created)
            }
        };
        if change != Change::Unchanged {
            write_grant_rows(tx, &grant, now)?;
            let action = if change == Change::Created {
                "grant.create"
            } else {
                "grant.update"
            };
            audit_grant(
                tx,
                Who::Principal(caller),
                &grant,
                action,
                &window_text(&grant),
                now,
            )?;
        }
        outcomes.push((grant, change));
    }
    Ok(outcomes)
}

/// A grant's window and target are acceptable: `until` after `from` and in the future, the
/// target has no asset of its own with this id and (for a new grant) sees no other asset
/// under it.
fn check_grant(
    tx: &WriteTransaction,
    (from, until): (Timestamp, Option<Timestamp>),
    now: Timestamp,
    target: &AccountId,
    asset_id: &AssetId,
    exists: bool,
) -> Result<(), OpError> {
    if let Some(until) = until {
        // The future first: with no `from` given, `from` is now, and "after from" would
        // name a field the caller never sent.
        if until <= now {
            return Err(OpError::invalid("until", "must be in the future"));
        }
        if until <= from {
            return Err(OpError::invalid("until", "must be after from"));
        }
    }
    if tx
        .open_table(ASSETS)?
        .get((target.as_str(), asset_id.as_str()))?
        .is_some()
    {
        return Err(OpError::Conflict(format!(
            "account {target} has its own asset {asset_id}; an account knows each asset id once"
        )));
    }
    if !exists
        && tx
            .open_table(GRANT_BY_TARGET)?
            .get((target.as_str(), asset_id.as_str()))?
            .is_some()
    {
        return Err(OpError::Conflict(format!(
            "account {target} already sees another asset as {asset_id}"
        )));
    }
    Ok(())
}

/// A new grant of `asset` (owned by `owner`) to `target` over `(from, until)`.
fn new_grant(
    owner: &AccountId,
    asset: &Asset,
    target: &AccountId,
    (from, until): (Timestamp, Option<Timestamp>),
    partnership: Option<PartnershipId>,
    now: Timestamp,
) -> Grant {
    Grant {
        id: GrantId::generate("grt"),
        owner_account: owner.clone(),
        asset_id: asset.id.clone(),
        asset_key: asset.key,
        target: target.clone(),
        from,
        until,
        partnership,
        created_at: now,
    }
}

fn window_text(grant: &Grant) -> String {
    match grant.until {
        Some(until) => format!("[{}, {})", grant.from, until),
        None => format!("[{}, permanent)", grant.from),
    }
}

fn audit_grant(
    tx: &WriteTransaction,
    who: Who<'_>,
    grant: &Grant,
    action: &str,
    detail: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let removal = action != "grant.create" && action != "grant.update";
    for account in [&grant.owner_account, &grant.target] {
        audit(
            tx,
            who,
            AuditNote {
                account_id: Some(account),
                action,
                target: grant.id.to_string(),
                before: removal.then(|| format!("{} -> {}", grant.asset_id, grant.target)),
                after: (!removal)
                    .then(|| format!("{} -> {} {detail}", grant.asset_id, grant.target)),
            },
            now,
        )?;
    }
    Ok(())
}

fn write_grant_rows(
    tx: &WriteTransaction,
    grant: &Grant,
    now: Timestamp,
) -> Result<(), StoreError> {
    tx.open_table(GRANTS)?
        .insert(grant.id.as_str(), codec::encode(grant).as_slice())?;
    tx.open_table(GRANT_BY_PAIR)?
        .insert((grant.asset_key, grant.target.as_str()), grant.id.as_str())?;
    tx.open_table(GRANT_BY_TARGET)?.insert(
        (grant.target.as_str(), grant.asset_id.as_str()),
        grant.id.as_str(),
    )?;
    let mut deadlines = tx.open_table(GRANT_DEADLINES)?;
    if grant.from > now {
        deadlines.insert((grant.from.0, grant.id.as_str()), ())?;
    }
    if let Some(until) = grant.until {
        deadlines.insert((until.0, grant.id.as_str()), ())?;
    }
    Ok(())
}

fn remove_deadlines(tx: &WriteTransaction, grant: &Grant) -> Result<(), StoreError> {
    let mut deadlines = tx.open_table(GRANT_DEADLINES)?;
    deadlines.remove((grant.from.0, grant.id.as_str()))?;
    if let Some(until) = grant.until {
        deadlines.remove((until.0, grant.id.as_str()))?;
    }
    Ok(())
}

fn delete_grant_rows(tx: &WriteTransaction, grant: &Grant) -> Result<(), StoreError> {
    remove_deadlines(tx, grant)?;
    tx.open_table(GRANTS)?.remove(grant.id.as_str())?;
    tx.open_table(GRANT_BY_PAIR)?
        .remove((grant.asset_key, grant.target.as_str()))?;
    tx.open_table(GRANT_BY_TARGET)?
        .remove((grant.target.as_str(), grant.asset_id.as_str()))?;
    Ok(())
}

/// Ends every grant of the asset with internal key `asset_key` (its deletion), audited as
/// `grant.remove` like any removal. The caller checked the right to.
pub(crate) fn end_grants_of_asset(
    tx: &WriteTransaction,
    caller: &Principal,
    asset_key: u64,
    now: Timestamp,
) -> Result<Vec<Grant>, StoreError> {
    let mut ids = Vec::new();
    for row in tx
        .open_table(GRANT_BY_PAIR)?
        .range((asset_key, "")..(asset_key + 1, ""))?
    {
        ids.push(row?.1.value().to_owned());
    }
    let mut ended = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(grant) = get::<Grant>(&tx.open_table(GRANTS)?, "grants", &id)? else {
            continue;
        };
        delete_grant_rows(tx, &grant)?;
        audit_grant(tx, Who::Principal(caller), &grant, "grant.remove", "", now)?;
        ended.push(grant);
    }
    Ok(ended)
}

/// Bulk removal by asset and grantee; all-or-nothing.
pub fn remove_grants(
    tx: &WriteTransaction,
    caller: &Principal,
    owner: &AccountId,
    target: &AccountId,
    asset_ids: &[AssetId],
    now: Timestamp,
) -> Result<Vec<Grant>, OpError> {
    check_bulk("asset_ids", asset_ids)?;
    require_on_account(tx, caller, owner, Need::ManageFleet)?;
    let mut removed = Vec::with_capacity(asset_ids.len());
    for asset_id in asset_ids {
        let asset = owned_asset(tx, owner, asset_id)?;
        let grant = grant_by_pair(tx, asset.key, target)?.ok_or_else(|| {
            OpError::not_found(format!("grant of asset {asset_id} to account {target}"))
        })?;
        delete_grant_rows(tx, &grant)?;
        audit_grant(tx, Who::Principal(caller), &grant, "grant.remove", "", now)?;
        removed.push(grant);
    }
    Ok(removed)
}

/// Removes one grant. Its owner's admins and fleet admins may; the grantee sees the grant
/// but may not remove it (403); anyone else gets 404.
pub fn delete_grant(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &GrantId,
    now: Timestamp,
) -> Result<Grant, OpError> {
    let what = format!("grant {id}");
    let grant: Grant = get(&tx.open_table(GRANTS)?, "grants", id.as_str())?
        .ok_or_else(|| OpError::not_found(&what))?;
    {
        let accounts = tx.open_table(ACCOUNTS)?;
        let owner_chain = chain(&accounts, &grant.owner_account)?.unwrap_or_default();
        if policy::role_in(caller, &owner_chain).is_some() {
            policy::require(caller, &owner_chain, Need::ManageFleet, &what)?;
        } else {
            let target_chain = chain(&accounts, &grant.target)?.unwrap_or_default();
            if policy::role_in(caller, &target_chain).is_some() {
                return Err(OpError::Forbidden(Rule::GrantRemovedByOwner));
            }
            return Err(OpError::not_found(what));
        }
    }
    delete_grant_rows(tx, &grant)?;
    audit_grant(tx, Who::Principal(caller), &grant, "grant.remove", "", now)?;
    Ok(grant)
}

/// The next instant a grant starts or ends, for the scheduler's sleep.
pub fn next_deadline(rtx: &redb::ReadTransaction) -> Result<Option<Timestamp>, StoreError> {
    crate::store::first_deadline(rtx, GRANT_DEADLINES)
}

/// Applies every start and end due at `now`, exactly as an HTTP call would (an ended grant
/// is removed and audited). Returns the grants whose audiences changed.
pub fn apply_due(tx: &WriteTransaction, now: Timestamp) -> Result<Vec<Grant>, StoreError> {
    let due = crate::store::due_deadlines(tx, GRANT_DEADLINES, now)?;
    let mut changed = Vec::new();
    for (at, id) in due {
        tx.open_table(GRANT_DEADLINES)?.remove((at, id.as_str()))?;
        let Some(grant) = get::<Grant>(&tx.open_table(GRANTS)?, "grants", &id)? else {
            continue;
        };
        if grant.until.is_some_and(|until| until <= now) {
            delete_grant_rows(tx, &grant)?;
            audit_grant(tx, Who::Scheduler, &grant, "grant.expire", "", now)?;
        }
        changed.push(grant);
    }
    Ok(changed)
}

/// Partnerships the caller may list: all for platform admins, else those of accounts it
/// administers.
pub fn list_partnerships(
    rtx: &redb::ReadTransaction,
    caller: &Principal,
) -> Result<Vec<Partnership>, StoreError> {
    let accounts = rtx.open_table(ACCOUNTS)?;
    let partnerships = rtx.open_table(PARTNERSHIPS)?;
    let mut out = Vec::new();
    for row in partnerships.iter()? {
        let partnership: Partnership = decode_as("partnerships", row?.1.value())?;
        let visible = caller.is_staff(StaffRole::PlatformAdmin)
            || [&partnership.account_a, &partnership.account_b]
                .into_iter()
                .any(|account| {
                    chain(&accounts, account)
                        .ok()
                        .flatten()
                        .is_some_and(|chain| {
                            policy::require(caller, &chain, Need::Administer, "").is_ok()
                        })
                });
        if visible {
            out.push(partnership);
        }
    }
    Ok(out)
}
