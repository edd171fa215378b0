//! The terminal rendering of a report model: the headline, the verdict, every figure and
//! latency of every section (charts are the page's), the checks and the errors.

use std::fmt::Write as _;

use super::model::{Item, ScenarioReport};

/// The report as the command line prints it.
pub fn text<R: ScenarioReport>(report: &R) -> String {
    let mut out = format!("{}\n  {}\n", report.headline(), report.verdict());
    for section in report.sections() {
        let mut lines = String::new();
        for item in &section.items {
            match item {
                Item::Figure { name, value } => {
                    let _ = writeln!(lines, "    {name}: {value}");
                }
                Item::Latencies(rows) => {
                    for (name, percentiles) in rows {
                        let _ = writeln!(lines, "    {name}: {percentiles}");
                    }
                }
                Item::Note(note) => {
                    let _ = writeln!(lines, "    ({note})");
                }
                Item::Chart { .. } => {}
            }
        }
        if !lines.is_empty() {
            let _ = write!(out, "  {}:\n{lines}", section.heading);
        }
    }
    out.push_str("  checks:\n");
    for check in report.checks() {
        let _ = writeln!(
            out,
            "    {}: {} ({})",
            check.name, check.outcome, check.detail
        );
    }
    let errors = report.errors();
    if errors.is_empty() {
        out.push_str("  errors: none");
    } else {
        let _ = write!(out, "  errors ({}):", errors.len());
        for error in errors {
            let _ = write!(out, "\n    - {error}");
        }
    }
    out
}
