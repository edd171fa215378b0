//! Support access end to end (rule 4): a support staff member acts as the account's admin
//! while approved, and is refused the instant after revoke and after expiry; tech support
//! cases grant access at once; and every refusal of the state machine.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use simulator::api::UserRole;
use simulator::ApiClient;
use storage::Rule;
use tests::{call, eventually, Fleet, TestGateway};

async fn staff(fleet: &Fleet, role: &str) -> ApiClient {
    let (status, created) = call(
        &fleet.platform,
        Method::POST,
        "/v1/staff",
        Some(json!({"name": role, "role": role})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    fleet
        .platform
        .with_token(created["token"].as_str().expect("token"))
}

async fn request(support: &ApiClient, fleet: &Fleet, duration: &str) -> String {
    let body = json!({"account_id": fleet.account_id.to_string(), "purpose": "investigate unit1 dropouts", "duration": duration});
    let (status, created) = call(
        support,
        Method::POST,
        "/v1/support-access/requests",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["state"], "pending");
    created["id"].as_str().expect("id").to_owned()
}

/// Creating an asset in the account: something only its admin (or fleet admin) may do.
async fn act_as_admin(client: &ApiClient, fleet: &Fleet, asset: &str) -> u16 {
    let path = format!("/v1/assets?account_id={}", fleet.account_id);
    call(
        client,
        Method::POST,
        &path,
        Some(json!({"id": asset, "name": "by support"})),
    )
    .await
    .0
}

async fn list(fleet: &Fleet, state: &str) -> Vec<Value> {
    let path = format!(
        "/v1/accounts/{}/support-access?state={state}",
        fleet.account_id
    );
    let (status, body) = call(&fleet.admin, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_acts_as_admin_while_approved_and_not_an_instant_after_revoke() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    let other = Fleet::create(&gateway, "Other").await;
    let support = staff(&acme, "support").await;
    assert_eq!(
        act_as_admin(&support, &acme, "s0").await,
        404,
        "no rights before approval"
    );

    let id = request(&support, &acme, "14d").await;
    let pending = list(&acme, "pending").await;
    assert_eq!(pending.len(), 1);
    // The console's "who": the staff member by name, not only by id.
    assert_eq!(pending[0]["staff_name"], "support", "{pending:?}");
    assert_eq!(
        act_as_admin(&support, &acme, "s1").await,
        404,
        "a pending request gives nothing"
    );
    let (status, approved) = call(
        &acme.admin,
        Method::POST,
        &format!("/v1/support-access/requests/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["state"], "active");
    assert!(approved["ends_at"].as_str().is_some());
    assert_eq!(list(&acme, "active").await.len(), 1);
    assert!(list(&acme, "pending").await.is_empty());

    assert_eq!(
        act_as_admin(&support, &acme, "s2").await,
        201,
        "admin rights in that account"
    );
    assert_eq!(
        act_as_admin(&support, &depot, "s3").await,
        201,
        "and its sub-accounts, as an admin's"
    );
    assert_eq!(
        act_as_admin(&support, &other, "s4").await,
        404,
        "never elsewhere"
    );
    let (_, audit) = call(&acme.admin, Method::GET, "/v1/audit", None).await;
    let entry = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["action"] == "asset.create" && e["target"] == "s2")
        .cloned()
        .expect("the support action is audited");
    assert_eq!(entry["via"], format!("request {id}"));

    let (status, revoked) = call(
        &acme.admin,
        Method::POST,
        &format!("/v1/support-access/requests/{id}/revoke"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(
        act_as_admin(&support, &acme, "s5").await,
        404,
        "refused the very next request"
    );
    let archived = list(&acme, "archived").await;
    assert_eq!(archived.len(), 1);
    assert_eq!(archived[0]["state"], "revoked");
    assert!(
        archived[0]["ended_by"].as_str().is_some() && archived[0]["ended_at"].as_str().is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_expires_at_approval_plus_duration() {
    let gateway = TestGateway::start_with_manual_clock();
    let acme = Fleet::create(&gateway, "Acme").await;
    let support = staff(&acme, "support").await;
    let id = request(&support, &acme, "24h").await;
    let (status, _) = call(
        &acme.admin,
        Method::POST,
        &format!("/v1/support-access/requests/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    gateway.advance(Duration::from_secs(24 * 3600 - 1));
    assert_eq!(
        act_as_admin(&support, &acme, "s1").await,
        201,
        "a second before the end"
    );
    gateway.advance(Duration::from_secs(1));
    assert_eq!(
        act_as_admin(&support, &acme, "s2").await,
        404,
        "refused at the instant it ends"
    );
    let archived = eventually(|| async {
        let archived = list(&acme, "archived").await;
        (archived.len() == 1).then_some(archived)
    })
    .await
    .expect("the scheduler archives the expiry");
    assert_eq!(archived[0]["state"], "expired");
    assert_eq!(archived[0]["ended_by"], "scheduler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_support_case_grants_tech_support_at_once_until_it_closes() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let tech = staff(&acme, "tech_support").await;
    let support = staff(&acme, "support").await;
    let body = json!({"account_id": acme.account_id.to_string(), "ticket_id": "TCK-4711"});
    let (status, _) = call(
        &support,
        Method::POST,
        "/v1/support-cases",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 403, "support staff do not open cases");
    let (status, case) = call(&tech, Method::POST, "/v1/support-cases", Some(body)).await;
    assert_eq!(status, 201, "{case}");
    assert_eq!(case["state"], "active");
    assert_eq!(case["ticket_id"], "TCK-4711");
    assert_eq!(case["staff_role"], "tech_support");
    let active = list(&acme, "active").await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["ticket_id"], "TCK-4711");
    assert_eq!(act_as_admin(&tech, &acme, "t1").await, 201);
    let (_, audit) = call(&acme.admin, Method::GET, "/v1/audit", None).await;
    assert!(audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|e| e["target"] == "t1" && e["via"] == "ticket TCK-4711"));

    let id = case["id"].as_str().expect("id");
    let (status, closed) = call(
        &tech,
        Method::POST,
        &format!("/v1/support-cases/{id}/close"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(act_as_admin(&tech, &acme, "t2").await, 404);
    assert_eq!(list(&acme, "archived").await[0]["state"], "closed");
    let (status, _) = call(
        &tech,
        Method::POST,
        &format!("/v1/support-cases/{id}/close"),
        None,
    )
    .await;
    assert_eq!(status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_of_the_state_machine() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let other = Fleet::create(&gateway, "Other").await;
    let support = staff(&acme, "support").await;
    let tech = staff(&acme, "tech_support").await;
    let account = acme.account_id.to_string();

    for (body, field) in [
        (
            json!({"account_id": account, "purpose": "x", "duration": "1y"}),
            "duration",
        ),
        (
            json!({"account_id": account, "purpose": "  ", "duration": "24h"}),
            "purpose",
        ),
        (
            json!({"account_id": account, "purpose": "p".repeat(501), "duration": "24h"}),
            "purpose",
        ),
    ] {
        let (status, problem) = call(
            &support,
            Method::POST,
            "/v1/support-access/requests",
            Some(body),
        )
        .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], field);
    }
    let body = json!({"account_id": account, "purpose": "x", "duration": "24h"});
    assert_eq!(
        call(
            &tech,
            Method::POST,
            "/v1/support-access/requests",
            Some(body.clone())
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &acme.admin,
            Method::POST,
            "/v1/support-access/requests",
            Some(body)
        )
        .await
        .0,
        403
    );

    let id = request(&support, &acme, "24h").await;
    let approve = format!("/v1/support-access/requests/{id}/approve");
    let fleet_admin = acme.user(UserRole::FleetAdmin).await;
    let viewer = acme.user(UserRole::Viewer).await;
    assert_eq!(
        call(&fleet_admin, Method::POST, &approve, None).await.0,
        403
    );
    assert_eq!(call(&viewer, Method::POST, &approve, None).await.0, 403);
    assert_eq!(
        call(&other.admin, Method::POST, &approve, None).await.0,
        404
    );
    assert_eq!(
        call(&support, Method::POST, &approve, None).await.0,
        403,
        "staff never approve, even their own"
    );
    assert_eq!(
        call(&acme.platform, Method::POST, &approve, None).await.0,
        403
    );
    assert_eq!(
        call(
            &acme.admin,
            Method::POST,
            &format!("/v1/support-access/requests/{id}/revoke"),
            None
        )
        .await
        .0,
        409,
        "a pending request cannot be revoked"
    );
    assert_eq!(
        call(
            &acme.admin,
            Method::POST,
            &format!("/v1/support-access/requests/{id}/decline"),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(&acme.admin, Method::POST, &approve, None).await.0,
        409,
        "a declined request cannot be approved"
    );
    let archived = list(&acme, "archived").await;
    assert_eq!(archived[0]["state"], "declined");
    assert!(archived[0]["decided_by"].as_str().is_some());

    // The lists: the account admin and staff read them; others do not.
    let path = format!("/v1/accounts/{account}/support-access?state=archived");
    assert_eq!(call(&support, Method::GET, &path, None).await.0, 200);
    assert_eq!(call(&viewer, Method::GET, &path, None).await.0, 403);
    assert_eq!(call(&other.admin, Method::GET, &path, None).await.0, 404);
    let bad_state = format!("/v1/accounts/{account}/support-access?state=all");
    assert_eq!(
        call(&acme.admin, Method::GET, &bad_state, None).await.0,
        422
    );
}

/// A staff member and their principal id.
async fn staff_with_id(fleet: &Fleet, role: &str) -> (ApiClient, String) {
    let body = json!({"name": format!("{role} two"), "role": role});
    let (status, created) = call(&fleet.platform, Method::POST, "/v1/staff", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let client = fleet
        .platform
        .with_token(created["token"].as_str().expect("token"));
    (client, created["id"].as_str().expect("id").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_access_creates_no_lasting_access() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let support = staff(&acme, "support").await;
    let id = request(&support, &acme, "14d").await;
    let path = format!("/v1/support-access/requests/{id}/approve");
    assert_eq!(call(&acme.admin, Method::POST, &path, None).await.0, 200);
    // The admin work it came for is allowed...
    assert_eq!(act_as_admin(&support, &acme, "s1").await, 201);
    // ...what would authenticate someone after the access ends is not.
    let users = format!("/v1/accounts/{}/users", acme.account_id);
    for role in ["admin", "viewer"] {
        let body = json!({"name": "helper", "role": role});
        let (status, problem) = call(&support, Method::POST, &users, Some(body)).await;
        assert_eq!(status, 403, "{problem}");
        let rule = Rule::NoLastingAccess { what: "a user" };
        assert!(tests::refused_by(&problem, &rule), "{problem}");
    }
    let certs = format!("/v1/accounts/{}/integration-certs", acme.account_id);
    let (status, problem) = call(&support, Method::POST, &certs, Some(json!({}))).await;
    assert_eq!(status, 403, "{problem}");
    let rule = Rule::NoLastingAccess {
        what: "an integration certificate",
    };
    assert!(tests::refused_by(&problem, &rule), "{problem}");
    assert_eq!(problem["detail"], rule.sentence());
    lasting_keys_and_shares_are_refused(&gateway, &acme, &support).await;
    // Nothing was half-made: the account still has its one user, and the audit holds no
    // user or certificate by support.
    let (_, audit) = call(&acme.admin, Method::GET, "/v1/audit", None).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "user.create").count(),
        1,
        "{actions:?}"
    );
    assert!(!actions.contains(&"integration_cert.issue"), "{actions:?}");
    // The account's own admin still may.
    let body = json!({"name": "helper", "role": "viewer"});
    assert_eq!(
        call(&acme.admin, Method::POST, &users, Some(body)).await.0,
        201
    );
}

/// Under support access: a key (its PIN or secret would open the machine after the
/// access ends), a key made to last longer, and a tenant share (a feed into another account
/// for good) are refused; shortening a key, which ends access sooner, is not.
async fn lasting_keys_and_shares_are_refused(
    gateway: &TestGateway,
    acme: &Fleet,
    support: &ApiClient,
) {
    acme.unit_with_asset("u1", "ex1").await;
    let depot = acme.child(gateway, "Depot").await;
    let now = gateway.now_ms();
    let at = |ms: u64| simulator::telemetry::rfc3339_from_ms(ms).expect("time");
    let keys = format!("/v1/keys?account_id={}", acme.account_id);
    let key = json!({"personal": false, "asset_ids": ["ex1"], "access_type": "keypad_pin",
        "valid_from": at(now), "valid_to": at(now + 86_400_000)});
    let (status, problem) = call(support, Method::POST, &keys, Some(key.clone())).await;
    assert_eq!(status, 403, "{problem}");
    let rule = Rule::NoLastingAccess { what: "a key" };
    assert!(tests::refused_by(&problem, &rule), "{problem}");

    let (status, made) = call(&acme.admin, Method::POST, "/v1/keys", Some(key)).await;
    assert_eq!(status, 201, "{made}");
    let path = format!("/v1/keys/{}", made["key"]["id"].as_str().expect("id"));
    let longer = json!({"valid_to": at(now + 10 * 86_400_000)});
    let (status, problem) = call(support, Method::PATCH, &path, Some(longer)).await;
    assert_eq!(status, 403, "{problem}");
    let rule = Rule::NoLastingAccess {
        what: "a longer key",
    };
    assert!(tests::refused_by(&problem, &rule), "{problem}");
    let shorter = json!({"valid_to": at(now + 3_600_000)});
    let (status, body) = call(support, Method::PATCH, &path, Some(shorter)).await;
    assert_eq!(status, 200, "{body}");

    let share = format!(
        "/v1/assets/ex1/sharing/telemetry/targets?account_id={}",
        acme.account_id
    );
    let target =
        json!({"target_account_id": depot.account_id.to_string(), "target_asset_id": "m1"});
    let (status, problem) = call(support, Method::POST, &share, Some(target)).await;
    assert_eq!(status, 403, "{problem}");
    let rule = Rule::NoLastingAccess {
        what: "a tenant share",
    };
    assert!(tests::refused_by(&problem, &rule), "{problem}");
    let (_, mirror) = call(&depot.admin, Method::GET, "/v1/assets/m1", None).await;
    assert_eq!(mirror["status"], 404, "no mirror was made: {mirror}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_gives_access_to_tech_support_only() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let (tech, tech_id) = staff_with_id(&acme, "tech_support").await;
    let (_, support_id) = staff_with_id(&acme, "support").await;
    let account = acme.account_id.to_string();
    let open = |body: Value| {
        let platform = acme.platform.clone();
        async move { call(&platform, Method::POST, "/v1/support-cases", Some(body)).await }
    };
    // A platform_admin names who the case is for, and it must be tech support.
    let (status, problem) = open(json!({"account_id": account, "ticket_id": "T-1"})).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("staff_id"),
        "{problem}"
    );
    let body = json!({"account_id": account, "ticket_id": "T-2", "staff_id": support_id});
    assert_eq!(open(body).await.0, 422, "support staff get no case access");
    let body = json!({"account_id": account, "ticket_id": "T-3", "staff_id": tech_id});
    let (status, case) = open(body).await;
    assert_eq!(status, 201, "{case}");
    assert_eq!(case["staff_id"], tech_id.as_str());
    assert_eq!(
        act_as_admin(&tech, &acme, "t1").await,
        201,
        "the named tech acts"
    );
    assert_eq!(
        act_as_admin(&acme.platform, &acme, "p1").await,
        404,
        "the platform_admin who opened it got nothing"
    );
    // Tech support opens cases for themselves only.
    let (other_tech, _) = staff_with_id(&acme, "tech_support").await;
    let body = json!({"account_id": account, "ticket_id": "T-4", "staff_id": tech_id});
    let (status, _) = call(&other_tech, Method::POST, "/v1/support-cases", Some(body)).await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organizations_case_is_not_found() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let other = Fleet::create(&gateway, "Other").await;
    let tech = staff(&acme, "tech_support").await;
    let body = json!({"account_id": acme.account_id.to_string(), "ticket_id": "TCK-1"});
    let (status, case) = call(&tech, Method::POST, "/v1/support-cases", Some(body)).await;
    assert_eq!(status, 201, "{case}");
    let close = format!(
        "/v1/support-cases/{}/close",
        case["id"].as_str().expect("id")
    );
    let (status, _) = call(&other.admin, Method::POST, &close, None).await;
    assert_eq!(
        status, 404,
        "another organization learns nothing of the case"
    );
    let (status, _) = call(
        &other.admin,
        Method::POST,
        "/v1/support-cases/case_nope/close",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, problem) = call(&acme.admin, Method::POST, &close, None).await;
    assert_eq!(
        status, 403,
        "the account's own admin sees it but does not close it: {problem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_account_lists_inherited_access_and_is_told_where_it_is_decided() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    let support = staff(&acme, "support").await;
    let id = request(&support, &acme, "14d").await;
    let pending = list(&depot, "pending").await;
    assert_eq!(pending.len(), 1, "the sub-account sees the pending request");
    assert_eq!(pending[0]["inherited"], true);
    assert_eq!(pending[0]["account_id"], acme.account_id.to_string());
    let approve = format!("/v1/support-access/requests/{id}/approve");
    let (status, problem) = call(&depot.admin, Method::POST, &approve, None).await;
    assert_eq!(status, 403, "{problem}");
    let rule = Rule::SupportDecidedWhereApproved {
        account_id: storage::AccountId::parse(&acme.account_id.to_string()).expect("id"),
    };
    assert!(tests::refused_by(&problem, &rule), "{problem}");
    assert_eq!(problem["detail"], rule.sentence());
    assert_eq!(call(&acme.admin, Method::POST, &approve, None).await.0, 200);
    let active = list(&depot, "active").await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["inherited"], true);
    assert_eq!(list(&acme, "active").await[0]["inherited"], false);
    // Every account under Acme is covered; another organization lists nothing.
    let yard = acme.child(&gateway, "Yard").await;
    assert_eq!(
        list(&yard, "active").await.len(),
        1,
        "a sibling under Acme is covered too"
    );
    let other = Fleet::create(&gateway, "Other").await;
    assert!(list(&other, "active").await.is_empty());
}

/// The ids of a list answer's items.
fn ids(listed: &Value) -> Vec<String> {
    listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect()
}

/// `GET /v1/staff`: staff read the staff list, filtered by role and paged; a user is
/// refused by the staff-only rule, and an unknown role is a 422 naming `role`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_read_the_staff_list_by_role() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let (support, support_id) = fleet.staff("support").await;
    let (_, tech_id) = fleet.staff("tech_support").await;
    let (_, other_tech) = fleet.staff("tech_support").await;

    let (status, listed) = call(&support, Method::GET, "/v1/staff", None).await;
    assert_eq!(status, 200, "{listed}");
    let all = ids(&listed);
    assert_eq!(all.len(), 4, "the bootstrap admin and three: {listed}");
    assert!(all.contains(&support_id));
    let (_, techs) = call(
        &fleet.platform,
        Method::GET,
        "/v1/staff?role=tech_support",
        None,
    )
    .await;
    let mut expected = vec![tech_id.clone(), other_tech.clone()];
    expected.sort();
    assert_eq!(ids(&techs), expected);
    assert_eq!(techs["items"][0]["role"], "tech_support");
    let (_, first) = call(&support, Method::GET, "/v1/staff?limit=3", None).await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let path = format!("/v1/staff?limit=3&cursor={cursor}");
    let (_, rest) = call(&support, Method::GET, &path, None).await;
    assert_eq!(
        [ids(&first), ids(&rest)].concat(),
        all,
        "pages follow each other"
    );

    let (status, refused) = call(&fleet.admin, Method::GET, "/v1/staff", None).await;
    assert_eq!(status, 403);
    assert!(tests::refused_by(
        &refused,
        &Rule::StaffOnly {
            action: "list staff"
        }
    ));
    let (status, bad) = call(&support, Method::GET, "/v1/staff?role=boss", None).await;
    assert_eq!((status, bad["field"].as_str()), (422, Some("role")));
}

/// `GET /v1/support-access/mine`: a staff member's own access in every account, one list,
/// filtered by state; nobody else's; a user is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_member_reads_its_own_access_across_accounts() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let northwind = Fleet::create(&gateway, "Northwind").await;
    let (support, _) = acme.staff("support").await;
    let (other, _) = acme.staff("support").await;
    let in_acme = request(&support, &acme, "24h").await;
    let in_northwind = request(&support, &northwind, "14d").await;
    let _not_mine = request(&other, &acme, "24h").await;
    let approve = format!("/v1/support-access/requests/{in_acme}/approve");
    assert_eq!(call(&acme.admin, Method::POST, &approve, None).await.0, 200);

    let (status, mine) = call(&support, Method::GET, "/v1/support-access/mine", None).await;
    assert_eq!(status, 200, "{mine}");
    let mut expected = vec![in_acme.clone(), in_northwind.clone()];
    expected.sort();
    assert_eq!(ids(&mine), expected);
    let (_, active) = call(
        &support,
        Method::GET,
        "/v1/support-access/mine?state=active",
        None,
    )
    .await;
    assert_eq!(ids(&active), [in_acme]);
    assert_eq!(
        active["items"][0]["account_id"],
        acme.account_id.to_string()
    );
    assert_eq!(active["items"][0]["staff_name"], "support staff");
    let (_, pending) = call(
        &support,
        Method::GET,
        "/v1/support-access/mine?state=pending&limit=1",
        None,
    )
    .await;
    assert_eq!(ids(&pending), [in_northwind]);
    let (status, bad) = call(
        &support,
        Method::GET,
        "/v1/support-access/mine?state=expired",
        None,
    )
    .await;
    assert_eq!((status, bad["field"].as_str()), (422, Some("state")));
    let (status, _) = call(&acme.admin, Method::GET, "/v1/support-access/mine", None).await;
    assert_eq!(status, 403, "a user holds no support access");
}

/// A sub-account made under support access is in the parent's audit log, with the access it
/// was made under: the parent's admins may never open the new account's own log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_account_made_under_support_access_is_in_the_parents_log() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let support = staff(&acme, "support").await;
    let id = request(&support, &acme, "24h").await;
    let approve = format!("/v1/support-access/requests/{id}/approve");
    assert_eq!(call(&acme.admin, Method::POST, &approve, None).await.0, 200);
    let body = json!({"name": "Depot", "parent_id": acme.account_id.to_string()});
    let (status, made) = call(&support, Method::POST, "/v1/accounts", Some(body)).await;
    assert_eq!(status, 201, "{made}");
    let child = made["id"].as_str().expect("id");
    let (_, audit) = call(&acme.admin, Method::GET, "/v1/audit?action=account", None).await;
    let line = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|entry| entry["target"] == child)
        .cloned()
        .unwrap_or_default();
    assert_eq!(line["action"], "account.create", "{audit}");
    assert!(
        line["after"].as_str().unwrap_or_default().contains("Depot"),
        "{line}"
    );
    assert!(
        line["via"].as_str().unwrap_or_default().contains(&id),
        "{line}"
    );
}
