//! The console's management pages that close issue 16's last curl gaps, end to end in
//! headless Chromium against a real gateway (see `console.rs` for the harness): customers
//! (`#/customers`: list, add, rename, delete after a confirm; a new customer from the key
//! wizard), an operator edited (name, phone, access type), and a sharing profile deleted.
//! The refusals are the gateway's, in its words: a customer name the account has and a
//! customer keys still name (409), a phone that is no E.164 number (422 naming the field),
//! an edit of an operator deleted meanwhile (a stale form, 404), a profile a details share
//! still uses (409 naming the share); and a viewer is offered none of these pages.

use reqwest::Method;
use serde_json::{json, Value};
use tests::browser::Browser;
use tests::{call, Fleet, TestGateway};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// The names of `fleet`'s customers, as the JSON API lists them.
async fn customer_names(fleet: &Fleet) -> Vec<String> {
    let (status, body) = call(&fleet.admin, Method::GET, "/v1/customers", None).await;
    assert_eq!(status, 200, "{body}");
    let mut names: Vec<String> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

async fn post(fleet: &Fleet, path: &str, body: Value) -> Value {
    let (status, made) = call(&fleet.admin, Method::POST, path, Some(body)).await;
    assert_eq!(status, 201, "{made}");
    made
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_are_added_renamed_and_deleted_and_kept_while_keys_name_them() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    acme.unit_with_asset("unit1", "a1").await;
    let named = post(&acme, "/v1/customers", json!({"name": "Fjord Build"})).await;
    let now = OffsetDateTime::now_utc();
    let key = json!({"personal": false, "asset_ids": ["a1"], "access_type": "keypad_pin",
        "valid_from": now.format(&Rfc3339).expect("time"),
        "valid_to": (now + Duration::days(30)).format(&Rfc3339).expect("time"),
        "customer_id": named["id"]});
    let key = post(&acme, "/v1/keys", key).await;

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&acme.admin_token, true).await;
    browser.click("nav a[href='#/customers']").await;
    browser.text_of("#customers-table", "Fjord Build").await;
    browser.type_into("#customer-name", "Nordic Rentals").await;
    browser.click("#create-customer").await;
    browser
        .text_of(".notice", "Added customer Nordic Rentals.")
        .await;
    browser.text_of("#customers-table", "Nordic Rentals").await;
    // Names are unique in an account, any case: the gateway's 409 in its words.
    browser.type_into("#customer-name", "nordic rentals").await;
    browser.click("#create-customer").await;
    let refusal = browser
        .text_of("#customer-problems .problem", "already has customer")
        .await;
    assert!(refusal.contains("\"nordic rentals\""), "{refusal}");
    browser.shot("customers-01-list").await;

    // Rename, in the row.
    let (_, nordic) = call(&acme.admin, Method::GET, "/v1/customers?q=nordic", None).await;
    let nordic = format!(
        "#customers-table tr[data-id='{}']",
        nordic["items"][0]["id"].as_str().expect("id")
    );
    browser
        .click(&format!("{nordic} [data-test=rename-customer]"))
        .await;
    browser
        .type_into("#rename-customer-name", "Nordic Rentals AS")
        .await;
    browser.click("#rename-save").await;
    browser
        .text_of(
            ".notice",
            "Renamed customer Nordic Rentals to Nordic Rentals AS.",
        )
        .await;
    browser
        .text_of("#customers-table", "Nordic Rentals AS")
        .await;
    assert_eq!(
        customer_names(&acme).await,
        ["Fjord Build", "Nordic Rentals AS"]
    );

    // A customer a key names is kept: the confirm, then the gateway's 409 naming the key.
    let fjord = format!(
        "#customers-table tr[data-id='{}']",
        named["id"].as_str().expect("id")
    );
    browser
        .click(&format!("{fjord} [data-test=delete-customer]"))
        .await;
    browser
        .text_of("dialog", "Fjord Build will be deleted")
        .await;
    browser.click("dialog [data-test=confirm]").await;
    let refusal = browser
        .text_of("#customer-problems .problem", "is named by keys")
        .await;
    assert!(
        refusal.contains(key["key"]["id"].as_str().expect("key id")),
        "{refusal}"
    );
    browser.shot("customers-02-delete-refused").await;
    // The customer's keys, one click away.
    browser
        .click(&format!("{fjord} [data-test=customer-keys]"))
        .await;
    browser.text_of("#keys-table", "Fjord Build").await;
    browser.click("nav a[href='#/customers']").await;
    // One no key names goes, after the confirm.
    browser
        .click(&format!("{nordic} [data-test=delete-customer]"))
        .await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of(".notice", "Deleted customer Nordic Rentals AS.")
        .await;
    assert_eq!(customer_names(&acme).await, ["Fjord Build"]);

    // The key wizard adds a customer and picks it; "Manage customers" leads here.
    browser.click("nav a[href='#/keys']").await;
    browser.click("#new-key").await;
    browser.type_into("#key-customer-name", "fjord build").await;
    browser.click("#key-new-customer").await;
    browser
        .text_of("#key-wizard .problem", "already has customer")
        .await;
    browser
        .type_into("#key-customer-name", "Harbour Cranes")
        .await;
    browser.click("#key-new-customer").await;
    browser.text_of("#key-customer", "Harbour Cranes").await;
    let picked = browser
        .find("#key-customer")
        .await
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default();
    assert!(
        picked.starts_with("cus"),
        "the new customer is picked: {picked}"
    );
    browser.shot("customers-03-key-wizard-new-customer").await;
    browser.click("#manage-customers").await;
    browser.gone("#key-wizard").await;
    browser.text_of("#customers-table", "Harbour Cranes").await;
    assert_eq!(
        customer_names(&acme).await,
        ["Fjord Build", "Harbour Cranes"]
    );
    browser.quit().await;

    // A viewer is offered no customers page.
    let viewer = acme.user(simulator::api::UserRole::Viewer).await;
    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser
        .sign_in_with_token(viewer.token().expect("token"), true)
        .await;
    browser.find("nav a[href='#/assets']").await;
    assert_eq!(browser.count("nav a[href='#/customers']").await, 0);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_is_edited_with_the_gateways_refusals() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let body = json!({"name": "Ola Nordman", "phone": "+4791234567"});
    let ola = post(&acme, "/v1/operators", body).await;
    let ola_id = ola["id"].as_str().expect("id").to_owned();
    let body = json!({"name": "Kari Keys"});
    let kari = post(&acme, "/v1/operators", body).await;

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&acme.admin_token, true).await;
    browser.click("nav a[href='#/operators']").await;
    let ola_row = format!("#operators-table tr[data-id='{ola_id}']");
    browser
        .click(&format!("{ola_row} [data-test=edit-operator]"))
        .await;
    browser
        .type_into("#edit-operator-name", "Ola Nordmann")
        .await;
    browser.type_into("#edit-operator-phone", "91234567").await;
    browser.select("#edit-operator-access", "Keypad PIN").await;
    browser.click("#operator-save").await;
    let refusal = browser
        .text_of("#edit-operator-dialog .problem", "field: phone")
        .await;
    assert!(refusal.contains("E.164"), "{refusal}");
    browser.shot("operators-edit-01-phone-refused").await;
    browser
        .type_into("#edit-operator-phone", "+4798765432")
        .await;
    browser.click("#operator-save").await;
    browser
        .text_of(".notice", "Saved operator Ola Nordmann.")
        .await;
    browser.text_of(&ola_row, "+4798765432").await;
    browser.shot("operators-edit-02-saved").await;
    let (_, saved) = call(
        &acme.admin,
        Method::GET,
        &format!("/v1/operators/{ola_id}"),
        None,
    )
    .await;
    assert_eq!(saved["name"], "Ola Nordmann");
    assert_eq!(saved["phone"], "+4798765432");
    assert_eq!(saved["access_type"], "keypad_pin");

    // A stale form: the operator was deleted meanwhile; the gateway's 404 in words.
    let kari_id = kari["id"].as_str().expect("id");
    browser
        .click(&format!(
            "#operators-table tr[data-id='{kari_id}'] [data-test=edit-operator]"
        ))
        .await;
    let path = format!("/v1/operators/{kari_id}");
    assert_eq!(call(&acme.admin, Method::DELETE, &path, None).await.0, 204);
    browser
        .type_into("#edit-operator-name", "Kari Keyholder")
        .await;
    browser.click("#operator-save").await;
    browser
        .text_of("#edit-operator-dialog .problem", "not found")
        .await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_a_share_uses_is_kept_and_an_unused_one_deleted() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    post(
        &acme,
        "/v1/assets",
        json!({"id": "ex1", "name": "Excavator 1"}),
    )
    .await;
    let body = json!({"name": "Public", "fields": ["name", "serial"]});
    let public = post(&acme, "/v1/sharing-profiles", body).await;
    let body = json!({"name": "Unused", "fields": ["groups"]});
    let unused = post(&acme, "/v1/sharing-profiles", body).await;
    let share = json!({"target_account_id": depot.account_id.to_string(), "target_asset_id": "m1",
        "profile_id": public["id"]});
    let (status, shared) = call(
        &acme.admin,
        Method::PUT,
        "/v1/assets/ex1/sharing/details",
        Some(share),
    )
    .await;
    assert_eq!(status, 200, "{shared}");

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&acme.admin_token, true).await;
    browser.click("nav a[href='#/profiles']").await;
    let row = |profile: &Value| {
        format!(
            "#profiles-table tr[data-id='{}'] [data-test=delete-profile]",
            profile["id"].as_str().expect("id")
        )
    };
    browser.click(&row(&public)).await;
    browser
        .text_of("dialog", "Profile Public will be deleted")
        .await;
    browser.click("dialog [data-test=confirm]").await;
    let refusal = browser
        .text_of(
            "#profile-problems .problem",
            "is used by the details sharing",
        )
        .await;
    assert!(
        refusal.contains(&format!(
            "asset ex1 to asset m1 of account {}",
            depot.account_id
        )),
        "{refusal}"
    );
    browser.shot("profiles-delete-01-refused").await;
    browser.click(&row(&unused)).await;
    browser.click("dialog [data-test=confirm]").await;
    browser.text_of(".notice", "Deleted profile Unused.").await;
    browser.gone(&row(&unused)).await;
    let (_, listed) = call(&acme.admin, Method::GET, "/v1/sharing-profiles", None).await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["Public"]);
    browser.shot("profiles-delete-02-deleted").await;
    browser.quit().await;
}
