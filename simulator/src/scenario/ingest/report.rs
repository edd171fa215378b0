//! The ingest run's report: the figures, what makes a run clean, and the ratio to the bare
//! broker of the baseline, stated once in the report model (`crate::report`) that renders
//! them as text, page and JSON.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::api::AccountId;
use crate::report::html::{
    memory_chart, percentile_chart, rate_chart, rate_lines, rate_series, timeline_figures,
    MEMORY_CAPTION,
};
use crate::report::svg::PALETTE;
use crate::report::{Check, Outcome, ScenarioReport, Section};
use crate::scenario::baseline::BaselineReport;
use crate::scenario::measure::delivery_checks;
use crate::scenario::timeline::Timeline;
use crate::stats::{as_seconds, Percentiles};

/// The outcome of one run.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub run_id: String,
    /// The account the run created; its assets are `sim-{run_id}-a{index}`.
    pub account_id: AccountId,
    /// Units that connected and published.
    pub units: usize,
    pub points_sent: u64,
    /// Points the broker acknowledged (PUBACK): the ones the gateway must store.
    pub points_acked: u64,
    /// History rows carrying this run's sequence numbers, duplicates included.
    pub points_stored: u64,
    /// Acknowledged points absent from history.
    pub missing: u64,
    /// History rows beyond the first for the same point.
    pub duplicates: u64,
    /// `point` events on the account's SSE stream.
    pub sse_received: u64,
    /// From the first scheduled send until the last unit had all its acknowledgements
    /// (serialized as seconds).
    #[serde(serialize_with = "as_seconds")]
    pub elapsed: Duration,
    /// `points_acked / elapsed`.
    pub points_per_sec: f64,
    pub publish_to_sse: Percentiles,
    pub publish_to_stored: Percentiles,
    /// Every acknowledged point's round trip from its PUBLISH written to its PUBACK, as the
    /// unit saw it (`AckWaiter::wait_round_trip`). The gateway acknowledges after the
    /// commit that stores the point, so this includes the commit window.
    pub publish_to_ack: Percentiles,
    /// Acknowledgements per second and gateway memory, sampled each second while the units
    /// publish.
    pub timeline: Timeline,
    /// `units × rate`: what the run offered; a throughput below it means something could
    /// not keep up.
    pub offered_points_per_sec: f64,
    /// Whether the gateway run used TLS (the baseline is always plain TCP, so the ratio
    /// then includes the cost of TLS).
    pub gateway_tls: bool,
    /// The same load against a bare rumqttd; `None` when not asked for or not startable
    /// (then `errors` says why).
    pub baseline: Option<BaselineReport>,
    /// `points_per_sec / baseline.points_per_sec`: the gateway's share of what the bare
    /// broker carried. A share of the broker's *limit* only when `baseline_at_limit`.
    pub throughput_ratio: Option<f64>,
    /// Whether the bare broker fell short of the offered rate, so that its throughput is
    /// its limit on this machine; `false`: both only carried the offered load.
    pub baseline_at_limit: Option<bool>,
    pub errors: Vec<String>,
}

