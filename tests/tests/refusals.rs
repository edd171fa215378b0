//! The refusals a user relies on: no token is 401, another account's objects are 404 as if
//! absent, a viewer may look but not change (403 naming the rule), bad input is 422
//! naming the field, and every error is problem+json.

use reqwest::Method;
use serde_json::json;
use simulator::api::UserRole;
use storage::model::Role;
use storage::Rule;
use tests::{Fleet, TestGateway};

/// A 403 problem+json whose `type` is `rule`'s and whose `detail` is its sentence.
fn assert_refused(response: &simulator::api::RawResponse, rule: Rule) {
    assert_problem(response, 403, &rule.sentence());
    assert!(tests::refused_by(&response.body, &rule), "{response:?}");
}

fn assert_problem(response: &simulator::api::RawResponse, status: u16, mentions: &str) {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(
        response.content_type.as_deref(),
        Some("application/problem+json"),
        "{response:?}"
    );
    let detail = response.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(mentions),
        "detail {detail:?} should mention {mentions:?}"
    );
    assert_eq!(response.body["status"], status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_tokens_get_401() {
    let gateway = TestGateway::start();
    let anonymous = simulator::ApiClient::anonymous(&gateway.http_base()).expect("client");
    for path in [
        "/v1/me",
        "/v1/assets",
        "/v1/stream",
        "/v1/devices/unit1/status",
    ] {
        let response = anonymous
            .request_raw(Method::GET, path, None)
            .await
            .expect("answer");
        assert_problem(&response, 401, "bearer token");
    }
    let forged =
        simulator::ApiClient::new(&gateway.http_base(), "fgt_not_a_real_token").expect("client");
    let response = forged
        .request_raw(Method::GET, "/v1/me", None)
        .await
        .expect("answer");
    assert_problem(&response, 401, "bearer token");
    let health = anonymous
        .request_raw(Method::GET, "/healthz", None)
        .await
        .expect("answer");
    assert_eq!(health.status, 200, "health needs no token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_objects_are_404() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    acme.unit_with_asset("unit1", "ex1").await;
    let rival = Fleet::create(&gateway, "Rival").await;
    let acme_id = acme.account_id.to_string();
    let paths = [
        "/v1/assets/ex1".to_owned(),
        "/v1/assets/ex1/telemetry".to_owned(),
        "/v1/assets/ex1/latest".to_owned(),
        "/v1/assets/ex1/stream".to_owned(),
        "/v1/devices/unit1/status".to_owned(),
        format!("/v1/accounts/{acme_id}"),
        format!("/v1/assets?account_id={acme_id}"),
        format!("/v1/stream?account_id={acme_id}"),
    ];
    for path in &paths {
        let response = rival
            .admin
            .request_raw(Method::GET, path, None)
            .await
            .expect("answer");
        assert_problem(&response, 404, "not found");
    }
    // Nor can the rival register into or create in Acme's account.
    let response = rival
        .admin
        .request_raw(
            Method::POST,
            &format!("/v1/assets?account_id={acme_id}"),
            Some(&json!({"id": "x1", "name": "x"})),
        )
        .await
        .expect("answer");
    assert_problem(&response, 404, "not found");
    // The rival's own listing does not show Acme's asset.
    let listing = rival.admin.list_all_assets().await.expect("list");
    assert!(listing.is_empty());
    // Binding another account's device is refused as if it did not exist.
    let response = rival
        .admin
        .request_raw(
            Method::POST,
            "/v1/assets",
            Some(&json!({"id": "x1", "name": "x", "device_id": "unit1"})),
        )
        .await
        .expect("answer");
    assert_problem(&response, 404, "device unit1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_but_changes_nothing() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let viewer = fleet.user(UserRole::Viewer).await;
    assert_eq!(viewer.list_all_assets().await.expect("list").len(), 1);
    let response = viewer
        .request_raw(
            Method::POST,
            "/v1/assets",
            Some(&json!({"id": "ex2", "name": "x"})),
        )
        .await
        .expect("answer");
    assert_refused(&response, Rule::ManageFleet { role: Role::Viewer });
    let response = viewer
        .request_raw(Method::POST, "/v1/devices", Some(&json!({"id": "unit2"})))
        .await
        .expect("answer");
    assert_refused(&response, Rule::ManageFleet { role: Role::Viewer });
    let account = fleet.account_id.to_string();
    let response = viewer
        .request_raw(
            Method::POST,
            &format!("/v1/accounts/{account}/users"),
            Some(&json!({"name": "x", "role": "admin"})),
        )
        .await
        .expect("answer");
    assert_refused(&response, Rule::Administer { role: Role::Viewer });
    // Users cannot create organization roots or staff.
    let response = fleet
        .admin
        .request_raw(Method::POST, "/v1/accounts", Some(&json!({"name": "Mine"})))
        .await
        .expect("answer");
    assert_refused(
        &response,
        Rule::PlatformAdminOnly {
            action: "create an organization root account",
        },
    );
    let response = fleet
        .admin
        .request_raw(
            Method::POST,
            "/v1/staff",
            Some(&json!({"name": "x", "role": "support"})),
        )
        .await
        .expect("answer");
    assert_refused(
        &response,
        Rule::PlatformAdminOnly {
            action: "create staff",
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_422_naming_the_field_and_changes_nothing() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let cases = [
        (json!({"id": "unit/1"}), "/v1/devices", "id"),
        (json!({"id": "unit-1"}), "/v1/devices", "id"),
        (json!({"id": "ünit"}), "/v1/devices", "id"),
        (
            json!({"id": "u1", "capabilities": {"laser": true}}),
            "/v1/devices",
            // Named by its path in the body (design 5.2).
            "capabilities.laser",
        ),
        (json!({"id": "ex 1", "name": "x"}), "/v1/assets", "id"),
        (json!({"id": "ex1", "name": "   "}), "/v1/assets", "name"),
        (json!({"id": "ex1"}), "/v1/assets", "name"),
        (
            json!({"id": "ex1", "name": "x", "colour": "red"}),
            "/v1/assets",
            "colour",
        ),
    ];
    for (body, path, field) in cases {
        let response = fleet
            .admin
            .request_raw(Method::POST, path, Some(&body))
            .await
            .expect("answer");
        assert_eq!(response.status, 422, "{body} -> {response:?}");
        assert_eq!(response.body["field"], field, "{body} -> {response:?}");
    }
    let account = fleet.account_id.to_string();
    let response = fleet
        .admin
        .request_raw(
            Method::POST,
            &format!("/v1/accounts/{account}/users"),
            Some(&json!({"name": "x", "role": "owner"})),
        )
        .await
        .expect("answer");
    assert_problem(&response, 422, "admin, fleet_admin, viewer");
    fleet.unit_with_asset("unit1", "ex1").await;
    for query in [
        "limit=0",
        "limit=1001",
        "from=yesterday",
        "cursor=abc",
        "to=1970-01-01T00:00:00Z",
    ] {
        let path = format!("/v1/assets/ex1/telemetry?{query}");
        let response = fleet
            .admin
            .request_raw(Method::GET, &path, None)
            .await
            .expect("answer");
        assert_eq!(response.status, 422, "{path} -> {response:?}");
    }
    assert_eq!(
        fleet.admin.list_all_assets().await.expect("list").len(),
        1,
        "only the asset created on purpose exists"
    );
    // Malformed JSON is 400, a non-JSON content type 415.
    let raw = reqwest::Client::new();
    let url = format!("{}/v1/assets", gateway.http_base());
    let token = fleet.admin_token.clone();
    let response = raw
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"id\":")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 400);
    let response = raw
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_conflict() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let again = fleet
        .admin
        .request_raw(Method::POST, "/v1/devices", Some(&json!({"id": "unit1"})))
        .await
        .expect("answer");
    assert_problem(&again, 409, "already registered");
    let other = Fleet::create(&gateway, "Other").await;
    let taken = other
        .admin
        .request_raw(Method::POST, "/v1/devices", Some(&json!({"id": "unit1"})))
        .await
        .expect("answer");
    assert_problem(&taken, 409, "already registered");
    let rebind = fleet
        .admin
        .request_raw(
            Method::POST,
            "/v1/assets",
            Some(&json!({"id": "ex2", "name": "x", "device_id": "unit1"})),
        )
        .await
        .expect("answer");
    assert_problem(&rebind, 409, "already reports for asset ex1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_and_openapi_describe_the_api() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let me = fleet.admin.get_raw("/v1/me").await.expect("me");
    assert_eq!(me.0, 200);
    assert_eq!(me.1["role"], "admin");
    assert_eq!(me.1["kind"], "user");
    assert_eq!(me.1["account_id"], fleet.account_id.to_string());
    let (status, spec) = fleet.admin.get_raw("/v1/openapi.json").await.expect("spec");
    assert_eq!(status, 200);
    for path in [
        "/v1/assets/{x}/telemetry",
        "/v1/devices",
        "/v1/stream",
        "/v1/me",
    ] {
        assert!(spec["paths"].get(path).is_some(), "openapi lists {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_keeps_failing_to_authenticate_is_throttled() {
    let gateway = TestGateway::start_with(|config| {
        config.auth_failures_per_minute = 5;
        config.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    });
    let fleet = Fleet::create(&gateway, "Acme").await;
    let client = reqwest::Client::new();
    let me = format!("{}/v1/me", gateway.http_base());
    let ask = |token: &str, source: &str| {
        client
            .get(&me)
            .bearer_auth(token)
            .header("x-forwarded-for", source)
            .send()
    };
    for _ in 0..5 {
        let answer = ask("fgt_guess", "198.51.100.7").await.expect("answer");
        assert_eq!(answer.status(), 401);
    }
    let throttled = ask("fgt_guess", "198.51.100.7").await.expect("answer");
    assert_eq!(throttled.status(), 429);
    let retry: u64 = throttled.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let held = ask(&fleet.admin_token, "198.51.100.7")
        .await
        .expect("answer");
    assert_eq!(held.status(), 429, "the source is held, whatever it sends");
    let other = ask(&fleet.admin_token, "203.0.113.9")
        .await
        .expect("answer");
    assert_eq!(other.status(), 200, "another source is not slowed");
    let metrics = fleet.metric_line("fleetgate_auth_failures_total").await;
    assert!(metrics.is_some_and(|line| line.ends_with(" 5")), "counted");
}
