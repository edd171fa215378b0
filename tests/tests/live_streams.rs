//! Live streams a client can trust (DESIGN 5.4): every event carries its arrival `id`,
//! rising across assets; a client that reconnects with `Last-Event-ID` gets exactly what it
//! missed and may see now (access events on the owner's stream only, a grantee nothing
//! outside its window or of a grant removed meanwhile); a reader too slow for its buffer
//! hears of what it lost as `event: gap`; an id the arrival index no longer covers gets
//! `event: reset`.

use std::time::Duration;

use serde_json::{json, Value};
use simulator::api::{SseEvent, SseStream};
use simulator::{ApiClient, SimUnit};
use tests::{Fleet, TestGateway, WAIT};

/// The next event (keep-alives are not events), within [`WAIT`].
async fn next_event(stream: &mut SseStream) -> SseEvent {
    stream
        .next_timeout(WAIT)
        .await
        .expect("an event within the wait")
        .expect("a readable event")
}

/// The event's arrival id.
fn id_of(event: &SseEvent) -> u64 {
    let id = event
        .id
        .as_deref()
        .unwrap_or_else(|| panic!("no id: {event:?}"));
    id.parse()
        .unwrap_or_else(|_| panic!("not a decimal id: {id}"))
}

/// Whether the stream stays quiet (no event at all) for a second.
async fn quiet(stream: &mut SseStream) -> Option<SseEvent> {
    stream
        .next_timeout(Duration::from_secs(1))
        .await
        .map(|event| event.expect("readable"))
}

async fn publish(unit: &SimUnit, point: Value) {
    unit.publish_point(&point).await.expect("acknowledged");
}

async fn publish_access(unit: &SimUnit, device: &str, ts: u64) {
    let event = json!({"ts": ts, "key_id": "key1", "result": "granted"}).to_string();
    let topic = format!("/tenants/{device}/events/access");
    tests::publish_acked(unit, &topic, event.into_bytes()).await;
}

