//! What a scale run found: how many sessions the gateway held, what an idle unit (connected,
//! subscribed, holding its key set) costs, which limit stopped the run first, whether the
//! gateway still served every unit at full load, and (when asked for) the same memory
//! figure for mosquitto side by side; as text, JSON and a page with charts.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use super::mosquitto::MosquittoReport;
use super::unit::{lock, Tally};
use super::{MemorySnapshot, ScaleConfig};
use crate::api::AccountId;
use crate::report::html::{memory_chart, percentile_chart, MEMORY_CAPTION};
use crate::report::svg::{Series, PALETTE};
use crate::report::{Chart, Check, Outcome, ScenarioReport, Section};
use crate::scenario::Timeline;
use crate::stats::Percentiles;

/// How often one kind of failure happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureCount {
    pub failure: String,
    pub count: u64,
}

/// The first failed opening: the limit the run hit first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstLimit {
    pub failure: String,
    /// Sessions already open when it happened.
    pub sessions_open_before: u64,
    pub after_s: f64,
}

/// Resident memory before the sessions, with all of them open, and at the end of the hold;
/// and what one session costs on each side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryFigures {
    pub before: MemorySnapshot,
    pub full: MemorySnapshot,
    pub held: MemorySnapshot,
    /// (gateway RSS with every unit idle − before) ÷ sessions opened, KiB: the memory of
    /// one idle unit (connected, subscribed, holding its key set).
    pub gateway_kib_per_session: Option<f64>,
    pub simulator_kib_per_session: Option<f64>,
}

impl MemoryFigures {
    pub(crate) fn new(before: MemorySnapshot, full: MemorySnapshot, held: MemorySnapshot) -> Self {
        Self {
            before,
            full,
            held,
            gateway_kib_per_session: None,
            simulator_kib_per_session: None,
        }
    }

    pub(crate) fn per_session(&mut self, sessions: u64) {
        if sessions == 0 {
            return;
        }
        let per = |before: Option<u64>, full: Option<u64>| {
            Some(full?.saturating_sub(before?) as f64 / sessions as f64)
        };
        self.gateway_kib_per_session = per(self.before.gateway_kib, self.full.gateway_kib);
        self.simulator_kib_per_session = per(self.before.simulator_kib, self.full.simulator_kib);
    }
}

/// The result of a scale run.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    pub run_id: String,
    pub account_id: AccountId,
    pub units: usize,
    pub sources: Vec<String>,
    pub tls: bool,
    pub connect_parallelism: usize,
    pub hold_s: f64,
    pub registration_s: f64,
    pub registrations_per_s: f64,
    /// Sessions opened (CONNACK received).
    pub sessions_opened: u64,
    /// Units that received their key set after subscribing to it.
    pub key_sets_received: u64,
    pub sessions_failed: u64,
    /// Units not tried after too many failures.
    pub units_skipped: u64,
    pub failures: Vec<FailureCount>,
    pub first_limit: Option<FirstLimit>,
    pub connect_phase_s: f64,
    pub sessions_per_s: f64,
    /// Sessions still open when the checks started (after the hold).
    pub sessions_open_at_checks: u64,
    /// Sessions the broker closed while held.
    pub sessions_dropped: u64,
    /// Why sessions were dropped, and key-set problems (a refused subscription, a set that
    /// did not parse); the first few.
    pub drop_reasons: Vec<String>,
    pub ping_answers: u64,
    pub probes: usize,
    pub probe_units_connected: u64,
    pub probe_acks: u64,
    /// Probe units whose point the gateway counted (device status `points` ≥ 1).
    pub probes_counted: u64,
    /// From the start of an opening to CONNACK (TCP + TLS + MQTT).
    pub connect_latency: Percentiles,
    /// SUBSCRIBE to the key set → the key set received.
    pub key_set_latency: Percentiles,
    /// PINGREQ → PINGRESP with every session open.
    pub ping_rtt: Percentiles,
    /// Probe PUBLISH → PUBACK with every session open.
    pub probe_ack_latency: Percentiles,
    pub memory: MemoryFigures,
    pub gateway_open_files: Option<u64>,
    pub simulator_open_files: Option<u64>,
    pub timeline: Timeline,
    /// mosquitto side by side (`--mosquitto`); `None` when not run.
    pub mosquitto: Option<MosquittoReport>,
    pub errors: Vec<String>,
}

