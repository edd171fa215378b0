//! Crash consistency: guards against a `kill -9` losing a control-plane change that was
//! answered 2xx or a telemetry point that was acknowledged (the PUBACK leaves only after
//! the commit that holds the point), and against a store that does not open and serve
//! again within seconds.
//!
//! The gateway runs as a process, units stream at QoS 1 and an admin keeps creating
//! accounts while the process is killed at a random moment, a bounded number of rounds
//! (`FLEETGATE_CRASH_ROUNDS`, default 3; the benchmark in docs/benchmarks.md runs 20).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;
use simulator::api::{AssetId, HistoryQuery, NewAsset, NewDevice, UserRole};
use simulator::{ApiClient, BrokerAddr, SimUnit, UnitOptions};

const BIN: &str = env!("CARGO_BIN_EXE_fleetgate");
/// Rounds when `FLEETGATE_CRASH_ROUNDS` is not set.
const DEFAULT_ROUNDS: usize = 3;
const UNITS: usize = 5;
const COMMIT_WINDOW_MS: u64 = 20;

struct Running {
    child: Child,
    http: String,
    mqtt: BrokerAddr,
    started_in: Duration,
}

fn spawn(dir: &Path) -> Running {
    let _ = std::fs::remove_file(dir.join("ready.json"));
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--mqtt-plain-addr",
            "127.0.0.1:0",
            "--mqtt-tls-addr",
            "127.0.0.1:0",
        ])
        .args(["--commit-window-ms", &COMMIT_WINDOW_MS.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fleetgate starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready: serde_json::Value = loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("ready.json")) {
            break serde_json::from_str(&text).expect("ready.json");
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "fleetgate exited before it was ready"
        );
        assert!(Instant::now() < deadline, "fleetgate not ready within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mqtt: BrokerAddr = ready["mqtt_plain"]
        .as_str()
        .expect("plain")
        .parse()
        .expect("addr");
    Running {
        child,
        http: format!("http://{}", ready["http"].as_str().expect("http")),
        mqtt,
        started_in: started.elapsed(),
    }
}

/// What the clients were told, with when.
#[derive(Default)]
struct Ledger {
    /// (unit, seq, acked at).
    acked: Vec<(usize, u64, Instant)>,
    accounts: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_loses_no_answered_change_and_at_most_the_window_of_telemetry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut gateway = spawn(dir.path());
    let token = std::fs::read_to_string(dir.path().join("bootstrap-token"))
        .expect("token")
        .trim()
        .to_owned();
    let platform = ApiClient::new(&gateway.http, token.clone()).expect("client");
    let account = platform
        .create_account("Acme", None)
        .await
        .expect("account");
    let admin_token = platform
        .create_user(&account.id, "admin", UserRole::Admin)
        .await
        .expect("admin")
        .token;
    let admin = platform.with_token(admin_token.clone());
    for unit in 0..UNITS {
        admin
            .create_device(&NewDevice::new(format!("unit{unit}")))
            .await
            .expect("device");
        admin
            .create_asset(
                &NewAsset::new(format!("ex{unit}"), "machine").bound_to(format!("unit{unit}")),
            )
            .await
            .expect("asset");
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut next_seq = 0u64;
    let rounds: usize = std::env::var("FLEETGATE_CRASH_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS);
    for round in 0..rounds {
        let platform = ApiClient::new(&gateway.http, token.clone()).expect("client");
        let mut units = Vec::new();
        for unit in 0..UNITS {
            let options = UnitOptions::unit(format!("unit{unit}"), gateway.mqtt.clone());
            units.push(Arc::new(
                SimUnit::connect(options).await.expect("unit connects"),
            ));
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (index, unit) in units.iter().enumerate() {
            let (unit, ledger, stop) = (unit.clone(), ledger.clone(), stop.clone());
            let first = next_seq + index as u64 * 100_000;
            tasks.push(tokio::spawn(async move {
                for seq in first..first + 100_000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let point = json!({"fuel_pct": 1, "sensors": {"seq": seq as f64}});
                    match unit.publish_point(&point).await {
                        Ok(()) => {
                            ledger
                                .lock()
                                .expect("lock")
                                .acked
                                .push((index, seq, Instant::now()))
                        }
                        Err(_) => break,
                    }
                }
            }));
        }
        let (admin_ledger, admin_stop) = (ledger.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..10_000 {
                if admin_stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                match platform
                    .create_account(&format!("R{round}-{n}"), None)
                    .await
                {
                    Ok(created) => admin_ledger
                        .lock()
                        .expect("lock")
                        .accounts
                        .push(created.id.to_string()),
                    Err(_) => break,
                }
            }
        }));
        let pause = rand::rng().random_range(300..1200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        gateway.child.kill().expect("kill -9");
        let _ = gateway.child.wait();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        next_seq += UNITS as u64 * 100_000;
        gateway = spawn(dir.path());
        assert!(
            gateway.started_in < Duration::from_secs(10),
            "round {round}: the store opened and served in {:?}",
            gateway.started_in
        );
    }

    // Every answered change is there; telemetry loss is bounded to the moments before a kill.
    let platform = ApiClient::new(&gateway.http, token).expect("client");
    let admin = platform.with_token(admin_token);
    // Every task has ended: take the ledger out of its lock before awaiting anything.
    let ledger = std::mem::take(&mut *ledger.lock().expect("lock"));
    assert!(
        !ledger.accounts.is_empty() && !ledger.acked.is_empty(),
        "the rounds did work"
    );
    for id in &ledger.accounts {
        let (status, _) = platform
            .get_raw(&format!("/v1/accounts/{id}"))
            .await
            .expect("answer");
        assert_eq!(status, 200, "answered account {id} survived the crash");
    }
    let mut stored = std::collections::BTreeSet::new();
    for unit in 0..UNITS {
        let points = admin
            .telemetry_all(&AssetId::new(format!("ex{unit}")), &HistoryQuery::default())
            .await
            .expect("history");
        stored.extend(points.iter().filter_map(|p| p.seq()));
    }
    let lost: Vec<&(usize, u64, Instant)> = ledger
        .acked
        .iter()
        .filter(|(_, seq, _)| !stored.contains(seq))
        .collect();
    // The promise: an acknowledged point is stored. A kill loses only what the units had
    // not been acknowledged yet, and they would send that again.
    println!(
        "crash rounds: {rounds}; acknowledged {} points, lost {}; {} answered accounts all present",
        ledger.acked.len(),
        lost.len(),
        ledger.accounts.len()
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged points were lost, the first: {:?}",
        lost.len(),
        lost.first().map(|(unit, seq, _)| (unit, seq))
    );
    let mut gateway = gateway;
    let _ = gateway.child.kill();
}
