//! Inline SVG charts for the HTML reports, drawn here rather than by a JavaScript library so
//! a report is one self-contained file that opens anywhere, offline, years later, and so the
//! figures in it are exactly the ones in the JSON next to it.
//!
//! Only what the reports need: a line chart over time (several series), a grouped bar chart
//! (latency percentiles), and a placeholder box for a chart that has no data. Every piece of
//! text goes through `escape`, so names from a run cannot break the markup.

use std::fmt::Write as _;

use super::html::escape;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 48.0;
const Y_TICKS: usize = 5;
const X_TICKS: usize = 6;

/// Colours that stay apart for the colour-blind and in greyscale print.
pub const PALETTE: [&str; 4] = ["#1f77b4", "#d95f02", "#7570b3", "#1b9e77"];

/// One line of a line chart: `(x, y)` in data units, x ascending.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A line named `name` in the legend.
    pub fn new(name: impl Into<String>, color: &'static str, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            color,
            points,
        }
    }

    /// The lines of `(name, colour, points)` that have a point to draw: an empty line would
    /// only crowd the legend.
    pub fn drawn(
        lines: impl IntoIterator<Item = (&'static str, &'static str, Vec<(f64, f64)>)>,
    ) -> Vec<Series> {
        lines
            .into_iter()
            .filter(|(_, _, points)| !points.is_empty())
            .map(|(name, color, points)| Series::new(name, color, points))
            .collect()
    }
}

/// One set of bars of a bar chart: one value per category, in data units.
#[derive(Debug, Clone)]
pub struct BarGroup {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<f64>,
}

/// Maps data units to the plot area's pixels; y grows upwards from zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plot {
    pub x_min: f64,
    pub x_max: f64,
    pub y_max: f64,
}

impl Plot {
    fn inner_width() -> f64 {
        WIDTH - LEFT - RIGHT
    }

    fn inner_height() -> f64 {
        HEIGHT - TOP - BOTTOM
    }

    pub fn x(&self, value: f64) -> f64 {
        let span = self.x_max - self.x_min;
        let fraction = if span > 0.0 {
            (value - self.x_min) / span
        } else {
            0.0
        };
        LEFT + fraction.clamp(0.0, 1.0) * Self::inner_width()
    }

    pub fn y(&self, value: f64) -> f64 {
        let fraction = if self.y_max > 0.0 {
            value / self.y_max
        } else {
            0.0
        };
        TOP + (1.0 - fraction.clamp(0.0, 1.0)) * Self::inner_height()
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at or above `value`, so axis ticks are round
/// numbers; 1 for nothing to show.
pub fn nice_ceiling(value: f64) -> f64 {
    if !value.is_finite() || value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        let candidate = step * magnitude;
        if candidate >= value * (1.0 - 1e-9) {
            return candidate;
        }
    }
    10.0 * magnitude
}

/// The `points` attribute of an SVG polyline: pixel pairs with one decimal, skipping
/// points that are not finite numbers.
pub fn polyline_points(points: &[(f64, f64)], plot: &Plot) -> String {
    let mut out = String::new();
    for &(x, y) in points {
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{:.1},{:.1}", plot.x(x), plot.y(y));
    }
    out
}

/// A figure for an axis label: no needless decimals.
pub fn short_number(value: f64) -> String {
    if value == 0.0 {
        "0".to_owned()
    } else if value.abs() >= 100.0 || value.fract().abs() < 1e-9 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Inline SVG inside HTML needs no `xmlns` (the HTML parser puts it in the SVG namespace),
/// which keeps the page free of any URL.
fn open_svg(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{title}\">\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#fff\"/>\
         <text x=\"{LEFT}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{title}</text>",
        title = escape(title)
    );
}

/// Horizontal grid lines with y labels, and the y axis title.
fn y_axis(out: &mut String, plot: &Plot, label: &str, format: &dyn Fn(f64) -> String) {
    for tick in 0..=Y_TICKS {
        let value = plot.y_max * tick as f64 / Y_TICKS as f64;
        let y = plot.y(value);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{lx}\" y=\"{ty:.1}\" font-size=\"11\" text-anchor=\"end\">{text}</text>",
            x2 = WIDTH - RIGHT,
            lx = LEFT - 6.0,
            ty = y + 4.0,
            text = escape(&format(value))
        );
    }
    let _ = write!(
        out,
        "<text x=\"14\" y=\"{cy}\" font-size=\"12\" text-anchor=\"middle\" \
         transform=\"rotate(-90 14 {cy})\">{label}</text>",
        cy = TOP + Plot::inner_height() / 2.0,
        label = escape(label)
    );
}

