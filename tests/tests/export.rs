//! History as one streamed answer: `Accept: application/x-ndjson` gives every point of the
//! range as the paged API shows it, one per line; `text/csv` a header and one row per
//! point with a column per sensor. Both answer exactly what the caller may read (a
//! grantee's window, 404 for a stranger) and refuse bad ranges like the paged API.

use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde_json::{json, Value};
use tests::{Fleet, TestGateway};

/// `GET path` with `accept`, as `token`: the status and the body text.
async fn export(gateway: &TestGateway, token: &str, path: &str, accept: &str) -> (u16, String) {
    let answer = reqwest::Client::new()
        .get(format!("{}{path}", gateway.http_base()))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(ACCEPT, accept)
        .send()
        .await
        .expect("answer");
    let status = answer.status().as_u16();
    (status, answer.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_range_streams_as_ndjson_or_csv_under_the_same_rules() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    let stranger = Fleet::create(&gateway, "Other").await;
    acme.unit_with_asset("unit1", "ex1").await;
    let unit = acme.connect("unit1").await;
    let hour_ago = gateway.now_ms() - 3_600_000;
    unit.publish_point(&json!({"ts": hour_ago, "fuel_pct": 1}))
        .await
        .expect("acked");
    let granted = acme.grant(&depot, &["ex1"], json!({})).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    for point in [
        json!({"fuel_pct": 2, "sensors": {"oil": 1.5}}),
        json!({"fuel_pct": 3}),
    ] {
        unit.publish_point(&point).await.expect("acked");
    }
    let paged = acme.history("ex1", 3).await;
    assert_eq!(paged.len(), 3);

    let (status, ndjson) = export(
        &gateway,
        &acme.admin_token,
        "/v1/assets/ex1/telemetry",
        "application/x-ndjson",
    )
    .await;
    assert_eq!(status, 200, "{ndjson}");
    let lines: Vec<Value> = ndjson
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON point per line"))
        .collect();
    let (_, page) = acme
        .admin
        .get_raw("/v1/assets/ex1/telemetry")
        .await
        .expect("page");
    assert_eq!(
        lines,
        page["items"].as_array().cloned().expect("items"),
        "as the paged API shows them"
    );

    let (status, csv) = export(
        &gateway,
        &acme.admin_token,
        "/v1/assets/ex1/telemetry",
        "text/csv",
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "a header and three rows: {csv}");
    assert!(
        rows[0].starts_with("ts,ts_ms,asset_id,") && rows[0].ends_with(",sensors.oil"),
        "{}",
        rows[0]
    );
    assert!(
        rows[2].ends_with(",2,,1.5"),
        "the sensor in its column: {}",
        rows[2]
    );

    let depot_path = format!("/v1/assets/ex1/telemetry?account_id={}", depot.account_id);
    let (status, theirs) = export(
        &gateway,
        &depot.admin_token,
        &depot_path,
        "application/x-ndjson",
    )
    .await;
    assert_eq!(status, 200);
    let fuels: Vec<f64> = theirs
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).expect("json")["fuel_pct"]
                .as_f64()
                .expect("fuel")
        })
        .collect();
    assert_eq!(fuels, [2.0, 3.0], "the grantee's window only");
    let (status, _) = export(
        &gateway,
        &stranger.admin_token,
        "/v1/assets/ex1/telemetry",
        "text/csv",
    )
    .await;
    assert_eq!(status, 404);
    let backwards = "/v1/assets/ex1/telemetry?from=2026-11-25T10:00:00Z&to=2026-11-25T09:00:00Z";
    let (status, problem) = export(&gateway, &acme.admin_token, backwards, "text/csv").await;
    assert_eq!(status, 422, "{problem}");
}
