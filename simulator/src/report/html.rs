//! The HTML page of a report model: the verdict, the checks, each section's figures as a
//! table, its latencies and its charts (drawn by `svg.rs`), and the errors, with inline
//! styles only, so one file carries the whole report and opens offline without fetching any
//! script, font or stylesheet. Also the charts every scenario with a timeline shares.

use std::fmt::Write as _;

use super::model::{Chart, Item, ScenarioReport, Section};
use super::svg::{BarGroup, Series, PALETTE};
use crate::scenario::Timeline;
use crate::stats::{format_us, Percentiles};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:820px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}\
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}\
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\
.verdict{font-weight:bold}.clean{color:#1b7a3a}.dirty{color:#b00020}\
figure{margin:12px 0}figcaption{font-size:13px;color:#555}ul{font-size:14px}";

/// Text made safe for HTML (and SVG) element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Microseconds as milliseconds, the unit the latency chart uses.
fn ms(micros: u64) -> f64 {
    micros as f64 / 1_000.0
}

/// The report as one self-contained page.
pub fn page<R: ScenarioReport>(report: &R) -> String {
    let title = format!("Fleetgate {} run {}", R::SCENARIO, report.run_id());
    let mut page = Page::new(&title, report.is_clean(), &report.verdict());
    page.section(&report.headline());
    for section in report.sections() {
        page.section(&section.heading);
        for item in &section.items {
            match item {
                Item::Figure { name, value } => page.row(name, value),
                Item::Latencies(rows) => page.percentile_table(rows),
                Item::Chart { chart, caption } => page.figure(&chart.to_svg(), caption),
                Item::Note(text) => page.note(text),
            };
        }
    }
    page.section("Checks");
    for check in report.checks() {
        page.row(&check.name, format!("{}: {}", check.outcome, check.detail));
    }
    page.finish(report.errors())
}

/// A page under construction: title and verdict, then headings, tables, figures, notes.
struct Page {
    out: String,
    in_table: bool,
}

impl Page {
    /// Opens the page and writes its title and verdict line.
    fn new(title: &str, clean: bool, verdict: &str) -> Self {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1>",
            title = escape(title)
        );
        let class = if clean { "clean" } else { "dirty" };
        let _ = write!(out, "<p class=\"verdict {class}\">{}</p>", escape(verdict));
        Self {
            out,
            in_table: false,
        }
    }

    /// A heading; closes an open figures table.
    fn section(&mut self, heading: &str) -> &mut Self {
        self.close_table();
        let _ = write!(self.out, "<h2>{}</h2>", escape(heading));
        self
    }

    /// One name/value row of a figures table (opened by the first row after a heading).
    fn row(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        if !self.in_table {
            self.out.push_str("<table>");
            self.in_table = true;
        }
        let _ = write!(
            self.out,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(&value.to_string())
        );
        self
    }

    /// A table of latency percentiles, one row per named measurement.
    fn percentile_table(&mut self, rows: &[(String, Percentiles)]) -> &mut Self {
        self.close_table();
        self.out.push_str(
            "<table><tr><th>latency</th><th>samples</th><th>p50</th><th>p90</th><th>p99</th>\
             <th>p99.9</th><th>max</th></tr>",
        );
        for (name, percentiles) in rows {
            let _ = write!(
                self.out,
                "<tr><td>{}</td><td>{}</td>",
                escape(name),
                percentiles.samples
            );
            for micros in percentile_micros(percentiles) {
                let text = if percentiles.samples == 0 {
                    "–".to_owned()
                } else {
                    format_us(micros)
                };
                let _ = write!(self.out, "<td>{}</td>", escape(&text));
            }
            self.out.push_str("</tr>");
        }
        self.out.push_str("</table>");
        self
    }

    /// A chart (an `<svg>`) with its caption.
    fn figure(&mut self, chart: &str, caption: &str) -> &mut Self {
        self.close_table();
        let _ = write!(
            self.out,
            "<figure>{chart}<figcaption>{}</figcaption></figure>",
            escape(caption)
        );
        self
    }

    /// A paragraph of text.
    fn note(&mut self, text: &str) -> &mut Self {
        self.close_table();
        let _ = write!(self.out, "<p>{}</p>", escape(text));
        self
    }

    /// The errors section and the end of the page.
    fn finish(mut self, errors: &[String]) -> String {
        self.section("Errors");
        if errors.is_empty() {
            self.out.push_str("<p>none</p>");
        } else {
            self.out.push_str("<ul>");
            for error in errors {
                let _ = write!(self.out, "<li>{}</li>", escape(error));
            }
            self.out.push_str("</ul>");
        }
        self.out.push_str("</body></html>\n");
        self.out
    }

    fn close_table(&mut self) {
        if self.in_table {
            self.out.push_str("</table>");
            self.in_table = false;
        }
    }
}

fn percentile_micros(percentiles: &Percentiles) -> [u64; 5] {
    [
        percentiles.p50_us,
        percentiles.p90_us,
        percentiles.p99_us,
        percentiles.p999_us,
        percentiles.max_us,
    ]
}

/// Bars of p50/p90/p99/p99.9/max in milliseconds, one colour per named measurement; the
/// measurements without samples are left out.
pub fn percentile_chart(title: &str, groups: &[(&str, &Percentiles)]) -> Chart {
    let groups: Vec<BarGroup> = groups
        .iter()
        .filter(|(_, percentiles)| percentiles.samples > 0)
        .enumerate()
        .map(|(index, (name, percentiles))| BarGroup {
            name: (*name).to_owned(),
            color: PALETTE[index % PALETTE.len()],
            values: percentile_micros(percentiles).into_iter().map(ms).collect(),
        })
        .collect();
    if groups.is_empty() {
        return Chart::missing(title, "no latency samples");
    }
    Chart::bars(
        title,
        "milliseconds",
        &["p50", "p90", "p99", "p99.9", "max"],
        groups,
    )
}

/// The timeline's per-second counter as one line named `counted`.
pub fn rate_series(counted: &str, color: &'static str, timeline: &Timeline) -> Series {
    Series {
        name: counted.to_owned(),
        color,
        points: timeline
            .samples
            .iter()
            .map(|sample| (sample.t_s, sample.acked_per_s))
            .collect(),
    }
}

/// Lines over time in seconds, or why there are too few samples to draw them.
pub fn rate_lines(title: &str, lines: Vec<Series>) -> Chart {
    if lines.iter().any(|line| line.points.len() < 2) {
        return Chart::missing(title, "not enough samples (run shorter than a second)");
    }
    Chart::lines(title, "seconds since the start", "per second", lines)
}

/// The timeline's per-second counter as a line; `counted` names what it counts.
pub fn rate_chart(title: &str, counted: &str, timeline: &Timeline) -> Chart {
    rate_lines(title, vec![rate_series(counted, PALETTE[0], timeline)])
}

/// The gateway's resident memory over the run, or why it was not measured.
pub fn memory_chart(timeline: &Timeline) -> Chart {
    let title = "Gateway memory (resident set)";
    let source = match timeline.gateway_pid {
        Some(pid) => format!("VmRSS of pid {pid}"),
        None if timeline.has_memory() || timeline.memory_error.is_some() => {
            "process_resident_memory_bytes from /metrics".to_owned()
        }
        None => return Chart::missing(title, "not measured (no --gateway-pid given)"),
    };
    let points = timeline.gateway_mib(|sample| sample.t_s);
    if points.is_empty() {
        let why = timeline
            .memory_error
            .as_deref()
            .unwrap_or("no sample was taken");
        return Chart::missing(title, &format!("not measured: {why}"));
    }
    let series = vec![Series::new(source, PALETTE[2], points)];
    Chart::lines(title, "seconds since the start", "MiB", series)
}

/// Memory caption shared by every report that samples the gateway.
pub const MEMORY_CAPTION: &str = "The gateway's resident set, read once a second: VmRSS \
    from /proc/<pid>/status when its pid was given (--gateway-pid), else \
    process_resident_memory_bytes from its /metrics.";

/// The peak-throughput and peak-memory figures every timeline-carrying report shows.
pub fn timeline_figures(section: Section, timeline: &Timeline, unit: &str) -> Section {
    let peak_rate = timeline
        .samples
        .iter()
        .map(|sample| sample.acked_per_s)
        .reduce(f64::max);
    let peak_rss = timeline
        .samples
        .iter()
        .filter_map(|sample| sample.gateway_rss_kib)
        .max();
    section
        .figure_if(
            "throughput (best second)",
            peak_rate.map(|peak| format!("{peak:.1} {unit}/s")),
        )
        .figure_if(
            "gateway memory (peak RSS)",
            peak_rss.map(|peak| format!("{:.1} MiB", peak as f64 / 1024.0)),
        )
        .note_if(
            timeline.truncated,
            "The series were cut at their sample limit; later seconds are not shown.",
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("plain µs → text"), "plain µs → text");
    }
}
