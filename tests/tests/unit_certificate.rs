//! A new certificate for a registered unit (`POST /v1/devices/{d}/certificate`): after its
//! certificate was revoked the unit connects over mutual TLS with the new one while the
//! revoked one stays refused; the new serial is recorded and audited; a viewer, another
//! account and a deregistered unit are refused.

use reqwest::Method;
use serde_json::{json, Value};
use simulator::{MqttTransport, SimUnit, UnitOptions};
use tests::{Fleet, TestGateway, WAIT};

async fn certificates(fleet: &Fleet) -> Vec<Value> {
    let path = format!("/v1/accounts/{}/certificates", fleet.account_id);
    let (status, body) = fleet.admin.get_raw(&path).await.expect("list");
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().expect("items").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_unit_connects_again_with_a_new_certificate() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let old = certificates(&fleet).await;
    let old_serial = old[0]["serial"].as_str().expect("serial").to_owned();
    let account = fleet.account_id.to_string();
    let revoked = tests::revoke_certificate(&fleet.admin, &account, &old_serial).await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    // Registering again is no way back: the id is taken.
    let again = fleet
        .admin
        .request_raw(Method::POST, "/v1/devices", Some(&json!({"id": "unit1"})))
        .await
        .expect("answer");
    assert_eq!(again.status, 409, "{again:?}");

    let issued = fleet
        .admin
        .request_raw(
            Method::POST,
            "/v1/devices/unit1/certificate",
            Some(&json!({})),
        )
        .await
        .expect("answer");
    assert_eq!(issued.status, 201, "{issued:?}");
    let text = |field: &str| issued.body[field].as_str().expect(field).to_owned();
    let new_serial = text("serial");
    assert_ne!(new_serial, old_serial, "a new random serial");
    let transport = MqttTransport::Tls {
        ca_pem: text("ca_pem"),
        cert_pem: text("cert_pem"),
        key_pem: text("key_pem"),
        server_name: "localhost".into(),
    };
    let unit =
        SimUnit::connect(UnitOptions::unit("unit1", gateway.mqtt_tls()).with_transport(transport))
            .await
            .expect("connects with the new certificate");
    unit.publish_point(&json!({"fuel_pct": 12}))
        .await
        .expect("acked");
    assert_eq!(fleet.history("ex1", 1).await.len(), 1);
    let old_one = tokio::time::timeout(WAIT, SimUnit::connect(fleet.unit_options("unit1"))).await;
    assert!(
        !matches!(old_one, Ok(Ok(_))),
        "the revoked certificate is still refused"
    );

    // Both are listed: the old one revoked, the new one valid (and revocable in turn).
    let listed = certificates(&fleet).await;
    let state_of = |serial: &str| {
        listed
            .iter()
            .find(|cert| cert["serial"] == serial)
            .map(|cert| cert["revoked_at"].is_null())
            .expect("listed")
    };
    assert!(
        !state_of(&old_serial) && state_of(&new_serial),
        "{listed:?}"
    );
    let (_, audit) = fleet.admin.get_raw("/v1/audit").await.expect("audit");
    assert!(
        audit["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|entry| { entry["action"] == "device.certificate" && entry["target"] == "unit1" }),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_units_fleet_managers_get_a_new_certificate() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let other = Fleet::create(&gateway, "Other").await;
    fleet.register("unit1").await;
    let path = "/v1/devices/unit1/certificate";
    let ask = |client: simulator::ApiClient, path: &'static str| async move {
        client
            .request_raw(Method::POST, path, Some(&json!({})))
            .await
            .expect("answer")
    };
    let viewer = fleet.user(simulator::api::UserRole::Viewer).await;
    let refused = ask(viewer, path).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(ask(other.admin.clone(), path).await.status, 404);
    // Rule 4: support staff working in the account get no key that outlives their access.
    let (support, _) = fleet.approved_support("24h").await;
    let registering = format!("/v1/devices?account_id={}", fleet.account_id);
    let body = json!({"id": "unit9"});
    let refused_too = support
        .request_raw(Method::POST, &registering, Some(&body))
        .await
        .expect("answer");
    let refused = ask(support, path).await;
    for refused in [refused, refused_too] {
        assert_eq!(refused.status, 403, "{refused:?}");
        assert!(
            refused.body.to_string().contains("no lasting access"),
            "{refused:?}"
        );
    }
    let fleet_admin = fleet.user(simulator::api::UserRole::FleetAdmin).await;
    assert_eq!(ask(fleet_admin, path).await.status, 201);
    let garbage = fleet
        .admin
        .request_raw(Method::POST, path, Some(&json!({"csr_pem": "hello"})))
        .await
        .expect("answer");
    assert_eq!(garbage.status, 422);
    assert_eq!(garbage.body["field"], "csr_pem");
    let before = certificates(&fleet).await.len();
    assert_eq!(before, 2, "registration's and the fleet admin's");

    let gone = fleet
        .admin
        .request_raw(Method::DELETE, "/v1/devices/unit1", None)
        .await
        .expect("answer");
    assert_eq!(gone.status, 204);
    let refused = ask(fleet.admin.clone(), path).await;
    assert_eq!(
        refused.status, 404,
        "a deregistered unit gets none: {refused:?}"
    );
    assert_eq!(certificates(&fleet).await.len(), before, "nothing recorded");
}