/// What `report::build` needs from the run.
pub(crate) struct Inputs<'a> {
    pub(crate) config: &'a ScaleConfig,
    pub(crate) run_id: String,
    pub(crate) account_id: AccountId,
    pub(crate) registration: Duration,
    pub(crate) connect_phase: Duration,
    pub(crate) tally: &'a Tally,
    pub(crate) open_before_checks: u64,
    pub(crate) probes_counted: u64,
    pub(crate) memory: MemoryFigures,
    pub(crate) gateway_open_files: Option<u64>,
    pub(crate) simulator_open_files: Option<u64>,
    pub(crate) timeline: Timeline,
    pub(crate) mosquitto: Option<MosquittoReport>,
    pub(crate) errors: Vec<String>,
}

fn per_second(count: u64, over: Duration) -> f64 {
    if over.is_zero() {
        0.0
    } else {
        count as f64 / over.as_secs_f64()
    }
}

pub(crate) fn build(inputs: Inputs<'_>) -> ScaleReport {
    let Inputs { config, tally, .. } = inputs;
    let opened = tally.opened.load(Ordering::Relaxed);
    let percentiles =
        |recorder: &std::sync::Mutex<crate::stats::LatencyRecorder>| lock(recorder).percentiles();
    ScaleReport {
        run_id: inputs.run_id,
        account_id: inputs.account_id,
        units: config.units,
        sources: config.sources.iter().map(ToString::to_string).collect(),
        tls: config.target.tls_server_name.is_some(),
        connect_parallelism: config.connect_parallelism,
        hold_s: config.hold.as_secs_f64(),
        registration_s: inputs.registration.as_secs_f64(),
        registrations_per_s: per_second(config.units as u64, inputs.registration),
        sessions_opened: opened,
        key_sets_received: tally.key_sets.load(Ordering::Relaxed),
        sessions_failed: tally.failed.load(Ordering::Relaxed),
        units_skipped: tally.skipped.load(Ordering::Relaxed),
        failures: tally
            .failures()
            .into_iter()
            .map(|(failure, count)| FailureCount {
                failure: failure.to_string(),
                count,
            })
            .collect(),
        first_limit: tally.first_failure().map(|first| FirstLimit {
            failure: first.failure.to_string(),
            sessions_open_before: first.connected_before,
            after_s: first.after.as_secs_f64(),
        }),
        connect_phase_s: inputs.connect_phase.as_secs_f64(),
        sessions_per_s: per_second(opened, inputs.connect_phase),
        sessions_open_at_checks: inputs.open_before_checks,
        sessions_dropped: tally.dropped.load(Ordering::Relaxed),
        drop_reasons: tally.drop_reasons(),
        ping_answers: tally.ping_answers.load(Ordering::Relaxed),
        probes: config.probes,
        probe_units_connected: tally.probes_open.load(Ordering::Relaxed),
        probe_acks: tally.probe_acks.load(Ordering::Relaxed),
        probes_counted: inputs.probes_counted,
        connect_latency: percentiles(&tally.connect),
        key_set_latency: percentiles(&tally.key_set),
        ping_rtt: percentiles(&tally.ping),
        probe_ack_latency: percentiles(&tally.probe),
        memory: inputs.memory,
        gateway_open_files: inputs.gateway_open_files,
        simulator_open_files: inputs.simulator_open_files,
        timeline: inputs.timeline,
        mosquitto: inputs.mosquitto,
        errors: inputs.errors,
    }
}