/// Opens `path` resuming after `id` (the `Last-Event-ID` header).
async fn resume(client: &ApiClient, path: &str, id: u64) -> SseStream {
    let id = id.to_string();
    client
        .stream_resuming(path, Some(&id))
        .await
        .expect("stream opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_rise_strictly_across_two_assets_on_the_account_stream() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    acme.unit_with_asset("unit1", "ex1").await;
    acme.unit_with_asset("unit2", "ex2").await;
    let (one, two) = (acme.connect("unit1").await, acme.connect("unit2").await);
    let mut stream = acme.admin.stream("/v1/stream").await.expect("open");
    let mut waiting = Vec::new();
    for round in 0..100 {
        let point = json!({"fuel_pct": round});
        waiting.push(one.send_point(&point).await.expect("queued"));
        waiting.push(two.send_point(&point).await.expect("queued"));
    }
    for waiter in waiting {
        waiter.wait_timeout(WAIT).await.expect("acknowledged");
    }
    let mut last = 0;
    let mut assets = std::collections::HashSet::new();
    for _ in 0..200 {
        let event = next_event(&mut stream).await;
        assert_eq!(event.event, "point");
        let id = id_of(&event);
        assert!(id > last, "id {id} after {last}");
        last = id;
        assets.insert(event.data["asset_id"].as_str().map(str::to_owned));
    }
    assert_eq!(assets.len(), 2, "both assets on one stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_resuming_gets_exactly_what_it_missed_access_events_included() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    acme.unit_with_asset("unit1", "ex1").await;
    let unit = acme.connect("unit1").await;
    let mut stream = acme.admin.stream("/v1/stream").await.expect("open");
    publish(&unit, json!({"fuel_pct": 1})).await;
    let seen = id_of(&next_event(&mut stream).await);
    drop(stream);

    publish(&unit, json!({"fuel_pct": 2})).await;
    publish_access(&unit, "unit1", gateway.now_ms() - 1_000).await;
    publish(&unit, json!({"fuel_pct": 3})).await;
    let mut resumed = resume(&acme.admin, "/v1/stream", seen).await;
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(next_event(&mut resumed).await);
    }
    let names: Vec<&str> = replayed.iter().map(|event| event.event.as_str()).collect();
    assert_eq!(names, ["point", "access", "point"]);
    assert_eq!(replayed[0].data["fuel_pct"], 2.0);
    assert_eq!(replayed[1].data["key_id"], "key1");
    assert_eq!(replayed[2].data["fuel_pct"], 3.0);
    let ids: Vec<u64> = replayed.iter().map(id_of).collect();
    assert!(
        seen < ids[0] && ids[0] < ids[1] && ids[1] < ids[2],
        "{seen} {ids:?}"
    );

    // Then live, with nothing in between twice or missing.
    publish(&unit, json!({"fuel_pct": 4})).await;
    let live = next_event(&mut resumed).await;
    assert_eq!(live.data["fuel_pct"], 4.0, "{live:?}");
    assert!(id_of(&live) > ids[2]);
    assert_eq!(quiet(&mut resumed).await, None, "nothing twice");

    // The query parameter serves clients that cannot set the header.
    let path = format!("/v1/stream?last_event_id={}", ids[1]);
    let mut by_query = acme.admin.stream(&path).await.expect("open");
    assert_eq!(next_event(&mut by_query).await.data["fuel_pct"], 3.0);
    assert_eq!(next_event(&mut by_query).await.data["fuel_pct"], 4.0);
    assert_eq!(quiet(&mut by_query).await, None);
    // So does the asset's stream.
    let mut asset = resume(&acme.admin, "/v1/assets/ex1/stream", ids[0]).await;
    assert_eq!(next_event(&mut asset).await.event, "access");
    assert_eq!(next_event(&mut asset).await.data["fuel_pct"], 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grantee_resuming_gets_only_what_it_may_see_now() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    acme.unit_with_asset("unit1", "ex1").await;
    acme.unit_with_asset("unit2", "ex2").await;
    let (one, two) = (acme.connect("unit1").await, acme.connect("unit2").await);
    let granted = acme.grant(&depot, &["ex1", "ex2"], json!({})).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    let ex2_grant = granted.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|grant| grant["asset_id"] == "ex2"))
        .and_then(|grant| grant["id"].as_str())
        .expect("the grant of ex2")
        .to_owned();
    let mut stream = depot.admin.stream("/v1/stream").await.expect("open");
    publish(&one, json!({"fuel_pct": 1})).await;
    let seen = id_of(&next_event(&mut stream).await);
    drop(stream);

    let before_the_grant = gateway.now_ms() - 600_000;
    publish(&one, json!({"ts": before_the_grant, "fuel_pct": 2})).await;
    publish(&one, json!({"fuel_pct": 3})).await;
    publish_access(&one, "unit1", gateway.now_ms() - 1_000).await;
    publish(&two, json!({"fuel_pct": 4})).await;
    let (status, body) = tests::remove_grant(&acme.admin, &ex2_grant).await;
    assert!(status == 200 || status == 204, "{status} {body}");

    let mut resumed = resume(&depot.admin, "/v1/stream", seen).await;
    let only = next_event(&mut resumed).await;
    assert_eq!(only.event, "point");
    assert_eq!(only.data["fuel_pct"], 3.0, "{only:?}");
    assert_eq!(
        quiet(&mut resumed).await,
        None,
        "not the point before its window, not the owner's access event, not ex2"
    );
    // The owner, resuming from the same id, gets all four.
    let mut owner = resume(&acme.admin, "/v1/stream", seen).await;
    let mut names = Vec::new();
    for _ in 0..4 {
        names.push(next_event(&mut owner).await.event);
    }
    assert_eq!(names, ["point", "point", "access", "point"]);
}

/// What a reader collected: the points (by id) and the gaps, in stream order.
#[derive(Debug, Default)]
struct Collected {
    points: Vec<u64>,
    gaps: Vec<Value>,
}

