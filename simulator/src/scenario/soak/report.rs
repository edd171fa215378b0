//! What a soak run found, stated in the report model (`crate::report`; its sections and
//! charts are in `page.rs`) for people (text, page) and scripts (JSON, `is_clean`). The verdict is a list of named checks so a dirty run says
//! which promise it broke: points lost or doubled, live delivery short, memory growing,
//! latency creeping, or errors on the way.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::admin::AdminKind;
use super::drift::{Check, Creep, MemoryTrend, Outcome};
use super::window::SoakWindow;
use crate::api::AccountId;
use crate::report::{ScenarioReport, Section};
use crate::stats::{as_seconds, Percentiles};

/// One kind of admin call over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminFigures {
    pub kind: AdminKind,
    pub calls: u64,
    pub failures: u64,
    /// Round trips of the calls that succeeded.
    pub latency: Percentiles,
}

/// The outcome of one soak run.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub run_id: String,
    /// The account the run created; its assets are `sim-{run_id}-a{index}`.
    pub account_id: AccountId,
    /// Its sub-account that the admin loop grants assets to and removes them from.
    pub grantee_account_id: AccountId,
    /// Units that connected and published.
    pub units: usize,
    pub rate_per_unit: f64,
    /// Admin calls per second the loop aimed for.
    pub admin_rate: f64,
    /// The planned length of the load (serialized as seconds).
    #[serde(serialize_with = "as_seconds")]
    pub duration: Duration,
    #[serde(serialize_with = "as_seconds")]
    pub window: Duration,
    pub points_sent: u64,
    /// Points the broker acknowledged (PUBACK): the ones the gateway must store.
    pub points_acked: u64,
    /// History rows carrying this run's sequence numbers, duplicates included.
    pub points_stored: u64,
    pub missing: u64,
    pub duplicates: u64,
    /// `point` events on the account's live stream.
    pub sse_received: u64,
    /// Over the whole run.
    pub publish_to_sse: Percentiles,
    /// One entry per kind, in `AdminKind::ALL` order.
    pub admin: Vec<AdminFigures>,
    pub windows: Vec<SoakWindow>,
    /// The run outlasted the window cap; later windows are not in the series.
    pub windows_truncated: bool,
    pub memory: MemoryTrend,
    pub sse_creep: Creep,
    pub admin_creep: Creep,
    /// The verdict, check by check.
    pub checks: Vec<Check>,
    pub errors: Vec<String>,
}

impl SoakReport {
    /// The names of the failed checks.
    pub fn failed_checks(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|check| check.outcome == Outcome::Failed)
            .map(|check| check.name.as_str())
            .collect()
    }

    /// The figures of one admin kind.
    pub fn admin_kind(&self, kind: AdminKind) -> Option<&AdminFigures> {
        self.admin.iter().find(|figures| figures.kind == kind)
    }
}

impl ScenarioReport for SoakReport {
    const SCENARIO: &'static str = "soak";

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn errors(&self) -> &[String] {
        &self.errors
    }

    fn checks(&self) -> Vec<Check> {
        self.checks.clone()
    }

    fn headline(&self) -> String {
        format!(
            "soak run {} (account {}): {} units × {} points/s for {} s, {} admin calls/s, {} windows of {} s",
            self.run_id,
            self.account_id,
            self.units,
            self.rate_per_unit,
            self.duration.as_secs(),
            self.admin_rate,
            self.windows.len(),
            self.window.as_secs_f64()
        )
    }

    fn clean_means(&self) -> String {
        format!(
            "every acknowledged point stored exactly once and delivered live, no drift over {} \
             s, no errors",
            self.duration.as_secs()
        )
    }

    fn sections(&self) -> Vec<Section> {
        super::page::sections(self)
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&crate::report::text(self))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::scenario::measure::delivery_checks;
    use crate::scenario::soak::drift::{creep_check, latency_creep, memory_check, memory_trend};

    pub(in crate::scenario::soak) fn percentiles(p99_us: u64) -> Percentiles {
        Percentiles {
            samples: 50,
            p50_us: p99_us / 3,
            p90_us: p99_us / 2,
            p99_us,
            p999_us: p99_us,
            max_us: p99_us,
        }
    }

