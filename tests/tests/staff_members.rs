//! Platform staff as the platform admin manages them (red-team finding F3: a member's
//! access could never end): disable and enable (`PATCH /v1/staff/{id}`), delete, rotate the
//! token. What a member holds ends before the call answers: its token, its console
//! sessions and the live streams opened with either, and its support access (active
//! access revoked, pending requests declined, audited with the reason). Only a platform
//! admin manages staff (403 `platform-admins-only` for anyone else, 404 for an unknown
//! member), and the platform keeps one enabled platform admin (409).

use std::time::Duration;

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};
use storage::Rule;
use tests::{call, refused_by, stream_ended, Fleet, TestGateway};

const WAIT: Duration = Duration::from_secs(5);

fn member_path(id: &str) -> String {
    format!("/v1/staff/{id}")
}

async fn me_status(client: &simulator::ApiClient) -> u16 {
    call(client, Method::GET, "/v1/me", None).await.0
}

async fn principal_id(client: &simulator::ApiClient) -> String {
    let (status, me) = call(client, Method::GET, "/v1/me", None).await;
    assert_eq!(status, 200, "{me}");
    me["principal_id"].as_str().expect("id").to_owned()
}

/// A console session signed in with `token`: the cookie (`name=value`).
async fn session_cookie(gateway: &TestGateway, token: &str) -> String {
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/session", gateway.http_base()))
        .json(&json!({"token": token}))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    let set_cookie = answer.headers().get(SET_COOKIE).expect("a cookie");
    let set_cookie = set_cookie.to_str().expect("ascii");
    set_cookie.split(';').next().expect("name=value").to_owned()
}

/// A GET with the console's cookie: the answer (a stream is read by the caller).
async fn with_cookie(gateway: &TestGateway, cookie: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", gateway.http_base()))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("answer")
}

