//! The ingest run's report: the figures, what makes a run clean, the ratio to the bare
//! broker of the baseline, and the text the command line prints (the HTML page is
//! `report::html::ingest_page`).

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::api::AccountId;
use crate::scenario::baseline::BaselineReport;
use crate::scenario::timeline::Timeline;
use crate::stats::Percentiles;

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

pub(crate) fn as_seconds<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

impl IngestReport {
    /// Everything sent was acknowledged, stored exactly once and delivered live, and
    /// nothing went wrong on the way.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self.missing == 0
            && self.duplicates == 0
            && self.points_acked == self.points_sent
            && self.sse_received >= self.points_acked
            && self.baseline.as_ref().is_none_or(BaselineReport::is_clean)
    }

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

impl fmt::Display for IngestReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "ingest run {} (account {}): {} units",
            self.run_id, self.account_id, self.units
        )?;
        writeln!(
            formatter,
            "  points:     {} sent, {} acknowledged, {} stored, {} missing, {} duplicates, {} via SSE",
            self.points_sent,
            self.points_acked,
            self.points_stored,
            self.missing,
            self.duplicates,
            self.sse_received
        )?;
        writeln!(
            formatter,
            "  throughput: {:.1} points/s over {:.2} s",
            self.points_per_sec,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(formatter, "  publish→ack:    {}", self.publish_to_ack)?;
        writeln!(formatter, "  publish→SSE:    {}", self.publish_to_sse)?;
        writeln!(formatter, "  publish→stored: {}", self.publish_to_stored)?;
        writeln!(
            formatter,
            "  offered:    {:.1} points/s (units × rate), gateway over {}",
            self.offered_points_per_sec,
            if self.gateway_tls { "TLS" } else { "plain TCP" }
        )?;
        if let Some(baseline) = &self.baseline {
            writeln!(formatter, "{baseline}")?;
        }
        if let Some(ratio) = self.throughput_ratio {
            let meaning = if self.baseline_at_limit == Some(true) {
                "of the bare broker's limit"
            } else {
                "of the bare broker's throughput, which only carried the offered load"
            };
            let tls = if self.gateway_tls {
                " (gateway over TLS, bare broker plain)"
            } else {
                ""
            };
            writeln!(formatter, "  ratio:      {ratio:.3} {meaning}{tls}")?;
        }
        if let Some(ratio) = self.stored_ratio() {
            writeln!(
                formatter,
                "  stored:     {:.1} points/s acknowledged and stored, ratio {ratio:.3}",
                self.stored_per_sec()
            )?;
        }
        if let (Some(baseline), true) = (&self.baseline, self.shows_a_ratio()) {
            writeln!(formatter, "  baseline:   {}", baseline.broker)?;
        }
        if self.errors.is_empty() {
            write!(formatter, "  errors: none")
        } else {
            write!(formatter, "  errors ({}):", self.errors.len())?;
            for error in &self.errors {
                write!(formatter, "\n    - {error}")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            publish_to_ack: Percentiles::default(),
            timeline: Timeline::default(),
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
    fn a_baseline_that_lost_points_makes_the_run_unclean() {
        let with = |baseline| IngestReport {
            baseline: Some(baseline),
            ..report()
        };
        assert!(with(baseline(40.0, 20)).is_clean());
        assert!(!with(baseline(40.0, 19)).is_clean());
    }

    #[test]
    fn report_shows_the_ratio_and_what_it_means() {
        let at_limit = IngestReport {
            baseline: Some(baseline(40.0, 20)),
            throughput_ratio: Some(0.5),
            baseline_at_limit: Some(true),
            gateway_tls: true,
            ..report()
        };
        let text = at_limit.to_string();
        assert!(text.contains("bare rumqttd"), "{text}");
        assert!(text.contains("0.500 of the bare broker's limit"), "{text}");
        assert!(text.contains("gateway over TLS"), "{text}");
        assert!(
            text.contains("baseline:   rumqttd 0.20.0 (crates.io), plain TCP; the gateway ran TLS"),
            "{text}"
        );
        let json = serde_json::to_value(&at_limit).expect("json");
        assert_eq!(json["throughput_ratio"], 0.5);
        assert_eq!(json["baseline"]["sink_drained"], 20);
        assert_eq!(json["baseline"]["elapsed"], 0.5);
        assert_eq!(
            json["baseline"]["broker"],
            "rumqttd 0.20.0 (crates.io), plain TCP; the gateway ran TLS"
        );
        let below = IngestReport {
            baseline_at_limit: Some(false),
            ..at_limit
        };
        assert!(below
            .to_string()
            .contains("which only carried the offered load"));
    }

    #[test]
    fn clean_report_and_its_failure_modes() {
        assert!(report().is_clean());
        assert!(!IngestReport {
            missing: 1,
            ..report()
        }
        .is_clean());
        assert!(!IngestReport {
            duplicates: 1,
            ..report()
        }
        .is_clean());
        assert!(!IngestReport {
            points_acked: 19,
            ..report()
        }
        .is_clean());
        assert!(!IngestReport {
            sse_received: 19,
            ..report()
        }
        .is_clean());
        assert!(!IngestReport {
            errors: vec!["x".into()],
            ..report()
        }
        .is_clean());
    }

    #[test]
    fn report_serializes_elapsed_as_seconds_and_displays() {
        let json = serde_json::to_value(report()).expect("json");
        assert_eq!(json["elapsed"], 1.5);
        assert_eq!(json["publish_to_sse"]["samples"], 0);
        assert_eq!(json["publish_to_ack"]["samples"], 0);
        let text = report().to_string();
        assert!(text.contains("20 sent, 20 acknowledged, 20 stored"));
        assert!(text.contains("publish→ack:    no samples"), "{text}");
        assert!(text.contains("errors: none"));
        assert!(!text.contains("baseline:"), "no baseline, no broker line");
    }

    #[test]
    fn publish_to_ack_is_shown_next_to_the_other_latencies() {
        let measured = IngestReport {
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
        let text = measured.to_string();
        assert!(
            text.contains("publish→ack:    p50 21.0 ms · p99 30.0 ms · max 31.0 ms (20 samples)"),
            "{text}"
        );
        let json = serde_json::to_value(&measured).expect("json");
        assert_eq!(json["publish_to_ack"]["samples"], 20);
        assert_eq!(json["publish_to_ack"]["p50_us"], 21_000);
        assert_eq!(json["publish_to_ack"]["p99_us"], 30_000);
    }
}
