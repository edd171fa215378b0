//! An account's customers: whom a key is for (Trackunit's "customer" on a key, e.g. the
//! rental client a machine is out with). A customer is a name the account keeps once and
//! picks from; a key may name one, set at creation and changed later (rule 6: after
//! creation only `valid_to`, the description and the customer change).
//!
//! The link lives in a table of its own ([`KEY_CUSTOMERS`]), not in the postcard-encoded
//! key record, so keys written before customers existed still decode; `crate::keys` fills
//! [`crate::keys::Key::customer_id`] from it when it loads a key.
//!
//! Rules: managing customers is a fleet change (admin or fleet admin, rule 1), reading
//! them is reading access data (not viewers), a name is unique in its account (a picker
//! shows names), and a customer that keys still name is not deleted (409 naming them).

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::error::{OpError, StoreError};
use crate::ids::AccountId;
use crate::model::Principal;
use crate::ops::{audit_by, name_field};
use crate::policy::Need;
use crate::read::{require_in, require_on_account};
use crate::store::{decode_as, get, put};
use crate::tables::*;
use crate::time::Timestamp;

/// A customer as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// `cus` and 16 hex digits.
    pub id: String,
    pub account_id: AccountId,
    pub name: String,
    pub created_at: Timestamp,
}

/// Creates a customer of `account` named `name` (trimmed, unique in the account).
/// Audited as `customer.create`.
///
/// # Errors
/// 404 for an account the caller cannot see, 403 by rule 1, 422 naming `name`, 409 for a
/// name the account already has.
pub fn create(
    tx: &WriteTransaction,
    caller: &Principal,
    account: &AccountId,
    name: &str,
    now: Timestamp,
) -> Result<Customer, OpError> {
    require_on_account(tx, caller, account, Need::ManageFleet)?;
    let name = name_field("name", name)?;
    unique_name(tx, account, &name, None)?;
    let customer = Customer {
        id: crate::ids::generate("cus"),
        account_id: account.clone(),
        name,
        created_at: now,
    };
    put(&mut tx.open_table(CUSTOMERS)?, &customer.id, &customer)?;
    note(tx, caller, &customer, "customer.create", None, now)?;
    Ok(customer)
}

/// Renames customer `id`. Audited as `customer.rename`.
///
/// # Errors
/// As [`create`]; 404 for a customer of an account the caller cannot see.
pub fn rename(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &str,
    name: &str,
    now: Timestamp,
) -> Result<Customer, OpError> {
    let mut customer = load(tx, caller, id, Need::ManageFleet)?;
    let name = name_field("name", name)?;
    unique_name(tx, &customer.account_id, &name, Some(id))?;
    let before = std::mem::replace(&mut customer.name, name);
    put(&mut tx.open_table(CUSTOMERS)?, &customer.id, &customer)?;
    note(tx, caller, &customer, "customer.rename", Some(before), now)?;
    Ok(customer)
}

/// Deletes customer `id`. Audited as `customer.delete`.
///
/// # Errors
/// 409 naming the keys that still name it; otherwise as [`rename`].
pub fn delete(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &str,
    now: Timestamp,
) -> Result<(), OpError> {
    let customer = load(tx, caller, id, Need::ManageFleet)?;
    let mut naming = Vec::new();
    for row in tx.open_table(KEY_CUSTOMERS)?.iter()? {
        let (key, named) = row?;
        if named.value() == id {
            naming.push(key.value().to_owned());
        }
    }
    if !naming.is_empty() {
        return Err(OpError::Conflict(format!(
            "customer {id} is named by keys {}: give them another customer or none first",
            naming.join(", ")
        )));
    }
    tx.open_table(CUSTOMERS)?.remove(id)?;
    note(tx, caller, &customer, "customer.delete", None, now)?;
    Ok(())
}

/// The account's customers whose name contains `q` (any case), by id.
///
/// # Errors
/// 404 for an account the caller cannot see; 403 for a viewer (rule 1: access data).
pub fn list(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: &AccountId,
    q: Option<&str>,
) -> Result<Vec<Customer>, OpError> {
    require_on_account(rtx, caller, account, Need::ReadAccessData)?;
    let wanted = q.map(str::to_lowercase);
    let mut out = Vec::new();
    for row in rtx.open_table(CUSTOMERS)?.iter()? {
        let customer: Customer = decode_as("customers", row?.1.value())?;
        let matches = wanted
            .as_deref()
            .is_none_or(|q| customer.name.to_lowercase().contains(q));
        if &customer.account_id == account && matches {
            out.push(customer);
        }
    }
    Ok(out)
}

/// Checks that `id` is a customer of `account`, for a key naming it.
///
/// # Errors
/// 422 naming `customer_id` otherwise (the key's account is known; a customer of another
/// account is as unknown as none).
pub fn check_for_key(tx: &WriteTransaction, account: &AccountId, id: &str) -> Result<(), OpError> {
    let found: Option<Customer> = get(&tx.open_table(CUSTOMERS)?, "customers", id)?;
    match found {
        Some(customer) if &customer.account_id == account => Ok(()),
        _ => Err(OpError::invalid(
            "customer_id",
            format!("no customer {id} in account {account}"),
        )),
    }
}

/// The customer key `key_id` names, if any.
pub fn of_key(
    table: &impl ReadableTable<&'static str, &'static str>,
    key_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(table.get(key_id)?.map(|named| named.value().to_owned()))
}

/// Records (or, with `None`, removes) the customer key `key_id` names.
pub fn link(tx: &WriteTransaction, key_id: &str, customer: Option<&str>) -> Result<(), StoreError> {
    let mut table = tx.open_table(KEY_CUSTOMERS)?;
    match customer {
        Some(customer) => table.insert(key_id, customer)?,
        None => table.remove(key_id)?,
    };
    Ok(())
}

fn load(
    tx: &WriteTransaction,
    caller: &Principal,
    id: &str,
    need: Need,
) -> Result<Customer, OpError> {
    let what = format!("customer {id}");
    let customer: Customer = get(&tx.open_table(CUSTOMERS)?, "customers", id)?
        .ok_or_else(|| OpError::not_found(&what))?;
    require_in(
        &tx.open_table(ACCOUNTS)?,
        caller,
        &customer.account_id,
        need,
        &what,
    )?;
    Ok(customer)
}

fn unique_name(
    tx: &WriteTransaction,
    account: &AccountId,
    name: &str,
    except: Option<&str>,
) -> Result<(), OpError> {
    for row in tx.open_table(CUSTOMERS)?.iter()? {
        let other: Customer = decode_as("customers", row?.1.value())?;
        let same = &other.account_id == account && other.name.eq_ignore_ascii_case(name);
        if same && Some(other.id.as_str()) != except {
            return Err(OpError::Conflict(format!(
                "account {account} already has customer {} named {name:?}",
                other.id
            )));
        }
    }
    Ok(())
}

fn note(
    tx: &WriteTransaction,
    caller: &Principal,
    customer: &Customer,
    action: &str,
    before: Option<String>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let change = (before, Some(customer.name.clone()));
    let target = customer.id.clone();
    audit_by(
        tx,
        caller,
        (&customer.account_id, action),
        target,
        change,
        now,
    )
}
