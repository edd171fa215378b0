//! The web console's flow 4, Access Management (rule 6), end to end in headless Chromium
//! against a real gateway (see `console.rs` for the harness): operators created (name
//! mandatory, phone with its country code, SMS invitation) then keys now or later, searched,
//! invited and deleted; the bulk upload of a CSV and an XLSX (templates downloaded, every
//! row shown with its errors, the picked rows imported, invitations sent to the picked);
//! and keys: the wizard with its review and which units have the key and which are pending,
//! the filters, an edit of end, description and customer, and a delete of many. Whatever
//! the browser changed is checked again through the JSON API. The refusals: the gateway's
//! 422 and 409 in its words, an import row error at its row and column, a stale edit (the
//! key deleted meanwhile), and a viewer who is offered none of it.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};
use tests::browser::Browser;
use tests::{call, Fleet, TestGateway};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

async fn operator(fleet: &Fleet, name: &str, phone: Option<&str>) -> String {
    let body = json!({"name": name, "phone": phone});
    let (status, created) = call(&fleet.admin, Method::POST, "/v1/operators", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_owned()
}

async fn operators(fleet: &Fleet) -> Vec<Value> {
    let (status, body) = call(&fleet.admin, Method::GET, "/v1/operators", None).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().expect("items").clone()
}

async fn keys(fleet: &Fleet) -> Vec<Value> {
    let (status, body) = call(&fleet.admin, Method::GET, "/v1/keys", None).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().expect("items").clone()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("format")
}

/// The 15th of `month` next year at midnight in the browser's zone (winter: +01:00), as a
/// person types it into a date field (en-US: month, day, year) and as the instant.
fn next_year(month: u8) -> (String, OffsetDateTime) {
    let year = OffsetDateTime::now_utc().year() + 1;
    let instant = OffsetDateTime::parse(&format!("{year}-{month:02}-15T00:00:00+01:00"), &Rfc3339)
        .expect("a time");
    (format!("{month:02}15{year}"), instant)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_are_created_invited_searched_and_deleted_with_the_gateways_refusals() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    acme.unit_with_asset("unit1", "a1").await;
    let kari = operator(&acme, "Kari Keys", Some("+4791234500")).await;
    let now = OffsetDateTime::now_utc();
    let key = json!({"personal": true, "operator_id": kari, "asset_ids": ["a1"], "access_type": "keypad_pin",
        "valid_from": rfc3339(now), "valid_to": rfc3339(now + time::Duration::days(30))});
    let (status, created) = call(&acme.admin, Method::POST, "/v1/keys", Some(key)).await;
    assert_eq!(status, 201, "{created}");

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&acme.admin_token, true).await;
    browser.click("nav a[href='#/operators']").await;
    browser.text_of("#operators-table", "Kari Keys").await;

    // Create: the name is mandatory; a phone the gateway refuses comes back in its words.
    browser.click("#create-operator").await;
    browser.click("#operator-create").await;
    browser
        .text_of("#operator-dialog .problem", "The name is mandatory.")
        .await;
    browser.type_into("#operator-name", "Ola Nordmann").await;
    browser.select("#operator-country", "Norway +47").await;
    browser.type_into("#operator-phone", "123").await;
    browser.click("#operator-invite").await;
    browser.click("#operator-create").await;
    let shown = browser
        .text_of("#operator-dialog .problem", "Not accepted as entered.")
        .await;
    assert!(
        shown.contains("\"+47123\" is not a valid E.164 number"),
        "{shown}"
    );
    assert!(shown.contains("(field: phone)"), "{shown}");
    browser.shot("flow4-01-operator-refused").await;
    browser.type_into("#operator-phone", "912 34 567").await;
    browser.click("#operator-create").await;
    browser
        .text_of(
            "#operator-created",
            "Ola Nordmann is created. An SMS invitation to +4791234567 is queued.",
        )
        .await;
    browser.shot("flow4-02-keys-now-or-later").await;
    browser.click("#keys-later").await;
    browser
        .text_of(".notice", "Created operator Ola Nordmann.")
        .await;
    browser.text_of("#operators-table", "+4791234567").await;
    let ola = operators(&acme)
        .await
        .into_iter()
        .find(|o| o["name"] == "Ola Nordmann")
        .expect("created");
    assert_eq!(ola["phone"], "+4791234567");
    assert!(ola["invitation"].is_object(), "{ola}");

    // Search, then an invitation sent to an operator who never had one.
    browser.type_into("#operator-search", "kari").await;
    browser.click("#search-operators").await;
    browser.gone("#operators-table tr:nth-child(2)").await;
    browser.text_of("#operators-table", "Kari Keys").await;
    browser.shot("flow4-03-operators").await;
    browser.click("#operators-table [data-test=resend]").await;
    browser
        .text_of(
            ".notice",
            "An SMS invitation to Kari Keys (+4791234500) is on its way.",
        )
        .await;
    let (_, shown_kari) = call(
        &acme.admin,
        Method::GET,
        &format!("/v1/operators/{kari}"),
        None,
    )
    .await;
    assert!(shown_kari["invitation"].is_object(), "{shown_kari}");

    // Kari still holds a personal key: the gateway refuses the delete (409), in its words.
    browser
        .click("#operators-table [data-test=delete-operator]")
        .await;
    browser.click("dialog [data-test=confirm]").await;
    let shown = browser
        .text_of(
            "#operator-problems .problem",
            "In conflict with the current state.",
        )
        .await;
    let (status, refusal) = call(
        &acme.admin,
        Method::DELETE,
        &format!("/v1/operators/{kari}"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{refusal}");
    assert!(
        shown.contains(refusal["detail"].as_str().expect("detail")),
        "{shown}"
    );
    browser.shot("flow4-04-delete-refused").await;

    // Ola has none: deleted after the confirm.
    browser.type_into("#operator-search", "ola").await;
    browser.click("#search-operators").await;
    browser
        .gone(&format!("#operators-table tr[data-id='{kari}']"))
        .await;
    browser
        .click("#operators-table [data-test=delete-operator]")
        .await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of(".notice", "Deleted operator Ola Nordmann.")
        .await;
    browser
        .text_of("#no-operators", "No operator matches.")
        .await;
    assert_eq!(operators(&acme).await.len(), 1);

    // "Assign keys now" opens the key wizard for the new operator.
    browser.click("#create-operator").await;
    browser.type_into("#operator-name", "Per Hansen").await;
    browser.click("#operator-create").await;
    browser.click("#keys-now").await;
    browser.find("#key-wizard #key-review").await;
    let picked = browser
        .find("#key-operator")
        .await
        .prop("value")
        .await
        .expect("value");
    let per = operators(&acme)
        .await
        .into_iter()
        .find(|o| o["name"] == "Per Hansen")
        .expect("created");
    assert_eq!(picked.as_deref(), per["id"].as_str());
    browser.click("#key-wizard #cancel").await;

    // An operator's Keys: the keys page filtered by that operator.
    browser.type_into("#operator-search", "kari").await;
    browser.click("#search-operators").await;
    browser.gone("#operators-table tr:nth-child(2)").await;
    browser
        .click("#operators-table [data-test=operator-keys]")
        .await;
    browser.text_of("#keys-table", "Kari Keys").await;
    let filtered = browser
        .find("#filter-operator")
        .await
        .prop("value")
        .await
        .expect("value");
    assert_eq!(filtered.as_deref(), Some(kari.as_str()));

    // A viewer is offered neither operators nor keys; typing the address shows the assets.
    let viewer = acme.user(simulator::api::UserRole::Viewer).await;
    browser.click("#sign-out").await;
    browser
        .sign_in_with_token(viewer.token().expect("token"), true)
        .await;
    browser.find("#assets-table").await;
    assert_eq!(browser.count("nav a[href='#/operators']").await, 0);
    assert_eq!(browser.count("nav a[href='#/keys']").await, 0);
    browser.open("#/operators").await;
    browser.find("#assets-table").await;
    assert_eq!(browser.count("#create-operator").await, 0);
    browser.quit().await;
}

/// The CSV the bulk upload test drops: two good rows, one with a bad phone, one left out.
const UPLOAD: &str = "name,phone,access_type,send_sms_invite\n\
                      Ann Berg,+4791234567,keypad_pin,no\n\
                      Bad Phone,+47 12,keypad_pin,no\n\
                      Cid Dahl,+4791234568,,yes\n\
                      Dag Lie,,,no\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_upload_shows_every_row_with_its_errors_and_imports_the_picked_rows() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let files = tempfile::tempdir().expect("dir");
    let csv = files.path().join("operators.csv");
    std::fs::write(&csv, UPLOAD).expect("write");
    let wrong = files.path().join("wrong.csv");
    std::fs::write(&wrong, "name,colour\nEve,red\n").expect("write");
    let http = reqwest::Client::new();
    let base = gateway.http_base();
    let template = http
        .get(format!("{base}/v1/operators/template.xlsx"))
        .bearer_auth(&acme.admin_token)
        .send()
        .await
        .expect("template");
    assert_eq!(template.status(), 200);
    let xlsx = files.path().join("operators-template.xlsx");
    std::fs::write(&xlsx, template.bytes().await.expect("body")).expect("write");

    let browser = Browser::start(&base).await;
    browser.open("").await;
    browser.sign_in_with_token(&acme.admin_token, true).await;
    browser.click("nav a[href='#/operators']").await;
    browser.click("#bulk-upload").await;

    // The templates are links the browser downloads with its session.
    for (link, starts) in [
        ("#template-csv", "name,phone,access_type,send_sms_invite"),
        ("#template-xlsx", "PK"),
    ] {
        let href = browser
            .find(link)
            .await
            .attr("href")
            .await
            .expect("href")
            .expect("a link");
        assert!(href.starts_with("/v1/operators/template."), "{href}");
        let fetched = browser
            .client
            .execute(
                "return fetch(arguments[0]).then(r => r.text()).then(t => t.slice(0, 60));",
                vec![json!(href)],
            )
            .await
            .expect("fetched");
        assert!(
            fetched.as_str().expect("text").starts_with(starts),
            "{fetched}"
        );
    }
    browser.shot("flow4-05-bulk-upload").await;

    // A wrong header refuses the file as a whole, at row 1 and the column.
    browser
        .find("#import-file")
        .await
        .send_keys(&wrong.display().to_string())
        .await
        .expect("file");
    browser
        .text_of("#file-errors", "Row 1, column colour: unknown column")
        .await;

    // Every row with its errors; the bad row cannot be picked; Dag is left out.
    browser
        .find("#import-file")
        .await
        .send_keys(&csv.display().to_string())
        .await
        .expect("file");
    browser
        .text_of("#import-summary", "4 rows; 1 with errors")
        .await;
    let bad = browser
        .text_of("#import-rows tr[data-row='3']", "Row 3, column phone:")
        .await;
    assert!(bad.contains("not a valid E.164 number"), "{bad}");
    assert_eq!(browser.count("#import-rows tr.has-errors").await, 1);
    let disabled = browser
        .find("#import-rows tr[data-row='3'] input")
        .await
        .prop("disabled")
        .await
        .expect("prop");
    assert_eq!(disabled.as_deref(), Some("true"));
    browser
        .text_of("#picked-count", "3 of 4 rows selected")
        .await;
    browser.click("#import-rows tr[data-row='5'] input").await;
    browser
        .text_of("#import-selected", "Import selected (2)")
        .await;
    browser.shot("flow4-06-rows-with-errors").await;
    browser.click("#import-selected").await;
    browser
        .text_of(".notice", "Imported 2 operators from operators.csv.")
        .await;
    let mut names: Vec<String> = operators(&acme)
        .await
        .iter()
        .map(|o| o["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["Ann Berg", "Cid Dahl"]);

    // Cid's row asked for an invitation (queued); Ann is picked for one now.
    browser
        .text_of("#send-invitations", "Send invitations to selected (1)")
        .await;
    browser.click("#send-invitations").await;
    browser.text_of(".notice", "Sent 1 SMS invitation.").await;
    browser.text_of("#imported", "queued now").await;
    browser.shot("flow4-07-invitations-sent").await;
    assert!(operators(&acme)
        .await
        .iter()
        .all(|o| o["invitation"].is_object()));

    // The XLSX template imports as it is.
    browser
        .find("#import-file")
        .await
        .send_keys(&xlsx.display().to_string())
        .await
        .expect("file");
    browser.text_of("#import-rows", "Jane Doe").await;
    browser.click("#import-selected").await;
    browser
        .text_of(
            ".notice",
            "Imported 1 operators from operators-template.xlsx.",
        )
        .await;
    assert_eq!(operators(&acme).await.len(), 3);

    // The API under it: a picked row with errors is refused at its row, nothing imported.
    let refused = http
        .post(format!("{base}/v1/operators/import?rows=2,3"))
        .bearer_auth(&acme.admin_token)
        .header("content-type", "text/csv")
        .body(UPLOAD)
        .send()
        .await
        .expect("import");
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.expect("problem");
    assert!(
        problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .all(|e| e["row"] == 3),
        "{problem}"
    );
    assert_eq!(operators(&acme).await.len(), 3);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_wizard_reviews_creates_and_says_which_units_have_the_key() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    acme.unit_with_asset("unit1", "a1").await;
    acme.unit_with_asset("unit2", "a2").await;
    let online = Arc::new(acme.connect("unit1").await);
    let _holder = simulator::KeyHolder::start(online)
        .await
        .expect("key holder");
    let ola = operator(&acme, "Ola Nordmann", Some("+4791234567")).await;
    // An operator whose access type is set: the wizard takes it as the key's default.
    let tag_user = json!({"name": "Tor Tag", "access_type": "dualid_tag"});
    let (status, created) = call(&acme.admin, Method::POST, "/v1/operators", Some(tag_user)).await;
    assert_eq!(status, 201, "{created}");
    let mut customers = Vec::new();
    for name in ["Nordic Rentals", "Fjord Build"] {
        let (status, created) = call(
            &acme.admin,
            Method::POST,
            "/v1/customers",
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        customers.push(created["id"].as_str().expect("id").to_owned());
    }
    let (january, january_at) = next_year(1);
    let (february, february_at) = next_year(2);

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&acme.admin_token, true).await;
    browser.click("nav a[href='#/keys']").await;
    browser.text_of("#no-keys", "No keys yet.").await;
    browser.click("#new-key").await;
    browser.select("#key-operator", "Tor Tag").await;
    browser
        .find("#key-access option[value='dualid_tag']:checked")
        .await;
    browser
        .select("#key-operator", "Ola Nordmann (+4791234567)")
        .await;
    browser.click("#key-assets input[data-asset=a1]").await;
    browser.click("#key-assets input[data-asset=a2]").await;
    browser.select("#key-access", "Keypad PIN").await;
    browser.select("#key-customer", "Nordic Rentals").await;
    browser.type_into("#key-description", "Night shift").await;
    browser.shot("flow4-08-key-wizard").await;

    // An end in the past: the gateway's review refuses it, in its words.
    browser.type_into("#key-to-date", "01012020").await;
    browser.click("#key-review").await;
    let shown = browser
        .text_of("#key-wizard .problem", "Not accepted as entered.")
        .await;
    assert!(shown.contains("(field: valid_to)"), "{shown}");
    browser.type_into("#key-to-date", &january).await;
    browser.click("#key-review").await;
    browser
        .text_of("#key-review-summary", "without storing it")
        .await;
    let units = browser.text_of("#key-review-units", "unit1").await;
    assert!(units.contains("unit2"), "{units}");
    browser
        .text_of("#key-facts", "Ola Nordmann (personal)")
        .await;
    browser.text_of("#key-facts", "Nordic Rentals").await;
    assert!(keys(&acme).await.is_empty(), "the review stores nothing");
    browser.shot("flow4-09-key-review").await;
    browser.click("#key-create").await;
    browser.text_of("#key-delivered", "unit1").await;
    browser.text_of("#key-pending", "unit2").await;
    browser.text_of("#key-pin", "PIN: ").await;
    browser.shot("flow4-10-key-created").await;
    browser.click("#key-done").await;
    browser.text_of("#keys-table", "Night shift").await;
    let created = keys(&acme).await;
    assert_eq!(created.len(), 1);
    let key = &created[0];
    assert_eq!(key["operator_id"], json!(ola));
    assert_eq!(key["asset_ids"], json!(["a1", "a2"]));
    assert_eq!(key["customer_id"], json!(customers[0]));
    let to = OffsetDateTime::parse(key["valid_to"].as_str().expect("to"), &Rfc3339).expect("time");
    assert_eq!(to, january_at);

    // The filters: by state, by customer, by operator.
    browser.select("#filter-state", "Future").await;
    browser.text_of("#no-keys", "No key matches.").await;
    browser.select("#filter-state", "Active").await;
    browser
        .text_of("#keys-table [data-test=state]", "active")
        .await;
    browser.select("#filter-customer", "Fjord Build").await;
    browser.text_of("#no-keys", "No key matches.").await;
    browser.select("#filter-customer", "Any customer").await;
    browser.select("#filter-operator", "Ola Nordmann").await;
    browser.text_of("#keys-table", "Night shift").await;
    browser.shot("flow4-11-keys-filtered").await;

    // Edit the end, the description and the customer.
    browser.click("#keys-table [data-test=edit-key]").await;
    browser.type_into("#edit-to-date", &february).await;
    browser.type_into("#edit-description", "Day shift").await;
    browser.select("#edit-customer", "Fjord Build").await;
    browser.shot("flow4-12-key-edit").await;
    browser.click("#edit-save").await;
    let notice = browser.text_of(".notice", "Saved the key Day shift").await;
    assert!(notice.contains("units updated: unit1"), "{notice}");
    let edited = keys(&acme).await;
    assert_eq!(edited[0]["description"], "Day shift");
    assert_eq!(edited[0]["customer_id"], json!(customers[1]));
    let to =
        OffsetDateTime::parse(edited[0]["valid_to"].as_str().expect("to"), &Rfc3339).expect("time");
    assert_eq!(to, february_at);

    // A second key, then both deleted after one confirm.
    let now = OffsetDateTime::now_utc();
    let second = json!({"personal": false, "asset_ids": ["a1"], "access_type": "digital_key",
        "valid_from": rfc3339(now), "valid_to": rfc3339(now + time::Duration::days(3)), "description": "Pool car"});
    let (status, body) = call(&acme.admin, Method::POST, "/v1/keys", Some(second.clone())).await;
    assert_eq!(status, 201, "{body}");
    let (status, spare) = call(&acme.admin, Method::POST, "/v1/keys", Some(second)).await;
    assert_eq!(status, 201, "{spare}");
    let secret = spare["key"]["credential"]
        .as_str()
        .expect("secret")
        .to_owned();
    let spare = spare["key"]["id"].as_str().expect("id").to_owned();
    browser.open("#/operators").await;
    browser.open("#/keys").await;
    browser.text_of("#keys-table", "Pool car").await;
    // A digital key's secret is there for the admin to hand over, folded until asked for.
    let row = format!("#keys-table tr[data-id='{spare}']");
    browser
        .click(&format!("{row} [data-test=secret] summary"))
        .await;
    browser
        .text_of(&format!("{row} [data-test=secret]"), &secret)
        .await;

    // A stale form: the key is deleted elsewhere while its edit is open.
    browser
        .click(&format!(
            "#keys-table tr[data-id='{spare}'] [data-test=edit-key]"
        ))
        .await;
    let path = format!("/v1/keys/{spare}");
    let (status, body) = call(&acme.admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 200, "{body}");
    browser.type_into("#edit-description", "Spare").await;
    browser.click("#edit-save").await;
    browser.text_of("#key-edit .problem", "Not found.").await;
    browser.click("#key-edit #cancel").await;
    browser.open("#/operators").await;
    browser.open("#/keys").await;
    browser.text_of("#keys-table", "Pool car").await;
    browser
        .gone(&format!("#keys-table tr[data-id='{spare}']"))
        .await;
    browser
        .click("#keys-table tr:nth-child(1) input[type=checkbox]")
        .await;
    browser
        .click("#keys-table tr:nth-child(2) input[type=checkbox]")
        .await;
    browser.click("#delete-keys").await;
    browser.text_of("dialog", "Pool car").await;
    browser.shot("flow4-13-delete-keys").await;
    browser.click("dialog [data-test=confirm]").await;
    browser.text_of(".notice", "Deleted 2 keys").await;
    browser.text_of("#no-keys", "No keys yet.").await;
    assert!(keys(&acme).await.is_empty());
    browser.quit().await;
}
