//! The store against a real redb file: operations commit whole or not at all, history is
//! one range scan per asset with clean paging, and records survive a reopen.

use storage::model::{Capabilities, Role};
use storage::ops::{self, NewAsset};
use storage::telemetry::Point;
use storage::time::Timestamp;
use storage::{read, AccountId, AssetId, DeviceId, OpError, Rule, Store};

fn point(ts: u64, fuel: f64) -> Point {
    Point {
        fuel_pct: Some(fuel),
        ..Point::empty(Timestamp(ts))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    admin: storage::model::Principal,
    account: AccountId,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.redb")).expect("open");
    let token = store
        .bootstrap(Timestamp(1))
        .expect("bootstrap")
        .expect("fresh store");
    let rtx = store.begin_read().expect("read");
    let platform = read::principal_for_token(&rtx, &token)
        .expect("lookup")
        .expect("admin");
    drop(rtx);
    let tx = store.begin_write().expect("write");
    let account = ops::create_account(&tx, &platform, "Acme", None, Timestamp(2)).expect("account");
    let (admin, _) = ops::create_user(
        &tx,
        &platform,
        &account.id,
        "ann",
        Role::Admin,
        Timestamp(3),
    )
    .expect("user");
    tx.commit().expect("commit");
    Fixture {
        _dir: dir,
        store,
        admin,
        account: account.id,
    }
}

#[test]
fn bootstrap_happens_once() {
    let f = fixture();
    assert_eq!(
        f.store.bootstrap(Timestamp(9)).expect("second bootstrap"),
        None
    );
}

#[test]
fn history_is_a_bounded_range_scan_with_paging() {
    let f = fixture();
    let tx = f.store.begin_write().expect("write");
    let points_a: Vec<Point> = (0..25).map(|i| point(1_000 + i * 10, i as f64)).collect();
    let points_b: Vec<Point> = (0..5).map(|i| point(1_000 + i, 99.0)).collect();
    ops::write_points(&tx, points_a.iter().map(|p| (1, p))).expect("write a");
    ops::write_points(&tx, points_b.iter().map(|p| (2, p))).expect("write b");
    tx.commit().expect("commit");

    let rtx = f.store.begin_read().expect("read");
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = read::history(
            &rtx,
            1,
            (Timestamp(1_050), Timestamp(1_200)),
            cursor,
            4,
            |_| true,
        )
        .expect("page");
        assert!(page.items.len() <= 4);
        seen.extend(page.items.iter().map(|p| p.ts.0));
        match page.next_cursor {
            Some(next) => cursor = Some(next.parse().expect("numeric cursor")),
            None => break,
        }
    }
    let expected: Vec<u64> = (5..20).map(|i| 1_000 + i * 10).collect();
    assert_eq!(
        seen, expected,
        "from inclusive, to exclusive, oldest first, no other asset"
    );
    assert_eq!(
        read::latest(&rtx, 1, read::ALL_TIME, |_| true)
            .expect("latest")
            .map(|p| p.ts.0),
        Some(1_240)
    );
    assert_eq!(
        read::latest(&rtx, 3, read::ALL_TIME, |_| true).expect("latest"),
        None
    );
}

#[test]
fn history_can_skip_what_a_reader_may_not_see() {
    let f = fixture();
    let tx = f.store.begin_write().expect("write");
    let points: Vec<Point> = (0..10).map(|i| point(1_000 + i, i as f64)).collect();
    ops::write_points(&tx, points.iter().map(|p| (1, p))).expect("write");
    tx.commit().expect("commit");
    let rtx = f.store.begin_read().expect("read");
    let even = |ts: Timestamp| ts.0.is_multiple_of(2);
    let page = read::history(&rtx, 1, read::ALL_TIME, None, 3, even).expect("page");
    let seen: Vec<u64> = page.items.iter().map(|p| p.ts.0).collect();
    assert_eq!(seen, vec![1_000, 1_002, 1_004]);
    assert_eq!(
        page.next_cursor.as_deref(),
        Some("1006"),
        "the cursor skips to the next kept point"
    );
    let latest = read::latest(&rtx, 1, read::ALL_TIME, |ts| ts.0 < 1_005).expect("latest");
    assert_eq!(latest.map(|p| p.ts.0), Some(1_004));
}