/// The member as `GET /v1/staff` lists it (`Null` when it is not listed).
async fn listed(platform: &simulator::ApiClient, id: &str) -> Value {
    let (status, staff) = call(platform, Method::GET, "/v1/staff?limit=1000", None).await;
    assert_eq!(status, 200, "{staff}");
    staff["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|member| member["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The support access `id` as the account's admin lists it in `state` (`Null` if absent).
async fn access_in(fleet: &Fleet, state: &str, id: &str) -> Value {
    let path = format!(
        "/v1/accounts/{}/support-access?state={state}",
        fleet.account_id
    );
    let (status, lists) = call(&fleet.admin, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{lists}");
    lists["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|access| access["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// A pending support request of `support` for `fleet`'s account: its id.
async fn request(support: &simulator::ApiClient, fleet: &Fleet) -> String {
    let body = json!({"account_id": fleet.account_id.to_string(), "purpose": "later",
        "duration": "24h"});
    let path = "/v1/support-access/requests";
    let (status, pending) = call(support, Method::POST, path, Some(body)).await;
    assert_eq!(status, 201, "{pending}");
    pending["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_platform_admin_manages_staff_and_unknown_members_are_404() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let (support, support_id) = acme.staff("support").await;
    let (tech, _) = acme.staff("tech_support").await;
    let member = listed(&acme.platform, &support_id).await;
    assert_eq!(member["disabled"], false, "{member}");
    assert_eq!(member["role"], "support", "{member}");
    let path = member_path(&support_id);
    let token = format!("{path}/token");
    let calls = [
        (Method::PATCH, path.clone(), Some(json!({"disabled": true}))),
        (Method::DELETE, path.clone(), None),
        (Method::POST, token.clone(), None),
    ];
    let rule = Rule::PlatformAdminOnly {
        action: "manage staff",
    };
    for caller in [&acme.admin, &support, &tech] {
        for (method, path, body) in &calls {
            let (status, refused) = call(caller, method.clone(), path, body.clone()).await;
            assert!(
                refused_by(&refused, &rule),
                "{method} {path}: {status} {refused}"
            );
        }
    }
    assert_eq!(me_status(&support).await, 200, "nothing changed");
    for (method, _, body) in &calls {
        let unknown = if *method == Method::POST {
            member_path("stfnobody/token")
        } else {
            member_path("stfnobody")
        };
        let (status, _) = call(&acme.platform, method.clone(), &unknown, body.clone()).await;
        assert_eq!(status, 404, "{method} {unknown}");
    }
    // A user is no staff member, even to the platform admin.
    let user_id = principal_id(&acme.admin).await;
    let (status, _) = call(&acme.platform, Method::DELETE, &member_path(&user_id), None).await;
    assert_eq!(status, 404);
    assert_eq!(me_status(&acme.admin).await, 200);
    for bad in [
        json!({"disabled": "yes"}),
        json!({}),
        json!({"role": "support"}),
    ] {
        let (status, problem) = call(&acme.platform, Method::PATCH, &path, Some(bad)).await;
        assert_eq!(status, 422, "{problem}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_staff_token_dies_at_once_with_its_sessions_and_streams() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let (support, _) = acme.approved_support("24h").await;
    let id = principal_id(&support).await;
    let account_stream = format!("/v1/stream?account_id={}", acme.account_id);
    let mut stream = support.stream(&account_stream).await.expect("stream");
    let cookie = session_cookie(&gateway, support.token().expect("a token")).await;
    let mut cookie_stream = with_cookie(&gateway, &cookie, &account_stream).await;
    assert_eq!(cookie_stream.status(), 200);
    let mut admin_stream = acme.admin.stream("/v1/stream").await.expect("stream");

    let path = format!("{}/token", member_path(&id));
    let (status, rotated) = call(&acme.platform, Method::POST, &path, None).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["id"], id.as_str());
    assert_eq!(
        me_status(&support).await,
        401,
        "the old token died with the answer"
    );
    let me = with_cookie(&gateway, &cookie, "/v1/me").await;
    assert_eq!(me.status(), 401, "and the session signed in with it");
    assert!(stream_ended(&mut stream, WAIT).await, "its stream ended");
    assert!(tests::http_stream_ended(&mut cookie_stream, WAIT).await);
    assert!(!stream_ended(&mut admin_stream, Duration::from_millis(300)).await);
    let renewed = support.with_token(rotated["token"].as_str().expect("token"));
    assert_eq!(me_status(&renewed).await, 200);
    let assets = format!("/v1/assets?account_id={}", acme.account_id);
    let (status, _) = call(&renewed, Method::GET, &assets, None).await;
    assert_eq!(
        status, 200,
        "a rotation leaves the member's support access as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_support_member_is_out_and_its_support_access_ends() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let beta = Fleet::create(&gateway, "Beta").await;
    let (support, access) = acme.approved_support("14d").await;
    let id = principal_id(&support).await;
    let pending = request(&support, &beta).await;
    let account_stream = format!("/v1/stream?account_id={}", acme.account_id);
    let mut stream = support.stream(&account_stream).await.expect("stream");
    let cookie = session_cookie(&gateway, support.token().expect("a token")).await;

    let path = member_path(&id);
    let (status, disabled) = call(
        &acme.platform,
        Method::PATCH,
        &path,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(disabled["disabled"], true, "{disabled}");
    assert!(disabled["disabled_at"].as_str().is_some(), "{disabled}");
    assert_eq!(me_status(&support).await, 401);
    assert_eq!(with_cookie(&gateway, &cookie, "/v1/me").await.status(), 401);
    assert!(
        stream_ended(&mut stream, WAIT).await,
        "its stream ended with the answer"
    );
    let revoked = access_in(&acme, "archived", &access).await;
    assert_eq!(revoked["state"], "revoked", "{revoked}");
    let platform_id = principal_id(&acme.platform).await;
    assert_eq!(revoked["ended_by"], platform_id.as_str(), "{revoked}");
    let declined = access_in(&beta, "archived", &pending).await;
    assert_eq!(declined["state"], "declined", "{declined}");
    let audit = format!(
        "/v1/audit?account_id={}&action=support.revoke",
        acme.account_id
    );
    let (_, lines) = call(&acme.admin, Method::GET, &audit, None).await;
    assert!(
        lines.to_string().contains("staff member disabled"),
        "the audit says why: {lines}"
    );
    assert_eq!(listed(&acme.platform, &id).await["disabled"], true);

    let token = format!("{path}/token");
    let (status, _) = call(&acme.platform, Method::POST, &token, None).await;
    assert_eq!(status, 409, "a disabled member gets no token");
    let (status, enabled) = call(
        &acme.platform,
        Method::PATCH,
        &path,
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["disabled"], false);
    assert_eq!(
        me_status(&support).await,
        401,
        "enabling gives no token back"
    );
    let (_, rotated) = call(&acme.platform, Method::POST, &token, None).await;
    let back = support.with_token(rotated["token"].as_str().expect("token"));
    assert_eq!(me_status(&back).await, 200);
    let assets = format!("/v1/assets?account_id={}", acme.account_id);
    let (status, _) = call(&back, Method::GET, &assets, None).await;
    assert_eq!(status, 404, "the revoked access does not come back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_enabled_platform_admin_stays_and_a_deleted_member_is_gone() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let own = member_path(&principal_id(&acme.platform).await);
    let off = Some(json!({"disabled": true}));
    let (status, refused) = call(&acme.platform, Method::PATCH, &own, off.clone()).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("last enabled platform_admin")),
        "{refused}"
    );
    assert_eq!(
        call(&acme.platform, Method::DELETE, &own, None).await.0,
        409
    );
    let (second, second_id) = acme.staff("platform_admin").await;
    let second_path = member_path(&second_id);
    let (status, _) = call(&acme.platform, Method::PATCH, &second_path, off.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(
        call(&acme.platform, Method::DELETE, &own, None).await.0,
        409,
        "a disabled platform admin does not count"
    );
    assert_eq!(me_status(&second).await, 401);
    let (status, _) = call(&acme.platform, Method::DELETE, &second_path, None).await;
    assert_eq!(status, 204);
    assert_eq!(listed(&acme.platform, &second_id).await, Value::Null);
    assert_eq!(
        call(&acme.platform, Method::DELETE, &second_path, None)
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tech_support_members_cases_end_with_it() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let off = Some(json!({"disabled": true}));
    // A disabled tech support member cannot be named for a case.
    let (_, idle_id) = acme.staff("tech_support").await;
    let (status, _) = call(&acme.platform, Method::PATCH, &member_path(&idle_id), off).await;
    assert_eq!(status, 200);
    let body = json!({"account_id": acme.account_id.to_string(), "ticket_id": "T-0",
        "staff_id": idle_id});
    let (status, refused) = call(
        &acme.platform,
        Method::POST,
        "/v1/support-cases",
        Some(body),
    )
    .await;
    assert_eq!(
        (status, refused["field"].clone()),
        (422, json!("staff_id")),
        "{refused}"
    );

    // A tech support member's open case ends with the member.
    let (tech, tech_id) = acme.staff("tech_support").await;
    let body = json!({"account_id": acme.account_id.to_string(), "ticket_id": "T-1"});
    let (status, case) = call(&tech, Method::POST, "/v1/support-cases", Some(body)).await;
    assert_eq!(status, 201, "{case}");
    let case = case["id"].as_str().expect("id").to_owned();
    let account_stream = format!("/v1/stream?account_id={}", acme.account_id);
    let mut stream = tech.stream(&account_stream).await.expect("stream");
    let (status, _) = call(&acme.platform, Method::DELETE, &member_path(&tech_id), None).await;
    assert_eq!(status, 204);
    assert_eq!(me_status(&tech).await, 401);
    assert!(stream_ended(&mut stream, WAIT).await);
    assert_eq!(
        access_in(&acme, "archived", &case).await["state"],
        "revoked"
    );
    assert_eq!(listed(&acme.platform, &tech_id).await, Value::Null);
}
