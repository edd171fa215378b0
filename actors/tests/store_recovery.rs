//! Guards against a full disk stopping the store writer for good: after a failed commit
//! the writer marks the store unavailable, refuses control operations, holds telemetry
//! unacknowledged, reopens the database once space returns, and then commits what waited.
//! The full disk is a `FaultSwitch` on the store's backend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::metrics::Metrics;
use actors::writer::StoreWriter;
use actors::Outcome;
use storage::faults::FaultSwitch;
use storage::store::Health;
use storage::tables::{COUNTERS, TELEMETRY};
use storage::telemetry::Point;
use storage::time::Timestamp;
use storage::{OpError, Store, StoreError};

fn point(ts: u64) -> Arc<Point> {
    Arc::new(Point {
        fuel_pct: Some(50.0),
        ..Point::empty(Timestamp(ts))
    })
}

fn stored(store: &Store, asset_key: u64, ts: u64) -> bool {
    let rtx = store.begin_read().expect("read");
    let table = rtx.open_table(TELEMETRY).expect("table");
    table.get((asset_key, ts)).expect("get").is_some()
}

/// Waits (at most 15 s: the longest retry is 5 s) until the store's health is `want`.
async fn wait_health(store: &Store, want: impl Fn(&Health) -> bool) -> Health {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let health = store.health();
        if want(&health) || Instant::now() > deadline {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A store on a disk that can be filled at will, its metrics and its writer (5 ms commit
/// window); the directory goes with them.
fn faulty() -> (
    tempfile::TempDir,
    FaultSwitch,
    Store,
    Arc<Metrics>,
    StoreWriter,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = FaultSwitch::new();
    let store = Store::open_with_faults(&dir.path().join("db.redb"), disk.clone()).expect("open");
    let metrics = Arc::new(Metrics::new());
    let writer = StoreWriter::spawn(store.clone(), Duration::from_millis(5), metrics.clone())
        .expect("writer");
    (dir, disk, store, metrics, writer)
}

async fn bump(writer: &actors::writer::WriterHandle) -> Result<(), OpError> {
    writer
        .execute(|tx| {
            tx.open_table(COUNTERS)
                .map_err(StoreError::from)?
                .insert("test", 1)
                .map_err(StoreError::from)?;
            Ok(())
        })
        .await
}

#[actix_rt::test]
async fn a_full_disk_holds_telemetry_until_the_store_is_reopened() {
    let (_dir, disk, store, metrics, writer) = faulty();
    let handle = writer.handle();
    bump(&handle)
        .await
        .expect("a control commit before the fault");

    disk.fill_disk();
    let (done, mut outcome) = tokio::sync::oneshot::channel();
    assert!(handle.point(1, point(1_000), (stamp(1), Vec::new()), Some(done)));
    let health = wait_health(&store, |h| matches!(h, Health::Unavailable { .. })).await;
    let Health::Unavailable { detail, .. } = health else {
        panic!("the store should be unavailable, found {health:?}");
    };
    assert!(detail.contains("no space left"), "{detail}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        outcome.try_recv().is_err(),
        "no verdict while the disk is full: the PUBACK is withheld"
    );
    let refused = bump(&handle)
        .await
        .expect_err("no control commit meanwhile");
    assert!(
        matches!(refused, OpError::Store(StoreError::Unavailable(_))),
        "{refused}"
    );

    disk.free_disk();
    let verdict = tokio::time::timeout(Duration::from_secs(15), outcome)
        .await
        .expect("a verdict once space returned")
        .expect("the writer answered");
    assert_eq!(verdict, Outcome::Accepted);
    assert_eq!(store.health(), Health::Ok);
    assert!(stored(&store, 1, 1_000), "the held point was committed");
    bump(&handle).await.expect("control commits work again");
    assert!(metrics.store_write_failures.get() >= 1);
    assert!(metrics.store_reopens.get() >= 1);
    writer.shutdown();
}

#[actix_rt::test]
async fn a_failed_control_commit_starts_the_recovery_too() {
    let (_dir, disk, store, _, writer) = faulty();
    let handle = writer.handle();

    disk.fill_disk();
    let failed = bump(&handle).await.expect_err("the disk is full");
    assert!(failed.is_io_failure(), "{failed}");
    let health = wait_health(&store, |h| matches!(h, Health::Unavailable { .. })).await;
    assert!(matches!(health, Health::Unavailable { .. }), "{health:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        matches!(store.health(), Health::Unavailable { .. }),
        "the probe keeps failing while the disk is full"
    );

    disk.free_disk();
    let health = wait_health(&store, |h| *h == Health::Ok).await;
    assert_eq!(health, Health::Ok);
    bump(&handle).await.expect("the same change, retried");
    writer.shutdown();
}

#[actix_rt::test]
async fn stopping_while_the_disk_is_full_answers_not_stored() {
    let (_dir, disk, store, _, writer) = faulty();
    disk.fill_disk();
    let (done, outcome) = tokio::sync::oneshot::channel();
    assert!(writer
        .handle()
        .point(1, point(2_000), (stamp(2), Vec::new()), Some(done)));
    let health = wait_health(&store, |h| matches!(h, Health::Unavailable { .. })).await;
    assert!(matches!(health, Health::Unavailable { .. }), "{health:?}");
    writer.shutdown();
    assert_eq!(
        outcome.await.expect("answered at shutdown"),
        Outcome::NotStored,
        "never acknowledged, so the unit sends it again"
    );
}

/// An arrival stamp for a point handed to the writer directly.
fn stamp(id: u64) -> actors::arrival::Stamp {
    actors::arrival::Stamp {
        id: storage::arrivals::ArrivalId(id),
        at: storage::time::Timestamp(1_000),
    }
}
