//! The console's units and assets without curl, end to end in headless Chromium against a
//! real gateway: a fleet admin registers a unit and takes its certificate, key and CA once
//! (the unit then connects over mutual TLS with them), changes what is fitted (the
//! gateway's 409 naming the key that needs the keypad shown), gives it a new certificate
//! after a revoke and deregisters it; an admin creates an asset with a unit picked from the
//! account's units (409 and 422 shown), puts another unit on it (a unit on another asset
//! refused) and deletes it, its grant ending. A viewer is offered none of it.

use reqwest::Method;
use serde_json::{json, Value};
use simulator::api::UserRole;
use simulator::{MqttTransport, SimUnit, UnitOptions};
use tests::browser::Browser;
use tests::{call, Fleet, TestGateway};

/// The PEMs the credentials dialog shows (certificate, key, CA), after checking each has a
/// download behind an object URL; the dialog is then closed.
async fn take_credentials(browser: &Browser, device: &str) -> (String, String, String) {
    browser
        .text_of("dialog #key-once", "shown only this once")
        .await;
    let mut pems = Vec::new();
    for (field, name) in [
        ("cert", format!("{device}.pem")),
        ("key", format!("{device}.key")),
        ("ca", "ca.pem".to_owned()),
    ] {
        let link = browser.find(&format!("dialog #download-{field}")).await;
        let href = link.attr("href").await.expect("href").unwrap_or_default();
        assert!(href.starts_with("blob:"), "{field}: {href}");
        assert_eq!(link.attr("download").await.expect("download"), Some(name));
        let area = browser.find(&format!("dialog #pem-{field}")).await;
        let pem = area.prop("value").await.expect("value").unwrap_or_default();
        assert!(pem.starts_with("-----BEGIN "), "{field}: {pem}");
        pems.push(pem);
    }
    (pems[0].clone(), pems[1].clone(), pems[2].clone())
}

async fn connects(gateway: &TestGateway, device: &str, pems: (String, String, String)) -> SimUnit {
    let (cert_pem, key_pem, ca_pem) = pems;
    let transport = MqttTransport::Tls {
        ca_pem,
        cert_pem,
        key_pem,
        server_name: "localhost".into(),
    };
    SimUnit::connect(UnitOptions::unit(device, gateway.mqtt_tls()).with_transport(transport))
        .await
        .expect("the unit connects with what the console handed out")
}

