//! Fault injection for tests: a storage backend that fails as a full disk would.
//!
//! A real full disk cannot be made on CI without root (tmpfs, a loop device), so tests
//! open the store over [`FaultyBackend`], redb's own file backend behind a
//! [`FaultSwitch`]. Production never builds one: only [`crate::Store::open_with_faults`]
//! does, and the gateway calls it only when an embedder (a test) put a switch in its
//! config; no flag, variable or file setting reaches it.

use std::fs::OpenOptions;
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// Shared between a test and the store's backend. While the disk is "full", every write,
/// resize and sync fails with `StorageFull` (ENOSPC); reads still work, as on a real full
/// disk. Clones share one switch.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch(Arc<AtomicBool>);

impl FaultSwitch {
    /// A switch with the disk not full.
    pub fn new() -> FaultSwitch {
        FaultSwitch::default()
    }

    /// From now on writes fail with `StorageFull`.
    pub fn fill_disk(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// From now on writes succeed again (space came back).
    pub fn free_disk(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    pub fn is_full(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn check(&self) -> io::Result<()> {
        if self.is_full() {
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (injected by a test)",
            ))
        } else {
            Ok(())
        }
    }
}

/// redb's file backend, failing writes while its [`FaultSwitch`] says the disk is full.
/// Locks and reads go straight to the file backend, so "Database already open" behaves as
/// in production.
#[derive(Debug)]
pub(crate) struct FaultyBackend {
    inner: FileBackend,
    faults: FaultSwitch,
}

impl FaultyBackend {
    /// Opens (or creates) the file as [`redb::Builder::create`] does.
    pub(crate) fn open(path: &Path, faults: FaultSwitch) -> Result<Self, redb::DatabaseError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(FaultyBackend {
            inner: FileBackend::new(file)?,
            faults,
        })
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.faults.check()?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.faults.check()?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.faults.check()?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
