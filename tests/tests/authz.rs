//! The authorization matrix (issue 9): every route of the gateway's route table called as
//! owner admin, fleet admin, viewer, grantee, expired grantee, stranger, each staff role
//! with and without support access, and a bad token, checked against the expected table in
//! `authz/matrix.tsv`. A stranger gets 404 for anything of another account, never 403.
//! A tidy test fails when a route of the table has no row (issue 14).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use simulator::api::UserRole;
use simulator::ApiClient;
use tests::{call, Fleet, TestGateway};

const PRINCIPALS: [&str; 11] = [
    "owner",
    "fleet",
    "viewer",
    "grantee",
    "expired",
    "stranger",
    "platform",
    "support",
    "support_on",
    "tech",
    "bad_token",
];

const MATRIX: &str = include_str!("authz/matrix.tsv");

/// Where every rule's problem `type` URI starts.
const RULES: &str = storage::rule::TYPE_URI_BASE;

struct Caller {
    client: ApiClient,
    /// The account `{home}` names: the caller's own, or the owner account for staff.
    home: String,
}

/// What the rows act on: the owner `Acme` (unit1 on asset ex1, a live unit; unit2 on ex2,
/// never connected, so key changes to it answer at once as pending), its
/// sub-accounts (`Depot` holds a grant of ex1, `Old` held one that expired, `Target` may
/// receive grants and mirrors), and the gateway's clock.
struct World {
    gateway: TestGateway,
    owner: Fleet,
    depot: Fleet,
    old: Fleet,
    stranger: Fleet,
    target: Fleet,
    /// Keeps unit1 connected, so key changes are acknowledged.
    _unit: simulator::SimUnit,
}

/// A row's body: none, JSON, or CSV (written `csv:` with `|` for line breaks).
enum Body {
    None,
    Json(Value),
    Csv(String),
}

async fn staff(platform: &ApiClient, role: &str) -> ApiClient {
    let (status, body) = call(
        platform,
        Method::POST,
        "/v1/staff",
        Some(json!({"name": role, "role": role})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    platform.with_token(body["token"].as_str().expect("token"))
}

/// A call that must succeed: its body.
async fn made(client: &ApiClient, method: Method, path: &str, body: Value) -> Value {
    let (status, answer) = call(client, method.clone(), path, Some(body)).await;
    assert!((200..300).contains(&status), "{method} {path}: {answer}");
    answer
}

/// The status, and for a 403 its problem `type`. Streams answer their status at once and
/// then stay open, so no other body is read.
async fn status_of(
    token: &str,
    base: &str,
    method: Method,
    path: &str,
    body: &Body,
) -> (u16, Option<String>) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10));
    match body {
        Body::None => {}
        Body::Json(body) => request = request.json(body),
        Body::Csv(text) => {
            request = request
                .header("content-type", "text/csv")
                .body(text.clone());
        }
    }
    let answer = request.send().await.expect("answer");
    let status = answer.status().as_u16();
    if status != 403 {
        return (status, None);
    }
    let problem: Value = answer.json().await.expect("a problem document");
    (status, problem["type"].as_str().map(str::to_owned))
}

fn at(ms: u64) -> String {
    simulator::telemetry::rfc3339_from_ms(ms).expect("time")
}

const HOUR: u64 = 3_600_000;

async fn world() -> World {
    let gateway = TestGateway::start_with_manual_clock();
    let owner = Fleet::create(&gateway, "Acme").await;
    owner.unit_with_asset("unit1", "ex1").await;
    owner.unit_with_asset("unit2", "ex2").await;
    let depot = owner.child(&gateway, "Depot").await;
    let old = owner.child(&gateway, "Old").await;
    let target = owner.child(&gateway, "Target").await;
    let stranger = Fleet::create(&gateway, "Other").await;
    let now = gateway.now_ms();
    let until = json!({"until": at(now + HOUR)});
    assert_eq!(owner.grant(&old, &["ex1"], until).await.status, 201);
    gateway.advance(Duration::from_millis(2 * HOUR));
    assert_eq!(owner.grant(&depot, &["ex1"], json!({})).await.status, 201);
    let unit = owner.connect("unit1").await;
    unit.publish_point(&json!({"fuel_pct": 5}))
        .await
        .expect("a point inside the grant");
    owner.history("ex1", 1).await;
    World {
        gateway,
        owner,
        depot,
        old,
        stranger,
        target,
        _unit: unit,
    }
}

/// One caller per column of the matrix, in [`PRINCIPALS`] order.
async fn callers(world: &World) -> Vec<Caller> {
    let owner = &world.owner;
    let platform = owner.platform.clone();
    let (support_on, _) = owner.approved_support("24h").await;
    let acme = owner.account_id.to_string();
    let mine = |client: ApiClient, fleet: &Fleet| Caller {
        client,
        home: fleet.account_id.to_string(),
    };
    let staff_caller = |client: ApiClient| Caller {
        client,
        home: acme.clone(),
    };
    vec![
        mine(owner.admin.clone(), owner),
        mine(owner.user(UserRole::FleetAdmin).await, owner),
        mine(owner.user(UserRole::Viewer).await, owner),
        mine(world.depot.admin.clone(), &world.depot),
        mine(world.old.admin.clone(), &world.old),
        mine(world.stranger.admin.clone(), &world.stranger),
        staff_caller(platform.clone()),
        staff_caller(staff(&platform, "support").await),
        staff_caller(support_on),
        staff_caller(staff(&platform, "tech_support").await),
        staff_caller(platform.with_token("fgt_revoked_or_forged")),
    ]
}

