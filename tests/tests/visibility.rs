//! Visibility sharing end to end (rule 2, DESIGN section 2's ordering): what a grantee
//! sees and may not do, the refusals of a grant, removal cutting the live stream before
//! its answer, expiry by the scheduler (also across a restart), and partnerships.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use simulator::api::UserRole;
use storage::Rule;
use tests::{call, eventually, first_grant, grants_listed, remove_grant, Fleet, TestGateway, WAIT};

fn rfc3339(ms: u64) -> String {
    simulator::telemetry::rfc3339_from_ms(ms).expect("a valid time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grantee_sees_the_asset_read_only_and_inside_its_window() {
    let gateway = TestGateway::start_with_manual_clock();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    owner.unit_with_asset("unit1", "ex1").await;
    let unit = owner.connect("unit1").await;
    unit.publish_point(&json!({"fuel_pct": 10}))
        .await
        .expect("before the grant");
    owner.history("ex1", 1).await;
    gateway.advance(Duration::from_secs(60));

    let granted = owner.grant(&depot, &["ex1"], json!({})).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    assert_eq!(granted.body["items"][0]["change"], "created");
    assert_eq!(granted.body["items"][0]["active"], true);

    let listed = depot.admin.list_all_assets().await.expect("list");
    assert_eq!(listed.len(), 1);
    let (status, asset) = depot.admin.get_raw("/v1/assets/ex1").await.expect("asset");
    assert_eq!(status, 200);
    assert_eq!(asset["relation"], "shared");
    assert_eq!(
        asset["device_id"],
        Value::Null,
        "the owner's unit is not the grantee's business"
    );

    let mut live = depot.admin.stream("/v1/stream").await.expect("stream");
    let integration = depot.integration_observer().await;
    let topic = format!("/tenants/{}/assets/ex1/telemetry", depot.account_id);
    integration
        .subscribe(&topic, rumqttc::QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    gateway.advance(Duration::from_secs(1));
    unit.publish_point(&json!({"fuel_pct": 20}))
        .await
        .expect("after the grant");
    let point = live
        .next_point(WAIT)
        .await
        .expect("a live point")
        .expect("decodes");
    assert_eq!(point.fuel_pct, Some(20.0));
    assert_eq!(point.asset_id.as_str(), "ex1");
    let message = integration
        .next_message(WAIT)
        .await
        .expect("on the grantee's MQTT topic");
    assert_eq!(message.topic, topic);
    assert_eq!(message.json().expect("json")["fuel_pct"], 20.0);

    let history = depot.history("ex1", 1).await;
    let fuels: Vec<_> = history.iter().map(|p| p.fuel_pct).collect();
    assert_eq!(
        fuels,
        vec![Some(20.0)],
        "history before the grant stays hidden"
    );
    assert_eq!(
        owner.history("ex1", 2).await.len(),
        2,
        "the owner sees all of it"
    );
    let latest = depot
        .admin
        .get_raw("/v1/assets/ex1/latest")
        .await
        .expect("latest");
    assert_eq!(latest.1["fuel_pct"], 20.0);

    // Read-only: no change, no re-share, no removal of the grant by the grantee.
    let (status, body) = call(
        &depot.admin,
        Method::PATCH,
        "/v1/assets/ex1",
        Some(json!({"name": "mine now"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let rule = Rule::SharedReadOnly {
        asset_id: storage::AssetId::parse("ex1").expect("id"),
        action: "change",
    };
    assert!(tests::refused_by(&body, &rule), "{body}");
    assert_eq!(body["detail"], rule.sentence());
    let third = depot.child(&gateway, "Crew").await;
    let reshare = depot.grant(&third, &["ex1"], json!({})).await;
    assert_eq!(reshare.status, 403, "{reshare:?}");
    let rule = Rule::SharedReadOnly {
        asset_id: storage::AssetId::parse("ex1").expect("id"),
        action: "share",
    };
    assert!(tests::refused_by(&reshare.body, &rule), "{reshare:?}");
    let grant_id = first_grant(&granted);
    let (status, body) = remove_grant(&depot.admin, &grant_id).await;
    assert_eq!(status, 403);
    assert!(
        tests::refused_by(&body, &Rule::GrantRemovedByOwner),
        "{body}"
    );
    // The grantee lists its own grant; a viewer of the grantee sees but changes nothing.
    let grants = grants_listed(&depot.admin).await;
    assert_eq!(grants.len(), 1);
    let viewer = depot.user(UserRole::Viewer).await;
    assert_eq!(viewer.list_all_assets().await.expect("list").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_refused_with_the_reason_and_all_or_nothing() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    let outsider = Fleet::create(&gateway, "Outsider").await;
    owner.unit_with_asset("unit1", "ex1").await;
    owner.unit_with_asset("unit2", "ex2").await;
    outsider.unit_with_asset("unit3", "ox1").await;
    let now = gateway.now_ms();

    let stranger = owner.grant(&outsider, &["ex1"], json!({})).await;
    assert_eq!(stranger.status, 403, "{stranger:?}");
    let rule = Rule::GrantOutOfReach {
        owner: storage::AccountId::parse(&owner.account_id.to_string()).expect("id"),
        target: storage::AccountId::parse(&outsider.account_id.to_string()).expect("id"),
    };
    assert!(tests::refused_by(&stranger.body, &rule), "{stranger:?}");
    assert_eq!(stranger.body["detail"], rule.sentence());

    let foreign = owner.grant(&depot, &["ex1", "ox1"], json!({})).await;
    assert_eq!(
        foreign.status, 404,
        "an asset of another account: {foreign:?}"
    );
    let grants = grants_listed(&owner.admin).await;
    assert_eq!(grants.len(), 0, "all or nothing: ex1 was not granted");

    let backwards = owner
        .grant(
            &depot,
            &["ex1"],
            json!({"from": rfc3339(now + 60_000), "until": rfc3339(now + 1_000)}),
        )
        .await;
    assert_eq!(backwards.status, 422);
    assert_eq!(backwards.body["field"], "until");

    let viewer = owner.user(UserRole::Viewer).await;
    let as_viewer = viewer
        .request_raw(
            Method::POST,
            "/v1/visibility/grants",
            Some(&json!({"account_id": depot.account_id.to_string(), "asset_ids": ["ex1"]})),
        )
        .await
        .expect("answer");
    assert_eq!(as_viewer.status, 403);

    let twice = owner.grant(&depot, &["ex1", "ex1"], json!({})).await;
    assert_eq!(twice.status, 422);

    // Dry run: exactly what would change, and nothing changes.
    let dry = owner
        .admin
        .request_raw(
            Method::POST,
            "/v1/visibility/grants?dry_run=true",
            Some(&json!({"account_id": depot.account_id.to_string(), "asset_ids": ["ex1", "ex2"]})),
        )
        .await
        .expect("answer");
    assert_eq!(dry.status, 200, "{dry:?}");
    assert_eq!(dry.body["dry_run"], true);
    assert_eq!(dry.body["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        depot.admin.list_all_assets().await.expect("list").len(),
        0,
        "dry run changed nothing"
    );

    // Re-granting updates the window of the one grant per pair.
    let first = owner.grant(&depot, &["ex1"], json!({})).await;
    assert_eq!(first.status, 201);
    let until = rfc3339(now + 3_600_000);
    let again = owner.grant(&depot, &["ex1"], json!({"until": until})).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body["items"][0]["change"], "updated");
    assert_eq!(again.body["items"][0]["id"], first.body["items"][0]["id"]);
    let grants = grants_listed(&owner.admin).await;
    assert_eq!(grants.len(), 1, "never two grants for one pair");

    // A stranger cannot even see a grant; its owner removes it.
    let grant_id = first_grant(&first);
    let (status, _) = remove_grant(&outsider.admin, &grant_id).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partnerships_open_sharing_and_ending_one_ends_its_grants() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let partner = Fleet::create(&gateway, "Rentals").await;
    owner.unit_with_asset("unit1", "ex1").await;
    let body = json!({"account_a": owner.account_id.to_string(), "account_b": partner.account_id.to_string()});
    let (status, _) = call(
        &owner.admin,
        Method::POST,
        "/v1/partnerships",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 403, "only platform_admin sets up partnerships");
    let (status, created) = call(
        &owner.platform,
        Method::POST,
        "/v1/partnerships",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, _) = call(
        &owner.platform,
        Method::POST,
        "/v1/partnerships",
        Some(body),
    )
    .await;
    assert_eq!(status, 409);
    let (_, listed) = partner
        .admin
        .get_raw("/v1/partnerships")
        .await
        .expect("list");
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "listed for both accounts"
    );

    let granted = owner.grant(&partner, &["ex1"], json!({})).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    assert_eq!(
        partner.admin.list_all_assets().await.expect("list").len(),
        1
    );

    let id = created["id"].as_str().expect("id");
    let (status, ended) = call(
        &owner.platform,
        Method::DELETE,
        &format!("/v1/partnerships/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ended["ended_grants"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        partner.admin.list_all_assets().await.expect("list").len(),
        0,
        "the dependent grant ended"
    );
    let (status, _) = partner
        .admin
        .get_raw("/v1/assets/ex1")
        .await
        .expect("answer");
    assert_eq!(status, 404);
}

/// Streams points while the grant is removed: nothing published after the answer reaches
/// the removed account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_point_published_after_the_removal_answer_reaches_the_grantee() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    owner.unit_with_asset("unit1", "ex1").await;
    let unit = owner.connect("unit1").await;
    for round in 0..3u64 {
        let granted = owner.grant(&depot, &["ex1"], json!({})).await;
        assert_eq!(granted.status, 201);
        let grant_id = first_grant(&granted);
        let mut live = depot
            .admin
            .stream("/v1/assets/ex1/stream")
            .await
            .expect("stream");
        let publishing = {
            let unit_points = async {
                for seq in 0..400u64 {
                    let point = json!({"sensors": {"seq": (round * 1000 + seq) as f64}});
                    let _ = unit.send_point(&point).await;
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
            };
            let removal = async {
                tokio::time::sleep(Duration::from_millis(60)).await;
                let (status, _) = remove_grant(&owner.admin, &grant_id).await;
                assert_eq!(status, 204);
                // Everything sent from now on is "published after the answer".
                unit.published()
            };
            let ((), published_at_answer) = tokio::join!(unit_points, removal);
            published_at_answer
        };
        unit.wait_all_acked(WAIT).await.expect("all acked");
        let mut received = Vec::new();
        while let Some(Ok(point)) = live.next_point(Duration::from_millis(300)).await {
            received.push(point.seq().unwrap_or(0) - round * 1000);
        }
        let sent_before_answer = publishing;
        let first_point_this_round = unit.published() - 400;
        let late: Vec<_> = received
            .iter()
            .filter(|seq| first_point_this_round + **seq >= sent_before_answer)
            .collect();
        assert!(
            !received.is_empty(),
            "round {round}: the grantee saw points while granted"
        );
        assert!(
            late.is_empty(),
            "round {round}: points published after the answer arrived: {late:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_starts_and_expires_grants_at_their_instant_even_across_a_restart() {
    let mut gateway = TestGateway::start_with_manual_clock();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    owner.unit_with_asset("unit1", "ex1").await;
    owner.unit_with_asset("unit2", "ex2").await;
    let now = gateway.now_ms();
    let hour = 3_600_000;
    let later = owner
        .grant(
            &depot,
            &["ex1"],
            json!({"from": rfc3339(now + hour), "until": rfc3339(now + 3 * hour)}),
        )
        .await;
    assert_eq!(later.status, 201, "{later:?}");
    assert_eq!(later.body["items"][0]["active"], false);
    let short = owner
        .grant(&depot, &["ex2"], json!({"until": rfc3339(now + 2 * hour)}))
        .await;
    assert_eq!(short.status, 201);
    let visible = |fleet: &Fleet| {
        let admin = fleet.admin.clone();
        async move {
            let mut ids: Vec<String> = admin
                .list_all_assets()
                .await
                .expect("list")
                .into_iter()
                .map(|asset| asset.id.as_str().to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(visible(&depot).await, vec!["ex2"]);

    gateway.advance(Duration::from_millis(hour));
    let started =
        eventually(|| async { (visible(&depot).await == ["ex1", "ex2"]).then_some(()) }).await;
    assert!(started.is_some(), "ex1 became visible at its from");
    let fired = "fleetgate_scheduler_fired_total{kind=\"grant\"}";
    assert!(
        owner.metric_is(fired, 1).await,
        "{fired} 1: the start was counted"
    );
    let next = "fleetgate_scheduler_next_deadline_timestamp_seconds";
    let ex2_ends_s = (now + 2 * hour) / 1000;
    assert!(
        owner.metric_is(next, ex2_ends_s).await,
        "{next} {ex2_ends_s}"
    );

    // ex2 expires while the gateway is down; ex1 expires later, while it runs.
    gateway.restart();
    let depot_admin = depot.admin.rebase(&gateway.http_base());
    let after_restart = depot_admin.list_all_assets().await.expect("list");
    assert_eq!(
        after_restart.len(),
        2,
        "live grants survive a restart: {after_restart:?}"
    );
    gateway.advance(Duration::from_millis(hour + 1));
    gateway.restart();
    let depot_admin = depot.admin.rebase(&gateway.http_base());
    let expired = eventually(|| async {
        let ids: Vec<String> = depot_admin
            .list_all_assets()
            .await
            .expect("list")
            .into_iter()
            .map(|a| a.id.as_str().to_owned())
            .collect();
        (ids == ["ex1"]).then_some(())
    })
    .await;
    assert!(
        expired.is_some(),
        "the grant that ended while the gateway was down is expired at start"
    );
    gateway.advance(Duration::from_millis(hour));
    let gone = eventually(|| async {
        depot_admin
            .list_all_assets()
            .await
            .expect("list")
            .is_empty()
            .then_some(())
    })
    .await;
    assert!(gone.is_some(), "ex1 expired at its until");

    let owner_admin = owner.admin.rebase(&gateway.http_base());
    // Reads apply windows themselves; the scheduler's expiry (and its audit entry) follows
    // within its nap.
    let actions = eventually(|| async {
        let (status, audit) = owner_admin.get_raw("/v1/audit").await.expect("audit");
        assert_eq!(status, 200);
        let actions: Vec<String> = audit["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|e| e["action"].as_str().map(str::to_owned))
            .collect();
        (actions.iter().filter(|a| *a == "grant.expire").count() == 2).then_some(actions)
    })
    .await
    .expect("both expiries audited");
    assert!(actions.iter().any(|a| a == "grant.create"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_for_the_accounts_admin_and_platform_staff() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let other = Fleet::create(&gateway, "Other").await;
    owner.unit_with_asset("unit1", "ex1").await;
    let (status, audit) = owner.admin.get_raw("/v1/audit").await.expect("audit");
    assert_eq!(status, 200);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"device.register") && actions.contains(&"asset.create"),
        "{actions:?}"
    );
    let entry = &audit["items"][0];
    assert!(entry["actor"].as_str().is_some() && entry["at"].as_str().is_some());
    let viewer = owner.user(UserRole::Viewer).await;
    assert_eq!(viewer.get_raw("/v1/audit").await.expect("answer").0, 403);
    let path = format!("/v1/audit?account_id={}", owner.account_id);
    assert_eq!(other.admin.get_raw(&path).await.expect("answer").0, 404);
    assert_eq!(owner.platform.get_raw(&path).await.expect("answer").0, 200);
}
