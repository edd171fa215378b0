//! What an operator scrapes from `/metrics` (docs/design.md section 5.5): the process
//! metrics, HTTP requests by route template and status (never by raw path), the transport's
//! refusals by reason, and the optional bearer token of `--metrics-token-file`.

use rumqttc::mqttbytes::v4::{self, Packet};
use rumqttc::mqttbytes::QoS;
use tests::raw::RawClient;
use tests::{Fleet, TestGateway, WAIT};

/// `GET /metrics` with an optional `Authorization` header: status, content type, body.
async fn scrape(gateway: &TestGateway, authorization: Option<&str>) -> (u16, String, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", gateway.http_base()));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.timeout(WAIT).send().await.expect("an answer");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("a body"))
}

/// The value of the sample line `series value` (name and labels exactly as written).
fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_metrics_are_there_and_plausible() {
    let gateway = TestGateway::start();
    let (status, content_type, text) = scrape(&gateway, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"), "one closing line");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    let rss = value_of(&text, "process_resident_memory_bytes").expect("RSS");
    assert!(rss > 1024.0 * 1024.0, "at least a MiB resident: {rss}");
    let open = value_of(&text, "process_open_fds").expect("open fds");
    let max = value_of(&text, "process_max_fds").expect("max fds");
    assert!(open > 0.0 && open <= max, "{open} of {max}");
    assert!(value_of(&text, "process_cpu_seconds_total").expect("CPU") >= 0.0);
    assert!(value_of(&text, "process_virtual_memory_bytes").expect("VM") >= rss);
    let start = value_of(&text, "process_start_time_seconds").expect("start");
    let now_s = gateway.now_ms() as f64 / 1000.0;
    // The test process started the gateway in itself, at most a few minutes ago (the
    // kernel's start time is in 10 ms ticks).
    assert!(
        start <= now_s + 1.0 && start > now_s - 3600.0,
        "{start} vs {now_s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_by_route_template_and_status_never_by_path() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex-secret-41").await;
    for _ in 0..3 {
        let (status, _) = fleet
            .admin
            .get_raw("/v1/assets/ex-secret-41/telemetry")
            .await
            .expect("history");
        assert_eq!(status, 200);
    }
    let (status, _) = fleet
        .admin
        .get_raw("/v1/assets/ex-missing-42")
        .await
        .expect("answer");
    assert_eq!(status, 404);
    let (status, _) = fleet
        .admin
        .get_raw("/v1/no/such/path-43")
        .await
        .expect("answer");
    assert_eq!(status, 404);

    let (_, _, text) = scrape(&gateway, None).await;
    let history = "method=\"GET\",route=\"/v1/assets/{x}/telemetry\",status=\"200\"";
    let requests = format!("fleetgate_http_requests_total{{{history}}}");
    assert_eq!(value_of(&text, &requests), Some(3.0), "{text}");
    let count = format!("fleetgate_http_request_duration_seconds_count{{{history}}}");
    assert_eq!(value_of(&text, &count), Some(3.0), "{text}");
    let every = format!("fleetgate_http_request_duration_seconds_bucket{{le=\"+Inf\",{history}}}");
    assert_eq!(value_of(&text, &every), Some(3.0), "{text}");
    let sum = format!("fleetgate_http_request_duration_seconds_sum{{{history}}}");
    assert!(value_of(&text, &sum).is_some_and(|s| s > 0.0), "{text}");
    let missing =
        "fleetgate_http_requests_total{method=\"GET\",route=\"/v1/assets/{x}\",status=\"404\"}";
    assert_eq!(value_of(&text, missing), Some(1.0), "{text}");
    let unmatched =
        "fleetgate_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}";
    assert_eq!(value_of(&text, unmatched), Some(1.0), "{text}");
    for raw in ["ex-secret-41", "ex-missing-42", "path-43"] {
        assert!(!text.contains(raw), "{raw} appears in a label:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_token_is_required_when_configured() {
    let secrets = tempfile::tempdir().expect("tempdir");
    let token_file = secrets.path().join("metrics-token");
    std::fs::write(&token_file, "scrape-me-7f3a\n").expect("write the token");
    let configured = token_file.clone();
    let gateway = TestGateway::start_with(move |config| {
        config.metrics_token_file = Some(configured.clone());
    });
    let admin = format!("Bearer {}", gateway.admin_token);
    for refused in [
        None,
        Some("Bearer scrape-me-7f3b"),
        Some("scrape-me-7f3a"),
        Some(admin.as_str()),
    ] {
        let (status, _, body) = scrape(&gateway, refused).await;
        assert_eq!(status, 401, "{refused:?}: {body}");
        assert!(!body.contains("process_"), "{refused:?} read the metrics");
    }
    let (status, _, text) = scrape(&gateway, Some("Bearer scrape-me-7f3a")).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        value_of(&text, "fleetgate_auth_failures_total"),
        Some(4.0),
        "{text}"
    );
    let refused = "fleetgate_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"401\"}";
    assert_eq!(value_of(&text, refused), Some(4.0), "{text}");
    let health = reqwest::get(format!("{}/healthz", gateway.http_base()))
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200, "/healthz stays open");
}

#[test]
fn an_empty_metrics_token_file_stops_the_start() {
    let secrets = tempfile::tempdir().expect("tempdir");
    let token_file = secrets.path().join("metrics-token");
    std::fs::write(&token_file, "\n").expect("write");
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = gateway::Config::with_data_dir(data.path());
    config.http_addr = "127.0.0.1:0".parse().expect("addr");
    config.mqtt_tls_addr = None;
    config.mqtt_plain_addr = Some("127.0.0.1:0".parse().expect("addr"));
    config.metrics_token_file = Some(token_file);
    let err = gateway::Gateway::start(config).expect_err("refused");
    assert!(
        format!("{err:#}").contains("--metrics-token-file"),
        "{err:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_refusals_and_handshakes_are_counted_by_reason() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    fleet.unit_with_asset("unit2", "ex2").await;
    // A TLS unit completes its handshake.
    let _unit = fleet.connect("unit1").await;
    assert!(fleet.metric_is("fleetgate_mqtt_handshakes_total", 1).await);

    // Another unit subscribes to the first one's keys.
    let (mut unit, ack) = RawClient::connect(&gateway.mqtt_plain(), "unit2", 30, true).await;
    assert!(ack.is_some());
    let mut foreign = v4::Subscribe::new("/tenants/unit1/keys", QoS::AtLeastOnce);
    foreign.pkid = 7;
    unit.send(Packet::Subscribe(foreign)).await;
    match unit.recv(WAIT).await {
        Some(Packet::SubAck(ack)) => {
            assert_eq!(ack.return_codes, vec![v4::SubscribeReasonCode::Failure]);
        }
        other => panic!("expected a SUBACK, got {other:?}"),
    }
    let acl = "fleetgate_mqtt_acl_denied_total{kind=\"subscribe\",reason=\"other_tenant\"}";
    assert!(fleet.metric_is(acl, 1).await, "{acl} 1");
    assert!(
        fleet.metric_is("fleetgate_mqtt_sessions", 2).await,
        "the TLS and the raw unit"
    );

    // Refused at or before CONNECT.
    let (_, ack) = RawClient::connect(&gateway.mqtt_plain(), "nobody-known", 30, true).await;
    assert!(ack.is_some_and(|ack| ack.code != v4::ConnectReturnCode::Success));
    let mut garbage = RawClient::open(&gateway.mqtt_plain()).await;
    // A PINGREQ where the CONNECT must be.
    garbage.send_bytes(&[0xC0, 0x00]).await;
    assert!(garbage.closed(WAIT).await);
    drop(RawClient::open(&gateway.mqtt_plain()).await);
    for reason in [
        "unknown_identity",
        "malformed_connect",
        "closed_before_connect",
    ] {
        let series = format!("fleetgate_mqtt_refusals_total{{reason=\"{reason}\"}}");
        assert!(fleet.metric_is(&series, 1).await, "{series} 1");
    }
}
