//! Tenant sharing end to end (rule 5): a mirror receives the source's live points and
//! history under its own id from the share on; details travel field by field per profile;
//! the refusals; sharing survives a restart; and a point streamed during `DELETE` never
//! arrives after its answer.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use simulator::api::SseStream;
use simulator::{ApiClient, SimUnit};
use tests::{call, Fleet, TestGateway, WAIT};

/// A holding with two tenants administered by its root admin.
struct Holding {
    root: Fleet,
    source: Fleet,
    target: Fleet,
}

async fn holding(gateway: &TestGateway) -> Holding {
    let root = Fleet::create(gateway, "Holding").await;
    let source = root.child(gateway, "Contractor").await;
    let target = root.child(gateway, "Customer").await;
    Holding {
        root,
        source,
        target,
    }
}

impl Holding {
    /// `client`'s answer to sharing the source's `ex1` (`kind`: telemetry or details) as
    /// `body` says: the call every sharing test makes.
    async fn share(&self, client: &ApiClient, kind: &str, body: Value) -> (u16, Value) {
        let path = share_path(&self.source, "ex1", kind);
        call(client, Method::PUT, &path, Some(body)).await
    }
}

/// A holding whose source shares `ex1` (of `unit1`, connected) for telemetry as the
/// target's mirror `m1`: the unit, and the target admin's live stream of `m1`.
async fn shared_to_m1(gateway: &TestGateway) -> (Holding, SimUnit, SseStream) {
    let h = holding(gateway).await;
    h.source.unit_with_asset("unit1", "ex1").await;
    let unit = h.source.connect("unit1").await;
    let body =
        json!({"target_account_id": h.target.account_id.to_string(), "target_asset_id": "m1"});
    let (status, shared) = h.share(&h.root.admin, "telemetry", body).await;
    assert_eq!(status, 200, "{shared}");
    let mirror = h
        .target
        .admin
        .stream("/v1/assets/m1/stream")
        .await
        .expect("stream");
    (h, unit, mirror)
}

fn share_path(source: &Fleet, asset: &str, kind: &str) -> String {
    format!(
        "/v1/assets/{asset}/sharing/{kind}?account_id={}",
        source.account_id
    )
}