fn legend(out: &mut String, entries: &[(&str, &str)]) {
    let mut x = WIDTH - RIGHT;
    for (name, color) in entries.iter().rev() {
        let width = 18.0 + 7.0 * name.chars().count() as f64;
        x -= width + 12.0;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"12\" width=\"12\" height=\"12\" fill=\"{color}\"/>\
             <text x=\"{tx:.1}\" y=\"22\" font-size=\"12\">{name}</text>",
            tx = x + 16.0,
            name = escape(name)
        );
    }
}

/// A line chart of `series` over a shared x axis starting at zero.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    format_y: &dyn Fn(f64) -> String,
) -> String {
    let finite = |value: &f64| value.is_finite();
    let all = series.iter().flat_map(|line| line.points.iter());
    let x_max = all
        .clone()
        .map(|point| point.0)
        .filter(finite)
        .fold(0.0, f64::max);
    let y_max = all.map(|point| point.1).filter(finite).fold(0.0, f64::max);
    let plot = Plot {
        x_min: 0.0,
        x_max: nice_ceiling(x_max),
        y_max: nice_ceiling(y_max),
    };
    let mut out = String::new();
    open_svg(&mut out, title);
    y_axis(&mut out, &plot, y_label, format_y);
    for tick in 0..=X_TICKS {
        let value = plot.x_max * tick as f64 / X_TICKS as f64;
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{y}\" font-size=\"11\" text-anchor=\"middle\">{text}</text>",
            x = plot.x(value),
            y = HEIGHT - BOTTOM + 16.0,
            text = escape(&short_number(value))
        );
    }
    let _ = write!(
        out,
        "<text x=\"{cx}\" y=\"{y}\" font-size=\"12\" text-anchor=\"middle\">{label}</text>\
         <line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{base}\" y2=\"{base}\" stroke=\"#444\"/>",
        cx = LEFT + Plot::inner_width() / 2.0,
        y = HEIGHT - 10.0,
        label = escape(x_label),
        x2 = WIDTH - RIGHT,
        base = TOP + Plot::inner_height()
    );
    for line in series {
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{points}\">\
             <title>{name}</title></polyline>",
            color = line.color,
            points = polyline_points(&line.points, &plot),
            name = escape(&line.name)
        );
        if line.points.len() == 1 {
            if let Some(&(x, y)) = line.points.first() {
                let _ = write!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>",
                    plot.x(x),
                    plot.y(y),
                    line.color
                );
            }
        }
    }
    let entries: Vec<(&str, &str)> = series
        .iter()
        .map(|line| (line.name.as_str(), line.color))
        .collect();
    legend(&mut out, &entries);
    out.push_str("</svg>");
    out
}

/// Bars grouped by category (e.g. p50 … max), one bar per group (e.g. publish→SSE), each
/// labelled with its value.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    categories: &[&str],
    groups: &[BarGroup],
    format_value: &dyn Fn(f64) -> String,
) -> String {
    let y_max = groups
        .iter()
        .flat_map(|group| group.values.iter().copied())
        .filter(|value| value.is_finite())
        .fold(0.0, f64::max);
    let plot = Plot {
        x_min: 0.0,
        x_max: 1.0,
        y_max: nice_ceiling(y_max),
    };
    let mut out = String::new();
    open_svg(&mut out, title);
    y_axis(&mut out, &plot, y_label, format_value);
    let slot = Plot::inner_width() / categories.len().max(1) as f64;
    let bar_width = (slot * 0.8) / groups.len().max(1) as f64;
    let base = TOP + Plot::inner_height();
    for (index, category) in categories.iter().enumerate() {
        let slot_left = LEFT + slot * index as f64;
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{y}\" font-size=\"12\" text-anchor=\"middle\">{text}</text>",
            x = slot_left + slot / 2.0,
            y = base + 18.0,
            text = escape(category)
        );
        for (position, group) in groups.iter().enumerate() {
            let value = group.values.get(index).copied().unwrap_or(0.0);
            let value = if value.is_finite() {
                value.max(0.0)
            } else {
                0.0
            };
            let top = plot.y(value);
            let x = slot_left + slot * 0.1 + bar_width * position as f64;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" \
                 fill=\"{color}\"><title>{name} {category}: {text}</title></rect>\
                 <text x=\"{cx:.1}\" y=\"{ty:.1}\" font-size=\"10\" text-anchor=\"middle\">{text}</text>",
                w = (bar_width - 2.0).max(1.0),
                h = base - top,
                color = group.color,
                name = escape(&group.name),
                category = escape(category),
                text = escape(&format_value(value)),
                cx = x + bar_width / 2.0,
                ty = top - 3.0
            );
        }
    }
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{base}\" y2=\"{base}\" stroke=\"#444\"/>",
        x2 = WIDTH - RIGHT
    );
    let entries: Vec<(&str, &str)> = groups
        .iter()
        .map(|group| (group.name.as_str(), group.color))
        .collect();
    legend(&mut out, &entries);
    out.push_str("</svg>");
    out
}

