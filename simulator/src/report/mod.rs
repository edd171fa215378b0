//! Scenario reports on disk: a JSON of the figures for scripts and a self-contained HTML page
//! with charts for people, side by side in a reports directory, named after the run so runs
//! do not overwrite each other.
//!
//! Writing is kept out of the scenarios themselves: the library runs return their report,
//! and the command line decides whether and where to write it (the end-to-end tests write
//! nothing).

pub mod html;
pub mod svg;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::scenario::IngestReport;

/// Where a report was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenReport {
    pub json: PathBuf,
    pub html: PathBuf,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The part of a file name taken from a run id: run ids are lowercase ASCII letters and
/// digits already, but a file name must never carry a path separator whatever it is given.
fn file_stem(scenario: &str, run_id: &str) -> String {
    let safe: String = run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    let safe = if safe.is_empty() {
        "run".to_owned()
    } else {
        safe
    };
    format!("{scenario}-{safe}")
}

fn write(path: PathBuf, contents: &[u8]) -> Result<PathBuf, ReportError> {
    match std::fs::write(&path, contents) {
        Ok(()) => Ok(path),
        Err(source) => Err(ReportError::Io { path, source }),
    }
}

/// Writes `<scenario>-<run_id>.json` (the figures) and `<scenario>-<run_id>.html` (the
/// page) into `dir`, creating it. Each scenario's report type decides its own page.
pub fn write_report<R: Serialize>(
    dir: &Path,
    scenario: &str,
    run_id: &str,
    figures: &R,
    page: &str,
) -> Result<WrittenReport, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let stem = file_stem(scenario, run_id);
    let mut json = serde_json::to_vec_pretty(figures)?;
    json.push(b'\n');
    let json = write(dir.join(format!("{stem}.json")), &json)?;
    let html = write(dir.join(format!("{stem}.html")), page.as_bytes())?;
    Ok(WrittenReport { json, html })
}

/// Writes `ingest-<run_id>.json` and `ingest-<run_id>.html` into `dir`, creating it.
pub fn write_ingest_report(
    report: &IngestReport,
    dir: &Path,
) -> Result<WrittenReport, ReportError> {
    write_report(
        dir,
        "ingest",
        &report.run_id,
        report,
        &html::ingest_page(report),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::AccountId;
    use crate::scenario::Timeline;
    use crate::stats::Percentiles;

    #[test]
    fn file_names_cannot_escape_the_directory() {
        assert_eq!(file_stem("ingest", "ab12"), "ingest-ab12");
        assert_eq!(file_stem("ingest", "../../etc"), "ingest-etc");
        assert_eq!(file_stem("ingest", "/"), "ingest-run");
    }

    #[test]
    fn writes_json_and_html_named_after_the_run() {
        let dir =
            std::env::temp_dir().join(format!("fleetgate-sim-report-test-{}", std::process::id()));
        let report = IngestReport {
            run_id: "t1".into(),
            account_id: AccountId::new("a"),
            units: 1,
            points_sent: 1,
            points_acked: 1,
            points_stored: 1,
            missing: 0,
            duplicates: 0,
            sse_received: 1,
            elapsed: Duration::from_secs(1),
            points_per_sec: 1.0,
            publish_to_sse: Percentiles::default(),
            publish_to_stored: Percentiles::default(),
            publish_to_ack: Percentiles::default(),
            timeline: Timeline::default(),
            offered_points_per_sec: 1.0,
            gateway_tls: false,
            baseline: None,
            throughput_ratio: None,
            baseline_at_limit: None,
            errors: Vec::new(),
        };
        let written = write_ingest_report(&report, &dir.join("reports")).expect("written");
        assert!(written.json.ends_with("reports/ingest-t1.json"));
        assert!(written.html.ends_with("reports/ingest-t1.html"));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&written.json).expect("json file"))
                .expect("valid json");
        assert_eq!(json["run_id"], "t1");
        assert!(json["timeline"]["samples"].is_array());
        assert_eq!(json["publish_to_sse"]["p999_us"], 0);
        assert_eq!(json["publish_to_ack"]["samples"], 0);
        let html = std::fs::read_to_string(&written.html).expect("html file");
        assert!(html.contains("Fleetgate ingest run t1"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
