//! The simulator's soak scenario against a real gateway over TLS, cut short: a few seconds
//! of steady telemetry with the admin loop churning grants, keys and history reads, judged
//! in windows, and its report written to disk. It guards the soak's machinery (windows,
//! per-kind admin figures, memory sampling, the exactly-once check) rather than the
//! gateway's long-run behaviour, which the release runs in docs/benchmarks.md measure.

use std::time::Duration;

use simulator::scenario::soak::{AdminKind, Outcome};
use simulator::{run_soak, ScenarioReport, SoakConfig};
use tests::{sampled_run, tls_target, TestGateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_is_clean_windowed_and_written() {
    let gateway = TestGateway::start_with_window(Duration::from_millis(20));
    let config = SoakConfig {
        units: 4,
        rate_per_unit: 5.0,
        duration: Duration::from_secs(6),
        window: Duration::from_secs(2),
        admin_rate: 4.0,
        // Judged, but never failed here: on a shared CI machine a neighbour's burst can
        // triple one window's p99, and this test is about the machinery, not the gateway's
        // speed.
        max_latency_creep: simulator::scenario::soak::MAX_CREEP_LIMIT,
        run: sampled_run(),
        ..SoakConfig::for_target(tls_target(&gateway))
    };
    let report = run_soak(&config).await.expect("scenario runs");

    assert!(report.is_clean(), "{report}");
    assert_eq!(report.points_sent, 4 * 5 * 6);
    assert_eq!(report.points_acked, report.points_sent);
    assert_eq!(report.points_stored, report.points_acked);
    assert!(report.sse_received >= report.points_acked);
    assert!(report.windows.len() >= 2, "{:?}", report.windows);
    let acked_in_windows: u64 = report.windows.iter().map(|window| window.acked).sum();
    assert_eq!(acked_in_windows, report.points_acked);
    for kind in AdminKind::ALL {
        let figures = report.admin_kind(kind).expect("every kind is reported");
        assert!(figures.calls > 0, "no {kind} call was made: {report}");
        assert_eq!(figures.failures, 0, "{report}");
        assert_eq!(figures.latency.samples, figures.calls);
    }
    assert!(report.publish_to_sse.samples > 0);
    assert!(report.memory.samples >= 2, "{:?}", report.memory);
    assert!(report.memory.baseline_mib.is_some());
    assert!(report
        .windows
        .iter()
        .all(|window| window.gateway_rss_kib.is_some()));
    // Six seconds cannot support an hourly slope: reported as not judged, not failed.
    let memory = report
        .checks
        .iter()
        .find(|check| check.name == "memory growth")
        .expect("memory check");
    assert_eq!(memory.outcome, Outcome::NotJudged, "{memory:?}");
    for creep in [&report.sse_creep, &report.admin_creep] {
        assert!(creep.windows_compared >= 1, "{creep:?}");
        assert!(creep.ratio.is_some(), "{creep:?}");
    }

    let (json, html) = tests::read_written(&report);
    assert_eq!(
        json["windows"].as_array().map(Vec::len),
        Some(report.windows.len())
    );
    assert!(html.contains("Latency per window"));
}
