//! The simulator's ingest scenario against a real gateway: every acknowledged point is
//! stored exactly once and delivered live. Small and bounded; the load figures come from
//! the release-build runs in docs/benchmarks.md. Both runs check the PUBACK round trip
//! (`publish_to_ack`) in the JSON report. One run also carries the bare-rumqttd baseline
//! (rumqttd from crates.io, started inside this test process over plain TCP) and checks its
//! accounting, the ratio, and that the report names that broker.

use simulator::{run_ingest, IngestConfig, IngestReport, ScenarioReport};
use tests::{check_written_report, sampled_run, tls_target, TestGateway};

/// `units` TLS units at 10 points/s for 2 s, with or without the baseline, run clean;
/// the gateway's memory from its pid when `pid`, else from its `/metrics`.
async fn clean_run(units: usize, baseline: bool, pid: bool) -> IngestReport {
    let gateway = TestGateway::start_with_window(std::time::Duration::from_millis(20));
    let config = IngestConfig {
        units,
        rate_per_unit: 10.0,
        duration: std::time::Duration::from_secs(2),
        baseline,
        run: match pid {
            true => sampled_run(),
            false => Default::default(),
        },
        ..IngestConfig::for_target(tls_target(&gateway))
    };
    let report = run_ingest(&config).await.expect("scenario runs");
    eprintln!("{report}");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.points_sent, units as u64 * 10 * 2);
    report
}

/// The report's JSON, as written, has `publish_to_ack` with samples and ordered
/// percentiles.
fn check_publish_to_ack(report: &IngestReport) -> serde_json::Value {
    let (json, _) = check_written_report(report);
    let ack = &json["publish_to_ack"];
    let samples = ack["samples"].as_u64().expect("publish_to_ack.samples");
    assert!(samples > 0, "no PUBACK round trip measured: {ack}");
    assert_eq!(samples, report.points_acked, "one per acknowledged point");
    let p50 = ack["p50_us"].as_u64().expect("publish_to_ack.p50_us");
    let p99 = ack["p99_us"].as_u64().expect("publish_to_ack.p99_us");
    assert!(p50 <= p99, "p50 {p50} µs > p99 {p99} µs");
    assert!(report.to_string().contains("publish→ack:"), "{report}");
    json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_point_is_stored_exactly_once_over_tls() {
    let report = clean_run(20, false, false).await;
    assert_eq!(report.points_stored, report.points_acked);
    assert_eq!(report.missing, 0);
    assert_eq!(report.duplicates, 0);
    assert!(report.sse_received >= report.points_acked);
    assert!(report.publish_to_sse.samples > 0 && report.publish_to_stored.samples > 0);
    // No --gateway-pid: memory is read from the gateway's /metrics instead.
    assert_eq!(report.timeline.gateway_pid, None);
    assert!(
        report.timeline.has_memory(),
        "{:?}",
        report.timeline.memory_error
    );
    check_publish_to_ack(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_drains_what_it_acknowledged_and_gives_a_ratio() {
    let report = clean_run(10, true, true).await;
    let baseline = report.baseline.as_ref().expect("baseline ran");
    assert!(baseline.is_clean(), "{baseline:?}");
    assert_eq!(baseline.points_sent, 10 * 10 * 2);
    assert_eq!(baseline.sink_drained, baseline.points_acked);
    assert_eq!(baseline.points_acked, baseline.points_sent);
    assert_eq!(baseline.publish_to_sink.samples, baseline.sink_drained);
    assert!(report.gateway_tls, "the report says the ratio includes TLS");
    assert_eq!(report.offered_points_per_sec, 100.0);
    let ratio = report.throughput_ratio.expect("ratio");
    assert!(ratio.is_finite() && ratio > 0.0, "{ratio}");
    assert!(report.baseline_at_limit.is_some());
    // Same load, same units: the gateway's side is unchanged by the baseline.
    assert_eq!(report.points_sent, baseline.points_sent);
    let json = check_publish_to_ack(&report);
    assert_eq!(
        json["baseline"]["broker"],
        "rumqttd 0.20.0 (crates.io), plain TCP; the gateway ran TLS"
    );
    assert!(json["baseline"]["publish_to_ack"]["samples"].as_u64() > Some(0));
    assert!(report
        .to_string()
        .contains("bare broker: rumqttd 0.20.0 (crates.io), plain TCP; the gateway ran TLS"));
}