/// Replaces each fresh-object placeholder in `text` with a new object made for this call
/// alone (see the matrix header), so no call sees what an earlier caller changed.
async fn fresh(world: &World, mut text: String, n: u64) -> String {
    let owner = &world.owner;
    let admin = &owner.admin;
    if text.contains("{grant}") {
        let target = owner.child(&world.gateway, &format!("T{n}")).await;
        let granted = owner.grant(&target, &["ex1"], json!({})).await;
        let id = granted.body["items"][0]["id"].as_str().expect("grant");
        text = text.replace("{grant}", id);
    }
    if text.contains("{granted}") {
        let target = owner.child(&world.gateway, &format!("G{n}")).await;
        assert_eq!(owner.grant(&target, &["ex1"], json!({})).await.status, 201);
        text = text.replace("{granted}", &target.account_id.to_string());
    }
    if text.contains("{device}") {
        let device = format!("fresh{n}");
        made(admin, Method::POST, "/v1/devices", json!({"id": device})).await;
        text = text.replace("{device}", &device);
    }
    if text.contains("{user}") {
        let user = owner
            .platform
            .create_user(&owner.account_id, &format!("user{n}"), UserRole::Viewer)
            .await
            .expect("fresh user");
        text = text.replace("{user}", &user.id.to_string());
    }
    if text.contains("{fresh_account}") {
        let fresh = Fleet::create(&world.gateway, &format!("F{n}")).await;
        text = text.replace("{fresh_account}", &fresh.account_id.to_string());
    }
    fresh_access(world, fresh_objects(world, text, n).await, n).await
}

/// The placeholders for objects of the owner account: operators, keys, profiles, shared
/// assets.
async fn fresh_objects(world: &World, mut text: String, n: u64) -> String {
    let admin = &world.owner.admin;
    if text.contains("{operator}") {
        let operator = made(
            admin,
            Method::POST,
            "/v1/operators",
            // A phone, so an invitation can be sent again.
            json!({"name": format!("o{n}"), "phone": "+47 912 34 567"}),
        );
        text = text.replace("{operator}", operator.await["id"].as_str().expect("id"));
    }
    if text.contains("{customer}") {
        let body = json!({"name": format!("c{n}")});
        let customer = made(admin, Method::POST, "/v1/customers", body).await;
        text = text.replace("{customer}", customer["id"].as_str().expect("id"));
    }
    if text.contains("{key}") {
        let now = world.gateway.now_ms();
        let body = json!({"personal": false, "asset_ids": ["ex2"], "access_type": "keypad_pin",
            "valid_from": at(now), "valid_to": at(now + HOUR)});
        let key = made(admin, Method::POST, "/v1/keys", body).await;
        text = text.replace("{key}", key["key"]["id"].as_str().expect("id"));
    }
    if text.contains("{profile}") {
        let profile = made(admin, Method::POST, "/v1/sharing-profiles", profile(n)).await;
        text = text.replace("{profile}", profile["id"].as_str().expect("id"));
    }
    if text.contains("{shared_asset}") {
        let asset = format!("sa{n}");
        made(
            admin,
            Method::POST,
            "/v1/assets",
            json!({"id": asset, "name": "shared"}),
        )
        .await;
        assert_eq!(
            world
                .owner
                .grant(&world.depot, &[&asset], json!({}))
                .await
                .status,
            201
        );
        let target = world.target.account_id.to_string();
        let telemetry = json!({"target_account_id": target, "target_asset_id": format!("mt{n}")});
        let path = format!("/v1/assets/{asset}/sharing/telemetry");
        made(admin, Method::PUT, &path, telemetry).await;
        let profile = made(admin, Method::POST, "/v1/sharing-profiles", profile(n)).await;
        let details = json!({"target_account_id": target, "target_asset_id": format!("md{n}"),
            "profile_id": profile["id"]});
        let path = format!("/v1/assets/{asset}/sharing/details");
        made(admin, Method::PUT, &path, details).await;
        text = text.replace("{shared_asset}", &asset);
    }
    text
}

fn profile(n: u64) -> Value {
    json!({"name": format!("p{n}"), "fields": ["name"]})
}

