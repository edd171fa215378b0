//! The authorization matrix (issue 9): every endpoint called as owner admin, fleet admin,
//! viewer, grantee, expired grantee, stranger, each staff role with and without support
//! access, and a bad token, checked against the expected table in `authz/matrix.tsv`.
//! A stranger gets 404 for anything of another account, never 403.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use simulator::api::UserRole;
use simulator::ApiClient;
use tests::{Fleet, TestGateway};

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

struct Caller {
    client: ApiClient,
    /// The account `{home}` names: the caller's own, or the owner account for staff.
    home: String,
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

async fn call(client: &ApiClient, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let answer = client
        .request_raw(method, path, body.as_ref())
        .await
        .expect("answer");
    (answer.status, answer.body)
}

/// Status only: streams answer their status at once and then stay open.
async fn status_of(
    token: &str,
    base: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> u16 {
    let mut request = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10));
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("answer").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_as_every_caller() {
    let gateway = TestGateway::start_with_manual_clock();
    let owner = Fleet::create(&gateway, "Acme").await;
    owner.unit_with_asset("unit1", "ex1").await;
    let depot = owner.child(&gateway, "Depot").await;
    let old = owner.child(&gateway, "Old").await;
    let stranger = Fleet::create(&gateway, "Other").await;
    let target = owner.child(&gateway, "Target").await;
    let now = gateway.now_ms();
    let hour = 3_600_000u64;
    let at = |ms: u64| simulator::telemetry::rfc3339_from_ms(ms).expect("time");
    assert_eq!(
        owner
            .grant(&old, &["ex1"], json!({"until": at(now + hour)}))
            .await
            .status,
        201
    );
    gateway.advance(Duration::from_millis(2 * hour));
    assert_eq!(owner.grant(&depot, &["ex1"], json!({})).await.status, 201);
    let unit = owner.connect("unit1").await;
    unit.publish_point(&json!({"fuel_pct": 5}))
        .await
        .expect("a point inside the grant");
    owner.history("ex1", 1).await;

    let platform = owner.platform.clone();
    let support_on = staff(&platform, "support").await;
    let body =
        json!({"account_id": owner.account_id.to_string(), "purpose": "matrix", "duration": "24h"});
    let (_, request) = call(
        &support_on,
        Method::POST,
        "/v1/support-access/requests",
        Some(body),
    )
    .await;
    let id = request["id"].as_str().expect("id").to_owned();
    let (status, _) = call(
        &owner.admin,
        Method::POST,
        &format!("/v1/support-access/requests/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let acme = owner.account_id.to_string();
    let callers: Vec<Caller> = vec![
        Caller {
            client: owner.admin.clone(),
            home: acme.clone(),
        },
        Caller {
            client: owner.user(UserRole::FleetAdmin).await,
            home: acme.clone(),
        },
        Caller {
            client: owner.user(UserRole::Viewer).await,
            home: acme.clone(),
        },
        Caller {
            client: depot.admin.clone(),
            home: depot.account_id.to_string(),
        },
        Caller {
            client: old.admin.clone(),
            home: old.account_id.to_string(),
        },
        Caller {
            client: stranger.admin.clone(),
            home: stranger.account_id.to_string(),
        },
        Caller {
            client: platform.clone(),
            home: acme.clone(),
        },
        Caller {
            client: staff(&platform, "support").await,
            home: acme.clone(),
        },
        Caller {
            client: support_on,
            home: acme.clone(),
        },
        Caller {
            client: staff(&platform, "tech_support").await,
            home: acme.clone(),
        },
        Caller {
            client: platform.with_token("fgt_revoked_or_forged"),
            home: acme.clone(),
        },
    ];
    let tokens: Vec<String> = callers
        .iter()
        .map(|caller| caller.client.token().unwrap_or_default().to_owned())
        .collect();

    let table = include_str!("authz/matrix.tsv");
    let mut counter = 0u64;
    let mut mismatches = Vec::new();
    let mut rows = 0;
    for line in table
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
    {
        let cells: Vec<&str> = line.split('\t').collect();
        assert_eq!(cells.len(), 3 + PRINCIPALS.len(), "malformed row: {line}");
        rows += 1;
        let method = Method::from_bytes(cells[0].as_bytes()).expect("method");
        for (index, caller) in callers.iter().enumerate() {
            counter += 1;
            let fill = |template: &str| {
                template
                    .replace("{acme}", &acme)
                    .replace("{home}", &caller.home)
                    .replace("{target}", &target.account_id.to_string())
                    .replace("{n}", &counter.to_string())
                    .replace("{now}", &at(gateway.now_ms()))
                    .replace("{later}", &at(gateway.now_ms() + hour))
            };
            let mut path = fill(cells[1]);
            let mut body_text = fill(cells[2]);
            if path.contains("{grant}") {
                let target = owner.child(&gateway, &format!("T{counter}")).await;
                let granted = owner.grant(&target, &["ex1"], json!({})).await;
                path = path.replace(
                    "{grant}",
                    granted.body["items"][0]["id"].as_str().expect("grant"),
                );
            }
            if path.contains("{device}") {
                let device = format!("fresh{counter}");
                let (status, _) = call(
                    &owner.admin,
                    Method::POST,
                    "/v1/devices",
                    Some(json!({"id": device})),
                )
                .await;
                assert_eq!(status, 201);
                path = path.replace("{device}", &device);
            }
            if path.contains("{user}") {
                let user = owner
                    .platform
                    .create_user(
                        &owner.account_id,
                        &format!("user{counter}"),
                        UserRole::Viewer,
                    )
                    .await
                    .expect("fresh user");
                path = path.replace("{user}", &user.id.to_string());
            }
            if body_text.contains("{fresh_account}") {
                let fresh = Fleet::create(&gateway, &format!("F{counter}")).await;
                body_text = body_text.replace("{fresh_account}", &fresh.account_id.to_string());
            }
            let body: Option<Value> = (body_text != "-")
                .then(|| serde_json::from_str(&body_text).expect("row body is JSON"));
            let status = status_of(
                &tokens[index],
                &gateway.http_base(),
                method.clone(),
                &path,
                body.as_ref(),
            )
            .await;
            let class = if (200..300).contains(&status) {
                "2".to_owned()
            } else {
                status.to_string()
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
    assert!(rows >= 30, "the table covers the API ({rows} rows)");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