fn rfc3339(ms: u64) -> String {
    simulator::telemetry::rfc3339_from_ms(ms).expect("time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_admin_registers_changes_recertifies_and_deregisters_a_unit() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let fred = fleet
        .admin
        .create_user(&fleet.account_id, "Fred Fleet", UserRole::FleetAdmin)
        .await
        .expect("user");
    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&fred.token, true).await;
    browser.click("nav a[href='#/devices']").await;

    // Register: the id and the fitted keypad; the files once, and they work.
    browser.click("#register-unit").await;
    browser.type_into("#unit-id", "unit7").await;
    browser.click("#unit-capabilities input[name=keypad]").await;
    browser.shot("units-01-register").await;
    browser.click("#register-submit").await;
    let pems = take_credentials(&browser, "unit7").await;
    browser.shot("units-02-credentials-once").await;
    let unit = connects(&gateway, "unit7", pems).await;
    browser.click("#credentials-done").await;
    browser.gone("dialog").await;
    browser
        .text_of(".notice", "Registered the unit unit7.")
        .await;
    let row = "#devices-table tr[data-id='unit7']";
    browser
        .text_of(&format!("{row} [data-test=fitted]"), "Keypad")
        .await;
    drop(unit);

    // The same id again, and an id reserved for accounts: the gateway's words.
    browser.click("#register-unit").await;
    browser.type_into("#unit-id", "unit7").await;
    browser.click("#register-submit").await;
    browser
        .text_of("#register-problems", "already registered")
        .await;
    browser.type_into("#unit-id", "acc0123456789abcdef").await;
    browser.click("#register-submit").await;
    browser
        .text_of("#register-problems", "reserved for accounts")
        .await;
    browser.click("dialog button.secondary").await;
    browser.gone("dialog").await;

    // A live keypad key on its asset: taking the keypad away is refused, naming the key.
    let created = fleet
        .admin
        .create_asset(&simulator::api::NewAsset::new("ex7", "Loader 7").bound_to("unit7"))
        .await;
    created.expect("asset");
    let now = gateway.now_ms();
    let body = json!({"personal": false, "asset_ids": ["ex7"], "access_type": "keypad_pin",
        "valid_from": rfc3339(now), "valid_to": rfc3339(now + 3_600_000)});
    let (status, key) = call(&fleet.admin, Method::POST, "/v1/keys", Some(body)).await;
    assert_eq!(status, 201, "{key}");
    let key_id = key["key"]["id"].as_str().expect("key id").to_owned();
    browser
        .click(&format!("{row} [data-test=edit-capabilities]"))
        .await;
    browser.click("#capabilities-form input[name=keypad]").await;
    browser
        .click("#capabilities-form input[name=bluetooth_relay]")
        .await;
    browser.click("#capabilities-save").await;
    browser.text_of("#capabilities-problems", &key_id).await;
    browser.shot("units-03-capability-refused").await;
    // Keep the keypad, add the relay: saved.
    browser.click("#capabilities-form input[name=keypad]").await;
    browser.click("#capabilities-save").await;
    browser.gone("dialog").await;
    browser
        .text_of(&format!("{row} [data-test=fitted]"), "Bluetooth relay")
        .await;

    // Its certificate revoked (by the account's admin): a new one from the Devices page.
    let certs = format!("/v1/accounts/{}/certificates", fleet.account_id);
    let (_, listed) = call(&fleet.admin, Method::GET, &certs, None).await;
    let old = listed["items"][0]["serial"]
        .as_str()
        .expect("serial")
        .to_owned();
    let revoke = format!("{certs}/{old}/revoke");
    assert_eq!(call(&fleet.admin, Method::POST, &revoke, None).await.0, 200);
    browser
        .click(&format!("{row} [data-test=new-certificate]"))
        .await;
    browser.click("dialog [data-test=confirm]").await;
    let pems = take_credentials(&browser, "unit7").await;
    browser.shot("units-04-new-certificate").await;
    let unit = connects(&gateway, "unit7", pems).await;
    unit.publish_point(&json!({"fuel_pct": 40}))
        .await
        .expect("acked");
    browser.click("#credentials-done").await;
    browser
        .text_of(".notice", "Issued a new certificate for unit7")
        .await;

    // Deregister, after a confirm: gone from the list, its new certificate revoked too.
    browser
        .click(&format!("{row} [data-test=deregister]"))
        .await;
    browser
        .text_of("dialog", "cannot be registered again")
        .await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of(".notice", "Deregistered the unit unit7.")
        .await;
    browser.gone(row).await;
    let (_, listed) = call(&fleet.admin, Method::GET, &certs, None).await;
    let items = listed["items"].as_array().expect("items");
    assert!(
        items.len() == 2 && items.iter().all(|cert| !cert["revoked_at"].is_null()),
        "{listed}"
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_is_offered_no_unit_or_asset_changes() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let vera = fleet
        .admin
        .create_user(&fleet.account_id, "Vera Viewer", UserRole::Viewer)
        .await
        .expect("user");
    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&vera.token, true).await;
    browser.click("nav a[href='#/devices']").await;
    browser.find("#devices-table tr[data-id='unit1']").await;
    assert_eq!(browser.count("#register-unit").await, 0);
    assert_eq!(browser.count("[data-test=new-certificate]").await, 0);
    assert_eq!(browser.count("[data-test=deregister]").await, 0);
    browser.click("nav a[href='#/assets']").await;
    browser.click("#assets-table [data-test=open-asset]").await;
    browser.find("#asset-panel").await;
    assert_eq!(browser.count("#create-asset").await, 0);
    assert_eq!(browser.count("#asset-unit").await, 0);
    browser.quit().await;
}

