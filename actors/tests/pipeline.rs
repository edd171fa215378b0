//! The live path without a network: store writer semantics, and a point going from a
//! `DeviceActor` to its owner's subscribers and MQTT topic and into the store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actors::account::{LiveEvent, Subscribe};
use actors::device::{Channel, GetStatus, Inbound};
use actors::directory::Directory;
use actors::metrics::Metrics;
use actors::writer::StoreWriter;
use actors::{MqttOut, Outcome};
use bytes::Bytes;
use storage::model::{Capabilities, Role};
use storage::ops::{self, NewAsset};
use storage::time::{ManualClock, Timestamp};
use storage::{read, AssetId, DeviceId, OpError, Store};

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<(String, Bytes)>>);

impl MqttOut for Recorder {
    fn push_keys(&self, device: &DeviceId, payload: Bytes) {
        let topic = format!("/tenants/{device}/keys");
        self.0.lock().expect("lock").push((topic, payload));
    }

    fn listening(&self, _: &storage::AccountId) -> bool {
        true
    }

    fn deliver(&self, account: &storage::AccountId, asset: &AssetId, payload: Bytes) {
        let topic = format!("/tenants/{account}/assets/{asset}/telemetry");
        self.0.lock().expect("lock").push((topic, payload));
    }
    // This recorder keeps what was delivered; it has no queue to re-check.
    fn access_changed(&self) {}
}

fn open_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.redb")).expect("open");
    (dir, store)
}

#[actix_rt::test]
async fn control_ops_commit_whole_or_not_at_all() {
    let (_dir, store) = open_store();
    let token = store
        .bootstrap(Timestamp(1))
        .expect("bootstrap")
        .expect("token");
    let platform = read::principal_for_token(&store.begin_read().expect("read"), &token)
        .expect("lookup")
        .expect("admin");
    let writer = StoreWriter::spawn(
        store.clone(),
        Duration::from_millis(5),
        Arc::new(Metrics::new()),
    )
    .expect("writer");
    let handle = writer.handle();

    let refused = {
        let platform = platform.clone();
        handle
            .execute(move |tx| {
                ops::create_account(tx, &platform, "First", None, Timestamp(2))?;
                // A later step fails: the account created above must not survive.
                Err::<(), _>(OpError::invalid("name", "refused on purpose"))
            })
            .await
    };
    assert!(matches!(refused, Err(OpError::Invalid { .. })));
    let accounts = store
        .begin_read()
        .expect("read")
        .open_table(storage::tables::ACCOUNTS)
        .expect("table");
    use storage::redb::ReadableTableMetadata;
    assert_eq!(accounts.len().expect("len"), 0, "nothing half-written");

    let account = handle
        .execute(move |tx| ops::create_account(tx, &platform, "Second", None, Timestamp(3)))
        .await
        .expect("created");
    // Visible to a reader as soon as execute answers: the commit came first.
    assert!(
        read::account(&store.begin_read().expect("read"), &account.id)
            .expect("read")
            .is_some()
    );
    writer.shutdown();
}

