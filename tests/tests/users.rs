//! An account's users as its admin manages them: list, change a role, disable, enable,
//! delete, rotate a token. What a user holds (its token, its live streams) ends with it,
//! before the call answers; what it created stays with the account; an account keeps
//! one enabled admin; support access manages no credentials.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use simulator::api::UserRole;
use simulator::ApiClient;
use storage::Rule;
use tests::{call, stream_ended, Fleet, TestGateway};

const WAIT: Duration = Duration::from_secs(5);

/// A user of the fleet's account: its client and id.
async fn user(fleet: &Fleet, name: &str, role: UserRole) -> (ApiClient, String) {
    let created = fleet
        .admin
        .create_user(&fleet.account_id, name, role)
        .await
        .expect("user");
    (
        fleet.admin.with_token(created.token),
        created.id.to_string(),
    )
}

fn user_path(fleet: &Fleet, id: &str) -> String {
    format!("/v1/accounts/{}/users/{id}", fleet.account_id)
}

async fn me_status(client: &ApiClient) -> u16 {
    call(client, Method::GET, "/v1/me", None).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_listed_and_a_rotated_token_dies_at_once_with_its_streams() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let (viewer, viewer_id) = user(&acme, "Vera", UserRole::Viewer).await;
    let path = format!("/v1/accounts/{}/users", acme.account_id);
    let (status, listed) = call(&acme.admin, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{listed}");
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{listed}");
    let vera = items
        .iter()
        .find(|u| u["id"] == viewer_id.as_str())
        .expect("listed");
    assert_eq!(vera["role"], "viewer");
    assert_eq!(vera["disabled"], false);
    assert!(vera["created_at"].as_str().is_some());
    assert_eq!(
        call(&viewer, Method::GET, &path, None).await.0,
        403,
        "viewers do not list"
    );

    let mut old_stream = viewer.stream("/v1/stream").await.expect("stream");
    let mut admin_stream = acme.admin.stream("/v1/stream").await.expect("stream");
    let rotate = format!("{}/token", user_path(&acme, &viewer_id));
    let (status, rotated) = call(&acme.admin, Method::POST, &rotate, None).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(
        me_status(&viewer).await,
        401,
        "the old token died with the answer"
    );
    assert!(stream_ended(&mut old_stream, WAIT).await, "and its stream");
    assert!(!stream_ended(&mut admin_stream, Duration::from_millis(300)).await);
    let renewed = acme
        .admin
        .with_token(rotated["token"].as_str().expect("token"));
    assert_eq!(me_status(&renewed).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_user_is_out_until_enabled_and_given_a_token() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let (fleet_admin, id) = user(&acme, "Finn", UserRole::FleetAdmin).await;
    let mut stream = fleet_admin.stream("/v1/stream").await.expect("stream");
    let path = user_path(&acme, &id);
    let (status, disabled) = call(
        &acme.admin,
        Method::PATCH,
        &path,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(disabled["disabled"], true);
    assert_eq!(me_status(&fleet_admin).await, 401);
    assert!(stream_ended(&mut stream, WAIT).await);
    let rotate = format!("{path}/token");
    assert_eq!(call(&acme.admin, Method::POST, &rotate, None).await.0, 409);
    let (status, _) = call(
        &acme.admin,
        Method::PATCH,
        &path,
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        me_status(&fleet_admin).await,
        401,
        "enabling gives no token back"
    );
    let (_, rotated) = call(&acme.admin, Method::POST, &rotate, None).await;
    let back = acme
        .admin
        .with_token(rotated["token"].as_str().expect("token"));
    assert_eq!(me_status(&back).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_users_work_stays_with_the_account() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let (fleet_admin, id) = user(&acme, "Finn", UserRole::FleetAdmin).await;
    let body = json!({"id": "ex5", "name": "made by Finn"});
    assert_eq!(
        call(&fleet_admin, Method::POST, "/v1/assets", Some(body))
            .await
            .0,
        201
    );
    let path = user_path(&acme, &id);
    assert_eq!(call(&acme.admin, Method::DELETE, &path, None).await.0, 204);
    assert_eq!(me_status(&fleet_admin).await, 401);
    assert_eq!(call(&acme.admin, Method::DELETE, &path, None).await.0, 404);
    let (status, asset) = call(&acme.admin, Method::GET, "/v1/assets/ex5", None).await;
    assert_eq!(status, 200, "{asset}");
    let (_, audit) = call(&acme.admin, Method::GET, "/v1/audit", None).await;
    assert!(audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|e| e["action"] == "user.delete" && e["target"] == id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_keeps_one_enabled_admin_and_a_demoted_admin_loses_its_rights() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let (_, me) = acme.admin.get_raw("/v1/me").await.expect("me");
    let admin_id = me["principal_id"]
        .as_str()
        .expect("principal_id")
        .to_owned();
    let own = user_path(&acme, &admin_id);
    for (method, body) in [
        (Method::PATCH, Some(json!({"role": "viewer"}))),
        (Method::PATCH, Some(json!({"disabled": true}))),
        (Method::DELETE, None),
    ] {
        let (status, problem) = call(&acme.admin, method, &own, body).await;
        assert_eq!(status, 409, "the last admin stays: {problem}");
    }
    let (second, second_id) = user(&acme, "Ada", UserRole::Viewer).await;
    let promote = Some(json!({"role": "admin"}));
    let (status, _) = call(
        &acme.admin,
        Method::PATCH,
        &user_path(&acme, &second_id),
        promote,
    )
    .await;
    assert_eq!(status, 200);
    let (status, demoted) = call(
        &second,
        Method::PATCH,
        &own,
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(status, 200, "{demoted}");
    let users = format!("/v1/accounts/{}/users", acme.account_id);
    let body = Some(json!({"name": "more", "role": "viewer"}));
    let (status, _) = call(&acme.admin, Method::POST, &users, body).await;
    assert_eq!(status, 403, "a demoted admin administers nothing");
    let (status, _) = call(&acme.admin, Method::GET, "/v1/assets", None).await;
    assert_eq!(status, 200, "but still sees the fleet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_access_manages_no_credentials() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let (_, viewer_id) = user(&acme, "Vera", UserRole::Viewer).await;
    let (support, _) = acme.approved_support("24h").await;
    let path = user_path(&acme, &viewer_id);
    for (method, path, body) in [
        (Method::PATCH, path.clone(), Some(json!({"role": "admin"}))),
        (Method::POST, format!("{path}/token"), None),
        (Method::DELETE, path.clone(), None),
    ] {
        let (status, problem) = call(&support, method, &path, body).await;
        assert_eq!(status, 403, "{path}: {problem}");
        let rule = Rule::NoLastingAccess {
            what: "a user's role, state or token",
        };
        assert!(tests::refused_by(&problem, &rule), "{problem}");
    }
}

/// The users list says when each user's token was last used: absent until the first
/// request, then that request's instant, kept across a restart (the gateway stores what
/// it noted when it stops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_says_when_each_token_was_last_used_and_keeps_it_across_a_restart() {
    let mut gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let (viewer, id) = user(&acme, "Vera", UserRole::Viewer).await;
    let list = format!("/v1/accounts/{}/users", acme.account_id);
    let last_used = |body: &serde_json::Value| {
        body["items"]
            .as_array()
            .and_then(|items| items.iter().find(|item| item["id"] == id.as_str()))
            .map(|item| item["last_used_at"].clone())
            .expect("listed")
    };
    let (status, before) = call(&acme.admin, Method::GET, &list, None).await;
    assert_eq!(status, 200);
    assert!(last_used(&before).is_null(), "never used yet: {before}");

    assert_eq!(me_status(&viewer).await, 200);
    let (_, after) = call(&acme.admin, Method::GET, &list, None).await;
    let used = last_used(&after);
    assert!(used.as_str().is_some_and(|at| at.ends_with('Z')), "{after}");

    gateway.restart();
    let admin = acme.admin.rebase(&gateway.http_base());
    let (_, restarted) = call(&admin, Method::GET, &list, None).await;
    assert_eq!(
        last_used(&restarted),
        used,
        "stored at shutdown, read back after"
    );
}