impl ScaleReport {
    /// The figures table.
    fn figures(&self) -> Section {
        let kib = |value: Option<f64>| match value {
            Some(kib) => format!("{kib:.1} KiB"),
            None => "not measured".to_owned(),
        };
        let mib = |value: Option<u64>| match value {
            Some(kib) => format!("{:.1} MiB", kib as f64 / 1024.0),
            None => "not measured".to_owned(),
        };
        let open_files = |files: Option<u64>| files.map_or("unknown".to_owned(), |n| n.to_string());
        Section::new("Figures")
            .figure("account", &self.account_id)
            .figure("units", self.units)
            .figure(
                "transport",
                if self.tls { "mutual TLS" } else { "plain TCP" },
            )
            .figure("source addresses", self.sources.join(", "))
            .figure(
                "registration",
                format!(
                    "{:.1} s ({:.0} devices/s)",
                    self.registration_s, self.registrations_per_s
                ),
            )
            .figure("sessions opened", self.sessions_opened)
            .figure("units holding their key set", self.key_sets_received)
            .figure("openings failed", self.sessions_failed)
            .figure("units not tried", self.units_skipped)
            .figure(
                "opening phase",
                format!(
                    "{:.1} s ({:.0} sessions/s, {} at a time)",
                    self.connect_phase_s, self.sessions_per_s, self.connect_parallelism
                ),
            )
            .figure("hold", format!("{:.0} s", self.hold_s))
            .figure("dropped while held", self.sessions_dropped)
            .figure(
                "ping round answered",
                format!("{} of {}", self.ping_answers, self.sessions_open_at_checks),
            )
            .figure(
                "probe points acked / counted",
                format!(
                    "{} / {} of {}",
                    self.probe_acks, self.probes_counted, self.probes
                ),
            )
            .figure("gateway RSS before", mib(self.memory.before.gateway_kib))
            .figure("gateway RSS, all open", mib(self.memory.full.gateway_kib))
            .figure(
                "gateway RSS, end of hold",
                mib(self.memory.held.gateway_kib),
            )
            .figure(
                "gateway memory per idle unit",
                kib(self.memory.gateway_kib_per_session),
            )
            .figure(
                "simulator memory per session",
                kib(self.memory.simulator_kib_per_session),
            )
            .figure(
                "open-file limit (gateway / simulator)",
                format!(
                    "{} / {}",
                    open_files(self.gateway_open_files),
                    open_files(self.simulator_open_files)
                ),
            )
    }

    /// The first failed opening and the failures by kind, or that there was none.
    fn first_limit_section(&self) -> Section {
        let section = Section::new("First limit");
        let Some(first) = &self.first_limit else {
            return section.note("No opening failed: the run did not reach a limit.");
        };
        let section = section
            .figure("first failure", &first.failure)
            .figure("sessions open before it", first.sessions_open_before)
            .figure("after", format!("{:.1} s", first.after_s));
        self.failures.iter().fold(section, |section, failure| {
            section.figure(&format!("failures: {}", failure.failure), failure.count)
        })
    }
}

impl ScenarioReport for ScaleReport {
    const SCENARIO: &'static str = "scale";

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn errors(&self) -> &[String] {
        &self.errors
    }

    fn checks(&self) -> Vec<Check> {
        let mosquitto = match &self.mosquitto {
            None => Check::new(
                "mosquitto side by side measured",
                Outcome::NotJudged,
                "not asked for",
            ),
            Some(mosquitto) => Check::holds(
                "mosquitto side by side measured",
                mosquitto.is_clean(),
                format!(
                    "{} of {} units idle with their key set, {} errors",
                    mosquitto.key_sets_received,
                    mosquitto.units,
                    mosquitto.errors.len()
                ),
            ),
        };
        let probes = self.probes as u64;
        vec![
            Check::holds(
                "every unit held a session",
                self.sessions_opened == self.units as u64 && self.sessions_dropped == 0,
                format!(
                    "{} of {} opened, {} dropped",
                    self.sessions_opened, self.units, self.sessions_dropped
                ),
            ),
            Check::holds(
                "every unit holds its key set",
                self.key_sets_received == self.sessions_opened,
                format!("{} of {}", self.key_sets_received, self.sessions_opened),
            ),
            Check::holds(
                "every open session answered the ping round",
                self.ping_answers == self.sessions_open_at_checks,
                format!("{} of {}", self.ping_answers, self.sessions_open_at_checks),
            ),
            Check::holds(
                "every probe point acknowledged and counted",
                self.probe_acks == probes && self.probes_counted == probes,
                format!(
                    "{} acked, {} counted of {probes}",
                    self.probe_acks, self.probes_counted
                ),
            ),
            mosquitto,
        ]
    }

    fn headline(&self) -> String {
        format!(
            "scale run {} (account {}): {} units ({}) from {}",
            self.run_id,
            self.account_id,
            self.units,
            if self.tls { "TLS" } else { "plain" },
            self.sources.join(",")
        )
    }