/// The placeholders for platform objects: partnerships, support access, staff, cases.
async fn fresh_access(world: &World, mut text: String, n: u64) -> String {
    let owner = &world.owner;
    let acme = owner.account_id.to_string();
    if text.contains("{partnership}") {
        let other = Fleet::create(&world.gateway, &format!("P{n}")).await;
        let body = json!({"account_a": acme, "account_b": other.account_id.to_string()});
        let made = made(&owner.platform, Method::POST, "/v1/partnerships", body).await;
        text = text.replace("{partnership}", made["id"].as_str().expect("id"));
    }
    if text.contains("{request}") {
        let (support, _) = owner.staff("support").await;
        let body = json!({"account_id": acme, "purpose": "matrix", "duration": "24h"});
        let request = made(&support, Method::POST, "/v1/support-access/requests", body).await;
        text = text.replace("{request}", request["id"].as_str().expect("id"));
    }
    if text.contains("{active_request}") {
        let (_, id) = owner.approved_support("24h").await;
        text = text.replace("{active_request}", &id);
    }
    if text.contains("{staff}") {
        let (_, member) = owner.staff("support").await;
        text = text.replace("{staff}", &member);
    }
    if text.contains("{case}") {
        let (_, tech) = owner.staff("tech_support").await;
        let body = json!({"account_id": acme, "ticket_id": format!("C{n}"), "staff_id": tech});
        let case = made(&owner.platform, Method::POST, "/v1/support-cases", body).await;
        text = text.replace("{case}", case["id"].as_str().expect("id"));
    }
    text
}

/// The rows of the matrix: method, path, body, then one expected class per principal.
fn rows() -> Vec<Vec<&'static str>> {
    MATRIX
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            assert_eq!(cells.len(), 3 + PRINCIPALS.len(), "malformed row: {line}");
            cells
        })
        .collect()
}

fn body_of(text: &str) -> Body {
    match text {
        "-" => Body::None,
        csv if csv.starts_with("csv:") => Body::Csv(csv["csv:".len()..].replace('|', "\n")),
        json => Body::Json(serde_json::from_str(json).expect("row body is JSON")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_as_every_caller() {
    let world = world().await;
    let callers = callers(&world).await;
    let acme = world.owner.account_id.to_string();
    let target = world.target.account_id.to_string();
    let base = world.gateway.http_base();
    let mut counter = 0u64;
    let mut mismatches = Vec::new();
    let rows = rows();
    for cells in &rows {
        let method = Method::from_bytes(cells[0].as_bytes()).expect("method");
        for (index, caller) in callers.iter().enumerate() {
            counter += 1;
            let now = world.gateway.now_ms();
            let fill = |template: &str| {
                template
                    .replace("{acme}", &acme)
                    .replace("{home}", &caller.home)
                    .replace("{target}", &target)
                    .replace("{n}", &counter.to_string())
                    .replace("{now}", &at(now))
                    .replace("{later}", &at(now + HOUR))
            };
            let path = fresh(&world, fill(cells[1]), counter).await;
            let body = body_of(&fresh(&world, fill(cells[2]), counter).await);
            let token = caller.client.token().unwrap_or_default();
            let (status, kind) = status_of(token, &base, method.clone(), &path, &body).await;
            // Every 403 is a refusal by a rule, and says which (issue 14).
            if status == 403 && !kind.as_deref().is_some_and(|kind| kind.starts_with(RULES)) {
                mismatches.push(format!(
                    "{} {} as {}: a 403 without a rule's type ({kind:?})",
                    cells[0], cells[1], PRINCIPALS[index]
                ));
            }
            let class = match status {
                200..=299 => "2".to_owned(),
                other => other.to_string(),
            };
            let expected = cells[3 + index];
            if class != expected {
                mismatches.push(format!(
                    "{} {} as {}: expected {expected}, got {status}",
                    cells[0], cells[1], PRINCIPALS[index]
                ));
            }
        }
    }
    assert!(
        rows.len() >= 30,
        "the table covers the API ({} rows)",
        rows.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Whether the matrix path `row` (query stripped) calls the route template `route`: the
/// same segments, a `{param}` of the route matching any segment of the row.
fn calls(row: &str, route: &str) -> bool {
    let row = row.split('?').next().unwrap_or_default();
    row.split('/').count() == route.split('/').count()
        && row
            .split('/')
            .zip(route.split('/'))
            .all(|(called, template)| called == template || template.starts_with('{'))
}

/// The tidy check of issue 14: every route of the gateway's route table has a row. A row
/// counts for the route actix would send it to: the first of the table it matches.
#[test]
fn every_route_has_a_row() {
    let routes = gateway::http::ROUTES;
    let mut covered = vec![false; routes.len()];
    for cells in rows() {
        let hit = routes
            .iter()
            .position(|route| cells[0] == route.method && calls(cells[1], route.path));
        match hit {
            Some(index) => covered[index] = true,
            None => panic!(
                "the row {} {} calls no route of the table",
                cells[0], cells[1]
            ),
        }
    }
    let missing: Vec<String> = routes
        .iter()
        .zip(&covered)
        .filter(|(_, covered)| !**covered)
        .map(|(route, _)| format!("{} {}", route.method, route.path))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} routes have no row in authz/matrix.tsv:\n{}",
        missing.len(),
        routes.len(),
        missing.join("\n")
    );
}
