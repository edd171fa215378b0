//! Retention end to end, on a manual clock: expired telemetry is gone from the owner's and
//! the grantee's history alike, an account's own setting applies to its assets only,
//! access events and audit entries go by their own retention, the metric counts what was
//! deleted, and the retention API refuses who may not use it and what is not a number of
//! days.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use simulator::api::{AssetId, HistoryQuery, UserRole};
use tests::{call, eventually, Fleet, TestGateway};

const DAY_MS: u64 = 86_400_000;

/// Past the gateway's prune interval (10 minutes of clock time).
const NEXT_PRUNE: Duration = Duration::from_secs(11 * 60);

fn rfc3339(ms: u64) -> String {
    simulator::telemetry::rfc3339_from_ms(ms).expect("a valid time")
}

async fn stamps(client: &simulator::ApiClient, asset: &str) -> Vec<u64> {
    let points = client
        .telemetry_all(&AssetId::new(asset), &HistoryQuery::default())
        .await
        .expect("history");
    points.iter().map(|point| point.ts_ms).collect()
}

/// The value of `fleetgate_retention_deleted_total{kind}` once it reaches `at_least`.
async fn deleted(fleet: &Fleet, kind: &str, at_least: u64) -> Option<u64> {
    let series = format!("fleetgate_retention_deleted_total{{kind=\"{kind}\"}}");
    counter(fleet, &series, at_least).await
}

/// The value of the counter `series` (its name and labels) once it reaches `at_least`.
async fn counter(fleet: &Fleet, series: &str, at_least: u64) -> Option<u64> {
    let prefix = format!("{series} ");
    eventually(|| async {
        let (_, text) = fleet.admin.get_text("/metrics").await.expect("metrics");
        let value = text
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|value| value.trim().parse::<u64>().ok());
        value.filter(|value| *value >= at_least)
    })
    .await
}

