//! The HTML page of a scenario report: the figures as a table and the charts from `svg.rs`,
//! with inline styles only, so one file carries the whole report and opens offline without
//! fetching any script, font or stylesheet.

use std::fmt::Write as _;

use super::svg::{self, BarGroup, Series, PALETTE};
use crate::scenario::{BaselineReport, IngestReport, Timeline};
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

/// A report page under construction: every scenario's page has the same frame (title,
/// verdict, a table of figures, sections of charts with captions, the errors), so the
/// scenarios only decide what goes in it.
#[derive(Debug)]
pub struct Page {
    out: String,
    in_table: bool,
}

impl Page {
    /// Opens the page and writes its title and verdict line.
    pub fn new(title: &str, clean: bool, verdict: &str) -> Self {
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
    pub fn section(&mut self, heading: &str) -> &mut Self {
        self.close_table();
        let _ = write!(self.out, "<h2>{}</h2>", escape(heading));
        self
    }

    /// One name/value row of a figures table (opened by the first row after a heading).
    pub fn row(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
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
    pub fn percentile_table(&mut self, rows: &[(&str, &Percentiles)]) -> &mut Self {
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

    /// A chart (an `<svg>` from `svg.rs`) with its caption.
    pub fn figure(&mut self, chart: &str, caption: &str) -> &mut Self {
        self.close_table();
        let _ = write!(
            self.out,
            "<figure>{chart}<figcaption>{}</figcaption></figure>",
            escape(caption)
        );
        self
    }

    /// A paragraph of text.
    pub fn note(&mut self, text: &str) -> &mut Self {
        self.close_table();
        let _ = write!(self.out, "<p>{}</p>", escape(text));
        self
    }

    /// The errors section and the end of the page.
    pub fn finish(mut self, errors: &[String]) -> String {
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
pub fn percentile_chart(title: &str, groups: &[(&str, &Percentiles)]) -> String {
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
        return svg::placeholder(title, "no latency samples");
    }
    svg::bar_chart(
        title,
        "milliseconds",
        &["p50", "p90", "p99", "p99.9", "max"],
        &groups,
        &svg::short_number,
    )
}

/// The timeline's per-second counter as a line; `counted` names what it counts.
pub fn rate_chart(title: &str, counted: &str, timeline: &Timeline) -> String {
    let points: Vec<(f64, f64)> = timeline
        .samples
        .iter()
        .map(|sample| (sample.t_s, sample.acked_per_s))
        .collect();
    if points.len() < 2 {
        return svg::placeholder(title, "not enough samples (run shorter than a second)");
    }
    svg::line_chart(
        title,
        "seconds since the start",
        "per second",
        &[Series {
            name: counted.to_owned(),
            color: PALETTE[0],
            points,
        }],
        &svg::short_number,
    )
}

/// The gateway's resident memory over the run, or why it was not measured.
pub fn memory_chart(timeline: &Timeline) -> String {
    let title = "Gateway memory (resident set)";
    let source = match timeline.gateway_pid {
        Some(pid) => format!("VmRSS of pid {pid}"),
        None if timeline.has_memory() || timeline.memory_error.is_some() => {
            "process_resident_memory_bytes from /metrics".to_owned()
        }
        None => return svg::placeholder(title, "not measured (no --gateway-pid given)"),
    };
    let points: Vec<(f64, f64)> = timeline
        .samples
        .iter()
        .filter_map(|sample| {
            sample
                .gateway_rss_kib
                .map(|kib| (sample.t_s, kib as f64 / 1024.0))
        })
        .collect();
    if points.is_empty() {
        let why = timeline
            .memory_error
            .as_deref()
            .unwrap_or("no sample was taken");
        return svg::placeholder(title, &format!("not measured: {why}"));
    }
    svg::line_chart(
        title,
        "seconds since the start",
        "MiB",
        &[Series {
            name: source,
            color: PALETTE[2],
            points,
        }],
        &svg::short_number,
    )
}

/// Memory caption shared by every report that samples the gateway.
pub const MEMORY_CAPTION: &str = "The gateway's resident set, read once a second: VmRSS \
    from /proc/<pid>/status when its pid was given (--gateway-pid), else \
    process_resident_memory_bytes from its /metrics.";

/// The peak-throughput and peak-memory rows every timeline-carrying report shows.
pub fn timeline_rows(page: &mut Page, timeline: &Timeline, unit: &str) {
    if let Some(peak) = timeline
        .samples
        .iter()
        .map(|sample| sample.acked_per_s)
        .reduce(f64::max)
    {
        page.row("throughput (best second)", format!("{peak:.1} {unit}/s"));
    }
    if let Some(peak) = timeline
        .samples
        .iter()
        .filter_map(|sample| sample.gateway_rss_kib)
        .max()
    {
        page.row(
            "gateway memory (peak RSS)",
            format!("{:.1} MiB", peak as f64 / 1024.0),
        );
    }
}

/// The whole page for an ingest run.
pub fn ingest_page(report: &IngestReport) -> String {
    let (clean, verdict) = if report.is_clean() {
        (
            true,
            "clean: every acknowledged point stored exactly once and delivered live",
        )
    } else {
        (false, "NOT clean: see the figures and errors below")
    };
    let mut page = Page::new(
        &format!("Fleetgate ingest run {}", report.run_id),
        clean,
        verdict,
    );
    page.section("Figures")
        .row("account", &report.account_id)
        .row("units", report.units)
        .row("points sent", report.points_sent)
        .row("points acknowledged", report.points_acked)
        .row("points stored (rows)", report.points_stored)
        .row("missing", report.missing)
        .row("duplicates", report.duplicates)
        .row("delivered via SSE", report.sse_received)
        .row("elapsed", format!("{:.2} s", report.elapsed.as_secs_f64()))
        .row(
            "throughput (mean)",
            format!("{:.1} points/s", report.points_per_sec),
        )
        .row(
            "offered load (units × rate)",
            format!("{:.1} points/s", report.offered_points_per_sec),
        )
        .row(
            "gateway transport",
            if report.gateway_tls {
                "TLS (mutual)"
            } else {
                "plain TCP"
            },
        );
    timeline_rows(&mut page, &report.timeline, "points");
    if let Some(baseline) = &report.baseline {
        baseline_rows(&mut page, report, baseline);
    }
    let mut latencies = vec![
        ("publish→ack", &report.publish_to_ack),
        ("publish→SSE", &report.publish_to_sse),
        ("publish→stored", &report.publish_to_stored),
    ];
    if let Some(baseline) = &report.baseline {
        latencies.push(("bare rumqttd publish→ack", &baseline.publish_to_ack));
        latencies.push(("bare rumqttd publish→sink", &baseline.publish_to_sink));
    }
    let (throughput, throughput_caption) = throughput_figure(report);
    page.section("Latency")
        .percentile_table(&latencies)
        .figure(&throughput, throughput_caption)
        .figure(
            &percentile_chart("Latency percentiles", &latencies),
            "From the unit's PUBLISH to its PUBACK (every acknowledged point, timed by the \
             unit; the gateway acknowledges after the commit that stores the point), from the \
             unit's send to the point on the account's live stream and to the point readable \
             in history (sampled by the storage probe), and (baseline) to the bare broker's \
             PUBACK, which it sends on arrival, and to its sink.",
        )
        .figure(&memory_chart(&report.timeline), MEMORY_CAPTION);
    if report.timeline.truncated {
        page.note("The series were cut at their sample limit; later seconds are not shown.");
    }
    page.finish(&report.errors)
}

/// The bare broker's figures and the ratio, with what the ratio means for this run.
fn baseline_rows(page: &mut Page, report: &IngestReport, baseline: &BaselineReport) {
    page.row("bare broker", &baseline.broker)
        .row(
            "bare rumqttd: acknowledged / drained by the sink",
            format!("{} / {}", baseline.points_acked, baseline.sink_drained),
        )
        .row(
            "bare rumqttd: throughput (mean)",
            format!(
                "{:.1} points/s ({})",
                baseline.points_per_sec, baseline.transport
            ),
        );
    if let Some(ratio) = report.throughput_ratio {
        page.row(
            "throughput ratio (gateway ÷ bare rumqttd)",
            format!("{ratio:.3}"),
        );
    }
    if let Some(ratio) = report.stored_ratio() {
        page.row(
            "stored ratio (acknowledged and stored ÷ bare rumqttd)",
            format!("{ratio:.3}"),
        );
    }
    let limit = if report.baseline_at_limit == Some(true) {
        "The bare broker could not take the offered load, so its throughput is its limit on \
         this machine and the ratio is the gateway's share of that limit."
    } else {
        "The bare broker carried the offered load, so the ratio is not a share of its limit: \
         it only says how much of the offered load the gateway carried relative to it. Offer \
         more (units × rate) to measure the limit."
    };
    let tls = if report.gateway_tls {
        " The gateway run used TLS and the bare broker plain TCP: the ratio includes the cost \
         of TLS."
    } else {
        ""
    };
    let broker = if report.shows_a_ratio() {
        format!(" The bare broker: {}.", baseline.broker)
    } else {
        String::new()
    };
    page.note(&format!("{limit}{tls}{broker}"));
}

/// Throughput over time: the gateway's series and, with a baseline, the bare broker's on
/// the same axes.
fn throughput_figure(report: &IngestReport) -> (String, &'static str) {
    let title = "Throughput: points acknowledged per second";
    let Some(baseline) = &report.baseline else {
        return (
            rate_chart(title, "acknowledged/s", &report.timeline),
            "Acknowledgements (PUBACK) counted once a second while the units publish.",
        );
    };
    let series = |name: &str, color, timeline: &Timeline| Series {
        name: name.to_owned(),
        color,
        points: timeline
            .samples
            .iter()
            .map(|sample| (sample.t_s, sample.acked_per_s))
            .collect(),
    };
    let lines = [
        series("Fleetgate", PALETTE[0], &report.timeline),
        series("bare rumqttd", PALETTE[1], &baseline.timeline),
    ];
    let chart = if lines.iter().any(|line| line.points.len() < 2) {
        svg::placeholder(title, "not enough samples (run shorter than a second)")
    } else {
        svg::line_chart(
            title,
            "seconds since the start",
            "per second",
            &lines,
            &svg::short_number,
        )
    };
    (
        chart,
        "Acknowledgements (PUBACK) counted once a second while the units publish, for the \
         gateway and for the same load against the bare broker (run first, on its own).",
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::AccountId;
    use crate::scenario::{Timeline, TimelineSample};

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("plain µs → text"), "plain µs → text");
    }

    fn report(gateway_pid: Option<u32>, rss: Option<u64>) -> IngestReport {
        let percentiles = Percentiles {
            samples: 100,
            p50_us: 1_500,
            p90_us: 3_000,
            p99_us: 9_000,
            p999_us: 12_000,
            max_us: 15_000,
        };
        let samples = (0..4)
            .map(|second| TimelineSample {
                t_s: second as f64,
                acked_total: second * 200,
                acked_per_s: if second == 0 { 0.0 } else { 200.0 },
                gateway_rss_kib: rss.map(|kib| kib + second * 100),
            })
            .collect();
        IngestReport {
            run_id: "r1".into(),
            account_id: AccountId::new("acc"),
            units: 20,
            points_sent: 600,
            points_acked: 600,
            points_stored: 600,
            missing: 0,
            duplicates: 0,
            sse_received: 600,
            elapsed: Duration::from_secs(3),
            points_per_sec: 200.0,
            publish_to_sse: percentiles,
            publish_to_stored: percentiles,
            publish_to_ack: Percentiles {
                samples: 600,
                p50_us: 21_000,
                ..percentiles
            },
            timeline: Timeline {
                interval_s: 1.0,
                gateway_pid,
                samples,
                truncated: false,
                memory_error: None,
            },
            offered_points_per_sec: 200.0,
            gateway_tls: false,
            baseline: None,
            throughput_ratio: None,
            baseline_at_limit: None,
            errors: vec!["unit <u1> said \"no\"".into()],
        }
    }

    /// `report` with a bare-broker run that carried `per_s` points/s.
    fn with_baseline(per_s: f64, at_limit: bool, tls: bool) -> IngestReport {
        let base = report(Some(42), Some(50_000));
        let samples = (0..4)
            .map(|second| TimelineSample {
                t_s: second as f64,
                acked_total: second * 300,
                acked_per_s: if second == 0 { 0.0 } else { per_s },
                gateway_rss_kib: None,
            })
            .collect();
        let baseline = BaselineReport {
            broker: crate::scenario::baseline::describe_broker(tls),
            broker_addr: "127.0.0.1:2".into(),
            transport: "plain TCP, no authentication".into(),
            units: 20,
            points_sent: 600,
            points_acked: 600,
            sink_drained: 600,
            elapsed: Duration::from_secs(2),
            points_per_sec: per_s,
            publish_to_sink: Percentiles {
                samples: 600,
                p50_us: 300,
                p90_us: 500,
                p99_us: 900,
                p999_us: 1_100,
                max_us: 1_200,
            },
            publish_to_ack: Percentiles {
                samples: 600,
                p50_us: 150,
                p90_us: 250,
                p99_us: 400,
                p999_us: 500,
                max_us: 600,
            },
            timeline: Timeline {
                interval_s: 1.0,
                gateway_pid: None,
                samples,
                truncated: false,
                memory_error: None,
            },
            errors: Vec::new(),
        };
        IngestReport {
            throughput_ratio: Some(base.points_per_sec / per_s),
            baseline_at_limit: Some(at_limit),
            gateway_tls: tls,
            baseline: Some(baseline),
            ..base
        }
    }

    #[test]
    fn baseline_shares_the_throughput_chart_and_adds_its_latency_and_ratio() {
        let page = ingest_page(&with_baseline(400.0, true, true));
        assert_eq!(page.matches("<svg").count(), 3, "no extra chart");
        assert_eq!(
            page.matches("<polyline").count(),
            3,
            "two throughput lines and memory"
        );
        assert!(page.contains("<title>bare rumqttd</title>"));
        assert!(page.contains("<title>Fleetgate</title>"));
        assert!(page.contains("bare rumqttd publish→sink"));
        assert!(page.contains("<td>bare rumqttd publish→ack</td><td>600</td><td>150 µs</td>"));
        assert!(page.contains(
            "<td>bare broker</td><td>rumqttd 0.20.0 (crates.io), plain TCP; the gateway ran TLS</td>"
        ));
        assert!(page.contains(
            "The bare broker: rumqttd 0.20.0 (crates.io), plain TCP; the gateway ran TLS."
        ));
        assert!(page.contains("throughput ratio (gateway ÷ bare rumqttd)</td><td>0.500"));
        assert!(page.contains("600 / 600"));
        assert!(page.contains("its limit on this machine"));
        assert!(page.contains("includes the cost of TLS"));
        assert!(page.contains("offered load (units × rate)</td><td>200.0 points/s"));
        let below = ingest_page(&with_baseline(200.0, false, false));
        assert!(below.contains("not a share of its limit"));
        assert!(!below.contains("cost of TLS"));
        assert!(below.contains("plain TCP"));
        assert!(below.contains("the gateway ran plain TCP too"));
        let lower = below.to_ascii_lowercase();
        assert!(!lower.contains("<script") && !lower.contains("http://"));
    }

    #[test]
    fn without_a_baseline_there_is_no_ratio() {
        let page = ingest_page(&report(None, None));
        assert!(!page.contains("ratio"));
        assert!(!page.contains("bare rumqttd"));
    }

    #[test]
    fn page_is_self_contained() {
        for page in [
            ingest_page(&report(None, None)),
            ingest_page(&report(Some(42), Some(50_000))),
        ] {
            let lower = page.to_ascii_lowercase();
            assert!(!lower.contains("http://") && !lower.contains("https://"));
            assert!(!lower.contains("<script") && !lower.contains("<link"));
            assert!(!lower.contains("src=") && !lower.contains("@import"));
            assert!(!lower.contains("url("));
            assert!(page.starts_with("<!DOCTYPE html>"));
        }
    }

    #[test]
    fn page_has_the_three_charts_and_escapes_errors() {
        let page = ingest_page(&report(Some(42), Some(50_000)));
        assert_eq!(page.matches("<svg").count(), 3);
        assert_eq!(
            page.matches("<polyline").count(),
            2,
            "throughput and memory"
        );
        assert!(page.contains("VmRSS of pid 42"));
        assert!(page.contains("p99.9"));
        assert!(
            page.contains("<td>publish→ack</td><td>600</td><td>21.0 ms</td>"),
            "the PUBACK round trip heads the latency table"
        );
        assert!(
            page.contains("<title>publish→ack p50: "),
            "and has its bars"
        );
        assert!(page.contains("unit &lt;u1&gt; said &quot;no&quot;"));
        assert!(!page.contains("<u1>"));
        assert!(page.contains("peak RSS"));
    }

    #[test]
    fn memory_without_a_pid_is_not_measured() {
        let page = ingest_page(&report(None, None));
        assert!(page.contains("not measured (no --gateway-pid given)"));
        assert_eq!(page.matches("<polyline").count(), 1, "throughput only");
        let mut unreadable = report(Some(7), None);
        unreadable.timeline.memory_error = Some("/proc/7/status: gone".into());
        assert!(ingest_page(&unreadable).contains("not measured: /proc/7/status: gone"));
    }
}
