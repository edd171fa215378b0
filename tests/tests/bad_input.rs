//! Bad input at the HTTP edge: oversize bodies, wrong content types, invalid JSON, unknown
//! fields, huge lists in bulk calls and path ids with odd characters each get a clear
//! problem+json, and none of them changes anything.

use reqwest::Method;
use serde_json::{json, Value};
use tests::{Fleet, TestGateway};

/// Who sends a test's raw requests: to which gateway, with which bearer token.
struct Caller<'a> {
    gateway: &'a TestGateway,
    token: String,
}

impl<'a> Caller<'a> {
    fn admin_of(gateway: &'a TestGateway, fleet: &Fleet) -> Self {
        let token = fleet.admin_token.clone();
        Caller { gateway, token }
    }
}

async fn raw(
    Caller { gateway, token }: &Caller<'_>,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", gateway.http_base()))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, kind, body)
}

/// A request without a body (declared JSON, as client libraries do).
async fn bare(caller: &Caller<'_>, method: Method, path: &str) -> (u16, Option<String>, Value) {
    raw(caller, method, path, "application/json", Vec::new()).await
}

fn assert_problem(answer: &(u16, Option<String>, Value), status: u16, mentions: &str) {
    assert_eq!(answer.0, status, "{answer:?}");
    assert_eq!(
        answer.1.as_deref(),
        Some("application/problem+json"),
        "{answer:?}"
    );
    let detail = answer.2["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(mentions),
        "{detail:?} should mention {mentions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_refuses_clearly_and_changes_nothing() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    owner.unit_with_asset("unit1", "ex1").await;
    let caller = Caller::admin_of(&gateway, &owner);
    let json = "application/json";

    let huge = format!(r#"{{"id":"ex9","name":"{}"}}"#, "x".repeat(300 * 1024));
    // What is sent as a new asset, and the refusal it gets.
    let new_assets: [(&str, Vec<u8>, u16, &str); 5] = [
        (json, huge.into_bytes(), 413, "body"),
        ("text/plain", b"{}".to_vec(), 415, "application/json"),
        (
            "application/xml",
            b"<asset/>".to_vec(),
            415,
            "application/json",
        ),
        (json, b"{\"id\": \"ex9\",".to_vec(), 400, "JSON"),
        (json, b"[1,2,3]".to_vec(), 422, ""),
    ];
    for (content_type, body, status, mentions) in new_assets {
        let answer = raw(&caller, Method::POST, "/v1/assets", content_type, body).await;
        assert_problem(&answer, status, mentions);
    }
    let unknown = raw(
        &caller,
        Method::POST,
        "/v1/assets",
        json,
        br#"{"id":"ex9","name":"x","owner":"me"}"#.to_vec(),
    )
    .await;
    assert_problem(&unknown, 422, "owner");
    assert_eq!(unknown.2["field"], "owner");

    let many: Vec<String> = (0..1001).map(|i| format!("a{i}")).collect();
    let ids: Vec<String> = (0..1001).map(|i| format!("key{i}")).collect();
    let bulk = [
        (
            "/v1/visibility/grants",
            json!({"account_id": depot.account_id.to_string(), "asset_ids": many}),
        ),
        ("/v1/keys/bulk-delete", json!({"ids": ids})),
    ];
    for (path, body) in bulk {
        let answer = raw(&caller, Method::POST, path, json, body.to_string().into()).await;
        assert_problem(&answer, 422, "at most 1000");
    }

    for odd in ["ex%2F1", "ex%201", "%E2%9C%93", "ex1%00", "..", "a%3Fb"] {
        let answer = bare(&caller, Method::GET, &format!("/v1/assets/{odd}")).await;
        assert_problem(&answer, 404, "not found");
        let answer = bare(&caller, Method::DELETE, &format!("/v1/devices/{odd}")).await;
        assert_problem(&answer, 404, "not found");
    }
    let answer = bare(
        &caller,
        Method::GET,
        &format!("/v1/assets/{}", "a".repeat(5000)),
    )
    .await;
    assert_eq!(answer.0, 404);
    let answer = bare(&caller, Method::GET, "/v1/assets?limit=abc").await;
    assert_problem(&answer, 422, "limit");
    let answer = bare(&caller, Method::GET, "/v1/assets?colour=red").await;
    assert_problem(&answer, 422, "colour");

    // Nothing above changed anything.
    let assets = owner.admin.list_all_assets().await.expect("list");
    assert_eq!(assets.len(), 1);
    assert_eq!(
        tests::grants_listed(&owner.admin).await,
        Vec::<Value>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_an_object_is_refused_and_changes_nothing() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let caller = Caller::admin_of(&gateway, &owner);
    let json = "application/json";
    let created = raw(
        &caller,
        Method::POST,
        "/v1/operators",
        json,
        br#"{"name":"Ann Lee","phone":"+47 912 34 567"}"#.to_vec(),
    )
    .await;
    assert_eq!(created.0, 201, "{created:?}");
    let path = format!("/v1/operators/{}", created.2["id"].as_str().expect("id"));
    // The bug report's body: an array of the fields in order cleared the phone.
    for body in ["[null,null]", "[\"Bob\"]", "[]", "null", "42", "\"name\""] {
        let answer = raw(&caller, Method::PATCH, &path, json, body.into()).await;
        assert_problem(&answer, 422, "JSON object");
        assert_eq!(answer.2["field"], "body", "{answer:?}");
    }
    let after = bare(&caller, Method::GET, &path).await;
    assert_eq!(after.2["phone"], "+4791234567", "{after:?}");
    assert_eq!(after.2["name"], "Ann Lee");
    // The same on a create: nothing made.
    let answer = raw(
        &caller,
        Method::POST,
        "/v1/assets",
        json,
        br#"["ex9","x"]"#.to_vec(),
    )
    .await;
    assert_problem(&answer, 422, "JSON object");
    let missing = bare(&caller, Method::GET, "/v1/assets/ex9").await;
    assert_eq!(missing.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_names_are_refused_naming_the_field() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let caller = Caller::admin_of(&gateway, &owner);
    let json = "application/json";
    let users = format!("/v1/accounts/{}/users", owner.account_id);
    let cases: Vec<(&str, String, Value, &str)> = vec![
        (
            "POST",
            "/v1/assets".into(),
            json!({"id": "ex7", "name": "Excavator\n7"}),
            "name",
        ),
        (
            "POST",
            "/v1/assets".into(),
            json!({"id": "ex7", "name": "x", "serial": "S\t1"}),
            "serial",
        ),
        (
            "POST",
            users,
            json!({"name": "Eve\u{1b}[2J", "role": "viewer"}),
            "name",
        ),
        (
            "POST",
            "/v1/accounts".into(),
            json!({"name": "Sub\r\nX", "parent_id": owner.account_id.to_string()}),
            "name",
        ),
        (
            "POST",
            "/v1/operators".into(),
            json!({"name": "Op\u{0}"}),
            "name",
        ),
    ];
    for (method, path, body, field) in cases {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let bytes = serde_json::to_vec(&body).expect("json");
        let answer = raw(&caller, method, &path, json, bytes).await;
        assert_eq!(answer.0, 422, "{path} {body}: {answer:?}");
        let text = answer.2.to_string();
        assert!(text.contains("control characters"), "{path}: {text}");
        assert!(text.contains(field), "{path}: names {field}: {text}");
    }
    let missing = bare(&caller, Method::GET, "/v1/assets/ex7").await;
    assert_eq!(missing.0, 404, "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_not_cached_and_streams_say_so_themselves() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let client = reqwest::Client::new();
    let base = gateway.http_base();
    let cache = |response: &reqwest::Response| {
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let created = client
        .post(format!("{base}/v1/accounts/{}/users", owner.account_id))
        .bearer_auth(&owner.admin_token)
        .json(&json!({"name": "viewer", "role": "viewer"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(created.status(), 201);
    assert_eq!(
        cache(&created).as_deref(),
        Some("no-store"),
        "an answer with a token"
    );
    let refused = client
        .get(format!("{base}/v1/me"))
        .bearer_auth("fgt_wrong")
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 401);
    assert_eq!(cache(&refused).as_deref(), Some("no-store"));
    let stream = client
        .get(format!("{base}/v1/stream"))
        .bearer_auth(&owner.admin_token)
        .send()
        .await
        .expect("answer");
    assert_eq!(cache(&stream).as_deref(), Some("no-cache"));
}

/// A `+` in a query string means a space, so `from=2026-11-25T10:00:00+01:00` sent as typed
/// arrives as `2026-11-25T10:00:00 01:00`. Every query-string time refuses that naming the
/// field and `%2B`; the same time encoded is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unencoded_plus_in_a_query_time_is_refused_naming_percent_2b() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    owner.unit_with_asset("unit1", "ex1").await;
    let caller = Caller::admin_of(&gateway, &owner);
    for (path, field) in [
        (
            "/v1/assets/ex1/telemetry?from=2026-11-25T10:00:00+01:00",
            "from",
        ),
        (
            "/v1/assets/ex1/access-events?to=2026-11-25T10:00:00+01:00",
            "to",
        ),
        ("/v1/audit?from=2026-11-25T10:00:00+01:00", "from"),
    ] {
        let answer = raw(&caller, Method::GET, path, "text/plain", Vec::new()).await;
        assert_problem(&answer, 422, "encode it as %2B");
        assert_eq!(answer.2["field"], field, "{path}: {answer:?}");
        let detail = answer.2["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!("({field}=2026-11-25T10:00:00%2B01:00)")),
            "{path}: {detail}"
        );
        let encoded = path.replace('+', "%2B");
        let answer = raw(&caller, Method::GET, &encoded, "text/plain", Vec::new()).await;
        assert_eq!(answer.0, 200, "{encoded}: {answer:?}");
    }
}

/// A method a known path does not have is 405 naming the methods it has in `Allow` (RFC
/// 9110 §15.5.6), with or without a token; an unknown path stays 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_path_does_not_have_is_405_with_allow() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let client = reqwest::Client::new();
    let cases = [
        (Method::PUT, "/v1/assets", Some("GET, HEAD, POST")),
        (Method::DELETE, "/v1/me", Some("GET, HEAD")),
        (Method::POST, "/healthz", Some("GET, HEAD")),
        (Method::PATCH, "/v1/visibility/grants/gr1", Some("DELETE")),
        (Method::POST, "/v1/assets/ex1/telemetry", Some("GET, HEAD")),
        (Method::GET, "/v1/nothing-here", None),
    ];
    for (method, path, allow) in cases {
        for token in [Some(fleet.admin_token.as_str()), None] {
            let mut request =
                client.request(method.clone(), format!("{}{path}", gateway.http_base()));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let answer = request.send().await.expect("answer");
            let header = |name: &str| {
                answer
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let (allowed, kind) = (header("allow"), header("content-type"));
            let status = answer.status().as_u16();
            assert_eq!(
                status,
                if allow.is_some() { 405 } else { 404 },
                "{method} {path}"
            );
            assert_eq!(allowed.as_deref(), allow, "{method} {path}");
            assert_eq!(
                kind.as_deref(),
                Some("application/problem+json"),
                "{method} {path}"
            );
        }
    }
    // HEAD wherever GET is (RFC 9110 §9.1; load balancers probe with it): GET's status
    // and headers, no body; the same authentication.
    for (path, token, status) in [
        ("/healthz", None, 200),
        ("/v1/assets", Some(fleet.admin_token.as_str()), 200),
        ("/v1/assets", None, 401),
    ] {
        let mut request = client.head(format!("{}{path}", gateway.http_base()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.expect("answer");
        assert_eq!(answer.status().as_u16(), status, "HEAD {path}");
        assert!(
            answer.bytes().await.expect("body").is_empty(),
            "HEAD {path}"
        );
    }
}

/// Bodies with a field of the wrong type: method, path, body (`DEPOT` stands for a
/// sub-account's id), the `field` the refusal names and words its detail says.
const WRONG_TYPES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "POST",
        "/v1/assets",
        r#"{"id":5,"name":"x"}"#,
        "id",
        "must be a string, not a number",
    ),
    (
        "POST",
        "/v1/assets",
        r#"{"id":"zz2","name":true}"#,
        "name",
        "must be a string, not a boolean",
    ),
    (
        "POST",
        "/v1/assets",
        r#"{"id":"zz2","name":{"a":1}}"#,
        "name",
        "must be a string, not an object",
    ),
    (
        "POST",
        "/v1/assets",
        r#"{"id":"d3","name":"d","details":[1]}"#,
        "details",
        "must be an object, not an array",
    ),
    (
        "POST",
        "/v1/visibility/grants",
        r#"{"account_id":"DEPOT","asset_ids":[1]}"#,
        "asset_ids[0]",
        "must be a string, not a number",
    ),
    (
        "POST",
        "/v1/visibility/grants",
        r#"{"account_id":"DEPOT","asset_ids":"ex1"}"#,
        "asset_ids",
        "must be an array, not a string",
    ),
    (
        "PATCH",
        "/v1/assets/ex1",
        r#"{"details":{"counters":{"engine_hours":5}}}"#,
        "details.counters.engine_hours",
        "is not a field here",
    ),
    (
        "PATCH",
        "/v1/assets/ex1",
        r#"{"details":{"counters":{"engine_hours_offset":"5"}}}"#,
        "details.counters.engine_hours_offset",
        "must be a number, not a string",
    ),
    (
        "PATCH",
        "/v1/assets/ex1",
        r#"{"details":{"counters":{"engine_hours_offset":5}}}"#,
        "details.counters.odometer_offset_km",
        "is required",
    ),
    (
        "PATCH",
        "/v1/assets/ex1",
        r#"{"details":{"groups":[null]}}"#,
        "details.groups[0]",
        "must be a string",
    ),
    (
        "PATCH",
        "/v1/assets/ex1",
        r#"{"details":{"display":[null,null]}}"#,
        "details.display",
        "must be an object, not an array",
    ),
    (
        "PATCH",
        "/v1/assets/ex1",
        r#"{"name":7}"#,
        "name",
        "must be a string, not a number",
    ),
    (
        "PATCH",
        "/v1/devices/unit1",
        r#"{"capabilities":{"keypad":"yes"}}"#,
        "capabilities.keypad",
        "must be true or false, not a string",
    ),
    (
        "POST",
        "/v1/devices",
        r#"{"id":"unit9","capabilities":[true]}"#,
        "capabilities",
        "must be an object, not an array",
    ),
    (
        "POST",
        "/v1/keys",
        r#"{"personal":"yes","asset_ids":["ex1"],"access_type":"keypad_pin","valid_from":"2026-01-01T00:00:00Z","valid_to":"2027-01-01T00:00:00Z"}"#,
        "personal",
        "must be true or false, not a string",
    ),
];

/// Design 5.2: a field of the wrong type is a 422 whose `field` names it by its path
/// (`name`, `asset_ids[0]`, `details.counters.engine_hours`), never by the value it held,
/// with a detail in words; and nothing is created or changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_of_the_wrong_type_is_named_by_its_path() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    owner.unit_with_asset("unit1", "ex1").await;
    let caller = Caller::admin_of(&gateway, &owner);
    let before = bare(&caller, Method::GET, "/v1/assets/ex1").await;
    let units = |answer: (u16, Option<String>, Value)| {
        let items = answer.2["items"].as_array().cloned().unwrap_or_default();
        let units: Vec<(Value, Value)> = items
            .into_iter()
            .map(|unit| (unit["id"].clone(), unit["capabilities"].clone()))
            .collect();
        units
    };
    let units_before = units(bare(&caller, Method::GET, "/v1/devices").await);
    for (method, path, body, field, words) in WRONG_TYPES {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let body = body.replace("DEPOT", &depot.account_id.to_string());
        let answer = raw(
            &caller,
            method,
            path,
            "application/json",
            body.clone().into(),
        )
        .await;
        assert_problem(&answer, 422, words);
        assert_eq!(answer.2["field"], *field, "{path} {body}: {answer:?}");
    }
    // A query parameter is named the same way.
    let users = format!("/v1/accounts/{}/users", owner.account_id);
    let user = raw(
        &caller,
        Method::POST,
        &users,
        "application/json",
        br#"{"name":"Ann","role":"viewer"}"#.to_vec(),
    )
    .await;
    assert_eq!(user.0, 201, "{user:?}");
    let user_id = user.2["id"].as_str().expect("id");
    let invite = format!("{users}/{user_id}/password-invitation?reset=maybe");
    let answer = bare(&caller, Method::POST, &invite).await;
    assert_problem(&answer, 422, "must be true or false");
    assert_eq!(answer.2["field"], "reset", "{answer:?}");
    let answer = bare(&caller, Method::GET, "/v1/assets?limit=abc").await;
    assert_eq!(answer.2["field"], "limit", "{answer:?}");

    // Nothing above changed anything.
    assert_eq!(
        bare(&caller, Method::GET, "/v1/assets/ex1").await.2,
        before.2
    );
    assert_eq!(
        units(bare(&caller, Method::GET, "/v1/devices").await),
        units_before
    );
    for absent in ["/v1/assets/zz2", "/v1/assets/d3"] {
        assert_eq!(bare(&caller, Method::GET, absent).await.0, 404, "{absent}");
    }
    assert_eq!(
        tests::grants_listed(&owner.admin).await,
        Vec::<Value>::new()
    );
    let keys = bare(&caller, Method::GET, "/v1/keys").await;
    assert_eq!(keys.2["items"], json!([]), "{keys:?}");
}
