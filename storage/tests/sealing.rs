//! Sealed chunks against a real redb file: a bucket reads the same before and after it is
//! sealed (history pages, latest, scan, one millisecond), a late or resent reading of a
//! sealed bucket is kept once and in order, sealing goes in bounded batches and leaves the
//! last hour alone, and retention deletes sealed readings like rows.

use storage::ops;
use storage::read;
use storage::redb::ReadableTableMetadata as _;
use storage::retention;
use storage::tables::{TELEMETRY, TELEMETRY_CHUNKS};
use storage::telemetry::chunk::BUCKET_MS;
use storage::telemetry::seal::{self, SEAL_AFTER_MS};
use storage::telemetry::stored::Stored;
use storage::telemetry::Point;
use storage::time::Timestamp;
use storage::Store;

/// A bucket boundary, so the buckets of a test are easy to count.
const T0: u64 = 1_800_000_000_000 - 1_800_000_000_000 % BUCKET_MS;
const ASSETS: [u64; 2] = [7, 8];

fn point(ts: u64, fuel: f64) -> Point {
    let mut point = Point::empty(Timestamp(ts));
    point.fuel_pct = Some(fuel);
    point.lat = Some(59.9 + (ts % 1000) as f64 / 1e5);
    point.sensors.insert("coolant_c".into(), 80.0 + fuel / 10.0);
    point
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.redb")).expect("open");
    (dir, store)
}

fn write(store: &Store, asset: u64, points: &[Point]) -> Vec<u32> {
    let tx = store.begin_write().expect("write");
    let positions = ops::write_points(&tx, points.iter().map(|p| (asset, p))).expect("points");
    tx.commit().expect("commit");
    positions
}

/// Seals everything due at `now` in batches of `budget`; answers each batch's readings.
fn seal_all(store: &Store, now: u64, budget: usize) -> Vec<usize> {
    let (mut batches, mut at) = (Vec::new(), Some((0, 0)));
    while let Some(start) = at {
        let tx = store.begin_write().expect("write");
        let batch = seal::seal(&tx, Timestamp(now), start, budget).expect("seal");
        tx.commit().expect("commit");
        batches.push(batch.readings);
        at = batch.resume;
    }
    batches
}

/// Everything an asset shows, read every way a reader reads it.
fn everything(store: &Store, asset: u64) -> (Vec<Point>, Vec<Point>, Option<Point>, Vec<Point>) {
    let rtx = store.begin_read().expect("read");
    let span = (Timestamp(0), Timestamp(u64::MAX));
    let (mut paged, mut cursor) = (Vec::new(), None);
    loop {
        let page = read::history(&rtx, asset, span, cursor, 7, |_| true).expect("page");
        paged.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next.parse().expect("cursor")),
            None => break,
        }
    }
    let mut scanned = Vec::new();
    read::scan(
        &rtx,
        asset,
        span,
        |_| true,
        |p| {
            scanned.push(p.clone());
            true
        },
    )
    .expect("scan");
    let latest = read::latest(&rtx, asset, span, |_| true).expect("latest");
    let stored = Stored::open(&rtx).expect("tables");
    let one_by_one = paged
        .iter()
        .map(|p| p.ts.0)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .flat_map(|ts| stored.at(asset, ts).expect("at"))
        .collect();
    (paged, scanned, latest, one_by_one)
}

fn rows(store: &Store) -> (u64, u64) {
    let rtx = store.begin_read().expect("read");
    let rows = rtx.open_table(TELEMETRY).expect("rows").len().expect("len");
    let chunks = rtx
        .open_table(TELEMETRY_CHUNKS)
        .expect("chunks")
        .len()
        .expect("len");
    (rows, chunks)
}

