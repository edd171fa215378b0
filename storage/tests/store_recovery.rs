//! Guards against a disk that fills up and empties again: redb answers `PreviousIo` to
//! every call after one failed write, until the database is reopened. A [`FaultSwitch`]
//! stands in for the full disk (no root, no tmpfs). What must hold: the failed commit
//! changed nothing, what was committed before survives, the reopen works in this process
//! while readers hold transactions, and the same write succeeds once space returns.

use storage::faults::FaultSwitch;
use storage::store::Health;
use storage::tables::COUNTERS;
use storage::time::Timestamp;
use storage::{Store, StoreError};

fn count(store: &Store, name: &str) -> Option<u64> {
    let rtx = store.begin_read().expect("read");
    let table = rtx.open_table(COUNTERS).expect("table");
    table.get(name).expect("get").map(|value| value.value())
}

fn write_count(store: &Store, name: &str, value: u64) -> Result<(), StoreError> {
    let tx = store.begin_write()?;
    tx.open_table(COUNTERS)?.insert(name, value)?;
    tx.commit()?;
    Ok(())
}

#[test]
fn a_full_disk_fails_writes_until_a_reopen_after_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    let disk = FaultSwitch::new();
    let store = Store::open_with_faults(&path, disk.clone()).expect("open");
    write_count(&store, "before", 1).expect("a write before the fault");

    disk.fill_disk();
    let failed = write_count(&store, "during", 2).expect_err("the disk is full");
    assert!(failed.is_io_failure(), "{failed}");
    let latched = write_count(&store, "during", 2).expect_err("redb latched the failure");
    assert!(latched.is_io_failure(), "{latched}");
    assert!(
        store.reopen().is_err(),
        "the reopen recovers the file, which needs to write"
    );
    let closed = store
        .begin_read()
        .expect_err("closed until a reopen succeeds");
    assert!(matches!(closed, StoreError::Unavailable(_)), "{closed}");

    disk.free_disk();
    store.reopen().expect("a reopen once space returned");
    assert_eq!(
        count(&store, "before"),
        Some(1),
        "committed before the fault"
    );
    assert_eq!(
        count(&store, "during"),
        None,
        "the failed commit changed nothing"
    );
    write_count(&store, "during", 2).expect("the same write, retried");
    drop(store);
    let again = Store::open(&path).expect("a later start opens the file");
    assert_eq!(count(&again, "during"), Some(2));
}

#[test]
fn a_reopen_does_not_wait_for_readers_and_clones_follow_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = FaultSwitch::new();
    let store = Store::open_with_faults(&dir.path().join("db.redb"), disk.clone()).expect("open");
    write_count(&store, "kept", 7).expect("write");
    let clone = store.clone();
    let reader = store.begin_read().expect("a reader mid-request");
    disk.fill_disk();
    assert!(write_count(&store, "lost", 1).is_err());
    disk.free_disk();
    store
        .reopen()
        .expect("the old reader does not hold the file");
    drop(reader);
    assert_eq!(
        count(&clone, "kept"),
        Some(7),
        "a clone reads the reopened file"
    );
    write_count(&clone, "after", 1).expect("and writes it");
}

#[test]
fn the_file_stays_locked_against_a_second_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    let store = Store::open_with_faults(&path, FaultSwitch::new()).expect("open");
    assert!(Store::open(&path).is_err(), "already open in this process");
    store.reopen().expect("a reopen of its own file");
    assert!(Store::open(&path).is_err(), "still locked after the reopen");
}

#[test]
fn health_keeps_the_first_failure_time_until_healthy_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.redb")).expect("open");
    assert_eq!(store.health(), Health::Ok);
    store.mark_unavailable("first".into(), Timestamp(10));
    store
        .clone()
        .mark_unavailable("second".into(), Timestamp(20));
    assert_eq!(
        store.health(),
        Health::Unavailable {
            detail: "second".into(),
            since: Timestamp(10)
        }
    );
    store.mark_healthy();
    assert_eq!(store.health(), Health::Ok);
}