#[test]
fn refused_operation_leaves_nothing_behind() {
    let f = fixture();
    let device = DeviceId::parse("unit1").expect("id");
    let tx = f.store.begin_write().expect("write");
    ops::register_device(
        &tx,
        &f.admin,
        &f.account,
        device.clone(),
        Capabilities::default(),
        Timestamp(5),
    )
    .expect("device");
    tx.commit().expect("commit");

    let tx = f.store.begin_write().expect("write");
    let new = NewAsset {
        id: AssetId::parse("ex1").expect("id"),
        name: "Excavator".into(),
        serial: None,
        device_id: Some(DeviceId::parse("nosuchunit").expect("id")),
        details: Default::default(),
    };
    let refused = ops::create_asset(&tx, &f.admin, &f.account, new, Timestamp(6));
    assert!(matches!(refused, Err(OpError::NotFound(_))), "{refused:?}");
    drop(tx);
    let rtx = f.store.begin_read().expect("read");
    let page = storage::visibility::list(
        &rtx,
        &f.admin,
        &f.account,
        &Default::default(),
        (None, 10),
        Timestamp(10),
    )
    .expect("list");
    assert!(page.items.is_empty());
}

#[test]
fn a_device_binds_once_and_a_device_id_is_global() {
    let f = fixture();
    let device = DeviceId::parse("unit1").expect("id");
    let tx = f.store.begin_write().expect("write");
    ops::register_device(
        &tx,
        &f.admin,
        &f.account,
        device.clone(),
        Capabilities::default(),
        Timestamp(5),
    )
    .expect("device");
    let again = ops::register_device(
        &tx,
        &f.admin,
        &f.account,
        device.clone(),
        Capabilities::default(),
        Timestamp(5),
    );
    assert!(matches!(again, Err(OpError::Conflict(_))));
    let bind = |id: &str| NewAsset {
        id: AssetId::parse(id).expect("id"),
        name: "x".into(),
        serial: None,
        device_id: Some(device.clone()),
        details: Default::default(),
    };
    let (asset, bound) =
        ops::create_asset(&tx, &f.admin, &f.account, bind("ex1"), Timestamp(6)).expect("asset");
    assert_eq!(
        bound.and_then(|d| d.bound_asset).map(|b| b.asset_key),
        Some(asset.key)
    );
    let second = ops::create_asset(&tx, &f.admin, &f.account, bind("ex2"), Timestamp(7));
    assert!(matches!(second, Err(OpError::Conflict(_))), "{second:?}");
    tx.commit().expect("commit");
}

#[test]
fn strangers_see_nothing_and_viewers_change_nothing() {
    let f = fixture();
    let tx = f.store.begin_write().expect("write");
    let other =
        ops::create_account(&tx, &platform(&f), "Other", None, Timestamp(4)).expect("account");
    let (stranger, _) = ops::create_user(
        &tx,
        &platform(&f),
        &other.id,
        "sam",
        Role::Admin,
        Timestamp(4),
    )
    .expect("user");
    let (viewer, _) =
        ops::create_user(&tx, &f.admin, &f.account, "vic", Role::Viewer, Timestamp(4))
            .expect("viewer");
    let new = |id: &str| NewAsset {
        id: AssetId::parse(id).expect("id"),
        name: "x".into(),
        serial: None,
        device_id: None,
        details: Default::default(),
    };
    ops::create_asset(&tx, &f.admin, &f.account, new("ex1"), Timestamp(5)).expect("asset");
    let by_viewer = ops::create_asset(&tx, &viewer, &f.account, new("ex2"), Timestamp(5));
    assert!(
        matches!(
            by_viewer,
            Err(OpError::Forbidden(Rule::ManageFleet { role: Role::Viewer }))
        ),
        "{by_viewer:?}"
    );
    let by_stranger = ops::create_asset(&tx, &stranger, &f.account, new("ex3"), Timestamp(5));
    assert!(
        matches!(by_stranger, Err(OpError::NotFound(_))),
        "{by_stranger:?}"
    );
    tx.commit().expect("commit");

    let rtx = f.store.begin_read().expect("read");
    let ex1 = AssetId::parse("ex1").expect("id");
    assert!(storage::visibility::resolve(&rtx, &viewer, &f.account, &ex1, Timestamp(10)).is_ok());
    assert!(matches!(
        storage::visibility::resolve(&rtx, &stranger, &f.account, &ex1, Timestamp(10)),
        Err(OpError::NotFound(_))
    ));
}

fn platform(f: &Fixture) -> storage::model::Principal {
    let rtx = f.store.begin_read().expect("read");
    let table = rtx.open_table(storage::tables::PRINCIPALS).expect("table");
    use storage::redb::ReadableTable;
    let (_, value) = table
        .first()
        .expect("read")
        .expect("bootstrap admin exists");
    storage::codec::decode(value.value()).expect("decodes")
}

#[test]
fn records_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    let token = {
        let store = Store::open(&path).expect("open");
        store
            .bootstrap(Timestamp(1))
            .expect("bootstrap")
            .expect("token")
    };
    let store = Store::open(&path).expect("reopen");
    let rtx = store.begin_read().expect("read");
    assert!(read::principal_for_token(&rtx, &token)
        .expect("lookup")
        .is_some());
    assert!(read::principal_for_token(&rtx, "fgt_wrong")
        .expect("lookup")
        .is_none());
}