    /// A clean ten-minute run of 10 s windows, memory flat at 80 MiB when `pid` is given.
    pub(in crate::scenario::soak) fn report(pid: Option<u32>) -> SoakReport {
        let windows: Vec<SoakWindow> = (0..60u32)
            .map(|index| SoakWindow {
                index,
                t_end_s: f64::from(index + 1) * 10.0,
                span_s: 10.0,
                acked: 100,
                acked_per_s: 10.0,
                delivered: 100,
                delivered_per_s: 10.0,
                publish_to_sse: percentiles(12_000),
                admin_calls: 20,
                admin_failures: 0,
                admin: percentiles(30_000),
                gateway_rss_kib: pid.map(|_| 80 * 1024),
            })
            .collect();
        let memory = memory_trend(&windows, pid, pid.map(|_| 70 * 1024), 50.0, None);
        let p99s = |admin: bool| -> Vec<Option<u64>> {
            windows
                .iter()
                .map(|w| {
                    Some(if admin {
                        w.admin.p99_us
                    } else {
                        w.publish_to_sse.p99_us
                    })
                })
                .collect()
        };
        let sse_creep = latency_creep("publish→SSE", &p99s(false), 3.0);
        let admin_creep = latency_creep("admin call", &p99s(true), 3.0);
        let mut checks = delivery_checks(6_000, 6_000, 0, 0, 6_000, 0);
        checks.push(memory_check(&memory));
        checks.push(creep_check(&sse_creep));
        checks.push(creep_check(&admin_creep));
        SoakReport {
            run_id: "s1".into(),
            account_id: AccountId::new("acc"),
            grantee_account_id: AccountId::new("sub"),
            units: 10,
            rate_per_unit: 1.0,
            admin_rate: 2.0,
            duration: Duration::from_secs(600),
            window: Duration::from_secs(10),
            points_sent: 6_000,
            points_acked: 6_000,
            points_stored: 6_000,
            missing: 0,
            duplicates: 0,
            sse_received: 6_000,
            publish_to_sse: percentiles(12_000),
            admin: AdminKind::ALL
                .iter()
                .map(|kind| AdminFigures {
                    kind: *kind,
                    calls: 240,
                    failures: 0,
                    latency: percentiles(20_000 + 5_000 * kind.index() as u64),
                })
                .collect(),
            windows,
            windows_truncated: false,
            memory,
            sse_creep,
            admin_creep,
            checks,
            errors: Vec::new(),
        }
    }

    #[test]
    fn a_steady_run_is_clean_and_says_so() {
        let report = report(Some(42));
        assert!(report.is_clean(), "{report}");
        assert!(report.verdict().starts_with("clean"));
        assert!(report.failed_checks().is_empty());
        let text = report.to_string();
        assert!(text.contains("points stored (rows): 6000"), "{text}");
        assert!(text.contains("memory growth"), "{text}");
        assert!(text.contains("errors: none"), "{text}");
        // Without a pid memory is not judged, and that alone does not dirty the run.
        let unmeasured = super::tests::report(None);
        assert!(unmeasured.is_clean());
        assert!(unmeasured
            .checks
            .iter()
            .any(|check| check.name == "memory growth" && check.outcome == Outcome::NotJudged));
    }

    #[test]
    fn each_broken_promise_names_its_check() {
        let failing = |checks: Vec<Check>| {
            let mut dirty = report(Some(1));
            dirty.checks.extend(checks);
            dirty
        };
        let lost = failing(delivery_checks(10, 10, 1, 0, 10, 0));
        assert!(!lost.is_clean());
        assert_eq!(lost.failed_checks(), vec!["stored exactly once"]);
        assert!(lost.verdict().contains("stored exactly once"));
        let doubled = failing(delivery_checks(10, 10, 0, 2, 10, 0));
        assert_eq!(doubled.failed_checks(), vec!["stored exactly once"]);
        let unacked = failing(delivery_checks(10, 9, 0, 0, 9, 0));
        assert_eq!(unacked.failed_checks(), vec!["stored exactly once"]);
        let short = failing(delivery_checks(10, 10, 0, 0, 9, 0));
        assert_eq!(short.failed_checks(), vec!["delivered live"]);
        let with_errors = failing(delivery_checks(10, 10, 0, 0, 10, 3));
        assert_eq!(with_errors.failed_checks(), vec!["no errors"]);

        let mut errors_only = report(Some(1));
        errors_only.errors.push("boom".into());
        assert!(!errors_only.is_clean());
        assert_eq!(errors_only.verdict(), "NOT clean: 1 errors");
    }

    #[test]
    fn report_serializes_durations_as_seconds_and_kinds_by_name() {
        let json = serde_json::to_value(report(Some(3))).expect("json");
        assert_eq!(json["duration"], 600.0);
        assert_eq!(json["window"], 10.0);
        assert_eq!(json["admin"][2]["kind"], "key_create");
        assert_eq!(json["windows"].as_array().map(Vec::len), Some(60));
        assert_eq!(json["checks"][0]["outcome"], "passed");
        assert_eq!(json["memory"]["gateway_pid"], 3);
    }
}
