//! Retention against a real redb file: each batch deletes only rows older than their
//! cutoff, never more than its budget, and the owner account's own setting governs its
//! assets only.

use storage::access::{AccessEvent, Outcome};
use storage::model::{Asset, Principal, Role};
use storage::ops::{self, NewAsset};
use storage::redb::ReadableTableMetadata as _;
use storage::retention::{self, Plan, Retention, DAY_MS};
use storage::telemetry::Point;
use storage::time::Timestamp;
use storage::{read, AccountId, AssetId, OpError, Store};

/// "Now" for every test: far enough from the epoch for 400 days back.
const NOW: u64 = 1_800_000_000_000;

fn days_ago(days: u64) -> u64 {
    NOW - days * DAY_MS
}

fn point(ts: u64) -> Point {
    Point {
        fuel_pct: Some(50.0),
        ..Point::empty(Timestamp(ts))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    platform: Principal,
    /// (account, its admin, its one asset)
    acme: (AccountId, Principal, Asset),
    beta: (AccountId, Principal, Asset),
}

fn account_with_asset(
    store: &Store,
    platform: &Principal,
    name: &str,
) -> (AccountId, Principal, Asset) {
    let tx = store.begin_write().expect("write");
    let account = ops::create_account(&tx, platform, name, None, Timestamp(NOW)).expect("account");
    let (admin, _) = ops::create_user(
        &tx,
        platform,
        &account.id,
        "ann",
        Role::Admin,
        Timestamp(NOW),
    )
    .expect("user");
    let new = NewAsset {
        id: AssetId::parse(&format!("{name}-x1")).expect("id"),
        name: "digger".into(),
        serial: None,
        device_id: None,
        details: Default::default(),
    };
    let (asset, _) =
        ops::create_asset(&tx, &admin, &account.id, new, Timestamp(NOW)).expect("asset");
    tx.commit().expect("commit");
    (account.id, admin, asset)
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.redb")).expect("open");
    let token = store
        .bootstrap(Timestamp(NOW))
        .expect("bootstrap")
        .expect("fresh");
    let rtx = store.begin_read().expect("read");
    let platform = read::principal_for_token(&rtx, &token)
        .expect("lookup")
        .expect("admin");
    drop(rtx);
    let acme = account_with_asset(&store, &platform, "acme");
    let beta = account_with_asset(&store, &platform, "beta");
    Fixture {
        _dir: dir,
        store,
        platform,
        acme,
        beta,
    }
}

const DEFAULTS: Retention = Retention {
    telemetry_days: 365,
    access_event_days: 90,
    audit_days: 730,
};

impl Fixture {
    fn write_points(&self, asset: &Asset, stamps: &[u64]) {
        let points: Vec<Point> = stamps.iter().map(|ts| point(*ts)).collect();
        let tx = self.store.begin_write().expect("write");
        ops::write_points(&tx, points.iter().map(|p| (asset.key, p))).expect("points");
        tx.commit().expect("commit");
    }

    fn stamps(&self, asset: &Asset) -> Vec<u64> {
        let rtx = self.store.begin_read().expect("read");
        let table = rtx.open_table(storage::tables::TELEMETRY).expect("table");
        let rows = table
            .range((asset.key, 0)..(asset.key, u64::MAX))
            .expect("range");
        rows.map(|row| row.expect("row").0.value().1).collect()
    }

    fn plan(&self, retention: Retention) -> Plan {
        let rtx = self.store.begin_read().expect("read");
        retention::plan(&rtx, retention, Timestamp(NOW)).expect("plan")
    }

    /// Runs telemetry batches of `budget` until done; answers each batch's deletions.
    fn prune_telemetry(&self, plan: &Plan, budget: usize) -> Vec<usize> {
        let mut batches = Vec::new();
        let mut start = Some(0);
        while let Some(from) = start {
            let tx = self.store.begin_write().expect("write");
            let batch =
                retention::prune_telemetry(&tx, &plan.telemetry, from, budget).expect("batch");
            tx.commit().expect("commit");
            batches.push(batch.deleted);
            start = batch.resume;
        }
        batches
    }

    fn set(&self, who: &Principal, account: &AccountId, days: Option<i64>) -> Result<u32, OpError> {
        let tx = self.store.begin_write().expect("write");
        let set = retention::set_account_retention(&tx, who, account, days, 365, Timestamp(NOW))?;
        tx.commit().expect("commit");
        Ok(set.telemetry_days)
    }
}

#[test]
fn older_rows_go_newer_stay_and_an_override_applies_to_its_own_account_only() {
    let f = fixture();
    let stamps = [days_ago(400), days_ago(10), days_ago(3), NOW];
    f.write_points(&f.acme.2, &stamps);
    f.write_points(&f.beta.2, &stamps);
    assert_eq!(f.set(&f.beta.1, &f.beta.0, Some(7)).expect("set"), 7);
    let batches = f.prune_telemetry(&f.plan(DEFAULTS), 5_000);
    assert_eq!(batches.iter().sum::<usize>(), 1 + 2);
    assert_eq!(f.stamps(&f.acme.2), vec![days_ago(10), days_ago(3), NOW]);
    assert_eq!(f.stamps(&f.beta.2), vec![days_ago(3), NOW]);
    // A row exactly at the cutoff is kept: only what is strictly older goes.
    f.write_points(&f.acme.2, &[days_ago(365)]);
    f.prune_telemetry(&f.plan(DEFAULTS), 5_000);
    assert_eq!(f.stamps(&f.acme.2)[0], days_ago(365));
}

#[test]
fn a_batch_never_deletes_more_than_its_budget_and_the_next_resumes() {
    let f = fixture();
    let old: Vec<u64> = (0..25).map(|i| days_ago(400) + i).collect();
    f.write_points(&f.acme.2, &old);
    f.write_points(&f.beta.2, &old[..7]);
    f.write_points(&f.beta.2, &[NOW]);
    let batches = f.prune_telemetry(&f.plan(DEFAULTS), 10);
    assert!(batches.iter().all(|deleted| *deleted <= 10), "{batches:?}");
    assert_eq!(batches.iter().sum::<usize>(), 32, "{batches:?}");
    assert!(f.stamps(&f.acme.2).is_empty());
    assert_eq!(f.stamps(&f.beta.2), vec![NOW]);
}

#[test]
fn zero_days_keeps_forever_and_mirrors_are_not_planned() {
    let f = fixture();
    let forever = Retention {
        telemetry_days: 0,
        access_event_days: 0,
        audit_days: 0,
    };
    let plan = f.plan(forever);
    assert!(plan.telemetry.is_empty() && plan.access_events.is_empty());
    assert_eq!(plan.audit, None);
    // An account's own setting still applies when the default keeps forever.
    f.set(&f.acme.1, &f.acme.0, Some(30)).expect("set");
    assert_eq!(
        f.plan(forever).telemetry,
        vec![(f.acme.2.key, days_ago(30))]
    );
}

#[test]
fn access_events_and_audit_entries_go_by_their_own_retention() {
    let f = fixture();
    let event = |days: u64| AccessEvent {
        ts: Timestamp(days_ago(days)),
        key_id: None,
        credential_hint: None,
        result: Outcome::Granted,
        reason: None,
    };
    let events = [event(100), event(91), event(89), event(0)];
    let tx = f.store.begin_write().expect("write");
    ops::write_access_events(
        &tx,
        events
            .iter()
            .enumerate()
            .map(|(seq, e)| (f.acme.2.key, seq as u64, e)),
    )
    .expect("events");
    tx.commit().expect("commit");
    let plan = f.plan(DEFAULTS);
    let tx = f.store.begin_write().expect("write");
    let batch = retention::prune_access_events(&tx, &plan.access_events, 0, 5_000).expect("batch");
    tx.commit().expect("commit");
    assert_eq!(batch.deleted, 2);
    let rtx = f.store.begin_read().expect("read");
    let left = rtx
        .open_table(storage::tables::ACCESS_EVENTS)
        .expect("table")
        .len()
        .expect("len");
    assert_eq!(left, 2);
    drop(rtx);

    // The fixture's entries were made at NOW: 731 days later they are due, later ones not.
    let later = Timestamp(NOW + 731 * DAY_MS);
    let tx = f.store.begin_write().expect("write");
    ops::create_account(&tx, &f.platform, "gamma", None, later).expect("account");
    tx.commit().expect("commit");
    let rtx = f.store.begin_read().expect("read");
    let total = rtx
        .open_table(storage::tables::AUDIT)
        .expect("audit")
        .len()
        .expect("len");
    let plan = retention::plan(&rtx, DEFAULTS, later).expect("plan");
    drop(rtx);
    let tx = f.store.begin_write().expect("write");
    let first = retention::prune_audit(&tx, plan.audit.expect("finite"), 2).expect("batch");
    tx.commit().expect("commit");
    assert_eq!(
        (first.deleted, first.resume.is_some()),
        (2, true),
        "bounded"
    );
    let tx = f.store.begin_write().expect("write");
    let rest = retention::prune_audit(&tx, plan.audit.expect("finite"), 5_000).expect("batch");
    tx.commit().expect("commit");
    assert_eq!(rest.resume, None);
    let rtx = f.store.begin_read().expect("read");
    let left = rtx
        .open_table(storage::tables::AUDIT)
        .expect("audit")
        .len()
        .expect("len");
    assert_eq!(left, 1, "only gamma's creation is left of {total}");
}

#[test]
fn the_setting_is_the_admins_and_refuses_what_is_not_a_number_of_days() {
    let f = fixture();
    let viewer = {
        let tx = f.store.begin_write().expect("write");
        let (viewer, _) = ops::create_user(
            &tx,
            &f.platform,
            &f.acme.0,
            "vic",
            Role::Viewer,
            Timestamp(NOW),
        )
        .expect("user");
        tx.commit().expect("commit");
        viewer
    };
    assert!(matches!(
        f.set(&viewer, &f.acme.0, Some(7)),
        Err(OpError::Forbidden(_))
    ));
    assert!(matches!(
        f.set(&f.beta.1, &f.acme.0, Some(7)),
        Err(OpError::NotFound(_))
    ));
    for days in [0, -1, 3651, i64::MAX] {
        match f.set(&f.acme.1, &f.acme.0, Some(days)) {
            Err(OpError::Invalid { field, .. }) => assert_eq!(field, "telemetry_days"),
            other => panic!("{days}: {other:?}"),
        }
    }
    assert_eq!(
        f.set(&f.platform, &f.acme.0, Some(3650)).expect("platform"),
        3650
    );
    assert_eq!(f.set(&f.acme.1, &f.acme.0, None).expect("cleared"), 365);
    let rtx = f.store.begin_read().expect("read");
    let shown = retention::account_retention(&rtx, &f.acme.1, &f.acme.0, 365).expect("read");
    assert_eq!((shown.own_days, shown.telemetry_days), (None, 365));
}

#[test]
fn compaction_gives_freed_space_back_and_waits_for_no_reader() {
    let f = fixture();
    let old: Vec<u64> = (0..20_000).map(|i| days_ago(400) + i).collect();
    f.write_points(&f.acme.2, &old);
    f.prune_telemetry(&f.plan(DEFAULTS), 5_000);
    let before = f.store.file_bytes().expect("size");
    let reader = f.store.begin_read().expect("read");
    assert!(
        f.store.compact().is_err(),
        "a live read transaction refuses it"
    );
    drop(reader);
    // redb may need more than one pass to move every page down.
    while f.store.compact().expect("compacts") {}
    let after = f.store.file_bytes().expect("size");
    assert!(after < before, "{after} < {before}");
    assert!(f.stamps(&f.acme.2).is_empty());
    f.write_points(&f.acme.2, &[NOW]);
    assert_eq!(f.stamps(&f.acme.2), vec![NOW], "writes go on after it");
}

#[test]
fn a_deleted_assets_history_follows_its_owners_retention() {
    let fx = fixture();
    let (account, admin, asset) = &fx.acme;
    fx.write_points(asset, &[days_ago(400), days_ago(10)]);
    let tx = fx.store.begin_write().expect("write");
    storage::retire::delete_asset(&tx, admin, account, &asset.id, Timestamp(NOW)).expect("deleted");
    tx.commit().expect("commit");
    // The asset is gone, its history is not; the plan still names its key.
    let plan = fx.plan(DEFAULTS);
    assert!(
        plan.telemetry.iter().any(|(key, _)| *key == asset.key),
        "{plan:?}"
    );
    fx.prune_telemetry(&plan, 100);
    assert_eq!(
        fx.stamps(asset),
        [days_ago(10)],
        "only what retention ends is pruned"
    );
}

#[test]
fn a_deleted_asset_is_forgotten_once_retention_passed_its_deletion() {
    let fx = fixture();
    let (account, admin, asset) = &fx.acme;
    fx.write_points(asset, &[days_ago(420)]);
    let tx = fx.store.begin_write().expect("write");
    storage::retire::delete_asset(&tx, admin, account, &asset.id, Timestamp(days_ago(400)))
        .expect("deleted");
    tx.commit().expect("commit");
    let plan = fx.plan(DEFAULTS);
    // Still planned: the access-event cutoff (90 days) passed, the telemetry one too.
    assert!(plan.telemetry.iter().any(|(key, _)| *key == asset.key));
    fx.prune_telemetry(&plan, 100);
    let tx = fx.store.begin_write().expect("write");
    assert_eq!(
        storage::retire::forget_pruned(&tx, &plan).expect("forget"),
        1
    );
    tx.commit().expect("commit");
    assert!(fx.stamps(asset).is_empty());
    let later = fx.plan(DEFAULTS);
    assert!(
        !later.telemetry.iter().any(|(key, _)| *key == asset.key),
        "forgotten"
    );
}

#[test]
fn a_deleted_asset_within_retention_is_kept() {
    let fx = fixture();
    let (account, admin, asset) = &fx.acme;
    let tx = fx.store.begin_write().expect("write");
    storage::retire::delete_asset(&tx, admin, account, &asset.id, Timestamp(days_ago(10)))
        .expect("deleted");
    tx.commit().expect("commit");
    let plan = fx.plan(DEFAULTS);
    let tx = fx.store.begin_write().expect("write");
    assert_eq!(
        storage::retire::forget_pruned(&tx, &plan).expect("forget"),
        0
    );
    tx.commit().expect("commit");
    assert!(fx
        .plan(DEFAULTS)
        .telemetry
        .iter()
        .any(|(key, _)| *key == asset.key));
}