impl Collected {
    /// Reads until the point with `fuel_pct` = `marker` arrives (not collected), or with no
    /// marker until the stream is quiet for two seconds.
    async fn read(&mut self, stream: &mut SseStream, marker: Option<f64>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while tokio::time::Instant::now() < deadline {
            let wait = if marker.is_some() {
                WAIT
            } else {
                Duration::from_secs(2)
            };
            let Some(event) = stream.next_timeout(wait).await else {
                assert!(marker.is_none(), "the marker did not arrive");
                return;
            };
            let event = event.expect("readable");
            match event.event.as_str() {
                "gap" => self.gaps.push(event.data),
                "point" if marker.is_some() && event.data["fuel_pct"].as_f64() == marker => return,
                "point" => self.points.push(id_of(&event)),
                other => panic!("unexpected event {other}"),
            }
        }
        panic!("still reading after two minutes");
    }
}

async fn dropped_metric(fleet: &Fleet) -> u64 {
    let line = fleet
        .metric_line("fleetgate_sse_events_dropped_total ")
        .await
        .expect("the metric is exported");
    line.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_reader_gets_a_gap_that_counts_what_it_missed_then_the_stream_goes_on() {
    let gateway = TestGateway::start_with(|config| config.sse_buffer_events = 16);
    let acme = Fleet::create(&gateway, "Acme").await;
    acme.unit_with_asset("unit1", "ex1").await;
    let unit = acme.connect("unit1").await;
    let mut stream = acme.admin.stream("/v1/stream").await.expect("open");
    // The reader does not read while points arrive, in rounds until the gateway drops
    // some for it (the sockets' buffers hold many first); at most 48,000 points, below
    // what one resume replays.
    let mut published = 0u64;
    while dropped_metric(&acme).await == 0 && published < 48_000 {
        let mut waiting = Vec::new();
        for _ in 0..1_000 {
            let point = json!({"fuel_pct": 50});
            waiting.push(unit.send_point(&point).await.expect("queued"));
        }
        for waiter in waiting {
            waiter.wait_timeout(WAIT).await.expect("acknowledged");
        }
        published += 1_000;
    }
    assert!(
        dropped_metric(&acme).await > 0,
        "nothing dropped after {published}"
    );
    // The reader reads again: first what waits, then a marker, which carries any gap
    // still pending.
    let mut collected = Collected::default();
    collected.read(&mut stream, None).await;
    publish(&unit, json!({"fuel_pct": 99})).await;
    collected.read(&mut stream, Some(99.0)).await;
    let Collected { points, gaps } = collected;
    assert!(!gaps.is_empty(), "the reader heard of its loss");
    let dropped: u64 = gaps
        .iter()
        .map(|gap| gap["dropped"].as_u64().expect("dropped"))
        .sum();
    assert_eq!(
        points.len() as u64 + dropped,
        published,
        "received and reported add up to what was published"
    );
    assert_eq!(dropped_metric(&acme).await, dropped, "counted as reported");
    assert!(points.windows(2).all(|pair| pair[0] < pair[1]));
    // A gap sits between the ids around it; resuming from the id before it refills it.
    let gap = &gaps[0];
    let (from, to) = (
        gap["from_id"].as_u64().expect("from"),
        gap["to_id"].as_u64().expect("to"),
    );
    let before = points
        .iter()
        .copied()
        .filter(|id| *id < from)
        .max()
        .expect("an id before");
    assert!(points.iter().all(|id| *id < from || *id > to), "{gap}");
    let mut refill = resume(&acme.admin, "/v1/stream", before).await;
    for _ in 0..gap["dropped"].as_u64().expect("dropped") {
        let event = next_event(&mut refill).await;
        assert!((from..=to).contains(&id_of(&event)), "{event:?}");
    }
    // The stream goes on, with nothing more lost.
    publish(&unit, json!({"fuel_pct": 98})).await;
    let mut after = Collected::default();
    after.read(&mut stream, Some(98.0)).await;
    assert!(
        after.points.is_empty() && after.gaps.is_empty(),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_what_the_index_no_longer_keeps_gets_a_reset() {
    let gateway = TestGateway::start_with_manual_clock();
    let acme = Fleet::create(&gateway, "Acme").await;
    acme.unit_with_asset("unit1", "ex1").await;
    let unit = acme.connect("unit1").await;
    let mut stream = acme.admin.stream("/v1/stream").await.expect("open");
    publish(&unit, json!({"fuel_pct": 1})).await;
    let first = id_of(&next_event(&mut stream).await);
    // A day and an hour later, the next commit prunes what is past the retention.
    gateway.advance(Duration::from_secs(25 * 3600));
    publish(&unit, json!({"fuel_pct": 2})).await;
    let second = id_of(&next_event(&mut stream).await);

    let mut expired = resume(&acme.admin, "/v1/stream", first - 1).await;
    let reset = next_event(&mut expired).await;
    assert_eq!(reset.event, "reset", "{reset:?}");
    assert_eq!(reset.data["reason"], "expired");
    assert_eq!(reset.data["oldest_id"], second);
    assert_eq!(quiet(&mut expired).await, None, "no partial replay");
    // From the first id itself nothing is missing: the second point follows.
    let mut kept = resume(&acme.admin, "/v1/stream", first).await;
    assert_eq!(id_of(&next_event(&mut kept).await), second);

    let mut unknown = resume(&acme.admin, "/v1/stream", second + 10_000_000).await;
    let reset = next_event(&mut unknown).await;
    assert_eq!(
        (reset.event.as_str(), &reset.data["reason"]),
        ("reset", &json!("unknown"))
    );

    let refused = acme
        .admin
        .stream_resuming("/v1/stream", Some("yesterday"))
        .await;
    let Err(simulator::api::ApiError::Status { status, problem }) = refused else {
        panic!("a malformed id is refused, got {:?}", refused.map(|_| ()));
    };
    assert_eq!(status, 422);
    assert!(problem.detail.starts_with("Last-Event-ID"), "{problem:?}");
}

/// Two readings stamped in one millisecond (and one resent) arrive three times: a resume
/// replays each arrival as the reading it was, in order, not the millisecond's newest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_replays_each_reading_of_a_shared_millisecond_as_it_arrived() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    acme.unit_with_asset("unit1", "ex1").await;
    let unit = acme.connect("unit1").await;
    let mut stream = acme.admin.stream("/v1/stream").await.expect("open");
    publish(&unit, json!({"fuel_pct": 1})).await;
    let seen = id_of(&next_event(&mut stream).await);
    drop(stream);

    let t = gateway.now_ms() - 1_000;
    for fuel in [10, 90, 10] {
        publish(&unit, json!({"ts": t, "fuel_pct": fuel})).await;
    }
    let mut resumed = resume(&acme.admin, "/v1/stream", seen).await;
    let mut fuels = Vec::new();
    for _ in 0..3 {
        fuels.push(next_event(&mut resumed).await.data["fuel_pct"].clone());
    }
    assert_eq!(fuels, [json!(10.0), json!(90.0), json!(10.0)]);
    assert_eq!(quiet(&mut resumed).await, None, "nothing twice");
}

/// An account that sees one unit under two asset ids (a grant of `ex2` and a telemetry
/// mirror `m2` of it) gets each view of a point with an id of its own (the grant's first),
/// and a client that dropped between the two resumes with the second (red-team F9: both
/// carried one id, and a resume after the first skipped the second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_views_of_one_point_each_have_an_id_and_a_resume_between_them_loses_nothing() {
    let (_gateway, _acme, depot, unit) = granted_and_mirrored().await;
    let (mut stream, first, second) = both_views(&depot, &unit, 33).await;
    let (a, b) = (id_of(&first), id_of(&second));
    assert!(a < b, "{a} {b}");
    assert_eq!(quiet(&mut stream).await, None, "each view once");

    let mut after_first = resume(&depot.admin, "/v1/stream", a).await;
    let replayed = next_event(&mut after_first).await;
    assert_eq!(
        (replayed.data["asset_id"].clone(), id_of(&replayed)),
        (json!("m2"), b)
    );
    assert_eq!(quiet(&mut after_first).await, None);
    let mut after_both = resume(&depot.admin, "/v1/stream", b).await;
    assert_eq!(quiet(&mut after_both).await, None, "nothing twice");
    let mut before_both = resume(&depot.admin, "/v1/stream", a - 1).await;
    let again = [
        next_event(&mut before_both).await,
        next_event(&mut before_both).await,
    ];
    assert_eq!(again.iter().map(id_of).collect::<Vec<_>>(), [a, b]);
    assert_eq!(again[1].data["asset_id"], "m2");

    // Live after the resume: both views of the next point, ids above both.
    publish(&unit, json!({"fuel_pct": 34})).await;
    let next = [
        next_event(&mut after_both).await,
        next_event(&mut after_both).await,
    ];
    let ids: Vec<u64> = next.iter().map(id_of).collect();
    assert!(b < ids[0] && ids[0] < ids[1], "{b} {ids:?}");
    // A one-asset stream shows one view, under the id that view has on the account's.
    let mut mirror = resume(&depot.admin, "/v1/assets/m2/stream", a - 1).await;
    let only = [next_event(&mut mirror).await, next_event(&mut mirror).await];
    assert_eq!(only.iter().map(id_of).collect::<Vec<_>>(), [b, ids[1]]);
    assert!(only.iter().all(|event| event.data["asset_id"] == "m2"));
    assert_eq!(quiet(&mut mirror).await, None);
}

/// Opens Depot's stream, publishes one point and reads its two views: `ex2`, then `m2`.
async fn both_views(depot: &Fleet, unit: &SimUnit, fuel: u32) -> (SseStream, SseEvent, SseEvent) {
    let mut stream = depot.admin.stream("/v1/stream").await.expect("open");
    publish(unit, json!({"fuel_pct": fuel})).await;
    let (first, second) = (next_event(&mut stream).await, next_event(&mut stream).await);
    assert_eq!(first.data["asset_id"], "ex2", "{first:?}");
    assert_eq!(second.data["asset_id"], "m2", "{second:?}");
    (stream, first, second)
}

/// Acme's `ex2` (unit2) seen by its sub-account Depot twice: granted, and mirrored as `m2`.
async fn granted_and_mirrored() -> (TestGateway, Fleet, Fleet, SimUnit) {
    let (gateway, acme, depot, unit) = granted().await;
    mirror(&acme, &depot, "m2").await;
    (gateway, acme, depot, unit)
}

/// Acme's `ex2` (unit2), granted to its sub-account Depot.
async fn granted() -> (TestGateway, Fleet, Fleet, SimUnit) {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    acme.unit_with_asset("unit2", "ex2").await;
    let unit = acme.connect("unit2").await;
    assert_eq!(acme.grant(&depot, &["ex2"], json!({})).await.status, 201);
    (gateway, acme, depot, unit)
}

async fn mirror(owner: &Fleet, target: &Fleet, as_asset: &str) {
    let body =
        json!({"target_account_id": target.account_id.to_string(), "target_asset_id": as_asset});
    let path = "/v1/assets/ex2/sharing/telemetry/targets";
    let shared = owner
        .admin
        .request_raw(reqwest::Method::POST, path, Some(&body))
        .await
        .expect("share");
    assert!(shared.status < 300, "{shared:?}");
}

/// A view's id does not depend on the account's other views at resume time: the grant
/// ends while the client is away, and the mirror's event is still replayed under the id it
/// had live (trial T1: it was renumbered to the grant's id, which the client had seen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_that_ends_while_away_leaves_the_mirrors_id_as_it_was() {
    let (_gateway, acme, depot, unit) = granted_and_mirrored().await;
    let (stream, first, second) = both_views(&depot, &unit, 40).await;
    drop(stream);
    acme.remove_grants(&depot, &["ex2"]).await;

    let mut resumed = resume(&depot.admin, "/v1/stream", id_of(&first)).await;
    let replayed = next_event(&mut resumed).await;
    assert_eq!(replayed.data["asset_id"], "m2", "{replayed:?}");
    assert_eq!(id_of(&replayed), id_of(&second), "the id it had live");
    assert_eq!(quiet(&mut resumed).await, None);
}