#[test]
fn a_bucket_reads_the_same_sealed_and_the_last_hour_stays_in_rows() {
    let (_dir, store) = open();
    // Three hours at one point every 10 s, with two readings in one millisecond.
    let mut points: Vec<Point> = (0..1080)
        .map(|i| point(T0 + i * 10_000, i as f64))
        .collect();
    points.insert(100, point(T0 + 990_000, 123.0));
    for asset in ASSETS {
        write(&store, asset, &points);
    }
    let before: Vec<_> = ASSETS.iter().map(|a| everything(&store, *a)).collect();
    assert_eq!(before[0].0.len(), 1081);
    let now = T0 + 2 * 3_600_000 + SEAL_AFTER_MS;
    let batches = seal_all(&store, now, 100);
    // Buckets that ended an hour before `now` are sealed: the first two hours' 12 of 18.
    assert_eq!(batches.iter().sum::<usize>(), 2 * 721);
    assert!(batches.iter().all(|b| *b <= 100 + 60), "{batches:?}");
    assert_eq!(rows(&store), (2 * 360, 2 * 12));
    let after: Vec<_> = ASSETS.iter().map(|a| everything(&store, *a)).collect();
    assert_eq!(after, before);
    // Sealing again finds nothing due.
    assert_eq!(seal_all(&store, now, 100), [0]);
}

#[test]
fn a_late_reading_of_a_sealed_bucket_is_kept_once_and_after_the_sealed_ones() {
    let (_dir, store) = open();
    let ts = T0 + 5_000;
    write(&store, 7, &[point(ts, 10.0), point(ts + 1000, 11.0)]);
    assert_eq!(write(&store, 7, &[point(ts, 20.0)]), [1]);
    seal_all(&store, T0 + 10 * BUCKET_MS, 1000);
    assert_eq!(rows(&store), (0, 1));
    // A resend of a sealed reading answers its position and stores nothing.
    assert_eq!(write(&store, 7, &[point(ts, 20.0)]), [1]);
    assert_eq!(rows(&store), (0, 1));
    // A new reading of that millisecond comes after the sealed two, before and after the
    // next seal; a reading of an empty millisecond of the bucket lands in order.
    assert_eq!(
        write(&store, 7, &[point(ts, 30.0), point(ts - 1000, 5.0)]),
        [2, 0]
    );
    let fuel = |store: &Store| -> Vec<f64> {
        everything(store, 7)
            .0
            .iter()
            .filter_map(|p| p.fuel_pct)
            .collect()
    };
    assert_eq!(fuel(&store), [5.0, 10.0, 20.0, 30.0, 11.0]);
    assert_eq!(rows(&store), (2, 1));
    seal_all(&store, T0 + 10 * BUCKET_MS, 1000);
    assert_eq!(rows(&store), (0, 1));
    assert_eq!(fuel(&store), [5.0, 10.0, 20.0, 30.0, 11.0]);
    let rtx = store.begin_read().expect("read");
    let at = Stored::open(&rtx).expect("tables").at(7, ts).expect("at");
    assert_eq!(
        at.iter().filter_map(|p| p.fuel_pct).collect::<Vec<_>>(),
        [10.0, 20.0, 30.0]
    );
}

#[test]
fn retention_deletes_sealed_readings_and_cuts_a_straddling_chunk() {
    let (_dir, store) = open();
    let points: Vec<Point> = (0..360).map(|i| point(T0 + i * 10_000, i as f64)).collect();
    write(&store, 7, &points);
    seal_all(&store, T0 + 6 * BUCKET_MS + SEAL_AFTER_MS, 1000);
    assert_eq!(rows(&store), (0, 6));
    // The cutoff falls 30 points into the third bucket: 150 readings are due.
    let cutoff = T0 + 150 * 10_000;
    let mut deleted = Vec::new();
    let mut start = Some(0);
    while let Some(from) = start {
        let tx = store.begin_write().expect("write");
        let batch = retention::prune_telemetry(&tx, &[(7, cutoff)], from, 70).expect("prune");
        tx.commit().expect("commit");
        deleted.push(batch.deleted);
        start = batch.resume;
    }
    assert_eq!(deleted.iter().sum::<usize>(), 150, "{deleted:?}");
    let left = everything(&store, 7).0;
    assert_eq!(left.len(), 210);
    assert_eq!(left[0].ts.0, cutoff);
    assert_eq!(rows(&store), (0, 4));
}