async fn publish_at(fleet: &Fleet, device: &str, stamps: &[u64]) {
    let unit = fleet.connect(device).await;
    for ts in stamps {
        unit.publish_point(&json!({"ts": ts, "fuel_pct": 50}))
            .await
            .expect("acked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_telemetry_is_gone_for_the_owner_and_the_grantee_and_an_override_is_the_accounts_own(
) {
    let gateway = TestGateway::start_with_manual_clock();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    let beta = Fleet::create(&gateway, "Beta").await;
    owner.unit_with_asset("unit1", "ex1").await;
    beta.unit_with_asset("unit2", "bx1").await;
    let now = gateway.now_ms();
    // All inside the default 365 days when they arrive (older ones are refused, below).
    let written = [now - 300 * DAY_MS, now - 10 * DAY_MS, now];
    publish_at(&owner, "unit1", &written).await;
    publish_at(&beta, "unit2", &written).await;
    let window = json!({"from": rfc3339(now - 500 * DAY_MS)});
    let granted = owner.grant(&depot, &["ex1"], window).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    assert_eq!(owner.history("ex1", 3).await.len(), 3);
    assert_eq!(
        stamps(&depot.admin, "ex1").await,
        written,
        "the grantee sees all"
    );
    let path = format!("/v1/accounts/{}/retention", beta.account_id);
    let (status, set) = call(
        &beta.admin,
        Method::PUT,
        &path,
        Some(json!({"telemetry_days": 7})),
    )
    .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(
        (set["telemetry_days"].clone(), set["source"].clone()),
        (json!(7), json!("account"))
    );

    // 66 days on: Acme's 300-day-old point passes its 365 days; Beta keeps 7 days only.
    gateway.advance(Duration::from_millis(66 * DAY_MS) + NEXT_PRUNE);
    let counted = deleted(&owner, "telemetry", 4).await;
    assert_eq!(
        counted,
        Some(4),
        "1 of Acme's (365 days) and all 3 of Beta's (7 days)"
    );
    let kept = [now - 10 * DAY_MS, now];
    assert_eq!(stamps(&owner.admin, "ex1").await, kept);
    assert_eq!(
        stamps(&depot.admin, "ex1").await,
        kept,
        "the owner's setting governs"
    );
    assert_eq!(stamps(&beta.admin, "bx1").await, Vec::<u64>::new());
}

/// A point stamped before its account's retention would be deleted by the next prune:
/// it is refused when it arrives (counted, named in the unit's status), not acknowledged as
/// stored; the account's own longer setting lets the same point in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_already_past_its_accounts_retention_is_refused_not_stored() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    owner.unit_with_asset("unit1", "ex1").await;
    let old = gateway.now_ms() - 400 * DAY_MS;
    let unit = owner.connect("unit1").await;
    let _ = unit.publish_point(&json!({"ts": old, "fuel_pct": 1})).await;
    let dropped = "fleetgate_points_dropped_total{reason=\"past_retention\"}";
    assert_eq!(counter(&owner, dropped, 1).await, Some(1));
    let status = owner
        .admin
        .device_status(&simulator::api::DeviceId::new("unit1"))
        .await
        .expect("status");
    let error = status.last_error.unwrap_or_default();
    assert!(error.contains("retention (365 days)"), "{error}");
    assert!(stamps(&owner.admin, "ex1").await.is_empty());

    let path = format!("/v1/accounts/{}/retention", owner.account_id);
    let longer = Some(json!({"telemetry_days": 500}));
    assert_eq!(call(&owner.admin, Method::PUT, &path, longer).await.0, 200);
    unit.publish_point(&json!({"ts": old, "fuel_pct": 2}))
        .await
        .expect("acked");
    assert_eq!(stamps(&owner.admin, "ex1").await, [old]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_events_and_audit_entries_go_by_their_own_retention() {
    let gateway = TestGateway::start_with_manual_clock();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let unit = fleet.connect("unit1").await;
    let now = gateway.now_ms();
    for ts in [now - 100 * DAY_MS, now - DAY_MS] {
        let event = json!({"ts": ts, "result": "granted"}).to_string();
        tests::publish_acked(&unit, "/tenants/unit1/events/access", event.into_bytes()).await;
    }
    let events = || async {
        let (_, body) = fleet
            .admin
            .get_raw("/v1/assets/ex1/access-events")
            .await
            .expect("events");
        let items = body["items"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .filter_map(|item| item["ts_ms"].as_u64())
            .collect::<Vec<u64>>()
    };
    assert!(
        eventually(|| async { Some(events().await).filter(|e| e.len() == 2) })
            .await
            .is_some()
    );

    gateway.advance(NEXT_PRUNE);
    assert_eq!(deleted(&fleet, "access_events", 1).await, Some(1));
    assert_eq!(events().await, [now - DAY_MS], "90 days by default");
    let audit = || async {
        let (status, body) = fleet.platform.get_raw("/v1/audit").await.expect("audit");
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    };
    let before = audit().await;
    assert!(
        before
            .iter()
            .any(|entry| entry["action"] == "account.create"),
        "{before:?}"
    );

    // Two years on, the entries of the setup (730 days by default) are due as well.
    gateway.advance(Duration::from_millis(731 * DAY_MS));
    let counted = deleted(&fleet, "audit", before.len() as u64).await;
    assert_eq!(counted, Some(before.len() as u64));
    let after: Vec<Value> = audit().await;
    assert!(after.is_empty(), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_api_is_the_admins_and_refuses_what_is_not_a_number_of_days() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let stranger = Fleet::create(&gateway, "Other").await;
    let viewer = fleet.user(UserRole::Viewer).await;
    let path = format!("/v1/accounts/{}/retention", fleet.account_id);
    let (status, shown) = call(&fleet.admin, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        (shown["telemetry_days"].clone(), shown["source"].clone()),
        (json!(365), json!("default"))
    );
    let body = Some(json!({"telemetry_days": 30}));
    assert_eq!(call(&viewer, Method::PUT, &path, body.clone()).await.0, 403);
    assert_eq!(
        call(&stranger.admin, Method::PUT, &path, body.clone())
            .await
            .0,
        404
    );
    assert_eq!(call(&stranger.admin, Method::GET, &path, None).await.0, 404);
    for days in [
        json!(0),
        json!(-1),
        json!(3651),
        json!(1e20),
        json!(1.5),
        json!("30"),
    ] {
        let (status, problem) = call(
            &fleet.admin,
            Method::PUT,
            &path,
            Some(json!({"telemetry_days": days})),
        )
        .await;
        assert_eq!(status, 422, "{days}: {problem}");
        assert!(
            problem.to_string().contains("telemetry_days"),
            "{days}: {problem}"
        );
    }
    let (status, set) = call(&fleet.platform, Method::PUT, &path, body).await;
    assert_eq!(
        (status, set["telemetry_days"].clone()),
        (200, json!(30)),
        "{set}"
    );
    let (_, shown) = call(&fleet.admin, Method::GET, &path, None).await;
    assert_eq!(shown["telemetry_days"], 30);
    let (status, cleared) = call(
        &fleet.admin,
        Method::PUT,
        &path,
        Some(json!({"telemetry_days": null})),
    )
    .await;
    assert_eq!(
        (status, cleared["source"].clone()),
        (200, json!("default")),
        "{cleared}"
    );
    let audit = format!("/v1/audit?account_id={}", fleet.account_id);
    let (_, entries) = fleet.admin.get_raw(&audit).await.expect("audit");
    let changes = entries["items"].as_array().cloned().unwrap_or_default();
    let changes: Vec<_> = changes
        .iter()
        .filter(|entry| entry["action"] == "retention.set")
        .collect();
    assert_eq!(changes.len(), 2, "{entries}");
    assert_eq!(changes[1]["before"], "30 days");
}

/// Every point of `asset` as `client` reads it through the API, one page at a time (pages
/// of 7, so pages end inside buckets), as raw JSON.
async fn pages(client: &simulator::ApiClient, asset: &str) -> Vec<Value> {
    let (mut items, mut cursor) = (Vec::new(), String::new());
    for _ in 0..1000 {
        let path = format!("/v1/assets/{asset}/telemetry?limit=7{cursor}");
        let (status, text) = client.get_text(&path).await.expect("page");
        assert_eq!(status, 200, "{text}");
        let page: Value = serde_json::from_str(&text).expect("json");
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return items,
        }
    }
    panic!("history of {asset} does not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_telemetry_reads_the_same_for_owner_and_grantee_and_takes_late_readings() {
    let gateway = TestGateway::start_with_manual_clock();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    owner.unit_with_asset("unit1", "ex1").await;
    let now = gateway.now_ms();
    let start = now - 3 * 3_600_000;
    let unit = owner.connect("unit1").await;
    for i in 0..90u64 {
        let point = json!({"ts": start + i * 120_000, "fuel_pct": i, "lat": 59.9 + i as f64 / 1e4});
        unit.publish_point(&point).await.expect("acked");
    }
    // Two readings of one millisecond, both kept.
    let twice = start + 10 * 120_000;
    unit.publish_point(&json!({"ts": twice, "fuel_pct": 99}))
        .await
        .expect("acked");
    let granted = owner
        .grant(&depot, &["ex1"], json!({"from": rfc3339(start)}))
        .await;
    assert_eq!(granted.status, 201, "{granted:?}");
    let (owned, shared) = (
        pages(&owner.admin, "ex1").await,
        pages(&depot.admin, "ex1").await,
    );
    assert_eq!((owned.len(), shared.len()), (91, 91));
    gateway.advance(NEXT_PRUNE);
    // Buckets that ended an hour before the new time are sealed: about two of the three
    // hours. The gauge moves only once the batch committed.
    let sealed = counter(&owner, "fleetgate_telemetry_sealed_total", 50)
        .await
        .expect("telemetry sealed");
    assert!(sealed < 91, "{sealed}");
    assert_eq!(pages(&owner.admin, "ex1").await, owned);
    assert_eq!(pages(&depot.admin, "ex1").await, shared);
    // A late reading of a sealed millisecond comes after the sealed ones; a resend of a
    // sealed reading is stored once.
    unit.publish_point(&json!({"ts": twice, "fuel_pct": 7}))
        .await
        .expect("acked");
    unit.publish_point(&json!({"ts": twice, "fuel_pct": 99}))
        .await
        .expect("acked");
    let after = pages(&owner.admin, "ex1").await;
    let fuel_at_twice: Vec<_> = after
        .iter()
        .filter(|p| p["ts_ms"] == json!(twice))
        .map(|p| p["fuel_pct"].as_f64())
        .collect();
    assert_eq!(fuel_at_twice, [Some(10.0), Some(99.0), Some(7.0)]);
    assert_eq!(after.len(), 92);
}