    fn clean_means(&self) -> String {
        format!(
            "all {} units held a session with their key set, answered the ping round, and \
             every probe point was stored",
            self.units
        )
    }

    /// Names the first limit when the run hit one: that is what a dirty scale run is about.
    fn verdict(&self) -> String {
        match (&self.first_limit, self.is_clean()) {
            (Some(first), false) => format!(
                "NOT clean: first limit after {} sessions: {}",
                first.sessions_open_before, first.failure
            ),
            (None, false) => "NOT clean: see the checks and errors".to_owned(),
            (_, true) => format!("clean: {}", self.clean_means()),
        }
    }

    fn sections(&self) -> Vec<Section> {
        let mut sections = vec![self.figures(), self.first_limit_section()];
        if let Some(mosquitto) = &self.mosquitto {
            sections.push(mosquitto.section());
        }
        let latencies = [
            ("opening (TCP+TLS+CONNACK)", &self.connect_latency),
            ("subscribe→key set", &self.key_set_latency),
            ("ping RTT, all open", &self.ping_rtt),
            ("probe PUBACK, all open", &self.probe_ack_latency),
        ];
        sections.push(
            Section::new("Charts")
                .latencies(&latencies)
                .chart(
                    sessions_chart(&self.timeline),
                    "Sessions opened since the start, read once a second.",
                )
                .chart(
                    memory_per_session_chart(&self.timeline),
                    "The gateway's resident memory against the sessions open at that second: \
                     the slope is the cost of one idle unit.",
                )
                .chart(
                    percentile_chart("Latency percentiles", &latencies),
                    "Opening a session, and the round trips measured with every session open.",
                )
                .chart(memory_chart(&self.timeline), MEMORY_CAPTION),
        );
        if !self.drop_reasons.is_empty() {
            let heading = "Why sessions were dropped (or had no key set)";
            let reasons = self
                .drop_reasons
                .iter()
                .fold(Section::new(heading), |section, reason| {
                    section.note(reason)
                });
            sections.push(reasons);
        }
        sections
    }
}

fn sessions_chart(timeline: &Timeline) -> Chart {
    let title = "Sessions opened over time";
    let points: Vec<(f64, f64)> = timeline
        .samples
        .iter()
        .map(|sample| (sample.t_s, sample.acked_total as f64))
        .collect();
    if points.len() < 2 {
        return Chart::missing(title, "not enough samples (run shorter than a second)");
    }
    let series = vec![Series::new("sessions opened", PALETTE[0], points)];
    Chart::lines(title, "seconds since the first opening", "sessions", series)
}

fn memory_per_session_chart(timeline: &Timeline) -> Chart {
    let title = "Gateway memory against open sessions";
    let points = timeline.gateway_mib(|sample| sample.acked_total as f64);
    if points.len() < 2 {
        return Chart::missing(title, "not measured (no --gateway-pid, or too short)");
    }
    let series = vec![Series::new("gateway VmRSS", PALETTE[2], points)];
    Chart::lines(title, "sessions opened", "MiB", series)
}