/// A chart-sized box that says why there is no chart, so a missing figure is visibly
/// missing rather than an empty plot that reads as zero.
pub fn placeholder(title: &str, message: &str) -> String {
    let mut out = String::new();
    open_svg(&mut out, title);
    let _ = write!(
        out,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{w}\" height=\"{h}\" fill=\"#f6f6f6\" \
         stroke=\"#ccc\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{cx}\" y=\"{cy}\" font-size=\"16\" text-anchor=\"middle\" fill=\"#555\">{message}</text>\
         </svg>",
        w = Plot::inner_width(),
        h = Plot::inner_height(),
        cx = LEFT + Plot::inner_width() / 2.0,
        cy = TOP + Plot::inner_height() / 2.0,
        message = escape(message)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polyline_of_known_points() {
        let plot = Plot {
            x_min: 0.0,
            x_max: 10.0,
            y_max: 100.0,
        };
        // Plot area: x 70..740, y 36..232.
        let points = polyline_points(&[(0.0, 0.0), (5.0, 50.0), (10.0, 100.0)], &plot);
        assert_eq!(points, "70.0,232.0 405.0,134.0 740.0,36.0");
        assert_eq!(
            polyline_points(&[(f64::NAN, 1.0), (10.0, 0.0)], &plot),
            "740.0,232.0"
        );
        assert_eq!(polyline_points(&[], &plot), "");
    }

    #[test]
    fn out_of_range_values_stay_inside_the_plot() {
        let plot = Plot {
            x_min: 0.0,
            x_max: 1.0,
            y_max: 1.0,
        };
        assert_eq!(plot.y(5.0), TOP);
        assert_eq!(plot.y(-1.0), TOP + Plot::inner_height());
        let flat = Plot {
            x_min: 0.0,
            x_max: 0.0,
            y_max: 0.0,
        };
        assert_eq!(flat.x(3.0), LEFT);
        assert_eq!(flat.y(3.0), TOP + Plot::inner_height());
    }

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(180.0), 200.0);
        assert_eq!(nice_ceiling(2100.0), 2500.0);
        assert_eq!(nice_ceiling(0.03), 0.05);
        assert_eq!(short_number(2.5), "2.50");
        assert_eq!(short_number(200.0), "200");
        assert_eq!(short_number(12.5), "12.5");
    }

    #[test]
    fn line_chart_draws_each_series_and_escapes_names() {
        let svg = line_chart(
            "Throughput <live>",
            "seconds",
            "points/s",
            &[
                Series {
                    name: "acked & stored".into(),
                    color: PALETTE[0],
                    points: vec![(0.0, 0.0), (1.0, 200.0), (2.0, 180.0)],
                },
                Series {
                    name: "single".into(),
                    color: PALETTE[1],
                    points: vec![(1.0, 5.0)],
                },
            ],
            &short_number,
        );
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("Throughput &lt;live&gt;"));
        assert!(svg.contains("acked &amp; stored"));
        assert!(!svg.contains("<live>"));
        assert!(svg.contains("<circle"), "a lone point is still visible");
    }

    #[test]
    fn bar_chart_has_a_bar_per_group_and_category() {
        let svg = bar_chart(
            "Latency",
            "ms",
            &["p50", "p99"],
            &[
                BarGroup {
                    name: "a".into(),
                    color: PALETTE[0],
                    values: vec![1.0, 4.0],
                },
                BarGroup {
                    name: "b".into(),
                    color: PALETTE[1],
                    values: vec![2.0],
                },
            ],
            &short_number,
        );
        // Two bars per category plus the two legend swatches and the background.
        assert_eq!(svg.matches("<rect").count(), 4 + 2 + 1);
        assert!(svg.contains(">4<"));
    }

    #[test]
    fn placeholder_says_why() {
        let svg = placeholder("Memory", "not measured");
        assert!(svg.contains("not measured"));
        assert!(!svg.contains("<polyline"));
    }
}