async fn asset(fleet: &Fleet, id: &str) -> (u16, Value) {
    call(&fleet.admin, Method::GET, &format!("/v1/assets/{id}"), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_an_asset_swaps_its_unit_and_deletes_it() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let child = fleet.child(&gateway, "Acme North").await;
    fleet.register("unit1").await;
    fleet.register("unit2").await;
    fleet.unit_with_asset("unit3", "ex3").await;
    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("#/assets").await;
    browser.sign_in_with_token(&fleet.admin_token, true).await;

    // Create: the picker offers the free units only.
    browser.click("#create-asset").await;
    browser.text_of("#new-asset-unit", "unit2").await;
    let offered = browser.text_of("#new-asset-unit", "unit1").await;
    assert!(!offered.contains("unit3"), "unit3 is on ex3: {offered}");
    browser.type_into("#new-asset-id", "ex1").await;
    browser.type_into("#new-asset-name", "Excavator 1").await;
    browser.type_into("#new-asset-serial", "SN-100").await;
    browser.select("#new-asset-unit", "unit1").await;
    browser.shot("units-05-create-asset").await;
    browser.click("#create-asset-submit").await;
    browser
        .text_of(".notice", "Created Excavator 1 (ex1) with the unit unit1.")
        .await;
    let (status, ex1) = asset(&fleet, "ex1").await;
    assert_eq!(
        (status, ex1["device_id"].clone(), ex1["serial"].clone()),
        (200, json!("unit1"), json!("SN-100"))
    );

    // A taken id (409) and an id the gateway does not accept (422), in its words.
    browser.click("#create-asset").await;
    browser.type_into("#new-asset-id", "ex1").await;
    browser.type_into("#new-asset-name", "Another").await;
    browser.click("#create-asset-submit").await;
    browser
        .text_of("#create-asset-problems", "already exists")
        .await;
    browser.type_into("#new-asset-id", "ex 2!").await;
    browser.click("#create-asset-submit").await;
    let refused = browser
        .text_of("#create-asset-problems", "Not accepted")
        .await;
    assert!(refused.contains("(field: id)"), "{refused}");
    browser.click("dialog button.secondary").await;
    browser.gone("dialog").await;

    // Put unit2 on ex1 from its side panel; unit3 is on ex3 and is refused.
    let granted = fleet.grant(&child, &["ex1"], json!({})).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    browser
        .click("#assets-table tr[data-id='ex1'] [data-test=open-asset]")
        .await;
    browser.select("#asset-unit-select", "unit3 (on ex3)").await;
    browser.click("#put-unit").await;
    browser.click("dialog [data-test=confirm]").await;
    browser.text_of("#asset-unit-problems", "ex3").await;
    browser.select("#asset-unit-select", "unit2").await;
    browser.click("#put-unit").await;
    browser.text_of("dialog", "unit1 stops reporting").await;
    browser.shot("units-06-swap-unit").await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of(".notice", "unit2 now reports for Excavator 1.")
        .await;
    assert_eq!(asset(&fleet, "ex1").await.1["device_id"], json!("unit2"));
    let picker = browser.text_of("#asset-unit-select", "unit1").await;
    assert!(
        !picker.contains("(on ex1)"),
        "its own unit is just named: {picker}"
    );

    // Delete, after a confirm that says what ends: the grant ends with it.
    browser.click("#delete-asset").await;
    browser.text_of("dialog", "visibility grants").await;
    browser.shot("units-07-delete-asset").await;
    browser.click("dialog [data-test=confirm]").await;
    browser.text_of(".notice", "Deleted Excavator 1").await;
    browser.gone("#assets-table tr[data-id='ex1']").await;
    assert_eq!(asset(&fleet, "ex1").await.0, 404);
    let seen = call(&child.admin, Method::GET, "/v1/assets/ex1", None).await;
    assert_eq!(seen.0, 404, "the grant ended: {seen:?}");
    browser.quit().await;
}