/// A view that came after a point did not take an id when the point arrived: a replay does
/// not give it one that belongs to a later point (trial T2: two events with one id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_added_after_a_point_does_not_take_a_later_points_id() {
    let (gateway, acme, depot, unit) = granted().await;
    let mut stream = depot.admin.stream("/v1/stream").await.expect("open");
    // Stamped two minutes ahead (inside the allowance): a mirror made now covers it.
    publish(
        &unit,
        json!({"ts": gateway.now_ms() + 120_000, "fuel_pct": 1}),
    )
    .await;
    let ahead = id_of(&next_event(&mut stream).await);
    mirror(&acme, &depot, "m2").await;
    publish(&unit, json!({"fuel_pct": 2})).await;
    let live = [next_event(&mut stream).await, next_event(&mut stream).await];
    let live_ids: Vec<u64> = live.iter().map(id_of).collect();

    let mut resumed = resume(&depot.admin, "/v1/stream", ahead - 1).await;
    let mut ids = Vec::new();
    while let Some(event) = quiet(&mut resumed).await {
        ids.push(id_of(&event));
    }
    assert_eq!(
        ids,
        [vec![ahead], live_ids].concat(),
        "each id once, rising"
    );
}

/// Mirrors that come and go while a client is away move no other view's id: a mirror that
/// sorts first is added, another's share ends, and every view the client missed is
/// replayed under the id it had live, the ended mirror's too (trial N1, N2: views were
/// numbered by what the account saw at resume time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_that_come_and_go_while_away_move_no_other_views_id() {
    let (_gateway, acme, depot, unit) = granted_and_mirrored().await;
    mirror(&acme, &depot, "z2").await;
    let mut stream = depot.admin.stream("/v1/stream").await.expect("open");
    publish(&unit, json!({"fuel_pct": 50})).await;
    let mut live = Vec::new();
    for _ in 0..3 {
        let event = next_event(&mut stream).await;
        live.push((id_of(&event), event.data["asset_id"].clone()));
    }
    let names: Vec<&Value> = live.iter().map(|(_, asset)| asset).collect();
    assert_eq!(names, [&json!("ex2"), &json!("m2"), &json!("z2")]);
    drop(stream);

    mirror(&acme, &depot, "a2").await;
    let end = format!(
        "/v1/assets/ex2/sharing/telemetry/targets/{}/m2",
        depot.account_id
    );
    let (status, body) = tests::call(&acme.admin, reqwest::Method::DELETE, &end, None).await;
    assert!(status < 300, "{status} {body}");
    let mut resumed = resume(&depot.admin, "/v1/stream", live[0].0).await;
    let mut replayed = Vec::new();
    while let Some(event) = quiet(&mut resumed).await {
        replayed.push((id_of(&event), event.data["asset_id"].clone()));
    }
    assert_eq!(
        replayed,
        live[1..],
        "m2 (its share ended after) and z2, as live"
    );
    publish(&unit, json!({"fuel_pct": 51})).await;
    let mut after = resume(&depot.admin, "/v1/stream", live[2].0).await;
    let mut next = Vec::new();
    while let Some(event) = quiet(&mut after).await {
        next.push(event.data["asset_id"].clone());
    }
    assert_eq!(
        next,
        [json!("ex2"), json!("a2"), json!("z2")],
        "the next point's views"
    );
}
