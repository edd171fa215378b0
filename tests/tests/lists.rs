//! Every list of the control API pages by cursor (design 5.1: `{items, next_cursor?}`,
//! `?cursor=&limit=`) and takes the filters the console needs: assets by `q` and relation,
//! operators by `q`, keys by operator, asset and state, grants by asset and account,
//! support access by state, audit entries by actor, action and time. A bad filter, limit or
//! cursor is a 422 naming its parameter: a list takes only the cursors it gave.

use reqwest::Method;
use serde_json::{json, Value};
use simulator::ApiClient;
use tests::{call, Fleet, TestGateway};

fn rfc3339(ms: u64) -> String {
    simulator::telemetry::rfc3339_from_ms(ms).expect("a valid time")
}

/// Every item of `path` read one page of one item at a time, by a field of each item.
async fn walk(client: &ApiClient, path: &str, field: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let join = if path.contains('?') { '&' } else { '?' };
    for _ in 0..50 {
        let (status, page) = call(
            client,
            Method::GET,
            &format!("{path}{join}limit=1{cursor}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{path}: {page}");
        // A list answer is `{items, next_cursor?}` and nothing else (design 5.1).
        let members: Vec<&String> = page.as_object().expect("an object").keys().collect();
        assert!(
            members.iter().all(|m| *m == "items" || *m == "next_cursor"),
            "{path}: {members:?}"
        );
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 1, "{path}: {page}");
        seen.extend(
            items
                .iter()
                .map(|item| item[field].as_str().unwrap_or_default().to_owned()),
        );
        let link = next_link(client, &format!("{path}{join}limit=1{cursor}")).await;
        match page["next_cursor"].as_str() {
            Some(next) => {
                cursor = format!("&cursor={}", urlencode(next));
                // The Link header names the same next page, the query kept (RFC 8288).
                let expected = format!("{path}{join}limit=1{cursor}");
                let link =
                    link.unwrap_or_else(|| panic!("{path}: a page with a next one has no Link"));
                assert_eq!(same_query(&link), same_query(&expected), "{path}");
            }
            None => {
                assert_eq!(link, None, "{path}: the last page has no next Link");
                return seen;
            }
        }
    }
    panic!("{path} does not end");
}

/// The target of the answer's `Link: <…>; rel="next"`, if any, relative to `/v1`.
async fn next_link(client: &ApiClient, path: &str) -> Option<String> {
    let url = client
        .base_url()
        .join(path.trim_start_matches('/'))
        .expect("url");
    let answer = reqwest::Client::new()
        .get(url)
        .bearer_auth(client.token().expect("a token"))
        .send()
        .await
        .expect("answer");
    let link = answer.headers().get(reqwest::header::LINK)?.to_str().ok()?;
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    let target = link.split(['<', '>']).nth(1)?;
    Some(target.trim_start_matches("/v1").to_owned())
}