impl IngestReport {
    /// Acknowledged points that were also stored, per second. The gateway acknowledges
    /// only after the commit, so this equals `points_per_sec` unless acknowledged points
    /// went missing (which the run reports as an error); the bare broker of the baseline
    /// acknowledges on arrival, so there the two could differ.
    pub fn stored_per_sec(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.points_acked.saturating_sub(self.missing) as f64 / seconds
        } else {
            0.0
        }
    }

    /// `stored_per_sec / baseline.points_per_sec`: the honest share of the bare broker.
    pub fn stored_ratio(&self) -> Option<f64> {
        throughput_ratio(self.stored_per_sec(), self.baseline.as_ref())
    }

    /// Whether any ratio to the baseline is shown; wherever one is, the baseline's
    /// `broker` line goes with it.
    pub fn shows_a_ratio(&self) -> bool {
        self.throughput_ratio.is_some() || self.stored_ratio().is_some()
    }

    /// The bare broker's figures and the ratio, with what the ratio means for this run.
    fn baseline_section(&self, baseline: &BaselineReport) -> Section {
        let limit = if self.baseline_at_limit == Some(true) {
            "The bare broker could not take the offered load, so its throughput is its limit \
             on this machine and the ratio is the gateway's share of that limit."
        } else {
            "The bare broker carried the offered load, so the ratio is not a share of its \
             limit: it only says how much of the offered load the gateway carried relative \
             to it. Offer more (units × rate) to measure the limit."
        };
        let tls = if self.gateway_tls {
            " The gateway run used TLS and the bare broker plain TCP: the ratio includes the \
             cost of TLS."
        } else {
            ""
        };
        let mut section = Section::new("Baseline: the same load against a bare rumqttd")
            .figure("bare broker", &baseline.broker)
            .figure("bare broker address", &baseline.broker_addr)
            .figure("bare broker transport", &baseline.transport)
            .figure("bare rumqttd: units", baseline.units)
            .figure("bare rumqttd: points sent", baseline.points_sent)
            .figure(
                "bare rumqttd: acknowledged / drained by the sink",
                format!("{} / {}", baseline.points_acked, baseline.sink_drained),
            )
            .figure(
                "bare rumqttd: throughput (mean)",
                format!(
                    "{:.1} points/s over {:.2} s",
                    baseline.points_per_sec,
                    baseline.elapsed.as_secs_f64()
                ),
            )
            .figure_if(
                "throughput ratio (gateway ÷ bare rumqttd)",
                self.throughput_ratio.map(|ratio| format!("{ratio:.3}")),
            )
            .figure_if(
                "stored ratio (acknowledged and stored ÷ bare rumqttd)",
                self.stored_ratio().map(|ratio| format!("{ratio:.3}")),
            )
            .note(format!("{limit}{tls}"));
        for error in &baseline.errors {
            section = section.note(format!("baseline: {error}"));
        }
        section
    }

    /// Throughput over time: the gateway's series and, with a baseline, the bare broker's on
    /// the same axes.
    fn throughput_section(&self, section: Section) -> Section {
        let title = "Throughput: points acknowledged per second";
        let Some(baseline) = &self.baseline else {
            return section.chart(
                rate_chart(title, "acknowledged/s", &self.timeline),
                "Acknowledgements (PUBACK) counted once a second while the units publish.",
            );
        };
        let lines = vec![
            rate_series("Fleetgate", PALETTE[0], &self.timeline),
            rate_series("bare rumqttd", PALETTE[1], &baseline.timeline),
        ];
        section.chart(
            rate_lines(title, lines),
            "Acknowledgements (PUBACK) counted once a second while the units publish, for the \
             gateway and for the same load against the bare broker (run first, on its own).",
        )
    }
}

/// `gateway / baseline` when both are measured and the baseline carried anything.
pub(crate) fn throughput_ratio(
    gateway_per_sec: f64,
    baseline: Option<&BaselineReport>,
) -> Option<f64> {
    let baseline_per_sec = baseline?.points_per_sec;
    (baseline_per_sec > 0.0 && gateway_per_sec.is_finite())
        .then(|| gateway_per_sec / baseline_per_sec)
}

impl ScenarioReport for IngestReport {
    const SCENARIO: &'static str = "ingest";

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn errors(&self) -> &[String] {
        &self.errors
    }

    fn checks(&self) -> Vec<Check> {
        let baseline = match &self.baseline {
            None => Check::new("bare broker drained", Outcome::NotJudged, "no baseline ran"),
            Some(baseline) => Check::holds(
                "bare broker drained",
                baseline.is_clean(),
                format!(
                    "{} sent, {} acknowledged, {} drained, {} errors",
                    baseline.points_sent,
                    baseline.points_acked,
                    baseline.sink_drained,
                    baseline.errors.len()
                ),
            ),
        };
        let mut checks = delivery_checks(
            self.points_sent,
            self.points_acked,
            self.missing,
            self.duplicates,
            self.sse_received,
            self.errors.len(),
        );
        checks.push(baseline);
        checks
    }

    fn headline(&self) -> String {
        format!(
            "ingest run {} (account {}): {} units",
            self.run_id, self.account_id, self.units
        )
    }