fn target_path(target: &Fleet, rest: &str) -> String {
    format!(
        "/v1/assets/{rest}{}account_id={}",
        if rest.contains('?') { "&" } else { "?" },
        target.account_id
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_gets_live_points_and_history_from_the_share_on() {
    let mut gateway = TestGateway::start();
    let h = holding(&gateway).await;
    h.source.unit_with_asset("unit1", "ex1").await;
    let unit = h.source.connect("unit1").await;
    unit.publish_point(&json!({"fuel_pct": 1}))
        .await
        .expect("before sharing");
    h.source.history("ex1", 1).await;

    let body = json!({"target_account_id": h.target.account_id.to_string(), "target_asset_id": "their-ex1"});
    let (status, shared) = h.share(&h.root.admin, "telemetry", body).await;
    assert_eq!(status, 200, "{shared}");
    assert_eq!(shared["target"]["relation"], "mirror");
    assert_eq!(
        shared["sharing"]["telemetry"][0]["target_asset_id"],
        "their-ex1"
    );

    let mut live = h
        .target
        .admin
        .stream("/v1/stream")
        .await
        .expect("target stream");
    unit.publish_point(&json!({"fuel_pct": 2}))
        .await
        .expect("after sharing");
    let point = live.next_point(WAIT).await.expect("live").expect("decodes");
    assert_eq!(
        point.asset_id.as_str(),
        "their-ex1",
        "under the target asset id"
    );
    assert_eq!(point.fuel_pct, Some(2.0));
    let history = h.target.history("their-ex1", 1).await;
    let fuels: Vec<_> = history.iter().map(|p| p.fuel_pct).collect();
    assert_eq!(fuels, vec![Some(2.0)], "history from the share on only");
    let (status, asset) = h
        .target
        .admin
        .get_raw("/v1/assets/their-ex1")
        .await
        .expect("asset");
    assert_eq!(status, 200);
    assert_eq!(asset["relation"], "mirror");

    // The sharing survives a restart, live and in history.
    unit.kill();
    gateway.restart();
    let target_admin = h.target.admin.rebase(&gateway.http_base());
    let options = h.source.unit_options("unit1");
    let unit = simulator::SimUnit::connect(simulator::UnitOptions {
        broker: gateway.mqtt_tls(),
        ..options
    })
    .await
    .expect("reconnects");
    let mut live = target_admin.stream("/v1/stream").await.expect("stream");
    unit.publish_point(&json!({"fuel_pct": 3}))
        .await
        .expect("after restart");
    let point = live
        .next_point(WAIT)
        .await
        .expect("live after restart")
        .expect("decodes");
    assert_eq!(point.fuel_pct, Some(3.0));

    // Stopping keeps the mirror and the history of the shared period.
    let source_admin = h.root.admin.rebase(&gateway.http_base());
    let (status, _) = call(
        &source_admin,
        Method::DELETE,
        &share_path(&h.source, "ex1", "telemetry"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    unit.publish_point(&json!({"fuel_pct": 4}))
        .await
        .expect("after stop");
    assert!(
        live.next_point(Duration::from_millis(500)).await.is_none(),
        "nothing after the stop"
    );
    let (status, history) = target_admin
        .get_raw("/v1/assets/their-ex1/telemetry")
        .await
        .expect("history");
    assert_eq!(status, 200);
    let fuels: Vec<f64> = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["fuel_pct"].as_f64())
        .collect();
    assert_eq!(
        fuels,
        vec![2.0, 3.0],
        "the shared period stays, nothing after it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_travel_field_by_field_per_profile() {
    let gateway = TestGateway::start();
    let h = holding(&gateway).await;
    let details = json!({
        "counters": {"engine_hours_offset": 12.5, "odometer_offset_km": 3.0},
        "groups": ["north", "rental"],
        "working_hours": {"start": "07:00", "end": "16:00", "days": ["mon", "tue"]},
        "service_flags": ["oil_due"],
        "calibration": {"fuel_tank_l": 400.0, "fuel_sensor_offset_pct": -2.0},
        "display": {"icon": "excavator", "color": "#ffaa00"}
    });
    let create = format!("/v1/assets?account_id={}", h.source.account_id);
    let (status, created) = call(
        &h.root.admin,
        Method::POST,
        &create,
        Some(json!({"id": "ex1", "name": "Big digger", "serial": "SN-1", "details": details})),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    let profiles = format!("/v1/sharing-profiles?account_id={}", h.source.account_id);
    let (status, bad) = call(
        &h.root.admin,
        Method::POST,
        &profiles,
        Some(json!({"name": "p", "fields": ["groups", "price"]})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(bad["field"], "fields");
    let (status, profile) = call(
        &h.root.admin,
        Method::POST,
        &profiles,
        Some(json!({"name": "public", "fields": ["name", "groups", "display"]})),
    )
    .await;
    assert_eq!(status, 201, "{profile}");
    let profile_id = profile["id"].as_str().expect("id").to_owned();

    let body = json!({"target_account_id": h.target.account_id.to_string(), "target_asset_id": "ex1-copy", "profile_id": profile_id});
    let (status, shared) = h.share(&h.root.admin, "details", body).await;
    assert_eq!(status, 200, "{shared}");
    let mirror = |client: ApiClient, target: String| async move {
        let (_, asset) = call(
            &client,
            Method::GET,
            &format!("/v1/assets/ex1-copy?account_id={target}"),
            None,
        )
        .await;
        asset
    };
    let target = h.target.account_id.to_string();
    let copy = mirror(h.target.admin.clone(), target.clone()).await;
    assert_eq!(copy["name"], "Big digger");
    assert_eq!(copy["serial"], Value::Null, "serial is not in the profile");
    assert_eq!(copy["details"]["groups"], json!(["north", "rental"]));
    assert_eq!(copy["details"]["display"]["color"], "#ffaa00");
    for hidden in ["counters", "working_hours", "service_flags", "calibration"] {
        assert!(
            copy["details"].get(hidden).is_none(),
            "{hidden} must not travel: {copy}"
        );
    }

    // A change of the source follows; a change of the profile changes what is copied.
    let patch = format!("/v1/assets/ex1?account_id={}", h.source.account_id);
    let (status, _) = call(
        &h.root.admin,
        Method::PATCH,
        &patch,
        Some(json!({"details": {"groups": ["south"]}, "name": "Bigger digger"})),
    )
    .await;
    assert_eq!(status, 200);
    let copy = mirror(h.target.admin.clone(), target.clone()).await;
    assert_eq!(copy["details"]["groups"], json!(["south"]));
    assert_eq!(copy["name"], "Bigger digger");
    let (status, _) = call(
        &h.root.admin,
        Method::PATCH,
        &format!("/v1/sharing-profiles/{profile_id}"),
        Some(json!({"fields": ["serial", "calibration"]})),
    )
    .await;
    assert_eq!(status, 200);
    let copy = mirror(h.target.admin.clone(), target.clone()).await;
    assert_eq!(copy["serial"], "SN-1");
    assert_eq!(copy["details"]["calibration"]["fuel_tank_l"], 400.0);
    assert!(
        copy["details"].get("groups").is_none() && copy["details"].get("display").is_none(),
        "{copy}"
    );
    assert_eq!(copy["name"], "ex1-copy", "name left the profile");

    let (status, sharing) = call(
        &h.root.admin,
        Method::GET,
        &patch.replace("/v1/assets/ex1?", "/v1/assets/ex1/sharing?"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sharing["details"][0]["profile_id"], profile_id);
    assert_eq!(sharing["telemetry"], json!([]));
    // Audited in both tenants.
    for account in [&h.source, &h.target] {
        let path = format!("/v1/audit?account_id={}", account.account_id);
        let (status, audit) = call(&h.root.admin, Method::GET, &path, None).await;
        assert_eq!(status, 200);
        let actions: Vec<&str> = audit["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert!(actions.contains(&"sharing.details.start"), "{actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_refusals() {
    let gateway = TestGateway::start();
    let h = holding(&gateway).await;
    h.source.unit_with_asset("unit1", "ex1").await;
    let outsider = Fleet::create(&gateway, "Outsider").await;
    let body = |account: &Fleet, asset: &str| json!({"target_account_id": account.account_id.to_string(), "target_asset_id": asset});

    // Admin of the source only: the target is not visible to it.
    let (status, _) = call(
        &h.source.admin,
        Method::PUT,
        "/v1/assets/ex1/sharing/telemetry",
        Some(body(&h.target, "m1")),
    )
    .await;
    assert_eq!(status, 404, "a target account the caller cannot see");
    let fleet_admin = h.root.user(simulator::api::UserRole::FleetAdmin).await;
    let (status, _) = h
        .share(&fleet_admin, "telemetry", body(&h.target, "m1"))
        .await;
    assert_eq!(status, 403, "fleet admins may not share tenants");
    let (status, _) = h
        .share(&outsider.admin, "telemetry", body(&outsider, "m1"))
        .await;
    assert_eq!(status, 404);

    // The target id is taken by something that is not a mirror of this source.
    let create = format!("/v1/assets?account_id={}", h.target.account_id);
    let (status, _) = call(
        &h.root.admin,
        Method::POST,
        &create,
        Some(json!({"id": "taken", "name": "theirs"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, conflict) = h
        .share(&h.root.admin, "telemetry", body(&h.target, "taken"))
        .await;
    assert_eq!(status, 409, "{conflict}");
    assert!(conflict["detail"].as_str().unwrap_or("").contains("taken"));

    // A mirror is read-only in the target and is never shared onward.
    let (status, _) = h
        .share(&h.root.admin, "telemetry", body(&h.target, "m1"))
        .await;
    assert_eq!(status, 200);
    let (status, again) = h
        .share(&h.root.admin, "telemetry", body(&h.target, "m1"))
        .await;
    assert_eq!(
        status, 200,
        "sharing again to the same mirror is idempotent: {again}"
    );
    let (status, _) = call(
        &h.target.admin,
        Method::PATCH,
        "/v1/assets/m1",
        Some(json!({"name": "renamed"})),
    )
    .await;
    assert_eq!(status, 403);
    let onward = target_path(&h.target, "m1/sharing/telemetry");
    let (status, _) = call(
        &h.root.admin,
        Method::PUT,
        &onward,
        Some(body(&h.source, "back")),
    )
    .await;
    assert_eq!(status, 403);
    let grandchild = h.target.child(&gateway, "Site").await;
    let grant = h.target.grant(&grandchild, &["m1"], json!({})).await;
    assert_eq!(grant.status, 403, "{grant:?}");
    let (status, _) = h
        .share(&h.root.admin, "details", body(&h.target, "m1"))
        .await;
    assert_eq!(status, 422, "details sharing names a profile");
}

/// Streams while `DELETE` stops the telemetry sharing: nothing published after the answer
/// reaches the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_point_published_after_the_stop_reaches_the_mirror() {
    let gateway = TestGateway::start();
    let (h, unit, mut live) = shared_to_m1(&gateway).await;
    let streaming = async {
        for seq in 0..400u64 {
            let _ = unit
                .send_point(&json!({"sensors": {"seq": seq as f64}}))
                .await;
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    };
    let stop = async {
        tokio::time::sleep(Duration::from_millis(60)).await;
        let (status, _) = call(
            &h.root.admin,
            Method::DELETE,
            &share_path(&h.source, "ex1", "telemetry"),
            None,
        )
        .await;
        assert_eq!(status, 204);
        unit.published()
    };
    let ((), published_at_answer) = tokio::join!(streaming, stop);
    unit.wait_all_acked(WAIT).await.expect("acked");
    let mut received = Vec::new();
    while let Some(Ok(point)) = live.next_point(Duration::from_millis(300)).await {
        received.push(point.seq().unwrap_or(0));
    }
    assert!(
        !received.is_empty(),
        "the mirror received points while shared"
    );
    let late: Vec<_> = received
        .iter()
        .filter(|seq| **seq >= published_at_answer)
        .collect();
    assert!(
        late.is_empty(),
        "points published after the answer: {late:?}"
    );
}

/// Stopping telemetry sharing re-binds the source's unit even when the caller hangs up
/// right after sending the request: the mirror stops receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_whose_caller_hangs_up_still_stops_the_mirror() {
    let gateway = TestGateway::start();
    let (h, unit, mut mirror) = shared_to_m1(&gateway).await;
    let mut source = h
        .source
        .admin
        .stream("/v1/assets/ex1/stream")
        .await
        .expect("stream");
    unit.publish_point(&json!({"sensors": {"seq": 1.0}}))
        .await
        .expect("acked");
    assert!(
        mirror.next_point(WAIT).await.is_some(),
        "shared: the mirror receives"
    );
    assert!(source.next_point(WAIT).await.is_some());

    let share = share_path(&h.source, "ex1", "telemetry");
    tests::send_and_hang_up(&gateway, "DELETE", &share, &h.root.admin_token).await;
    let sharing = format!("/v1/assets/ex1/sharing?account_id={}", h.source.account_id);
    tests::eventually(|| async {
        let (_, body) = call(&h.root.admin, Method::GET, &sharing, None).await;
        (body["telemetry"] == json!([])).then_some(())
    })
    .await
    .expect("the stop was committed");
    // The re-bind follows the commit by moments; had it been skipped, the mirror would
    // keep every point.
    for seq in 2..12 {
        unit.publish_point(&json!({"sensors": {"seq": f64::from(seq)}}))
            .await
            .expect("acked");
        assert!(
            source.next_point(WAIT).await.is_some(),
            "the source keeps its points"
        );
        if mirror
            .next_point(Duration::from_millis(300))
            .await
            .is_none()
        {
            return;
        }
    }
    panic!("the mirror kept receiving after a stop whose caller hung up");
}

/// A profile a details share uses is not deleted: the 409 names the share (source asset,
/// target account and asset); once the share stops, the delete goes through, audited.
/// A fleet admin is refused by the account-admin rule, another tenant finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_in_use_is_not_deleted() {
    let gateway = TestGateway::start();
    let h = holding(&gateway).await;
    let create = format!("/v1/assets?account_id={}", h.source.account_id);
    let body = json!({"id": "ex1", "name": "Big digger"});
    let (status, _) = call(&h.root.admin, Method::POST, &create, Some(body)).await;
    assert_eq!(status, 201);
    let profiles = format!("/v1/sharing-profiles?account_id={}", h.source.account_id);
    let body = json!({"name": "public", "fields": ["name"]});
    let (_, profile) = call(&h.root.admin, Method::POST, &profiles, Some(body)).await;
    let id = profile["id"].as_str().expect("id").to_owned();
    let target = h.target.account_id.to_string();
    let body = json!({"target_account_id": target, "target_asset_id": "m1", "profile_id": id});
    assert_eq!(h.share(&h.root.admin, "details", body).await.0, 200);

    let delete = format!("/v1/sharing-profiles/{id}");
    let (status, refused) = call(&h.root.admin, Method::DELETE, &delete, None).await;
    assert_eq!(status, 409, "{refused}");
    let detail = refused["detail"].as_str().expect("detail");
    assert!(
        detail.contains(&format!("asset ex1 to asset m1 of account {target}")),
        "{detail}"
    );
    let fleet_admin = h.source.user(simulator::api::UserRole::FleetAdmin).await;
    let (status, _) = call(&fleet_admin, Method::DELETE, &delete, None).await;
    assert_eq!(status, 403);
    let (status, _) = call(&h.target.admin, Method::DELETE, &delete, None).await;
    assert_eq!(status, 404, "the target's own admin cannot see the profile");

    let stop = share_path(&h.source, "ex1", "details");
    assert_eq!(
        call(&h.root.admin, Method::DELETE, &stop, None).await.0,
        204
    );
    let (status, _) = call(&h.root.admin, Method::DELETE, &delete, None).await;
    assert_eq!(status, 204);
    let (_, listed) = call(&h.root.admin, Method::GET, &profiles, None).await;
    assert_eq!(listed["items"], json!([]), "{listed}");
    let (status, _) = call(&h.root.admin, Method::DELETE, &delete, None).await;
    assert_eq!(status, 404, "deleted once");
    let audit = format!(
        "/v1/audit?account_id={}&action=profile.delete",
        h.source.account_id
    );
    let (_, audit) = call(&h.root.admin, Method::GET, &audit, None).await;
    assert_eq!(audit["items"][0]["target"], id.as_str(), "{audit}");
}
