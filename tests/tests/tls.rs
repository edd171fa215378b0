//! Device identity over MQTT/TLS (DESIGN section 4): a unit reads and writes only under
//! `/tenants/{its id}/`; certificates from another CA, expired ones and none at all are
//! refused; a CSR-signed unit works end to end; a deregistered unit is ignored; and the
//! stock mosquitto clients work with the issued files as the README shows.

use rcgen::{CertificateParams, DnType, Issuer, KeyPair};
use reqwest::Method;
use rumqttc::QoS;
use serde_json::json;
use simulator::api::{AssetId, DeviceId, HistoryQuery};
use simulator::{MqttTransport, SimUnit, UnitOptions};
use tests::{publish_acked, Fleet, TestGateway, WAIT};

fn tls(ca_pem: &str, cert_pem: String, key_pem: String) -> MqttTransport {
    MqttTransport::Tls {
        ca_pem: ca_pem.to_owned(),
        cert_pem,
        key_pem,
        server_name: "localhost".into(),
    }
}

/// Issues an integration certificate for `fleet`'s account as its admin; the options of an
/// observer connecting over TLS with it.
async fn integration_over_tls(fleet: &Fleet, gateway: &TestGateway) -> UnitOptions {
    let path = format!("/v1/accounts/{}/integration-certs", fleet.account_id);
    let issued = fleet
        .admin
        .request_raw(Method::POST, &path, Some(&json!({})))
        .await
        .expect("answer");
    assert_eq!(issued.status, 201, "{issued:?}");
    let text = |field: &str| issued.body[field].as_str().expect("pem").to_owned();
    UnitOptions::observer(
        format!("{}integration", fleet.account_id),
        gateway.mqtt_tls(),
    )
    .with_transport(tls(&text("ca_pem"), text("cert_pem"), text("key_pem")))
}

fn ca_pem(gateway: &TestGateway) -> String {
    std::fs::read_to_string(gateway.data_dir().join("ca.pem")).expect("gateway CA")
}

/// The gateway's own CA, read from its data dir: it signs certificates the gateway never
/// recorded (as a gateway of an earlier version did).
fn gateway_issuer(gateway: &TestGateway) -> Issuer<'static, KeyPair> {
    let key = KeyPair::from_pem(
        &std::fs::read_to_string(gateway.data_dir().join("ca.key")).expect("ca key"),
    )
    .expect("key");
    Issuer::from_ca_cert_pem(&ca_pem(gateway), key).expect("issuer")
}

