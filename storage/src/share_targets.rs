//! The accounts an owner may share an asset with (rule 2's reach), by name: the console's
//! "pick the account" step offers exactly these, so a grant it proposes is never refused
//! for reach.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadTransaction, ReadableTable};

use crate::error::OpError;
use crate::ids::AccountId;
use crate::model::{Account, Partnership, Principal};
use crate::policy::Need;
use crate::read::require_in;
use crate::store::decode_as;
use crate::tables::{ACCOUNTS, PARTNERSHIPS};

/// One account a grant of the owner's may go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareTarget {
    pub account: Account,
    /// Why it is in reach: `None` for a descendant of the owner, else the partnership.
    pub partnership: Option<String>,
}

/// The owner's descendants and partners whose name contains `q` (any case), in id order.
/// Refused (404) unless the caller manages the owner's fleet (rule 1).
pub fn share_targets(
    rtx: &ReadTransaction,
    caller: &Principal,
    owner: &AccountId,
    q: Option<&str>,
) -> Result<Vec<ShareTarget>, OpError> {
    let accounts = rtx.open_table(ACCOUNTS)?;
    require_in(
        &accounts,
        caller,
        owner,
        Need::ManageFleet,
        &format!("account {owner}"),
    )?;
    let mut all: BTreeMap<AccountId, Account> = BTreeMap::new();
    for row in accounts.iter()? {
        let account: Account = decode_as("accounts", row?.1.value())?;
        all.insert(account.id.clone(), account);
    }
    let mut targets: BTreeMap<AccountId, Option<String>> = BTreeMap::new();
    for partnership in rtx.open_table(PARTNERSHIPS)?.iter()? {
        let partnership: Partnership = decode_as("partnerships", partnership?.1.value())?;
        let other = match (&partnership.account_a, &partnership.account_b) {
            (a, b) if a == owner => b,
            (a, b) if b == owner => a,
            _ => continue,
        };
        targets.insert(other.clone(), Some(partnership.id.to_string()));
    }
    // A descendant needs no partnership, whatever else it has.
    for descendant in descendants(&all, owner) {
        targets.insert(descendant, None);
    }
    Ok(targets
        .into_iter()
        .filter_map(|(id, partnership)| {
            let account = all.get(&id)?.clone();
            let found = q.is_none_or(|q| crate::paging::matches(q, &account.name));
            found.then_some(ShareTarget {
                account,
                partnership,
            })
        })
        .collect())
}

/// Every account below `root`, at any depth (a corrupt parent loop ends the walk): one
/// pass to index children by parent, then a walk down from `root`.
fn descendants(all: &BTreeMap<AccountId, Account>, root: &AccountId) -> BTreeSet<AccountId> {
    let mut children: BTreeMap<&AccountId, Vec<&AccountId>> = BTreeMap::new();
    for account in all.values() {
        if let Some(parent) = &account.parent_id {
            children.entry(parent).or_default().push(&account.id);
        }
    }
    let mut found = BTreeSet::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for child in children.get(parent).into_iter().flatten() {
            if found.insert((*child).clone()) {
                frontier.push(child);
            }
        }
    }
    found.remove(root);
    found
}
