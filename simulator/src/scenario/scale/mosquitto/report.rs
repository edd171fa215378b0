//! The `mosquitto` section of the scale report: memory per idle mutual-TLS unit for the
//! gateway and for mosquitto, measured in the same run with the same unit count and client
//! code, side by side, as text, JSON and rows of the page.

use serde::Serialize;

use crate::report::Section;
use crate::stats::{format_us, Percentiles};

/// How mosquitto's half differs from the gateway's, for the report.
pub(super) const SETUP: &str = "same simulator, same client code (the scale run's sessions: \
    rumqttc's MQTT 3.1.1 codec, rustls, mutual TLS, ECDSA P-256 client certificates with \
    CN and O = the unit's id), same units, same source addresses; only the CA differs: \
    mosquitto's is a throwaway CA the simulator generated for the run (rcgen), because the \
    simulator has no access to the gateway CA's key. mosquitto: require_certificate, \
    use_identity_as_username, an ACL letting each unit read only its own /tenants/{id}/keys, \
    persistence false, log_dest none; the units' key sets retained on it before they connect";

/// The side-by-side figures. Memory is resident set (`VmRSS`), KiB.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MosquittoReport {
    /// `mosquitto -h`'s first line, e.g. `mosquitto version 2.0.11`.
    pub version: String,
    pub binary: String,
    /// Its listener (loopback, mutual TLS), once started.
    pub listener: Option<String>,
    /// How this half differs from the gateway's.
    pub setup: String,
    /// Units asked to connect: as many as held a session with the gateway.
    pub units: u64,
    pub sessions_opened: u64,
    /// Units that received their retained key set.
    pub key_sets_received: u64,
    pub sessions_dropped: u64,
    /// mosquitto's RSS with the key sets retained, before any unit connected, KiB.
    pub rss_before_kib: Option<u64>,
    /// Its RSS with every unit connected, subscribed and holding its key set, KiB.
    pub rss_idle_kib: Option<u64>,
    /// (idle − before) ÷ units holding their key set, KiB.
    pub mosquitto_kib_per_unit: Option<f64>,
    /// The gateway's figure of the same run (`memory.gateway_kib_per_session`), KiB.
    pub gateway_kib_per_unit: Option<f64>,
    /// `gateway_kib_per_unit ÷ mosquitto_kib_per_unit`.
    pub gateway_to_mosquitto: Option<f64>,
    /// Opening a session with mosquitto (TCP + TLS + CONNACK).
    pub connect_latency: Percentiles,
    /// SUBSCRIBE → the retained key set.
    pub key_set_latency: Percentiles,
    pub errors: Vec<String>,
}

impl MosquittoReport {
    /// Every unit the gateway held also held an idle session with mosquitto, both memory
    /// figures were measured, and nothing went wrong.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self.units > 0
            && self.sessions_opened == self.units
            && self.key_sets_received == self.units
            && self.sessions_dropped == 0
            && self.mosquitto_kib_per_unit.is_some()
            && self.gateway_kib_per_unit.is_some()
    }

    /// Works out the per-unit figure and the ratio from the readings.
    pub(super) fn compute(&mut self) {
        self.mosquitto_kib_per_unit = match (self.rss_before_kib, self.rss_idle_kib) {
            (Some(before), Some(idle)) if self.key_sets_received > 0 => {
                Some(idle.saturating_sub(before) as f64 / self.key_sets_received as f64)
            }
            _ => None,
        };
        self.gateway_to_mosquitto = match (self.gateway_kib_per_unit, self.mosquitto_kib_per_unit) {
            (Some(gateway), Some(mosquitto)) if mosquitto > 0.0 => Some(gateway / mosquitto),
            _ => None,
        };
    }

    /// Its section of the scale report.
    pub(crate) fn section(&self) -> Section {
        let note = format!(
            "Idle means connected, subscribed to its /tenants/{{id}}/keys at QoS 1 and holding \
             its key set. Memory per unit is the growth of the broker's VmRSS from before the \
             units connected to all of them idle, divided by the units. Setup: {}.",
            self.setup
        );
        let section = Section::new("Memory per idle TLS unit: gateway and mosquitto")
            .figure("mosquitto", &self.version)
            .figure(
                "units (same count on both)",
                format!(
                    "{} asked, {} opened, {} with their key set, {} dropped",
                    self.units, self.sessions_opened, self.key_sets_received, self.sessions_dropped
                ),
            )
            .figure("gateway per idle unit", kib(self.gateway_kib_per_unit))
            .figure("mosquitto per idle unit", kib(self.mosquitto_kib_per_unit))
            .figure(
                "ratio gateway ÷ mosquitto",
                self.gateway_to_mosquitto
                    .map_or("not measured".to_owned(), |ratio| format!("{ratio:.2}")),
            )
            .figure("mosquitto RSS before the units", mib(self.rss_before_kib))
            .figure("mosquitto RSS, all idle", mib(self.rss_idle_kib))
            .figure(
                "mosquitto opening p50 / p99",
                latency_pair(&self.connect_latency),
            )
            .figure(
                "mosquitto subscribe→key set p50 / p99",
                latency_pair(&self.key_set_latency),
            )
            .note(note);
        self.errors.iter().fold(section, |section, error| {
            section.note(format!("mosquitto: {error}"))
        })
    }
}