/// A leaf for `device` signed by `issuer`, valid in [not_before, not_after).
fn leaf(
    device: &str,
    issuer: &Issuer<'_, KeyPair>,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::OrganizationName, device);
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params.signed_by(&key, issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_can_neither_read_nor_forge_another_units_topics() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unitA", "exA").await;
    fleet.unit_with_asset("unitB", "exB").await;
    let mut b_stream = fleet
        .admin
        .stream("/v1/assets/exB/stream")
        .await
        .expect("stream");

    let a = fleet.connect("unitA").await;
    a.subscribe("/tenants/unitA/keys", QoS::AtLeastOnce)
        .await
        .expect("its own keys topic");
    let refused =
        tokio::time::timeout(WAIT, a.subscribe("/tenants/unitB/keys", QoS::AtLeastOnce)).await;
    assert!(
        !matches!(refused, Ok(Ok(()))),
        "subscribing to B's keys must fail: {refused:?}"
    );

    let a = fleet.connect("unitA").await;
    // MQTT 3.1.1 §3.3.5-2: a server that refuses a publish either closes the connection or
    // acknowledges it. Fleetgate acknowledges (refused for good: a unit must not resend it
    // forever), counts it, names it in the unit's status, and never stores or delivers it.
    publish_acked(
        &a,
        "/tenants/unitB/telemetry",
        br#"{"fuel_pct":1}"#.to_vec(),
    )
    .await;
    let denied = fleet
        .metric_line("fleetgate_mqtt_acl_denied_total{kind=\"publish\",reason=\"other_tenant\"}")
        .await;
    assert_eq!(
        denied.as_deref(),
        Some("fleetgate_mqtt_acl_denied_total{kind=\"publish\",reason=\"other_tenant\"} 1")
    );
    let status = fleet
        .admin
        .device_status(&DeviceId::new("unitA"))
        .await
        .expect("status");
    assert!(
        status.last_error.as_deref().unwrap_or("").contains("unitB"),
        "the unit's status names the refused topic: {status:?}"
    );
    // A legitimate point from B afterwards is the only thing B's owner ever sees.
    let b = fleet.connect("unitB").await;
    b.publish_point(&json!({"fuel_pct": 77}))
        .await
        .expect("acked");
    let live = b_stream
        .next_point(WAIT)
        .await
        .expect("a point")
        .expect("decodes");
    assert_eq!(
        live.fuel_pct,
        Some(77.0),
        "the forged point was never delivered"
    );
    assert_eq!(fleet.history("exB", 1).await.len(), 1);
    let stored = fleet
        .admin
        .telemetry_all(&AssetId::new("exB"), &HistoryQuery::default())
        .await
        .expect("history");
    assert_eq!(
        stored.len(),
        1,
        "the forged point was never stored: {stored:?}"
    );
    assert_eq!(
        fleet
            .metric_line("fleetgate_points_ingested_total")
            .await
            .as_deref(),
        Some("fleetgate_points_ingested_total 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_expired_and_missing_certificates_are_refused() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let ca = ca_pem(&gateway);
    let now = time::OffsetDateTime::now_utc();

    let foreign_key = KeyPair::generate().expect("key");
    let mut foreign_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    foreign_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let foreign = Issuer::new(foreign_params, foreign_key);
    let (foreign_cert, foreign_key) = leaf(
        "unit1",
        &foreign,
        now - time::Duration::hours(1),
        now + time::Duration::days(1),
    );

    let gateway_ca = gateway_issuer(&gateway);
    let (expired_cert, expired_key) = leaf(
        "unit1",
        &gateway_ca,
        now - time::Duration::days(10),
        now - time::Duration::days(1),
    );
    let (valid_cert, valid_key) = leaf(
        "unit1",
        &gateway_ca,
        now - time::Duration::hours(1),
        now + time::Duration::days(1),
    );

    let cases = [
        ("another CA", tls(&ca, foreign_cert, foreign_key)),
        ("expired", tls(&ca, expired_cert, expired_key)),
        ("no certificate", tls(&ca, String::new(), String::new())),
    ];
    for (what, transport) in cases {
        let options = UnitOptions::unit("unit1", gateway.mqtt_tls()).with_transport(transport);
        let outcome = tokio::time::timeout(WAIT, SimUnit::connect(options)).await;
        assert!(
            !matches!(outcome, Ok(Ok(_))),
            "{what}: the broker must refuse the connection"
        );
    }
    // The same construction with a valid window connects: the refusals above are about the
    // certificate, not the test's way of making one.
    let options = UnitOptions::unit("unit1", gateway.mqtt_tls())
        .with_transport(tls(&ca, valid_cert, valid_key));
    SimUnit::connect(options)
        .await
        .expect("a valid certificate connects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csr_signed_unit_works_end_to_end_and_keeps_its_key() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "not-my-id");
    let csr = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    let created = fleet
        .admin
        .request_raw(
            Method::POST,
            "/v1/devices",
            Some(&json!({"id": "unit9", "csr_pem": csr})),
        )
        .await
        .expect("answer");
    assert_eq!(created.status, 201, "{created:?}");
    assert!(
        created.body.get("key_pem").is_none_or(|key| key.is_null()),
        "no key when a CSR is given"
    );
    let cert = created.body["cert_pem"].as_str().expect("cert").to_owned();
    let ca = created.body["ca_pem"].as_str().expect("ca").to_owned();
    fleet
        .admin
        .create_asset(&simulator::api::NewAsset::new("ex9", "Loader").bound_to("unit9"))
        .await
        .expect("asset");
    let options = UnitOptions::unit("unit9", gateway.mqtt_tls()).with_transport(tls(
        &ca,
        cert,
        key.serialize_pem(),
    ));
    let unit = SimUnit::connect(options)
        .await
        .expect("connects with its own key");
    unit.publish_point(&json!({"fuel_pct": 33}))
        .await
        .expect("acked");
    assert_eq!(fleet.history("ex9", 1).await.len(), 1);

    let garbage = fleet
        .admin
        .request_raw(
            Method::POST,
            "/v1/devices",
            Some(&json!({"id": "unit10", "csr_pem": "hello"})),
        )
        .await
        .expect("answer");
    assert_eq!(garbage.status, 422);
    assert_eq!(garbage.body["field"], "csr_pem");
    let refused_id = fleet
        .admin
        .request_raw(Method::POST, "/v1/devices", Some(&json!({"id": "unit10"})))
        .await
        .expect("answer");
    assert_eq!(
        refused_id.status, 201,
        "a refused CSR registered nothing: the id is still free"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_unit_is_ignored_from_the_answer_on() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let unit = fleet.connect("unit1").await;
    unit.publish_point(&json!({"fuel_pct": 1}))
        .await
        .expect("acked");
    assert_eq!(fleet.history("ex1", 1).await.len(), 1);

    let viewer = fleet.user(simulator::api::UserRole::Viewer).await;
    let refused = viewer
        .request_raw(Method::DELETE, "/v1/devices/unit1", None)
        .await
        .expect("answer");
    assert_eq!(refused.status, 403);
    let stranger = Fleet::create(&gateway, "Other").await;
    let hidden = stranger
        .admin
        .request_raw(Method::DELETE, "/v1/devices/unit1", None)
        .await
        .expect("answer");
    assert_eq!(hidden.status, 404);

    let deleted = fleet
        .admin
        .request_raw(Method::DELETE, "/v1/devices/unit1", None)
        .await
        .expect("answer");
    assert_eq!(deleted.status, 204, "{deleted:?}");
    // The answer came after the unit's session was closed: what it sends now goes nowhere.
    let after = unit.publish_point(&json!({"fuel_pct": 2})).await;
    assert!(after.is_err(), "the session is closed: {after:?}");
    // Its certificate is revoked: a new connection fails the TLS handshake.
    let again = tokio::time::timeout(WAIT, SimUnit::connect(fleet.unit_options("unit1"))).await;
    assert!(
        !matches!(again, Ok(Ok(_))),
        "a deregistered unit's certificate is refused"
    );
    let points = fleet
        .admin
        .telemetry_all(&AssetId::new("ex1"), &HistoryQuery::default())
        .await
        .expect("history");
    assert_eq!(points.len(), 1, "nothing after the answer is stored");
    let asset = fleet.admin.get_raw("/v1/assets/ex1").await.expect("asset");
    assert_eq!(
        asset.1["device_id"],
        serde_json::Value::Null,
        "the asset shows it unbound"
    );
    let status = fleet.admin.device_status(&DeviceId::new("unit1")).await;
    assert_eq!(status.err().and_then(|err| err.status()), Some(404));
    let again = fleet
        .admin
        .request_raw(Method::POST, "/v1/devices", Some(&json!({"id": "unit1"})))
        .await
        .expect("answer");
    assert_eq!(
        again.status, 409,
        "a deregistered id is never reused: {again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_ids_shaped_like_accounts_are_refused() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let account_shaped = fleet.account_id.to_string();
    let refused = fleet
        .admin
        .request_raw(
            Method::POST,
            "/v1/devices",
            Some(&json!({"id": account_shaped})),
        )
        .await
        .expect("answer");
    assert_eq!(refused.status, 422, "{refused:?}");
    assert_eq!(refused.body["field"], "id");
}

/// The README's mosquitto commands, run as written (with this gateway's port and files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_mosquitto_clients_work_with_the_issued_files() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let dir = fleet.unit_files("unit1", "ex1").await;
    let port = gateway.mqtt_tls().port.to_string();
    let tls_args = [
        "--cafile",
        "ca.pem",
        "--cert",
        "unit1.pem",
        "--key",
        "unit1.key",
        "-h",
        "localhost",
        "-p",
        &port,
    ];

    let publish = std::process::Command::new("mosquitto_pub")
        .current_dir(dir.path())
        .args(tls_args)
        .args([
            "-i",
            "unit1",
            "-q",
            "1",
            "-t",
            "/tenants/unit1/telemetry",
            "-m",
            r#"{"lat":59.91,"lon":10.75,"fuel_pct":61.5}"#,
        ])
        .output()
        .expect("mosquitto_pub is installed (scripts/setup.sh)");
    assert!(
        publish.status.success(),
        "{}",
        String::from_utf8_lossy(&publish.stderr)
    );
    assert_eq!(fleet.history("ex1", 1).await.len(), 1);

    // unit2's key set comes from the gateway's store on subscribe: unit2's identity reads
    // it, unit1's subscription to it is refused (SUBACK 0x80), so the refusal below is not
    // a mere timeout.
    let unit2 = fleet.register("unit2").await;
    std::fs::write(dir.path().join("unit2.pem"), unit2.cert_pem.expect("cert")).expect("write");
    std::fs::write(dir.path().join("unit2.key"), unit2.key_pem.expect("key")).expect("write");
    let subscribe_as = |identity: &str| {
        std::process::Command::new("mosquitto_sub")
            .current_dir(dir.path())
            .args([
                "--cafile",
                "ca.pem",
                "--cert",
                &format!("{identity}.pem"),
                "--key",
                &format!("{identity}.key"),
            ])
            .args([
                "-h",
                "localhost",
                "-p",
                &port,
                "-i",
                identity,
                "-t",
                "/tenants/unit2/keys",
                "-C",
                "1",
                "-W",
                "5",
            ])
            .output()
            .expect("mosquitto_sub runs")
    };
    let own = subscribe_as("unit2");
    assert!(
        own.status.success(),
        "unit2 reads its own keys: {}",
        String::from_utf8_lossy(&own.stderr)
    );
    assert!(String::from_utf8_lossy(&own.stdout).contains("\"version\":0"));
    let snoop = subscribe_as("unit1");
    assert!(snoop.stdout.is_empty(), "unit1 received nothing of unit2's");
    // mosquitto_sub reports the SUBACK failure code (0x80) in words and exits.
    assert!(
        String::from_utf8_lossy(&snoop.stderr).contains("subscription requests were denied"),
        "subscribing outside the tenant must be refused: {:?} {}",
        snoop.status,
        String::from_utf8_lossy(&snoop.stderr)
    );
}

/// An account integration over TLS: a certificate for the account reads the account's
/// telemetry topics and nothing of any other tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_integration_reads_its_topics_over_tls_and_nothing_else() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let other = Fleet::create(&gateway, "Other").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let path = format!("/v1/accounts/{}/integration-certs", fleet.account_id);
    let viewer = fleet.user(simulator::api::UserRole::Viewer).await;
    assert_eq!(
        viewer
            .request_raw(Method::POST, &path, Some(&json!({})))
            .await
            .expect("answer")
            .status,
        403
    );
    assert_eq!(
        other
            .admin
            .request_raw(Method::POST, &path, Some(&json!({})))
            .await
            .expect("answer")
            .status,
        404
    );
    let account = fleet.account_id.to_string();
    let observer = integration_over_tls(&fleet, &gateway).await;
    let options = || observer.clone();
    let integration = SimUnit::connect(options())
        .await
        .expect("connects with the account certificate");
    let topic = format!("/tenants/{account}/assets/ex1/telemetry");
    integration
        .subscribe(&topic, QoS::AtLeastOnce)
        .await
        .expect("its own topics");
    let unit = fleet.connect("unit1").await;
    unit.publish_point(&json!({"fuel_pct": 42}))
        .await
        .expect("acked");
    let message = integration
        .next_message(WAIT)
        .await
        .expect("the point over TLS");
    assert_eq!(message.json().expect("json")["fuel_pct"], 42.0);

    let snooper = SimUnit::connect(options()).await.expect("connects");
    let foreign = format!("/tenants/{}/assets/+/telemetry", other.account_id);
    let refused = tokio::time::timeout(WAIT, snooper.subscribe(&foreign, QoS::AtLeastOnce)).await;
    assert!(
        !matches!(refused, Ok(Ok(()))),
        "another tenant's topics are refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_lists_and_revokes_the_accounts_certificates() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let other = Fleet::create(&gateway, "Other").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let account = fleet.account_id.to_string();
    let observer = integration_over_tls(&fleet, &gateway).await;
    let options = || observer.clone();
    let integration = SimUnit::connect(options()).await.expect("connects");
    let unit = fleet.connect("unit1").await;

    let list = format!("/v1/accounts/{account}/certificates");
    let listed = fleet.admin.get_raw(&list).await.expect("list");
    assert_eq!(listed.0, 200, "{listed:?}");
    let items = listed.1["items"].as_array().expect("items").clone();
    let serial_of = |kind: &str| {
        items
            .iter()
            .find(|cert| cert["kind"] == kind)
            .and_then(|cert| cert["serial"].as_str())
            .expect("listed")
            .to_owned()
    };
    let (integration_serial, unit_serial) = (serial_of("integration"), serial_of("unit"));
    assert!(items.iter().all(|cert| cert["revoked_at"].is_null()));
    let viewer = fleet.user(simulator::api::UserRole::Viewer).await;
    assert_eq!(viewer.get_raw(&list).await.expect("answer").0, 403);
    assert_eq!(other.admin.get_raw(&list).await.expect("answer").0, 404);
    // Another account cannot revoke these, even naming them under its own account.
    let foreign = other.account_id.to_string();
    let refused = tests::revoke_certificate(&other.admin, &foreign, &integration_serial).await;
    assert_eq!(refused.status, 404);

    for (serial, session) in [(&integration_serial, &integration), (&unit_serial, &unit)] {
        let revoked = tests::revoke_certificate(&fleet.admin, &account, serial).await;
        assert_eq!(revoked.status, 200, "{revoked:?}");
        assert!(revoked.body["revoked_at"].as_str().is_some());
        // The answer came after the session was closed.
        let after = session.publish_point(&json!({"fuel_pct": 3})).await;
        assert!(after.is_err(), "{serial}: the session is closed: {after:?}");
        let again = tests::revoke_certificate(&fleet.admin, &account, serial).await;
        assert_eq!(again.status, 200, "a second revoke changes nothing");
        assert_eq!(again.body["revoked_at"], revoked.body["revoked_at"]);
    }
    let again = tokio::time::timeout(WAIT, SimUnit::connect(options())).await;
    assert!(
        !matches!(again, Ok(Ok(_))),
        "a revoked integration certificate is refused"
    );
    let again = tokio::time::timeout(WAIT, SimUnit::connect(fleet.unit_options("unit1"))).await;
    assert!(
        !matches!(again, Ok(Ok(_))),
        "a revoked unit certificate is refused"
    );
}

/// Certificates issued before the gateway recorded serials can only be revoked by subject
/// and issue instant: every one of the subject's certificates issued before the instant is
/// refused from the answer on (recorded ones are marked revoked too), its live session is
/// closed, newer certificates and other units are untouched, and the rule survives a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_issued_before_an_instant_are_revoked_by_subject() {
    let mut gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let other = Fleet::create(&gateway, "Other").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    fleet.unit_with_asset("unit2", "ex2").await;
    let (ca, issuer) = (ca_pem(&gateway), gateway_issuer(&gateway));
    let now = time::OffsetDateTime::now_utc();
    let (old_cert, old_key) = leaf(
        "unit1",
        &issuer,
        now - time::Duration::hours(1),
        now + time::Duration::days(1),
    );
    let old = |gateway: &TestGateway| {
        UnitOptions::unit("unit1", gateway.mqtt_tls()).with_transport(tls(
            &ca,
            old_cert.clone(),
            old_key.clone(),
        ))
    };
    let session = SimUnit::connect(old(&gateway))
        .await
        .expect("an unrecorded certificate connects");
    let bystander = fleet.connect("unit2").await;

    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .expect("time")
    };
    let path = format!(
        "/v1/accounts/{}/certificates/revoke-issued-before",
        fleet.account_id
    );
    let revoke = |client: &simulator::ApiClient, path: String, subject: &str, at: String| {
        let (client, subject) = (client.clone(), subject.to_owned());
        async move {
            let body = json!({"subject": subject, "issued_before": at});
            client
                .request_raw(Method::POST, &path, Some(&body))
                .await
                .expect("answer")
        }
    };
    let later = rfc3339(now + time::Duration::hours(1));
    let refused = revoke(&fleet.admin, path.clone(), "unit1", later).await;
    assert_eq!(
        (refused.status, refused.body["field"].as_str()),
        (422, Some("issued_before"))
    );
    let not_a_time = revoke(&fleet.admin, path.clone(), "unit1", "yesterday".into()).await;
    assert_eq!(not_a_time.status, 422);
    let viewer = fleet.user(simulator::api::UserRole::Viewer).await;
    assert_eq!(
        revoke(&viewer, path.clone(), "unit1", rfc3339(now))
            .await
            .status,
        403
    );
    assert_eq!(
        revoke(&other.admin, path.clone(), "unit1", rfc3339(now))
            .await
            .status,
        404
    );
    let own = format!(
        "/v1/accounts/{}/certificates/revoke-issued-before",
        other.account_id
    );
    let foreign = revoke(&other.admin, own, "unit1", rfc3339(now)).await;
    assert_eq!(
        foreign.status, 404,
        "another account's unit is not a subject of this one"
    );
    assert_eq!(
        revoke(&fleet.admin, path.clone(), "unit9", rfc3339(now))
            .await
            .status,
        404
    );
    bystander
        .publish_point(&json!({"fuel_pct": 1}))
        .await
        .expect("untouched by refusals");

    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let done = revoke(
        &fleet.admin,
        path.clone(),
        "unit1",
        rfc3339(time::OffsetDateTime::now_utc()),
    )
    .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(
        done.body["revoked_serials"].as_array().map(Vec::len),
        Some(1),
        "the recorded one"
    );
    let after = session.publish_point(&json!({"fuel_pct": 2})).await;
    assert!(
        after.is_err(),
        "the session was closed before the answer: {after:?}"
    );
    for (what, options) in [
        ("unrecorded", old(&gateway)),
        ("recorded", fleet.unit_options("unit1")),
    ] {
        let again = tokio::time::timeout(WAIT, SimUnit::connect(options)).await;
        assert!(
            !matches!(again, Ok(Ok(_))),
            "an older {what} certificate is refused"
        );
    }
    bystander
        .publish_point(&json!({"fuel_pct": 3}))
        .await
        .expect("another unit is untouched");

    // Certificates carry their issue instant to the second: one issued a second later passes.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let now = time::OffsetDateTime::now_utc();
    let (new_cert, new_key) = leaf(
        "unit1",
        &issuer,
        now - time::Duration::hours(1),
        now + time::Duration::days(1),
    );
    let new = |gateway: &TestGateway| {
        UnitOptions::unit("unit1", gateway.mqtt_tls()).with_transport(tls(
            &ca,
            new_cert.clone(),
            new_key.clone(),
        ))
    };
    drop(
        SimUnit::connect(new(&gateway))
            .await
            .expect("a newer certificate connects"),
    );

    gateway.restart();
    let again = tokio::time::timeout(WAIT, SimUnit::connect(old(&gateway))).await;
    assert!(!matches!(again, Ok(Ok(_))), "the rule survives a restart");
    SimUnit::connect(new(&gateway))
        .await
        .expect("and still lets the newer one in");
}

/// Two integration certificates of one account: the second is refused while the first
/// holds the account's integration session (it used to take the session over, and two
/// reconnecting platforms took it from each other in a loop with neither getting the feed);
/// the first keeps its feed, and the second connects once the first has gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_integration_certificate_waits_for_the_first_rather_than_evicting_it() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let (first, second) = (
        integration_over_tls(&fleet, &gateway).await,
        integration_over_tls(&fleet, &gateway).await,
    );
    let holder = SimUnit::connect(first).await.expect("the first connects");
    let topic = format!("/tenants/{}/assets/ex1/telemetry", fleet.account_id);
    holder
        .subscribe(&topic, QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    assert!(
        SimUnit::connect(second.clone()).await.is_err(),
        "another certificate is refused while the session is held"
    );
    let unit = fleet.connect("unit1").await;
    unit.publish_point(&json!({"fuel_pct": 7}))
        .await
        .expect("acked");
    let message = holder.next_message(WAIT).await.expect("the feed goes on");
    assert_eq!(message.json().expect("json")["fuel_pct"], 7.0);
    drop(holder);
    let later = tests::eventually(|| {
        let second = second.clone();
        async move { SimUnit::connect(second).await.ok() }
    })
    .await;
    assert!(
        later.is_some(),
        "the second connects once the first is gone"
    );
}
