//! The web console's flow 5, Live and history, end to end in headless Chromium against a
//! real gateway (see `console.rs` for the harness): an asset's latest point and its live
//! updates from the SSE stream, a chart of a sensor over a range and the track of its
//! positions (our own SVG, nothing loaded from outside), the unit's status (online, last
//! seen, errors, key set delivered); the refusal a grantee meets when the owner takes the
//! asset away while the live page is open; and with `--map-tile-url` the track drawn on
//! that server's tiles, which the page's policy then allows (and nothing else).

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use simulator::KeyHolder;
use tests::browser::Browser;
use tests::{call, eventually, publish_acked, Fleet, TestGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rfc3339(ms: u64) -> String {
    simulator::telemetry::rfc3339_from_ms(ms).expect("time")
}

/// Twenty readings over the last twenty minutes: a machine driving north-east.
fn drive(now_ms: u64) -> Vec<serde_json::Value> {
    (0..20u64)
        .map(|i| {
            let step = i as f64;
            json!({
                "ts": now_ms - (20 - i) * 60_000,
                "lat": 52.52 + step * 0.001, "lon": 13.40 + step * 0.0015,
                "speed_kmh": 10.0 + step, "fuel_pct": 80.0 - step * 0.5,
                "engine_hours": 1200.0 + step / 60.0,
                "sensors": {"hydraulic_bar": 150.0 + step * 2.0},
            })
        })
        .collect()
}

/// Scrolls the page so that `css` is at the top, for a screenshot of what lies below the
/// fold.
async fn scroll_to(browser: &Browser, css: &str) {
    let script = "document.querySelector(arguments[0]).scrollIntoView()";
    browser
        .client
        .execute(script, vec![json!(css)])
        .await
        .expect("scrolled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assets_latest_point_live_updates_chart_track_and_unit_status() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    owner.unit_with_asset("u1", "ex1").await;
    let unit = Arc::new(owner.connect("u1").await);
    let holder = KeyHolder::start(unit.clone()).await.expect("key holder");
    for point in drive(gateway.now_ms()) {
        unit.publish_point(&point).await.expect("published");
    }
    // One malformed reading: the unit's status counts it as an error.
    publish_acked(&unit, "/tenants/u1/telemetry", b"not json".to_vec()).await;
    owner.history("ex1", 20).await;
    // A key on the asset: its key set reaches the unit, which acknowledges it.
    let now = gateway.now_ms();
    let key = json!({"personal": false, "asset_ids": ["ex1"], "access_type": "keypad_pin",
        "valid_from": rfc3339(now), "valid_to": rfc3339(now + 3_600_000)});
    let (status, created) = call(&owner.admin, Method::POST, "/v1/keys", Some(key)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["distribution"]["delivered"],
        json!(["u1"]),
        "{created}"
    );
    assert!(holder.version().is_some(), "the unit holds a key set");

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("#/live/ex1").await;
    browser.sign_in_with_token(&owner.admin_token, true).await;
    browser.text_of("#live-state", "Live").await;
    let latest = browser.text_of("#latest-facts", "29 km/h").await;
    assert!(
        latest.contains("+01:00"),
        "times in the browser's zone: {latest}"
    );
    // To the second: readings a few seconds apart must not look alike.
    let clock = latest
        .split(" +01:00")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .unwrap_or_default();
    assert!(
        clock.len() == 8 && clock.matches(':').count() == 2,
        "the latest reading's time has seconds: {latest}"
    );
    assert!(latest.contains("hydraulic_bar"), "{latest}");
    browser.text_of("#history-count", "20 readings").await;
    browser.find("#chart-box svg.chart path.series").await;
    browser.find("#track-box svg.track path.route").await;
    browser.text_of("#unit-online", "online").await;
    browser.text_of("#unit-errors", "1").await;
    browser.text_of("#unit-keys", "delivered").await;
    browser.shot("flow5-01-latest-chart-and-status").await;

    // A new reading arrives live: the latest point and the live table show it at once.
    unit.publish_point(&json!({"speed_kmh": 77.5, "ignition": false, "lat": 52.54, "lon": 13.43}))
        .await
        .expect("published");
    browser.text_of("#latest-facts", "77.5 km/h").await;
    browser.text_of("#live-table", "Speed 77.5 km/h").await;
    browser.text_of("#live-table", "ignition off").await;
    browser.shot("flow5-02-live-update").await;

    // Another sensor over the same range.
    browser.select("#sensor", "hydraulic_bar").await;
    let chart = browser.find("#chart-box svg.chart").await;
    let label = chart
        .attr("aria-label")
        .await
        .expect("label")
        .unwrap_or_default();
    assert!(label.starts_with("hydraulic_bar"), "{label}");
    scroll_to(&browser, "#chart-box").await;
    browser.shot("flow5-03-sensor-chart").await;
    scroll_to(&browser, "#track-box").await;
    browser.shot("flow5-04-track").await;

    // A range with no readings says so rather than drawing an empty frame.
    let year = time::OffsetDateTime::now_utc().year() - 1;
    browser.select("#range", "Custom range").await;
    browser
        .type_into("#from-date", &format!("0101{year}"))
        .await;
    browser.type_into("#to-date", &format!("0201{year}")).await;
    browser.click("#show-history").await;
    browser.text_of("#history-count", "0 readings").await;
    browser.find("#no-readings").await;
    browser.find("#no-positions").await;

    // The devices page shows the same status in its list.
    browser.click("nav a[href='#/devices']").await;
    let row = browser
        .text_of("#devices-table tr[data-id='u1']", "online")
        .await;
    assert!(row.contains("delivered") && row.contains("ex1"), "{row}");
    browser.shot("flow6-05-devices").await;
    drop(holder);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grantee_watching_live_is_told_when_the_owner_takes_the_asset_away() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    owner.unit_with_asset("u1", "ex1").await;
    let unit = owner.connect("u1").await;
    // The grant shows readings stamped from its start on (rule 2).
    let granted = owner.grant(&depot, &["ex1"], json!({})).await;
    assert_eq!(granted.status, 201, "{}", granted.body);
    unit.publish_point(&json!({"speed_kmh": 12.0, "lat": 52.5, "lon": 13.4}))
        .await
        .expect("published");
    owner.history("ex1", 1).await;

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("#/live/ex1").await;
    browser.sign_in_with_token(&depot.admin_token, true).await;
    browser.text_of("#live-state", "Live").await;
    browser.text_of("#latest-facts", "12 km/h").await;
    // A grantee sees the readings, not the owner's unit.
    assert_eq!(browser.count("#unit-status").await, 0);
    unit.publish_point(&json!({"speed_kmh": 33.0}))
        .await
        .expect("published");
    browser.text_of("#live-table", "Speed 33 km/h").await;

    owner.remove_grants(&depot, &["ex1"]).await;
    browser
        .text_of("#live-access-ended", "Your access to this asset has ended")
        .await;
    // What the page showed of the asset went with the access.
    browser.gone("#live-table").await;
    browser.gone("#latest-facts").await;
    browser.shot("flow5-05-grant-removed").await;
    browser.quit().await;
}

/// A transparent 1x1 PNG: what the test's tile server answers for every tile.
const TILE: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// A map tile server on a loopback port: its origin, and the paths it was asked for.
async fn tile_server() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let noted = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let noted = noted.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or_default();
                noted.lock().expect("lock").push(path.to_owned());
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    TILE.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.write_all(TILE).await;
            });
        }
    });
    (origin, asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_tile_url_the_track_is_drawn_on_its_tiles_which_the_policy_allows() {
    let (origin, asked) = tile_server().await;
    let template = format!("{origin}/{{z}}/{{x}}/{{y}}.png");
    let gateway = TestGateway::start_with(move |config| {
        config.map_tile_url = Some(template.clone());
    });
    let page = reqwest::get(format!("{}/", gateway.http_base()))
        .await
        .expect("page");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        policy.contains(&format!("img-src 'self' {origin};")),
        "{policy}"
    );
    assert_eq!(policy.matches(&origin).count(), 1, "{policy}");
    let owner = Fleet::create(&gateway, "Acme").await;
    owner.unit_with_asset("u1", "ex1").await;
    let unit = owner.connect("u1").await;
    for point in drive(gateway.now_ms()) {
        unit.publish_point(&point).await.expect("published");
    }
    owner.history("ex1", 20).await;

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("#/live/ex1").await;
    browser.sign_in_with_token(&owner.admin_token, true).await;
    browser.text_of("#track-note", &origin).await;
    browser.find("#track-box svg.track image.tile").await;
    browser.find("#track-box svg.track path.route").await;
    let tiles = eventually(|| async {
        let asked = asked.lock().expect("lock").clone();
        (!asked.is_empty()).then_some(asked)
    })
    .await
    .expect("the browser loaded tiles");
    assert!(
        tiles.iter().all(|path| {
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            parts.len() == 3 && parts[0].parse::<u8>().is_ok() && parts[2].ends_with(".png")
        }),
        "{tiles:?}"
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asset_picker_offers_every_asset_past_the_first_page_of_1000() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    // 1,001 assets: one more than the largest page the gateway answers.
    let ids: Vec<String> = (0..1001).map(|n| format!("a{n:04}")).collect();
    for batch in ids.chunks(50) {
        let calls = batch.iter().map(|id| {
            let body = json!({"id": id, "name": format!("Asset {id}")});
            call(&owner.admin, Method::POST, "/v1/assets", Some(body))
        });
        for (status, body) in futures_util::future::join_all(calls).await {
            assert_eq!(status, 201, "{body}");
        }
    }
    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("#/live").await;
    browser.sign_in_with_token(&owner.admin_token, true).await;
    let last = ids.last().expect("ids");
    browser
        .find(&format!("#live-asset option[value='{last}']"))
        .await;
    assert_eq!(browser.count("#live-asset option").await, 1001);
    browser.quit().await;
}