fn kib(value: Option<f64>) -> String {
    value.map_or("not measured".to_owned(), |kib| format!("{kib:.1} KiB"))
}

fn mib(value: Option<u64>) -> String {
    value.map_or("not measured".to_owned(), |kib| {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    })
}

fn latency_pair(percentiles: &Percentiles) -> String {
    if percentiles.samples == 0 {
        return "no samples".to_owned();
    }
    format!(
        "{} / {}",
        format_us(percentiles.p50_us),
        format_us(percentiles.p99_us)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Item;

    fn report() -> MosquittoReport {
        MosquittoReport {
            version: "mosquitto version 2.0.11".into(),
            binary: "/usr/sbin/mosquitto".into(),
            listener: Some("127.0.0.1:40000".into()),
            setup: SETUP.into(),
            units: 1_000,
            sessions_opened: 1_000,
            key_sets_received: 1_000,
            rss_before_kib: Some(10_000),
            rss_idle_kib: Some(35_000),
            gateway_kib_per_unit: Some(70.0),
            ..MosquittoReport::default()
        }
    }

    #[test]
    fn per_unit_memory_and_ratio() {
        let mut report = report();
        report.compute();
        assert_eq!(report.mosquitto_kib_per_unit, Some(25.0));
        assert_eq!(report.gateway_to_mosquitto, Some(2.8));
        assert!(report.is_clean());
        let mut unmeasured = MosquittoReport {
            rss_idle_kib: None,
            ..report.clone()
        };
        unmeasured.compute();
        assert_eq!(unmeasured.mosquitto_kib_per_unit, None);
        assert_eq!(unmeasured.gateway_to_mosquitto, None);
        assert!(!unmeasured.is_clean());
        let mut nothing_grew = MosquittoReport {
            rss_idle_kib: Some(10_000),
            ..report.clone()
        };
        nothing_grew.compute();
        assert_eq!(nothing_grew.mosquitto_kib_per_unit, Some(0.0));
        assert_eq!(
            nothing_grew.gateway_to_mosquitto, None,
            "no division by zero"
        );
    }

    #[test]
    fn fewer_units_than_the_gateway_held_is_not_clean() {
        let mut short = MosquittoReport {
            key_sets_received: 999,
            ..report()
        };
        short.compute();
        assert!(!short.is_clean());
    }

    #[test]
    fn its_section_shows_both_brokers_and_the_ratio() {
        let mut report = report();
        report.compute();
        let figures: Vec<(String, String)> = report
            .section()
            .items
            .into_iter()
            .filter_map(|item| match item {
                Item::Figure { name, value } => Some((name, value)),
                _ => None,
            })
            .collect();
        let shown = |name: &str, value: &str| {
            figures
                .iter()
                .any(|(shown_name, shown_value)| shown_name == name && shown_value == value)
        };
        assert!(
            shown("mosquitto", "mosquitto version 2.0.11"),
            "{figures:?}"
        );
        assert!(shown("gateway per idle unit", "70.0 KiB"), "{figures:?}");
        assert!(shown("mosquitto per idle unit", "25.0 KiB"), "{figures:?}");
        assert!(shown("ratio gateway ÷ mosquitto", "2.80"), "{figures:?}");
    }
}
