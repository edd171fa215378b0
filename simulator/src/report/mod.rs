//! Scenario reports on disk: a JSON of the figures for scripts and a self-contained HTML page
//! with charts for people, side by side in a reports directory, named after the run so runs
//! do not overwrite each other.
//!
//! Every scenario fills one model ([`ScenarioReport`], `model.rs`): its checks and its
//! figures, stated once. This module renders it three ways, each in one place: text for the
//! terminal (`text.rs`), a page (`html.rs`, charts by `svg.rs`), and the JSON (here: the
//! scenario's own serialized fields, plus its `checks` when it does not carry them itself).
//!
//! Writing is kept out of the scenarios themselves: the library runs return their report,
//! and the command line decides whether and where to write it (the end-to-end tests write
//! nothing). `compare.rs` lists what a later run's JSON lost against an earlier one's.

pub mod compare;
pub mod html;
pub mod model;
pub mod svg;
mod text;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use html::page;
pub use model::{Chart, Check, Item, Outcome, ScenarioReport, Section};
pub use text::text;

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

fn write_file(path: PathBuf, contents: &[u8]) -> Result<PathBuf, ReportError> {
    match std::fs::write(&path, contents) {
        Ok(()) => Ok(path),
        Err(source) => Err(ReportError::Io { path, source }),
    }
}

/// The report's JSON: the scenario's serialized fields, and its `checks` as the model
/// judged them, unless the scenario serializes its own.
pub fn to_json<R: ScenarioReport>(report: &R) -> Result<Value, ReportError> {
    let mut json = serde_json::to_value(report)?;
    if let Value::Object(fields) = &mut json {
        if !fields.contains_key("checks") {
            fields.insert("checks".into(), serde_json::to_value(report.checks())?);
        }
    }
    Ok(json)
}

/// Writes `<scenario>-<run_id>.json` (the figures and checks) and `<scenario>-<run_id>.html`
/// (the page) into `dir`, creating it.
pub fn write<R: ScenarioReport>(report: &R, dir: &Path) -> Result<WrittenReport, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let stem = file_stem(R::SCENARIO, report.run_id());
    let mut json = serde_json::to_vec_pretty(&to_json(report)?)?;
    json.push(b'\n');
    let json = write_file(dir.join(format!("{stem}.json")), &json)?;
    let html = write_file(dir.join(format!("{stem}.html")), page(report).as_bytes())?;
    Ok(WrittenReport { json, html })
}

/// Asserts that `page` stands alone: no script, no link and no address outside itself, so
/// it opens the same offline and years later. Every scenario's page test calls it.
#[cfg(test)]
pub(crate) fn assert_self_contained(page: &str) {
    let lower = page.to_ascii_lowercase();
    for banned in [
        "<script", "http://", "https://", "src=", "url(", "<link", "@import",
    ] {
        assert!(!lower.contains(banned), "the page contains {banned}");
    }
    assert!(page.starts_with("<!DOCTYPE html>"));
}

/// Asserts that `report()` is clean and that each of `spoilers` alone makes it unclean:
/// how every scenario tests its rule for a clean run.
#[cfg(test)]
pub(crate) fn assert_each_spoils<R: ScenarioReport + std::fmt::Display>(
    report: impl Fn() -> R,
    spoilers: &[fn(&mut R)],
) {
    assert!(report().is_clean(), "{}", report());
    for spoil in spoilers {
        let mut spoiled = report();
        spoil(&mut spoiled);
        assert!(!spoiled.is_clean(), "{spoiled}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_escape_the_directory() {
        assert_eq!(file_stem("ingest", "ab12"), "ingest-ab12");
        assert_eq!(file_stem("ingest", "../../etc"), "ingest-etc");
        assert_eq!(file_stem("ingest", "/"), "ingest-run");
    }
}
