//! Opening the database, creating its tables, bootstrapping an empty one, and the small
//! record helpers every query and operation uses.
//!
//! Who writes: exactly one owner of write transactions at a time (the actors crate's store
//! writer thread). This type hands out transactions; it does not decide who may call
//! [`Store::begin_write`].

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{de::DeserializeOwned, Serialize};

use crate::codec;
use crate::error::StoreError;
use crate::ids::PrincipalId;
use crate::model::{Principal, PrincipalKind, StaffRole};
use crate::tables::*;
use crate::time::Timestamp;
use crate::token;

/// redb's page cache. Its default (1 GiB) let a gateway's memory grow with its history;
/// 256 MiB holds the hot part (recent telemetry, the control plane) with a bound an
/// operator can plan for.
pub const CACHE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Store {
    db: Arc<Open>,
}

/// The open database and a sentinel that [`StoreWatch`] follows. Fields drop in order, so
/// the sentinel goes only after the database's own drop has closed the file and released
/// its lock. Following the database's `Arc` instead was a race: its count reaches zero
/// before that drop has finished, and a restart could still find the file locked.
#[derive(Debug)]
struct Open {
    db: Database,
    closed: Arc<()>,
}

impl Store {
    /// Opens (or creates) the database file and makes sure every table exists, so readers
    /// never meet a missing table.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)?;
        let tx = db.begin_write()?;
        {
            tx.open_table(ACCOUNTS)?;
            tx.open_table(PRINCIPALS)?;
            tx.open_table(TOKENS)?;
            tx.open_table(DEVICES)?;
            tx.open_table(ASSETS)?;
            tx.open_table(TELEMETRY)?;
            tx.open_table(DEVICE_STATUS)?;
            tx.open_table(COUNTERS)?;
            tx.open_table(AUDIT)?;
            tx.open_table(PARTNERSHIPS)?;
            tx.open_table(PARTNER_PAIRS)?;
            tx.open_table(GRANTS)?;
            tx.open_table(GRANT_BY_PAIR)?;
            tx.open_table(GRANT_BY_TARGET)?;
            tx.open_table(GRANT_DEADLINES)?;
            tx.open_table(SUPPORT)?;
            tx.open_table(SUPPORT_ACTIVE)?;
            tx.open_table(SUPPORT_DEADLINES)?;
            tx.open_table(PROFILES)?;
            tx.open_table(OPERATORS)?;
            tx.open_table(OUTBOX)?;
            tx.open_table(KEYS)?;
            tx.open_table(KEYS_BY_ASSET)?;
            tx.open_table(KEYS_BY_OPERATOR)?;
            tx.open_table(KEY_VERSIONS)?;
            tx.open_table(KEY_DEADLINES)?;
            tx.open_table(ACCESS_EVENTS)?;
            tx.open_table(CERTIFICATES)?;
            tx.open_table(CERTIFICATES_BY_TENANT)?;
            tx.open_table(DISABLED_USERS)?;
            tx.open_table(REVOKED_BEFORE)?;
            tx.open_table(LAST_USED)?;
        }
        tx.commit()?;
        Ok(Store {
            db: Arc::new(Open {
                db,
                closed: Arc::new(()),
            }),
        })
    }

    /// A handle that tells when every clone of this store is gone, which is when the file
    /// lock is released and the database may be opened again.
    pub fn watch(&self) -> StoreWatch {
        StoreWatch(Arc::downgrade(&self.db.closed))
    }

    pub fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.db.begin_read()?)
    }

    /// Only the store writer calls this (see the module docs).
    pub fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        Ok(self.db.db.begin_write()?)
    }

    /// On an empty store, creates the first `platform_admin` and returns its token (shown
    /// once; only its hash is kept). On a store that has principals, returns `None`.
    pub fn bootstrap(&self, now: Timestamp) -> Result<Option<String>, StoreError> {
        let tx = self.begin_write()?;
        let token = {
            let mut principals = tx.open_table(PRINCIPALS)?;
            if principals.first()?.is_some() {
                None
            } else {
                let admin = Principal {
                    id: PrincipalId::generate("stf"),
                    name: "bootstrap platform admin".into(),
                    kind: PrincipalKind::Staff {
                        role: StaffRole::PlatformAdmin,
                    },
                    created_at: now,
                    support: Vec::new(),
                };
                put(&mut principals, admin.id.as_str(), &admin)?;
                let token = token::generate();
                tx.open_table(TOKENS)?
                    .insert(token::hash(&token).as_slice(), admin.id.as_str())?;
                Some(token)
            }
        };
        tx.commit()?;
        Ok(token)
    }
}

/// See [`Store::watch`].
#[derive(Debug, Clone)]
pub struct StoreWatch(std::sync::Weak<()>);

impl StoreWatch {
    pub fn is_closed(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// Reads and decodes one record by string key.
pub(crate) fn get<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &'static str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key)? {
        None => Ok(None),
        Some(guard) => codec::decode(guard.value())
            .map(Some)
            .map_err(|source| StoreError::Codec {
                table: name,
                source,
            }),
    }
}

pub(crate) fn decode_as<T: DeserializeOwned>(
    name: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    codec::decode(bytes).map_err(|source| StoreError::Codec {
        table: name,
        source,
    })
}

pub(crate) fn put<T: Serialize>(
    table: &mut redb::Table<&'static str, &'static [u8]>,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    table.insert(key, codec::encode(value).as_slice())?;
    Ok(())
}

/// Takes the next value of a named counter (starting at 1) inside the caller's transaction.
pub(crate) fn next_counter(tx: &WriteTransaction, name: &str) -> Result<u64, StoreError> {
    let mut counters = tx.open_table(COUNTERS)?;
    let next = counters.get(name)?.map(|v| v.value()).unwrap_or(0) + 1;
    counters.insert(name, next)?;
    Ok(next)
}

/// A table of `(instant ms, id) -> ()` rows: what the scheduler reads for grants, support
/// access and keys alike.
pub(crate) type Deadlines = redb::TableDefinition<'static, (u64, &'static str), ()>;

/// Every `(instant, id)` due at or before `now`, earliest first.
pub(crate) fn due_deadlines(
    tx: &WriteTransaction,
    table: Deadlines,
    now: crate::time::Timestamp,
) -> Result<Vec<(u64, String)>, StoreError> {
    let deadlines = tx.open_table(table)?;
    let mut due = Vec::new();
    for row in deadlines.range((0, "")..(now.0.saturating_add(1), ""))? {
        let (key, _) = row?;
        let (at, id) = key.value();
        due.push((at, id.to_owned()));
    }
    Ok(due)
}

/// The earliest pending instant of a deadline table.
pub(crate) fn first_deadline(
    rtx: &ReadTransaction,
    table: Deadlines,
) -> Result<Option<crate::time::Timestamp>, StoreError> {
    let deadlines = rtx.open_table(table)?;
    let first = deadlines.first()?;
    Ok(first.map(|(key, _)| crate::time::Timestamp(key.value().0)))
}
