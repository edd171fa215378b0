//! A day of one asset at 1 Hz (86,400 points of 9 fields) read back through the HTTP API of
//! a real gateway: every page of the maximum 1,000, and the same range as one streamed
//! NDJSON or CSV answer. Before the runs it prints the bytes on disk per stored point (the
//! file after compaction, divided by the points). `cargo bench -p benches --bench history`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use storage::time::Timestamp;
use tests::{Fleet, TestGateway};

/// The gateway's allocator (`gateway/src/main.rs`): the server half of this process should
/// allocate as the real one does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DAY: u64 = 86_400;

/// A history page as a typed client reads it: the point's fields, its sensors by name.
#[derive(serde::Deserialize)]
struct Page {
    items: Vec<Row>,
    next_cursor: Option<String>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)] // read to parse them, as a client would
struct Row {
    asset_id: String,
    ts_ms: u64,
    lat: Option<f64>,
    lon: Option<f64>,
    speed_kmh: Option<f64>,
    heading: Option<f64>,
    engine_hours: Option<f64>,
    odometer_km: Option<f64>,
    fuel_pct: Option<f64>,
    ignition: Option<bool>,
    #[serde(default)]
    sensors: std::collections::BTreeMap<String, f64>,
}
const START: u64 = 1_800_000_000_000;

/// A stopped gateway's store gets a day of points for `asset` of `account` (a unit driving
/// all day), written as the store writer would, sealed into chunks as the retention task
/// does an hour after each bucket, then the file is compacted; returns its size in bytes.
fn seed(gateway: &TestGateway, account: &str) -> u64 {
    let path = gateway.data_dir().join("fleetgate.redb");
    {
        let store = storage::Store::open(&path).expect("open");
        let rtx = store.begin_read().expect("read");
        let assets = rtx.open_table(storage::tables::ASSETS).expect("assets");
        let record = assets.get((account, "ex1")).expect("get").expect("asset");
        let asset: storage::model::Asset = storage::codec::decode(record.value()).expect("decodes");
        drop((record, assets, rtx));
        for chunk in (0..DAY).collect::<Vec<_>>().chunks(10_000) {
            let points: Vec<_> = chunk
                .iter()
                .map(|i| {
                    let payload = benches::drive_payload(START + i * 1000, *i);
                    storage::telemetry::decode(&payload, Timestamp(START + DAY * 1000))
                        .expect("valid")
                        .point
                })
                .collect();
            let tx = store.begin_write().expect("write");
            storage::ops::write_points(&tx, points.iter().map(|p| (asset.key, p))).expect("insert");
            tx.commit().expect("commit");
        }
        let now = Timestamp(START + (DAY + 1) * 1000 + storage::telemetry::seal::SEAL_AFTER_MS);
        let mut at = Some((0, 0));
        while let Some(start) = at {
            let tx = store.begin_write().expect("write");
            at = storage::telemetry::seal::seal(&tx, now, start, 5_000)
                .expect("seal")
                .resume;
            tx.commit().expect("commit");
        }
    }
    let mut db = storage::redb::Database::open(&path).expect("reopen");
    while db.compact().expect("compact") {}
    drop(db);
    std::fs::metadata(&path).expect("size").len()
}

fn history(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut gateway = TestGateway::start();
    let fleet = runtime.block_on(async {
        let fleet = Fleet::create(&gateway, "Acme").await;
        fleet.unit_with_asset("unit1", "ex1").await;
        fleet
    });
    gateway.stop();
    let bytes = seed(&gateway, &fleet.account_id.to_string());
    println!(
        "bytes on disk per point after compaction: {:.1} ({bytes} bytes / {DAY} points)",
        bytes as f64 / DAY as f64
    );
    gateway.restart();
    let client = reqwest::Client::new();
    let base = gateway.http_base();
    let token = format!("Bearer {}", fleet.admin_token);
    let get = |path: String, accept: &'static str| {
        let request = client
            .get(format!("{base}{path}"))
            .header(AUTHORIZATION, &token)
            .header(ACCEPT, accept);
        async move {
            request
                .send()
                .await
                .expect("answer")
                .bytes()
                .await
                .expect("body")
        }
    };
    let mut group = c.benchmark_group("history_day");
    group.sample_size(10);
    group.throughput(Throughput::Elements(DAY));
    let page_path = |cursor: &Option<String>| match cursor {
        None => "/v1/assets/ex1/telemetry?limit=1000".to_owned(),
        Some(at) => format!("/v1/assets/ex1/telemetry?limit=1000&cursor={at}"),
    };
    group.bench_function("paged_1000", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let (mut cursor, mut points) = (None::<String>, 0);
                loop {
                    let body = get(page_path(&cursor), "application/json").await;
                    let page: Page = serde_json::from_slice(&body).expect("json");
                    points += page.items.len();
                    cursor = page.next_cursor;
                    if cursor.is_none() {
                        break;
                    }
                }
                assert_eq!(points as u64, DAY);
            })
        })
    });
    // The same pages, asked for as the `Link: rel="next"` header of each answer arrives
    // (RFC 8288), while the client still parses the page: the gateway renders page n + 1
    // as the client reads page n.
    group.bench_function("paged_1000_link", |b| {
        let head = |url: String| {
            let request = client
                .get(url)
                .header(AUTHORIZATION, &token)
                .header(ACCEPT, "application/json");
            tokio::spawn(async move { request.send().await.expect("answer") })
        };
        b.iter(|| {
            runtime.block_on(async {
                let mut pending = head(format!("{base}{}", page_path(&None)));
                let mut points = 0;
                loop {
                    let answer = pending.await.expect("task");
                    let next = answer.headers().get(reqwest::header::LINK).map(|link| {
                        let link = link.to_str().expect("ascii");
                        let target = link.split(['<', '>']).nth(1).expect("a link target");
                        format!("{base}{target}")
                    });
                    let following = next.map(head);
                    let body = answer.bytes().await.expect("body");
                    let page: Page = serde_json::from_slice(&body).expect("json");
                    points += page.items.len();
                    match following {
                        Some(task) => pending = task,
                        None => break,
                    }
                }
                assert_eq!(points as u64, DAY);
            })
        })
    });
    group.bench_function("paged_1000_json_tree", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let (mut cursor, mut points) = (None::<String>, 0);
                loop {
                    let body = get(page_path(&cursor), "application/json").await;
                    let page: serde_json::Value = serde_json::from_slice(&body).expect("json");
                    points += page["items"].as_array().map_or(0, Vec::len);
                    cursor = page["next_cursor"].as_str().map(str::to_owned);
                    if cursor.is_none() {
                        break;
                    }
                }
                assert_eq!(points as u64, DAY);
            })
        })
    });
    for (name, accept) in [
        ("export_ndjson", "application/x-ndjson"),
        ("export_csv", "text/csv"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let body = runtime.block_on(get("/v1/assets/ex1/telemetry".into(), accept));
                assert!(
                    body.len() > DAY as usize * 50,
                    "{name}: {} bytes",
                    body.len()
                );
            })
        });
    }
    group.finish();
}

criterion_group!(benches, history);
criterion_main!(benches);