    fn clean_means(&self) -> String {
        "every acknowledged point stored exactly once and delivered live".into()
    }

    fn sections(&self) -> Vec<Section> {
        let transport = if self.gateway_tls {
            "TLS (mutual)"
        } else {
            "plain TCP"
        };
        let figures = Section::new("Figures")
            .figure("account", &self.account_id)
            .figure("units", self.units)
            .figure("points sent", self.points_sent)
            .figure("points acknowledged", self.points_acked)
            .figure("points stored (rows)", self.points_stored)
            .figure("missing", self.missing)
            .figure("duplicates", self.duplicates)
            .figure("delivered via SSE", self.sse_received)
            .figure("elapsed", format!("{:.2} s", self.elapsed.as_secs_f64()))
            .figure(
                "throughput (mean)",
                format!("{:.1} points/s", self.points_per_sec),
            )
            .figure(
                "offered load (units × rate)",
                format!("{:.1} points/s", self.offered_points_per_sec),
            )
            .figure("gateway transport", transport);
        let mut sections = vec![timeline_figures(figures, &self.timeline, "points")];
        let mut latencies = vec![
            ("publish→ack", &self.publish_to_ack),
            ("publish→SSE", &self.publish_to_sse),
            ("publish→stored", &self.publish_to_stored),
        ];
        if let Some(baseline) = &self.baseline {
            sections.push(self.baseline_section(baseline));
            latencies.push(("bare rumqttd publish→ack", &baseline.publish_to_ack));
            latencies.push(("bare rumqttd publish→sink", &baseline.publish_to_sink));
        }
        let latency = Section::new("Latency").latencies(&latencies);
        let latency = self.throughput_section(latency).chart(
            percentile_chart("Latency percentiles", &latencies),
            "From the unit's PUBLISH to its PUBACK (every acknowledged point, timed by the \
             unit; the gateway acknowledges after the commit that stores the point), from the \
             unit's send to the point on the account's live stream and to the point readable \
             in history (sampled by the storage probe), and (baseline) to the bare broker's \
             PUBACK, which it sends on arrival, and to its sink.",
        );
        sections.push(latency.chart(memory_chart(&self.timeline), MEMORY_CAPTION));
        sections
    }
}

