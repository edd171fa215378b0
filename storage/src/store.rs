//! Opening the database, creating its tables, bootstrapping an empty one, and the small
//! record helpers every query and operation uses.
//!
//! After a disk failure (disk full, an I/O error) redb refuses every call until the database
//! is closed and opened again; [`Store::reopen`] does that in place, for every clone, and
//! [`Store::health`] is what the store writer last found (see `actors::writer`).
//!
//! Who writes: exactly one owner of write transactions at a time (the actors crate's store
//! writer thread). This type hands out transactions; it does not decide who may call
//! [`Store::begin_write`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockWriteGuard};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{de::DeserializeOwned, Serialize};

use crate::codec;
use crate::error::{OpError, StoreError};
use crate::faults::{FaultSwitch, FaultyBackend};
use crate::ids::PrincipalId;
use crate::model::{Principal, PrincipalKind, StaffRole};
use crate::tables::*;
use crate::time::Timestamp;
use crate::token;

/// redb's page cache. Its default (1 GiB) let a gateway's memory grow with its history;
/// 256 MiB holds the hot part (recent telemetry, the control plane) with a bound an
/// operator can plan for.
pub const CACHE_BYTES: usize = 256 * 1024 * 1024;

/// The database file, reopened in place after a disk failure (see [`Store::reopen`]).
/// Clones share one database.
#[derive(Clone, Debug)]
pub struct Store {
    shared: Arc<Shared>,
}

/// What every clone of a [`Store`] shares. Fields drop in order, so the sentinel that
/// [`StoreWatch`] follows goes only after the database's own drop has closed the file and
/// released its lock. Following the database's `Arc` instead was a race: its count reaches
/// zero before that drop has finished, and a restart could still find the file locked.
#[derive(Debug)]
struct Shared {
    /// The open database; `None` between closing a failed one and opening it again.
    ///
    /// A lock, not an `Arc<Database>` handed to each reader: a `ReadTransaction` or
    /// `WriteTransaction` does not borrow its `Database`, so a reader holds this lock only
    /// while `begin_read` runs, never across a request. A reopen therefore drains every
    /// holder of the old `Database` by taking the write lock once, and the old one is
    /// certainly dropped (its file lock released) before the new one opens; redb refuses a
    /// second open of a file this process holds ("Database already open"). Transactions
    /// begun on the old one fail from then on, as they already did after its I/O error.
    db: RwLock<Option<Database>>,
    path: PathBuf,
    /// Tests only: makes the backend fail as a full disk would (see [`crate::faults`]).
    faults: Option<FaultSwitch>,
    /// What `/healthz` reports; set by the store writer, which sees every write fail.
    health: Mutex<Health>,
    closed: Arc<()>,
}

/// Whether the store can write, as the store writer last found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// A write failed (disk full, an I/O error) and the store writer is reopening the
    /// database with backoff until a write succeeds. `detail` is the last error; `since`
    /// the first failure of this outage.
    Unavailable {
        detail: String,
        since: Timestamp,
    },
}