impl fmt::Display for ScaleReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&crate::report::text(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ScaleReport {
        let snapshot = MemorySnapshot::default();
        ScaleReport {
            run_id: "s1".into(),
            account_id: AccountId::new("acc"),
            units: 3,
            sources: vec!["127.0.0.1".into()],
            tls: true,
            connect_parallelism: 8,
            hold_s: 1.0,
            registration_s: 1.0,
            registrations_per_s: 3.0,
            sessions_opened: 2,
            key_sets_received: 2,
            sessions_failed: 1,
            units_skipped: 0,
            failures: vec![FailureCount {
                failure: "TLS: <reset>".into(),
                count: 1,
            }],
            first_limit: Some(FirstLimit {
                failure: "TLS: <reset>".into(),
                sessions_open_before: 2,
                after_s: 0.5,
            }),
            connect_phase_s: 1.0,
            sessions_per_s: 2.0,
            sessions_open_at_checks: 2,
            sessions_dropped: 0,
            drop_reasons: Vec::new(),
            ping_answers: 2,
            probes: 0,
            probe_units_connected: 0,
            probe_acks: 0,
            probes_counted: 0,
            connect_latency: Percentiles::default(),
            key_set_latency: Percentiles::default(),
            ping_rtt: Percentiles::default(),
            probe_ack_latency: Percentiles::default(),
            memory: MemoryFigures::new(snapshot, snapshot, snapshot),
            gateway_open_files: Some(20_000),
            simulator_open_files: None,
            timeline: Timeline::default(),
            mosquitto: None,
            errors: vec!["unit <u1> said \"no\"".into()],
        }
    }

    #[test]
    fn a_failed_opening_is_the_first_limit_and_the_run_is_not_clean() {
        let report = report();
        assert!(!report.is_clean());
        assert!(report.verdict().contains("first limit after 2 sessions"));
        let clean = ScaleReport {
            units: 2,
            sessions_failed: 0,
            failures: Vec::new(),
            first_limit: None,
            errors: Vec::new(),
            ..report
        };
        assert!(clean.is_clean(), "{clean}");
        let unanswered = ScaleReport {
            ping_answers: 1,
            ..clean.clone()
        };
        assert!(!unanswered.is_clean());
        let keyless = ScaleReport {
            key_sets_received: 1,
            ..clean.clone()
        };
        assert!(!keyless.is_clean(), "an idle unit holds its key set");
        let short_side_by_side = ScaleReport {
            mosquitto: Some(MosquittoReport {
                units: 2,
                sessions_opened: 1,
                ..MosquittoReport::default()
            }),
            ..clean.clone()
        };
        assert!(!short_side_by_side.is_clean());
    }

    #[test]
    fn the_mosquitto_section_is_in_the_json_text_and_page_only_when_run() {
        let without = report();
        let json = serde_json::to_value(&without).expect("json");
        assert!(json["mosquitto"].is_null());
        assert!(!crate::report::page(&without).contains("Memory per idle TLS unit"));
        let with = ScaleReport {
            mosquitto: Some(MosquittoReport {
                version: "mosquitto version 2.0.11".into(),
                units: 2,
                sessions_opened: 2,
                key_sets_received: 2,
                rss_before_kib: Some(5_000),
                rss_idle_kib: Some(5_050),
                mosquitto_kib_per_unit: Some(25.0),
                gateway_kib_per_unit: Some(70.0),
                gateway_to_mosquitto: Some(2.8),
                ..MosquittoReport::default()
            }),
            ..report()
        };
        let json = serde_json::to_value(&with).expect("json");
        assert_eq!(json["mosquitto"]["mosquitto_kib_per_unit"], 25.0);
        assert_eq!(json["mosquitto"]["gateway_kib_per_unit"], 70.0);
        assert_eq!(json["mosquitto"]["gateway_to_mosquitto"], 2.8);
        let text = with.to_string();
        assert!(text.contains("gateway per idle unit: 70.0 KiB"), "{text}");
        assert!(text.contains("mosquitto per idle unit: 25.0 KiB"), "{text}");
        let page = crate::report::page(&with);
        assert!(page.contains("Memory per idle TLS unit: gateway and mosquitto"));
        assert!(page.contains("<td>gateway per idle unit</td><td>70.0 KiB</td>"));
    }

    #[test]
    fn page_is_self_contained_and_escapes_what_it_was_told() {
        let page = crate::report::page(&report());
        crate::report::assert_self_contained(&page);
        assert!(page.contains("TLS: &lt;reset&gt;"));
        assert!(!page.contains("<reset>") && !page.contains("<u1>"));
        assert!(page.contains("not measured"));
        assert_eq!(page.matches("<svg").count(), 4);
    }

    #[test]
    fn memory_per_session_is_the_growth_divided_by_sessions() {
        let before = MemorySnapshot {
            gateway_kib: Some(100_000),
            simulator_kib: Some(10_000),
        };
        let full = MemorySnapshot {
            gateway_kib: Some(165_500),
            simulator_kib: Some(36_500),
        };
        let mut memory = MemoryFigures::new(before, full, full);
        memory.per_session(1_000);
        assert_eq!(memory.gateway_kib_per_session, Some(65.5));
        assert_eq!(memory.simulator_kib_per_session, Some(26.5));
        memory.per_session(0);
        assert_eq!(
            memory.gateway_kib_per_session,
            Some(65.5),
            "no sessions: unchanged"
        );
    }
}