#[actix_rt::test]
async fn a_point_reaches_owner_stream_mqtt_topic_and_store() {
    let (_dir, store) = open_store();
    let token = store
        .bootstrap(Timestamp(1))
        .expect("bootstrap")
        .expect("token");
    let platform = read::principal_for_token(&store.begin_read().expect("read"), &token)
        .expect("lookup")
        .expect("admin");
    let tx = store.begin_write().expect("write");
    let account = ops::create_account(&tx, &platform, "Acme", None, Timestamp(2)).expect("account");
    let (admin, _) = ops::create_user(
        &tx,
        &platform,
        &account.id,
        "ann",
        Role::Admin,
        Timestamp(2),
    )
    .expect("user");
    let unit = DeviceId::parse("unit1").expect("id");
    ops::register_device(
        &tx,
        &admin,
        &account.id,
        unit.clone(),
        Capabilities::default(),
        Timestamp(3),
    )
    .expect("device");
    let new = NewAsset {
        id: AssetId::parse("ex1").expect("id"),
        name: "Excavator".into(),
        serial: None,
        device_id: Some(unit.clone()),
        details: Default::default(),
    };
    let (asset, _) = ops::create_asset(&tx, &admin, &account.id, new, Timestamp(4)).expect("asset");
    tx.commit().expect("commit");

    let metrics = Arc::new(Metrics::new());
    let writer = StoreWriter::spawn(store.clone(), Duration::from_millis(5), metrics.clone())
        .expect("writer");
    let recorder = Arc::new(Recorder::default());
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
    let shed = Arc::new(actors::shed::ShedLedger::default());
    let shared = actors::Context {
        writer: writer.handle(),
        metrics: metrics.clone(),
        clock,
        mqtt: recorder.clone(),
        arrivals: Arc::new(actors::arrival::Arrivals::starting_after(None)),
        shed: shed.clone(),
        horizon: Arc::new(actors::horizon::Horizon::forever()),
    };
    let directory = Directory::start(store.clone(), shared, vec![actix_rt::Arbiter::current()])
        .expect("directory");
    let mut stream = directory
        .account(&account.id)
        .send(Subscribe {
            only: None,
            allowed: Box::new(|| true),
            buffer: actors::account::SUBSCRIBER_BUFFER,
        })
        .await
        .expect("subscribed");
    let device = directory
        .device(&unit)
        .expect("actor started for a registered device");

    let (stored_tx, stored) = tokio::sync::oneshot::channel();
    let (refused_tx, refused) = tokio::sync::oneshot::channel();
    device.do_send(Inbound {
        channel: Channel::Telemetry,
        payload: Bytes::from_static(br#"{"fuel_pct":42}"#),
        packet_id: Some(1),
        dup: false,
        done: Some(stored_tx),
    });
    device.do_send(Inbound {
        channel: Channel::Telemetry,
        payload: Bytes::from_static(br#"{"fuel_pct":420}"#),
        packet_id: Some(2),
        dup: false,
        done: Some(refused_tx),
    });
    // The acknowledgement of a point comes after the commit that holds it: once it is in,
    // the point is readable without any flush.
    assert_eq!(stored.await.expect("answered"), Outcome::Accepted);
    let committed = read::history(
        &store.begin_read().expect("read"),
        asset.key,
        read::ALL_TIME,
        None,
        10,
        |_| true,
    )
    .expect("history");
    assert_eq!(committed.items.len(), 1, "acknowledged means committed");
    assert_eq!(
        refused.await.expect("answered"),
        Outcome::Refused("out_of_range"),
        "refused for good, with the reason it is counted under"
    );
    let event = tokio::time::timeout(Duration::from_secs(5), stream.recv())
        .await
        .expect("in time")
        .expect("open");
    let LiveEvent::Event {
        id, event, data, ..
    } = event
    else {
        panic!("expected a point, got {event:?}");
    };
    assert_eq!(event, "point");
    assert_eq!(id, storage::arrivals::ArrivalId(1), "the first arrival");
    let json: serde_json::Value = serde_json::from_slice(&data).expect("json");
    assert_eq!(json["asset_id"], "ex1");
    assert_eq!(
        json["ts_ms"], 1_800_000_000_000u64,
        "stamped with the gateway clock"
    );

    let status = device.send(GetStatus).await.expect("status").stored;
    assert_eq!(status.points, 1);
    assert_eq!(status.error_count, 1);
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("fuel_pct"),
        "{status:?}"
    );
    assert_eq!(metrics.dropped_count("out_of_range"), 1);

    let topics: Vec<String> = recorder
        .0
        .lock()
        .expect("lock")
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    assert_eq!(
        topics,
        vec![format!("/tenants/{}/assets/ex1/telemetry", account.id)]
    );

    writer.handle().flush().await;
    let stored = read::history(
        &store.begin_read().expect("read"),
        asset.key,
        read::ALL_TIME,
        None,
        10,
        |_| true,
    )
    .expect("history");
    assert_eq!(stored.items.len(), 1, "the invalid point was never stored");

    // A stream whose authority ended between its request's check and its subscription
    // ends at once instead of waiting for the next change.
    let mut late = directory
        .account(&account.id)
        .send(Subscribe {
            only: None,
            allowed: Box::new(|| false),
            buffer: actors::account::SUBSCRIBER_BUFFER,
        })
        .await
        .expect("answered");
    let ended = tokio::time::timeout(Duration::from_secs(5), late.recv()).await;
    assert!(matches!(ended, Ok(None)), "ended, not open: {ended:?}");

    // Events shed at the account's full mailbox (noted here as the device actor would)
    // reach the stream as one gap before the next event, never as silence.
    shed.note(&account.id, &asset.id, storage::arrivals::ArrivalId(50));
    shed.note(&account.id, &asset.id, storage::arrivals::ArrivalId(51));
    device.do_send(Inbound {
        channel: Channel::Telemetry,
        payload: Bytes::from_static(br#"{"fuel_pct":43}"#),
        packet_id: Some(3),
        dup: false,
        done: None,
    });
    let gap = tokio::time::timeout(Duration::from_secs(5), stream.recv()).await;
    let Ok(Some(LiveEvent::Gap(gap))) = gap else {
        panic!("expected the gap first, got {gap:?}");
    };
    assert_eq!((gap.dropped, gap.from_id.0, gap.to_id.0), (2, 50, 51));
    let point = tokio::time::timeout(Duration::from_secs(5), stream.recv()).await;
    assert!(
        matches!(point, Ok(Some(LiveEvent::Event { event: "point", .. }))),
        "{point:?}"
    );
    writer.shutdown();
}
