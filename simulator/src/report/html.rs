//! The HTML page of a scenario report: the figures as a table and the charts from `svg.rs`,
//! with inline styles only, so one file carries the whole report and opens offline without
//! fetching any script, font or stylesheet.

use std::fmt::Write as _;

use super::svg::{self, BarGroup, Series, PALETTE};
use crate::scenario::IngestReport;
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

fn percentile_values(percentiles: &Percentiles) -> Vec<f64> {
    [
        percentiles.p50_us,
        percentiles.p90_us,
        percentiles.p99_us,
        percentiles.p999_us,
        percentiles.max_us,
    ]
    .into_iter()
    .map(ms)
    .collect()
}

fn throughput_chart(report: &IngestReport) -> String {
    let title = "Throughput: points acknowledged per second";
    let points: Vec<(f64, f64)> = report
        .timeline
        .samples
        .iter()
        .map(|sample| (sample.t_s, sample.acked_per_s))
        .collect();
    if points.len() < 2 {
        return svg::placeholder(title, "not enough samples (run shorter than a second)");
    }
    svg::line_chart(
        title,
        "seconds since the first send",
        "points/s",
        &[Series {
            name: "acknowledged/s".into(),
            color: PALETTE[0],
            points,
        }],
        &svg::short_number,
    )
}

fn latency_chart(report: &IngestReport) -> String {
    let title = "Latency percentiles";
    let mut groups = Vec::new();
    for (name, percentiles, color) in [
        ("publish→SSE", &report.publish_to_sse, PALETTE[0]),
        ("publish→stored", &report.publish_to_stored, PALETTE[1]),
    ] {
        if percentiles.samples > 0 {
            groups.push(BarGroup {
                name: name.to_owned(),
                color,
                values: percentile_values(percentiles),
            });
        }
    }
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

fn memory_chart(report: &IngestReport) -> String {
    let title = "Gateway memory (resident set)";
    let timeline = &report.timeline;
    let Some(pid) = timeline.gateway_pid else {
        return svg::placeholder(title, "not measured (no --gateway-pid given)");
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
        "seconds since the first send",
        "MiB",
        &[Series {
            name: format!("VmRSS of pid {pid}"),
            color: PALETTE[2],
            points,
        }],
        &svg::short_number,
    )
}

fn row(out: &mut String, name: &str, value: &str) {
    let _ = write!(
        out,
        "<tr><td>{}</td><td>{}</td></tr>",
        escape(name),
        escape(value)
    );
}

fn latency_table(out: &mut String, report: &IngestReport) {
    out.push_str(
        "<table><tr><th>latency</th><th>samples</th><th>p50</th><th>p90</th><th>p99</th>\
         <th>p99.9</th><th>max</th></tr>",
    );
    for (name, percentiles) in [
        ("publish→SSE", &report.publish_to_sse),
        ("publish→stored", &report.publish_to_stored),
    ] {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td>",
            escape(name),
            percentiles.samples
        );
        for micros in [
            percentiles.p50_us,
            percentiles.p90_us,
            percentiles.p99_us,
            percentiles.p999_us,
            percentiles.max_us,
        ] {
            let text = if percentiles.samples == 0 {
                "–".to_owned()
            } else {
                format_us(micros)
            };
            let _ = write!(out, "<td>{}</td>", escape(&text));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// The whole page for an ingest run.
pub fn ingest_page(report: &IngestReport) -> String {
    let mut out = String::new();
    let title = format!("Fleetgate ingest run {}", report.run_id);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1>",
        title = escape(&title)
    );
    let (class, verdict) = if report.is_clean() {
        (
            "clean",
            "clean: every acknowledged point stored exactly once and delivered live",
        )
    } else {
        ("dirty", "NOT clean: see the figures and errors below")
    };
    let _ = write!(
        out,
        "<p class=\"verdict {class}\">{}</p><h2>Figures</h2><table>",
        escape(verdict)
    );
    row(&mut out, "account", &report.account_id.to_string());
    row(&mut out, "units", &report.units.to_string());
    row(&mut out, "points sent", &report.points_sent.to_string());
    row(
        &mut out,
        "points acknowledged",
        &report.points_acked.to_string(),
    );
    row(
        &mut out,
        "points stored (rows)",
        &report.points_stored.to_string(),
    );
    row(&mut out, "missing", &report.missing.to_string());
    row(&mut out, "duplicates", &report.duplicates.to_string());
    row(
        &mut out,
        "delivered via SSE",
        &report.sse_received.to_string(),
    );
    row(
        &mut out,
        "elapsed",
        &format!("{:.2} s", report.elapsed.as_secs_f64()),
    );
    row(
        &mut out,
        "throughput (mean)",
        &format!("{:.1} points/s", report.points_per_sec),
    );
    if let Some(peak) = report
        .timeline
        .samples
        .iter()
        .map(|sample| sample.acked_per_s)
        .reduce(f64::max)
    {
        row(
            &mut out,
            "throughput (best second)",
            &format!("{peak:.1} points/s"),
        );
    }
    if let Some(peak) = report
        .timeline
        .samples
        .iter()
        .filter_map(|sample| sample.gateway_rss_kib)
        .max()
    {
        row(
            &mut out,
            "gateway memory (peak RSS)",
            &format!("{:.1} MiB", peak as f64 / 1024.0),
        );
    }
    out.push_str("</table><h2>Latency</h2>");
    latency_table(&mut out, report);
    for (chart, caption) in [
        (
            throughput_chart(report),
            "Acknowledgements (PUBACK) counted once a second while the units publish.",
        ),
        (
            latency_chart(report),
            "From the unit's send to the point on the account's live stream, and to the point \
             readable in history (sampled by the storage probe).",
        ),
        (
            memory_chart(report),
            "VmRSS from /proc/<pid>/status, read once a second; only when the gateway runs on \
             this machine and its pid was given.",
        ),
    ] {
        let _ = write!(
            out,
            "<figure>{chart}<figcaption>{}</figcaption></figure>",
            escape(caption)
        );
    }
    if report.timeline.truncated {
        out.push_str(
            "<p>The series were cut at their sample limit; later seconds are not shown.</p>",
        );
    }
    out.push_str("<h2>Errors</h2>");
    if report.errors.is_empty() {
        out.push_str("<p>none</p>");
    } else {
        out.push_str("<ul>");
        for error in &report.errors {
            let _ = write!(out, "<li>{}</li>", escape(error));
        }
        out.push_str("</ul>");
    }
    out.push_str("</body></html>\n");
    out
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
            timeline: Timeline {
                interval_s: 1.0,
                gateway_pid,
                samples,
                truncated: false,
                memory_error: None,
            },
            errors: vec!["unit <u1> said \"no\"".into()],
        }
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