impl Store {
    /// Opens (or creates) the database file and makes sure every table exists, so readers
    /// never meet a missing table. Errors: the file cannot be opened or locked (another
    /// process has it), or is not a redb database.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_inner(path, None)
    }

    /// [`Store::open`] over a backend that fails writes while `faults` says the disk is
    /// full. Tests only: it is how they make a disk-full failure without root.
    pub fn open_with_faults(path: &Path, faults: FaultSwitch) -> Result<Store, StoreError> {
        Self::open_inner(path, Some(faults))
    }

    fn open_inner(path: &Path, faults: Option<FaultSwitch>) -> Result<Store, StoreError> {
        let db = open_database(path, faults.as_ref())?;
        Ok(Store {
            shared: Arc::new(Shared {
                db: RwLock::new(Some(db)),
                path: path.to_owned(),
                faults,
                health: Mutex::new(Health::Ok),
                closed: Arc::new(()),
            }),
        })
    }

    /// A handle that tells when every clone of this store is gone, which is when the file
    /// lock is released and the database may be opened again.
    pub fn watch(&self) -> StoreWatch {
        StoreWatch(Arc::downgrade(&self.shared.closed))
    }

    /// Errors: [`StoreError::Unavailable`] while a reopen has not succeeded yet.
    pub fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        let slot = self
            .shared
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(Self::open_db(&slot)?.begin_read()?)
    }

    /// Only the store writer calls this (see the module docs). Errors as
    /// [`Store::begin_read`].
    pub fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        let slot = self
            .shared
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(Self::open_db(&slot)?.begin_write()?)
    }

    /// Runs `op` in a write transaction of its own, committed when `op` succeeds and
    /// dropped (nothing of it kept) when it refuses: one operation outside a running
    /// gateway (the offline token reset, tests). Inside one, the store writer's control
    /// jobs do the same and also count the commit.
    pub fn transact<R>(
        &self,
        op: impl FnOnce(&WriteTransaction) -> Result<R, OpError>,
    ) -> Result<R, OpError> {
        let tx = self.begin_write()?;
        let result = op(&tx);
        if result.is_ok() {
            tx.commit().map_err(StoreError::from)?;
        }
        result
    }

    fn open_db(slot: &Option<Database>) -> Result<&Database, StoreError> {
        slot.as_ref().ok_or_else(|| {
            StoreError::Unavailable("the database is being reopened after a disk failure".into())
        })
    }

    /// Closes the database and opens it again: after an I/O error redb answers
    /// `PreviousIo` to every call until then, and the open recovers the file to its last
    /// commit. Only the store writer calls this, with no write transaction open.
    ///
    /// Errors: the open failed (for example the disk is still full and the recovery needs
    /// to write); the store then stays closed, every transaction answering
    /// [`StoreError::Unavailable`], until a later call succeeds.
    pub fn reopen(&self) -> Result<(), StoreError> {
        // Dropped with the write lock held: nobody can begin a transaction on it meanwhile.
        drop(self.slot().take());
        let db = open_database(&self.shared.path, self.shared.faults.as_ref())?;
        *self.slot() = Some(db);
        Ok(())
    }

    /// Compacts the database file (redb gives the free pages at its end back to the file
    /// system) and answers whether anything was compacted. Only the store writer calls
    /// this, with no write transaction open. It holds the database to itself as
    /// [`Store::reopen`] does: new readers wait for it, and a reader still holding a
    /// transaction begun earlier makes it refuse (`TransactionInProgress`) rather than wait,
    /// so the caller simply tries again at its next turn.
    ///
    /// Errors: a transaction is open, the database is being reopened, or an I/O failure.
    pub fn compact(&self) -> Result<bool, StoreError> {
        let mut slot = self.slot();
        let db = slot.as_mut().ok_or_else(|| {
            StoreError::Unavailable("the database is being reopened after a disk failure".into())
        })?;
        Ok(db.compact()?)
    }

    fn slot(&self) -> RwLockWriteGuard<'_, Option<Database>> {
        self.shared
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The database file's size on disk in bytes, free pages included (what
    /// `fleetgate_store_bytes` shows). Errors: the file cannot be read.
    pub fn file_bytes(&self) -> std::io::Result<u64> {
        std::fs::metadata(&self.shared.path).map(|meta| meta.len())
    }

    /// A small durable write (a counter bump): whether the disk takes writes again, when a
    /// reopen had nothing else to write. Errors: as any commit.
    pub fn probe(&self) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        next_counter(&tx, "store_probe")?;
        tx.commit()?;
        Ok(())
    }

    /// What `/healthz` reports.
    pub fn health(&self) -> Health {
        self.health_slot().clone()
    }

    /// Records a write failure. The first failure of an outage sets `since`; later ones
    /// only replace `detail`.
    pub fn mark_unavailable(&self, detail: String, now: Timestamp) {
        let mut health = self.health_slot();
        let since = match &*health {
            Health::Unavailable { since, .. } => *since,
            Health::Ok => now,
        };
        *health = Health::Unavailable { detail, since };
    }

    /// Records that a write succeeded again.
    pub fn mark_healthy(&self) {
        *self.health_slot() = Health::Ok;
    }

    fn health_slot(&self) -> MutexGuard<'_, Health> {
        self.shared
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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

/// Opens (or creates) the file, over the fault-injecting backend when a test gave a switch,
/// and makes sure every table exists.
fn open_database(path: &Path, faults: Option<&FaultSwitch>) -> Result<Database, StoreError> {
    let mut builder = Database::builder();
    builder.set_cache_size(CACHE_BYTES);
    let db = match faults {
        None => builder.create(path)?,
        Some(faults) => builder.create_with_backend(FaultyBackend::open(path, faults.clone())?)?,
    };
    let tx = db.begin_write()?;
    {
        tx.open_table(ACCOUNTS)?;
        tx.open_table(PRINCIPALS)?;
        tx.open_table(TOKENS)?;
        tx.open_table(DEVICES)?;
        tx.open_table(ASSETS)?;
        tx.open_table(TELEMETRY)?;
        tx.open_table(TELEMETRY_CHUNKS)?;
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
        tx.open_table(PASSWORDS)?;
        tx.open_table(SESSIONS)?;
        tx.open_table(PASSWORD_INVITATIONS)?;
        tx.open_table(CUSTOMERS)?;
        tx.open_table(KEY_CUSTOMERS)?;
        tx.open_table(RETIRED_ASSETS)?;
        tx.open_table(KEY_NOTICES)?;
        tx.open_table(TELEMETRY_RETENTION)?;
        tx.open_table(ARRIVALS)?;
        tx.open_table(UNIT_STAMPS)?;
    }
    tx.commit()?;
    Ok(db)
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

/// Every record of `table` (named `name` in a decoding error) that `keep` keeps, in key
/// order: the one full scan the small tables (profiles, keys, the outbox, certificates...)
/// are filtered by.
pub(crate) fn rows_where<K: redb::Key + 'static, T: DeserializeOwned>(
    table: &impl ReadableTable<K, &'static [u8]>,
    name: &'static str,
    mut keep: impl FnMut(&T) -> bool,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for row in table.iter()? {
        let record: T = decode_as(name, row?.1.value())?;
        if keep(&record) {
            out.push(record);
        }
    }
    Ok(out)
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