impl fmt::Display for IngestReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&crate::report::text(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::page;
    use crate::scenario::baseline::describe_broker;

    fn report() -> IngestReport {
        IngestReport {
            run_id: "abc".into(),
            account_id: AccountId::new("a1"),
            units: 2,
            points_sent: 20,
            points_acked: 20,
            points_stored: 20,
            missing: 0,
            duplicates: 0,
            sse_received: 20,
            elapsed: Duration::from_millis(1500),
            points_per_sec: 13.3,
            publish_to_sse: Percentiles::default(),
            publish_to_stored: Percentiles::default(),
            publish_to_ack: Percentiles::default(),
            timeline: Timeline::default(),
            offered_points_per_sec: 20.0,
            gateway_tls: false,
            baseline: None,
            throughput_ratio: None,
            baseline_at_limit: None,
            errors: Vec::new(),
        }
    }

    fn baseline(points_per_sec: f64, sink_drained: u64) -> BaselineReport {
        BaselineReport {
            broker: describe_broker(true),
            broker_addr: "127.0.0.1:2".into(),
            transport: "plain TCP, no authentication".into(),
            units: 2,
            points_sent: 20,
            points_acked: 20,
            sink_drained,
            elapsed: Duration::from_millis(500),
            points_per_sec,
            publish_to_sink: Percentiles::default(),
            publish_to_ack: Percentiles {
                samples: 20,
                p50_us: 150,
                p90_us: 250,
                p99_us: 400,
                p999_us: 500,
                max_us: 600,
            },
            timeline: Timeline::steady(4, points_per_sec, None),
            errors: Vec::new(),
        }
    }

    #[test]
    fn ratio_needs_a_baseline_that_carried_something() {
        assert_eq!(throughput_ratio(13.3, None), None);
        let lossy = IngestReport {
            points_acked: 100,
            missing: 40,
            elapsed: Duration::from_secs(2),
            baseline: Some(baseline(60.0, 20)),
            ..report()
        };
        assert_eq!(lossy.stored_per_sec(), 30.0);
        assert_eq!(lossy.stored_ratio(), Some(0.5));
        assert_eq!(throughput_ratio(13.3, Some(&baseline(0.0, 20))), None);
        let ratio = throughput_ratio(10.0, Some(&baseline(40.0, 20))).expect("ratio");
        assert!((ratio - 0.25).abs() < 1e-9);
    }

    #[test]
    fn clean_report_and_its_failure_modes() {
        assert!(report().is_clean());
        let with = |baseline| IngestReport {
            baseline: Some(baseline),
            ..report()
        };
        assert!(with(baseline(40.0, 20)).is_clean());
        assert!(!with(baseline(40.0, 19)).is_clean());
        for dirty in [
            IngestReport {
                missing: 1,
                ..report()
            },
            IngestReport {
                duplicates: 1,
                ..report()
            },
            IngestReport {
                points_acked: 19,
                ..report()
            },
            IngestReport {
                sse_received: 19,
                ..report()
            },
            IngestReport {
                errors: vec!["x".into()],
                ..report()
            },
        ] {
            assert!(!dirty.is_clean(), "{dirty}");
        }
    }

    #[test]
    fn text_and_json_show_the_figures_and_the_ratio() {
        let at_limit = IngestReport {
            baseline: Some(baseline(40.0, 20)),
            throughput_ratio: Some(0.5),
            baseline_at_limit: Some(true),
            gateway_tls: true,
            publish_to_ack: Percentiles {
                samples: 20,
                p50_us: 21_000,
                p90_us: 24_000,
                p99_us: 30_000,
                p999_us: 31_000,
                max_us: 31_000,
            },
            ..report()
        };
        let text = at_limit.to_string();
        for shown in [
            "points sent: 20",
            "publish→ack: p50 21.0 ms · p99 30.0 ms · max 31.0 ms (20 samples)",
            "publish→SSE: no samples",
            "throughput ratio (gateway ÷ bare rumqttd): 0.500",
            "bare broker: rumqttd 0.20.0 (crates.io), plain TCP; the gateway ran TLS",
            "its limit on this machine",
            "includes the cost of TLS",
            "stored exactly once: passed",
            "errors: none",
        ] {
            assert!(text.contains(shown), "{shown} not in {text}");
        }
        let json = crate::report::to_json(&at_limit).expect("json");
        assert_eq!(json["elapsed"], 1.5);
        assert_eq!(json["throughput_ratio"], 0.5);
        assert_eq!(json["baseline"]["sink_drained"], 20);
        assert_eq!(json["baseline"]["elapsed"], 0.5);
        assert_eq!(json["publish_to_ack"]["p50_us"], 21_000);
        assert_eq!(json["checks"][0]["name"], "stored exactly once");
        let below = IngestReport {
            baseline_at_limit: Some(false),
            ..at_limit
        };
        assert!(below.to_string().contains("not a share of its limit"));
        assert!(
            !report().to_string().contains("bare broker:"),
            "no baseline, no broker"
        );
    }

    #[test]
    fn page_draws_both_throughputs_and_memory() {
        let measured = IngestReport {
            timeline: Timeline::steady(4, 200.0, Some(42)),
            baseline: Some(baseline(400.0, 20)),
            throughput_ratio: Some(0.5),
            errors: vec!["unit <u1> said \"no\"".into()],
            ..report()
        };
        let page = page(&measured);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("Fleetgate ingest run abc") && page.contains("NOT clean"));
        assert_eq!(
            page.matches("<svg").count(),
            3,
            "throughput, latency, memory"
        );
        assert_eq!(page.matches("<polyline").count(), 3, "two rates, memory");
        assert!(page.contains("<td>bare rumqttd publish→ack</td><td>20</td><td>150 µs</td>"));
        assert!(page.contains("VmRSS of pid 42") && page.contains("peak RSS"));
        assert!(page.contains("unit &lt;u1&gt; said &quot;no&quot;"));
        crate::report::assert_self_contained(&page);
        let unmeasured = crate::report::page(&report());
        assert!(unmeasured.contains("not measured (no --gateway-pid given)"));
    }
}
