//! An account's customers and the keys that name them (rule 6: after creation a key's
//! `valid_to`, description and customer change, nothing else): names unique per account,
//! a key names only a customer of its own account, the key list filters by customer, a
//! customer that keys name is not deleted, and each change is audited.

use reqwest::Method;
use serde_json::{json, Value};
use tests::{call, Fleet, TestGateway};

fn rfc3339(ms: u64) -> String {
    simulator::telemetry::rfc3339_from_ms(ms).expect("time")
}

async fn customer(fleet: &Fleet, name: &str) -> String {
    let body = json!({"name": name});
    let (status, created) = call(&fleet.admin, Method::POST, "/v1/customers", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], name);
    created["id"].as_str().expect("id").to_owned()
}

async fn key(fleet: &Fleet, gateway: &TestGateway, customer: Option<&str>) -> (u16, Value) {
    let now = gateway.now_ms();
    let body = json!({"personal": false, "asset_ids": ["ex1"], "access_type": "digital_key",
        "valid_from": rfc3339(now), "valid_to": rfc3339(now + 3_600_000),
        "customer_id": customer});
    call(&fleet.admin, Method::POST, "/v1/keys", Some(body)).await
}

fn ids(list: &Value) -> Vec<&str> {
    let items = list["items"].as_array().expect("items");
    items
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_names_its_customer_and_the_customer_may_change_later() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let rental = customer(&fleet, "Nordic Rentals").await;
    let builder = customer(&fleet, "Bygg AS").await;

    let (status, created) = key(&fleet, &gateway, Some(&rental)).await;
    assert_eq!(status, 201, "{created}");
    let key_id = created["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["key"]["customer_id"], rental.as_str());
    let (_, plain) = key(&fleet, &gateway, None).await;
    let plain_id = plain["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(plain["key"]["customer_id"], Value::Null);

    // The list filters by customer.
    let path = format!("/v1/keys?customer_id={rental}");
    let (_, listed) = call(&fleet.admin, Method::GET, &path, None).await;
    assert_eq!(ids(&listed), [key_id.as_str()]);

    // The customer changes after creation, and `null` takes it away; the change is audited.
    let path = format!("/v1/keys/{key_id}");
    let (status, patched) = call(
        &fleet.admin,
        Method::PATCH,
        &path,
        Some(json!({"customer_id": builder})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["key"]["customer_id"], builder.as_str());
    let (_, listed) = call(
        &fleet.admin,
        Method::GET,
        &format!("/v1/keys?customer_id={builder}"),
        None,
    )
    .await;
    assert_eq!(ids(&listed), [key_id.as_str()]);
    let bulk = json!({"ids": [key_id, plain_id], "customer_id": null});
    let (status, edited) = call(&fleet.admin, Method::POST, "/v1/keys/bulk-edit", Some(bulk)).await;
    assert_eq!(status, 200, "{edited}");
    for item in edited["items"].as_array().unwrap() {
        assert_eq!(item["customer_id"], Value::Null);
    }
    let (_, audit) = call(
        &fleet.admin,
        Method::GET,
        "/v1/audit?action=key.update",
        None,
    )
    .await;
    let notes = audit["items"].to_string();
    assert!(
        notes.contains(&format!("customer {builder}")),
        "the audit names the customer before and after: {notes}"
    );
    assert!(
        notes.contains("no customer") && !notes.contains("Some(") && !notes.contains("None"),
        "the audit says what changed in words, not in Rust's debug text: {notes}"
    );

    // A description-less, window-less, customer-less edit still changes nothing.
    let (status, refused) = call(&fleet.admin, Method::PATCH, &path, Some(json!({}))).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("customer_id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_refuse_what_would_confuse_a_picker_or_orphan_a_key() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let other = Fleet::create(&gateway, "Other").await;
    let rental = customer(&fleet, "Nordic Rentals").await;
    let foreign = customer(&other, "Theirs").await;

    // A name is unique in its account, any case; another account may reuse it.
    let body = json!({"name": "nordic rentals"});
    let (status, _) = call(
        &fleet.admin,
        Method::POST,
        "/v1/customers",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = call(&other.admin, Method::POST, "/v1/customers", Some(body)).await;
    assert_eq!(status, 201);
    let (status, empty) = call(
        &fleet.admin,
        Method::POST,
        "/v1/customers",
        Some(json!({"name": " "})),
    )
    .await;
    assert_eq!((status, empty["field"].clone()), (422, json!("name")));

    // A key names only a customer of its own account.
    let (status, refused) = key(&fleet, &gateway, Some(&foreign)).await;
    assert_eq!(
        (status, refused["field"].clone()),
        (422, json!("customer_id")),
        "{refused}"
    );
    let (status, refused) = key(&fleet, &gateway, Some("cus0000000000000000")).await;
    assert_eq!(status, 422, "{refused}");

    // A customer a key names stays until the key names another.
    let (_, created) = key(&fleet, &gateway, Some(&rental)).await;
    let key_id = created["key"]["id"].as_str().unwrap();
    let path = format!("/v1/customers/{rental}");
    let (status, conflict) = call(&fleet.admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 409);
    assert!(
        conflict["detail"].as_str().unwrap().contains(key_id),
        "{conflict}"
    );
    let (status, _) = call(
        &fleet.admin,
        Method::DELETE,
        &format!("/v1/keys/{key_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(&fleet.admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);

    // A stranger sees no customer of ours; the list searches by name.
    let (status, _) = call(
        &other.admin,
        Method::PATCH,
        &format!("/v1/customers/{foreign}x"),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 404);
    customer(&fleet, "Bygg AS").await;
    let (_, found) = call(&fleet.admin, Method::GET, "/v1/customers?q=BYGG", None).await;
    let names: Vec<_> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("Bygg AS")]);
}