/// A path and its query pairs, decoded and sorted: two spellings of one request compare
/// equal.
fn same_query(path: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let url = reqwest::Url::parse(&format!("http://x/?{query}")).expect("query");
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    pairs.sort();
    (path.trim_start_matches("/v1").to_owned(), pairs)
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The ids a filtered list answers in one page.
async fn ids(client: &ApiClient, path: &str, field: &str) -> Vec<String> {
    let (status, page) = call(client, Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {page}");
    let mut ids: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item[field].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn refused(client: &ApiClient, path: &str, field: &str) {
    let (status, problem) = call(client, Method::GET, path, None).await;
    assert_eq!(status, 422, "{path}: {problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(field),
        "{path}: {problem}"
    );
}

async fn post(client: &ApiClient, path: &str, body: Value) -> Value {
    let (status, answer) = call(client, Method::POST, path, Some(body)).await;
    assert!(status == 200 || status == 201, "{path}: {status} {answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_grants_and_accounts_page_and_filter() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    let _yard = owner.child(&gateway, "Yard").await;
    for (unit, asset) in [("unit1", "ex1"), ("unit2", "ex2"), ("unit3", "crane7")] {
        owner.unit_with_asset(unit, asset).await;
    }
    assert_eq!(
        walk(&owner.admin, "/v1/assets", "id").await,
        ["crane7", "ex1", "ex2"]
    );
    // `q` finds by id, name ("machine ex2") and in any case; relation narrows.
    assert_eq!(
        ids(&owner.admin, "/v1/assets?q=EX", "id").await,
        ["ex1", "ex2"]
    );
    assert_eq!(
        ids(&owner.admin, "/v1/assets?q=machine%20crane", "id").await,
        ["crane7"]
    );
    assert_eq!(
        ids(&owner.admin, "/v1/assets?q=nothing", "id").await,
        Vec::<String>::new()
    );
    refused(&owner.admin, "/v1/assets?relation=borrowed", "relation").await;
    let granted = owner.grant(&depot, &["ex1", "ex2"], json!({})).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    assert_eq!(
        ids(&depot.admin, "/v1/assets?relation=shared", "id").await,
        ["ex1", "ex2"]
    );
    assert_eq!(
        ids(&depot.admin, "/v1/assets?relation=owned", "id").await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&owner.admin, "/v1/assets?relation=owned&q=crane", "id").await,
        ["crane7"]
    );
    // Grants: one per asset, paged one at a time, filtered by asset.
    assert_eq!(
        walk(&owner.admin, "/v1/visibility/grants", "asset_id")
            .await
            .len(),
        2
    );
    assert_eq!(
        ids(
            &owner.admin,
            "/v1/visibility/grants?asset_id=ex2",
            "asset_id"
        )
        .await,
        ["ex2"]
    );
    refused(&owner.admin, "/v1/visibility/grants?limit=0", "limit").await;
    refused(&owner.admin, "/v1/visibility/grants?limit=1001", "limit").await;
    let children = format!("/v1/accounts/{}/children", owner.account_id);
    assert_eq!(
        walk(&owner.admin, &children, "name").await,
        sorted_by_id(&owner.admin, &children).await
    );
    let users = format!("/v1/accounts/{}/users", owner.account_id);
    assert_eq!(walk(&owner.admin, &users, "id").await.len(), 1);
    let certificates = format!("/v1/accounts/{}/certificates", owner.account_id);
    assert_eq!(walk(&owner.admin, &certificates, "serial").await.len(), 3);
}

/// The names of the children in id order, as one unpaged read shows them.
async fn sorted_by_id(client: &ApiClient, path: &str) -> Vec<String> {
    let (_, page) = call(client, Method::GET, path, None).await;
    let mut items: Vec<(String, String)> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            (
                item["id"].as_str().unwrap_or_default().into(),
                item["name"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    items.sort();
    assert_eq!(items.len(), 2);
    items.into_iter().map(|(_, name)| name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_operators_support_and_audit_filter() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    fleet.unit_with_asset("unit2", "ex2").await;
    let ann = post(
        &fleet.admin,
        "/v1/operators",
        json!({"name": "Ann Lee", "phone": "+47 912 34 567"}),
    )
    .await;
    post(&fleet.admin, "/v1/operators", json!({"name": "Bob Stone"})).await;
    assert_eq!(
        ids(&fleet.admin, "/v1/operators?q=ann", "name").await,
        ["Ann Lee"]
    );
    assert_eq!(
        ids(&fleet.admin, "/v1/operators?q=91234", "name").await,
        ["Ann Lee"]
    );
    assert_eq!(walk(&fleet.admin, "/v1/operators", "name").await.len(), 2);
    let ann_id = ann["id"].as_str().expect("operator id");
    let now = gateway.now_ms();
    let hour = 3_600_000;
    let key = |assets: &[&str], operator: Option<&str>, from: u64, to: u64| {
        json!({"personal": operator.is_some(), "operator_id": operator, "asset_ids": assets,
               "access_type": "digital_key", "valid_from": rfc3339(from), "valid_to": rfc3339(to)})
    };
    let active = post(
        &fleet.admin,
        "/v1/keys",
        key(&["ex1"], Some(ann_id), now - hour, now + hour),
    )
    .await;
    let future = post(
        &fleet.admin,
        "/v1/keys",
        key(&["ex1", "ex2"], None, now + hour, now + 2 * hour),
    )
    .await;
    let id_of = |answer: &Value| {
        answer["key"]["id"]
            .as_str()
            .map(str::to_owned)
            .expect("key id")
    };
    let (active, future) = (id_of(&active), id_of(&future));
    assert_eq!(
        ids(&fleet.admin, "/v1/keys?state=active", "id").await,
        [active.as_str()]
    );
    assert_eq!(
        ids(&fleet.admin, "/v1/keys?state=future", "id").await,
        [future.as_str()]
    );
    assert_eq!(
        ids(&fleet.admin, "/v1/keys?state=expired", "id").await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids(
            &fleet.admin,
            &format!("/v1/keys?operator_id={ann_id}"),
            "id"
        )
        .await,
        [active.as_str()]
    );
    assert_eq!(
        ids(&fleet.admin, "/v1/keys?asset_id=ex2", "id").await,
        [future.as_str()]
    );
    assert_eq!(walk(&fleet.admin, "/v1/keys", "id").await.len(), 2);
    refused(&fleet.admin, "/v1/keys?state=soon", "state").await;
    let support = format!(
        "/v1/accounts/{}/support-access?state=archived&limit=1",
        fleet.account_id
    );
    assert_eq!(
        ids(&fleet.admin, &support, "id").await,
        Vec::<String>::new()
    );
    // Audit: by action family and exact action, by actor, paged by cursor.
    let keys_made = ids(&fleet.admin, "/v1/audit?action=key", "action").await;
    assert_eq!(keys_made, ["key.create", "key.create"]);
    let made = ids(&fleet.admin, "/v1/audit?action=operator.create", "action").await;
    assert_eq!(made.len(), 2);
    refused(&fleet.admin, "/v1/audit?action=ke", "action").await;
    let everything = walk(&fleet.admin, "/v1/audit", "action").await;
    assert!(everything.len() >= 6, "{everything:?}");
    // Newest first, paged by the same cursors: the same entries the other way round.
    let mut newest = walk(&fleet.admin, "/v1/audit?order=newest", "action").await;
    newest.reverse();
    assert_eq!(newest, everything);
    refused(&fleet.admin, "/v1/audit?order=sideways", "order").await;
    let me = call(&fleet.admin, Method::GET, "/v1/me", None).await.1;
    let me = me["principal_id"].as_str().expect("id");
    let mine = walk(&fleet.admin, &format!("/v1/audit?actor={me}"), "actor").await;
    // The admin made the units, assets, operators and keys; the platform admin the account.
    assert!(mine.len() >= 8 && mine.len() < everything.len(), "{mine:?}");
    assert!(mine.iter().all(|actor| actor == me), "{mine:?}");
    assert_eq!(
        ids(&fleet.admin, "/v1/audit?actor=usr0000", "action").await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_targets_are_the_descendants_and_partners_by_name() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot North").await;
    let shed = depot.child(&gateway, "Shed").await;
    let partner = Fleet::create(&gateway, "Beta Rentals").await;
    let _stranger = Fleet::create(&gateway, "Gamma").await;
    let body = json!({"account_a": owner.account_id, "account_b": partner.account_id});
    let partnership = post(&owner.platform, "/v1/partnerships", body).await;
    assert_eq!(
        targets(&owner.admin, "/v1/share-targets").await,
        [
            (
                "Beta Rentals".into(),
                "partner".into(),
                partnership["id"].clone()
            ),
            ("Depot North".into(), "descendant".into(), Value::Null),
            ("Shed".into(), "descendant".into(), Value::Null),
        ]
    );
    assert_eq!(
        targets(&owner.admin, "/v1/share-targets?q=NORTH")
            .await
            .len(),
        1
    );
    assert_eq!(
        walk(&owner.admin, "/v1/share-targets", "name").await.len(),
        3
    );
    // Every target it offers takes a grant; a depot's own targets are below it only.
    owner.unit_with_asset("unit1", "ex1").await;
    for target in [&depot, &shed, &partner] {
        let granted = owner.grant(target, &["ex1"], json!({})).await;
        assert_eq!(granted.status, 201, "{granted:?}");
    }
    let (_, below) = call(&depot.admin, Method::GET, "/v1/share-targets", None).await;
    assert_eq!(below["items"].as_array().map(Vec::len), Some(1), "{below}");
    assert_eq!(
        below["items"][0]["account_id"],
        json!(shed.account_id.to_string())
    );
}

/// `(name, reach, partnership_id)` of each share target `path` answers, by name.
async fn targets(client: &ApiClient, path: &str) -> Vec<(String, String, Value)> {
    let (status, page) = call(client, Method::GET, path, None).await;
    assert_eq!(status, 200, "{page}");
    let mut items: Vec<(String, String, Value)> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| {
            let text = |field: &str| t[field].as_str().unwrap_or_default().to_owned();
            (text("name"), text("reach"), t["partnership_id"].clone())
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_list_shows_each_unit_with_its_status() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    fleet.unit_with_asset("unit2", "ex2").await;
    fleet.register("spare9").await;
    let unit = fleet.connect("unit1").await;
    unit.publish_point(&json!({"fuel_pct": 50}))
        .await
        .expect("acked");
    let (status, page) = call(&fleet.admin, Method::GET, "/v1/devices", None).await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().expect("items");
    let listed: Vec<&str> = items.iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(listed, ["spare9", "unit1", "unit2"]);
    assert_eq!(items[1]["asset_id"], "ex1");
    assert_eq!(items[0]["asset_id"], Value::Null);
    assert_eq!(
        (
            items[1]["status"]["online"].as_bool(),
            items[2]["status"]["online"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_eq!(items[1]["status"]["points"], 1);
    assert_eq!(
        ids(&fleet.admin, "/v1/devices?q=EX2", "id").await,
        ["unit2"]
    );
    assert_eq!(
        walk(&fleet.admin, "/v1/devices", "id").await,
        ["spare9", "unit1", "unit2"]
    );
    let (status, _) = call(&fleet.admin, Method::DELETE, "/v1/devices/spare9", None).await;
    assert_eq!(status, 204);
    assert_eq!(
        walk(&fleet.admin, "/v1/devices", "id").await,
        ["unit1", "unit2"]
    );
}

/// The `field` of a 422 answer to `path`, or a panic saying what came instead.
async fn refused_field(client: &ApiClient, path: &str) -> String {
    let (status, problem) = call(client, Method::GET, path, None).await;
    assert_eq!(status, 422, "{path}: {problem}");
    problem["field"].as_str().unwrap_or_default().to_owned()
}

/// The `next_cursor` of the first page of one item of `path`.
async fn first_cursor(client: &ApiClient, path: &str) -> String {
    let join = if path.contains('?') { '&' } else { '?' };
    let (status, page) = call(client, Method::GET, &format!("{path}{join}limit=1"), None).await;
    assert_eq!(status, 200, "{path}: {page}");
    page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned()
}

/// Design 5.1: a cursor is opaque, and each list takes only its own. A garbage cursor, an
/// asset id, a number (what the telemetry and audit cursors were) and a cursor another list
/// gave are each a 422 naming `cursor`, on every list; the list's own cursor still pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_refuses_a_cursor_it_did_not_give() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let _depot = fleet.child(&gateway, "Depot").await;
    let _yard = fleet.child(&gateway, "Yard").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    fleet.unit_with_asset("unit2", "ex2").await;
    let account = fleet.account_id.to_string();
    let assets_cursor = first_cursor(&fleet.admin, "/v1/assets").await;
    let devices_cursor = first_cursor(&fleet.admin, "/v1/devices").await;
    let as_admin = [
        "/v1/accounts".to_owned(),
        format!("/v1/accounts/{account}/children"),
        format!("/v1/accounts/{account}/users"),
        format!("/v1/accounts/{account}/certificates"),
        format!("/v1/accounts/{account}/support-access"),
        "/v1/partnerships".to_owned(),
        "/v1/devices".to_owned(),
        "/v1/assets".to_owned(),
        "/v1/assets/ex1/telemetry".to_owned(),
        "/v1/assets/ex1/access-events".to_owned(),
        "/v1/visibility/grants".to_owned(),
        "/v1/share-targets".to_owned(),
        "/v1/sharing-profiles".to_owned(),
        "/v1/operators".to_owned(),
        "/v1/customers".to_owned(),
        "/v1/keys".to_owned(),
        "/v1/audit".to_owned(),
    ];
    let as_staff = ["/v1/staff", "/v1/support-access/mine"];
    let lists = as_admin
        .iter()
        .map(|path| (&fleet.admin, path.as_str()))
        .chain(as_staff.iter().map(|path| (&fleet.platform, *path)));
    for (client, path) in lists {
        let foreign = match path {
            "/v1/assets" => devices_cursor.as_str(),
            _ => assets_cursor.as_str(),
        };
        for cursor in [
            foreign,
            "zzzz",
            "ex1",
            "1796077202664",
            "1796077202664:0",
            "c1",
        ] {
            let asked = format!("{path}?cursor={}", urlencode(cursor));
            assert_eq!(refused_field(client, &asked).await, "cursor", "{asked}");
        }
    }
    // Their own cursors still page: every asset and unit once.
    assert_eq!(walk(&fleet.admin, "/v1/assets", "id").await, ["ex1", "ex2"]);
    assert_eq!(
        walk(&fleet.admin, "/v1/devices", "id").await,
        ["unit1", "unit2"]
    );
    let children = format!("/v1/accounts/{account}/children");
    assert_eq!(walk(&fleet.admin, &children, "name").await.len(), 2);
    let newest = walk(&fleet.admin, "/v1/audit?order=newest", "action").await;
    assert!(newest.len() >= 4, "{newest:?}");
}

/// Design 5.1: a filter value outside its list of choices is a 422 naming the parameter,
/// and a filter the design lists as optional is optional.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_enumerated_filter_refuses_an_unknown_value() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let account = fleet.account_id.to_string();
    let support = format!("/v1/accounts/{account}/support-access");
    let as_admin = [
        ("/v1/audit?action=nope".to_owned(), "action"),
        ("/v1/audit?action=grant.nope".to_owned(), "action"),
        ("/v1/audit?action=gra".to_owned(), "action"),
        ("/v1/audit?order=up".to_owned(), "order"),
        ("/v1/assets?relation=borrowed".to_owned(), "relation"),
        ("/v1/keys?state=soon".to_owned(), "state"),
        (format!("{support}?state=closed"), "state"),
    ];
    for (path, field) in &as_admin {
        assert_eq!(refused_field(&fleet.admin, path).await, *field, "{path}");
    }
    for (path, field) in [
        ("/v1/staff?role=janitor", "role"),
        ("/v1/support-access/mine?state=closed", "state"),
    ] {
        assert_eq!(refused_field(&fleet.platform, path).await, field, "{path}");
    }
    // The choices themselves, and families of them, are taken.
    for path in [
        "/v1/audit?action=asset.create",
        "/v1/audit?action=asset",
        "/v1/audit?action=sharing.details",
    ] {
        let (status, page) = call(&fleet.admin, Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {page}");
    }
    assert_eq!(
        ids(&fleet.admin, "/v1/audit?action=asset.create", "action").await,
        ["asset.create"]
    );
    // Support access: `state` is optional; without it, every state.
    let (status, created) = call(
        &fleet.platform,
        Method::POST,
        "/v1/staff",
        Some(json!({"name": "Sam", "role": "support"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let staff = fleet
        .platform
        .with_token(created["token"].as_str().expect("token"));
    let body = json!({"account_id": account, "purpose": "check unit1", "duration": "24h"});
    let requested = post(&staff, "/v1/support-access/requests", body).await;
    let id = requested["id"].as_str().expect("id").to_owned();
    let body = json!({"account_id": account, "purpose": "check unit1 again", "duration": "24h"});
    let declined = post(&staff, "/v1/support-access/requests", body).await;
    let declined = declined["id"].as_str().expect("id").to_owned();
    post(
        &fleet.admin,
        &format!("/v1/support-access/requests/{declined}/decline"),
        json!({}),
    )
    .await;
    let mut every = vec![id.clone(), declined.clone()];
    every.sort();
    assert_eq!(ids(&fleet.admin, &support, "id").await, every);
    assert_eq!(
        ids(&fleet.admin, &format!("{support}?state=pending"), "id").await,
        [id]
    );
    assert_eq!(
        ids(&fleet.admin, &format!("{support}?state=archived"), "id").await,
        [declined]
    );
}

/// History pages link to the next one too, with the query (here `from`) kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_link_to_the_next_page_with_the_query_kept() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    acme.unit_with_asset("unit1", "ex1").await;
    let unit = acme.connect("unit1").await;
    let now = gateway.now_ms();
    for i in 0..3u64 {
        let point = json!({"ts": now - 3_000 + i * 1_000, "fuel_pct": i});
        unit.publish_point(&point).await.expect("acknowledged");
    }
    let path = "/v1/assets/ex1/telemetry?from=2000-01-01T00:00:00%2B01:00";
    let stamps = walk(&acme.admin, path, "ts").await;
    assert_eq!(stamps.len(), 3, "{stamps:?}");
}
