//! The one report model every scenario fills: a headline, named checks, sections of
//! figures, latency tables and charts, and the errors met on the way. A scenario states each
//! figure once ([`ScenarioReport`]); `text.rs` renders the model for the terminal, `html.rs`
//! as a page, and `super::to_json` adds the checks to the scenario's own serialized fields.

use std::fmt;

use serde::Serialize;

use super::svg::{self, BarGroup, Series};
use crate::stats::Percentiles;

/// How one check of a run came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    /// Not enough data to say; never makes a run dirty, and the detail says why.
    NotJudged,
}

impl fmt::Display for Outcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "FAILED",
            Outcome::NotJudged => "not judged",
        })
    }
}

/// One promise a run checks, by name, with the figures that decided it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
}

impl Check {
    pub fn new(name: &str, outcome: Outcome, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            outcome,
            detail: detail.into(),
        }
    }

    /// Passed when `holds`, failed otherwise.
    pub fn holds(name: &str, holds: bool, detail: impl Into<String>) -> Self {
        let outcome = if holds {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        Self::new(name, outcome, detail)
    }
}

/// A chart as data; `html.rs` draws it as inline SVG (`svg.rs`), the text leaves it out.
#[derive(Debug, Clone)]
pub enum Chart {
    /// Lines over a shared x axis starting at zero.
    Lines {
        title: String,
        x_label: String,
        y_label: String,
        series: Vec<Series>,
    },
    /// Bars grouped by category, one bar per group in each.
    Bars {
        title: String,
        y_label: String,
        categories: Vec<String>,
        groups: Vec<BarGroup>,
    },
    /// Why there is no chart, shown where it would be, so a missing figure is visibly
    /// missing rather than an empty plot that reads as zero.
    Missing { title: String, why: String },
}

impl Chart {
    pub fn lines(title: &str, x_label: &str, y_label: &str, series: Vec<Series>) -> Self {
        Chart::Lines {
            title: title.to_owned(),
            x_label: x_label.to_owned(),
            y_label: y_label.to_owned(),
            series,
        }
    }

    pub fn bars(title: &str, y_label: &str, categories: &[&str], groups: Vec<BarGroup>) -> Self {
        Chart::Bars {
            title: title.to_owned(),
            y_label: y_label.to_owned(),
            categories: categories.iter().map(|name| (*name).to_owned()).collect(),
            groups,
        }
    }

    pub fn missing(title: &str, why: &str) -> Self {
        Chart::Missing {
            title: title.to_owned(),
            why: why.to_owned(),
        }
    }

    /// The chart as an `<svg>` element.
    pub fn to_svg(&self) -> String {
        match self {
            Chart::Lines {
                title,
                x_label,
                y_label,
                series,
            } => svg::line_chart(title, x_label, y_label, series, &svg::short_number),
            Chart::Bars {
                title,
                y_label,
                categories,
                groups,
            } => {
                let categories: Vec<&str> = categories.iter().map(String::as_str).collect();
                svg::bar_chart(title, y_label, &categories, groups, &svg::short_number)
            }
            Chart::Missing { title, why } => svg::placeholder(title, why),
        }
    }
}

/// One thing a section shows.
#[derive(Debug, Clone)]
pub enum Item {
    /// A named figure with its unit in the value (`"12.5 points/s"`).
    Figure { name: String, value: String },
    /// Latency percentiles, one row per named measurement.
    Latencies(Vec<(String, Percentiles)>),
    /// A chart (on the page only) with its caption.
    Chart { chart: Chart, caption: String },
    /// A sentence that qualifies the figures.
    Note(String),
}

/// A heading and what stands under it.
#[derive(Debug, Clone)]
pub struct Section {
    pub heading: String,
    pub items: Vec<Item>,
}

impl Section {
    pub fn new(heading: &str) -> Self {
        Self {
            heading: heading.to_owned(),
            items: Vec::new(),
        }
    }

    pub fn figure(mut self, name: &str, value: impl fmt::Display) -> Self {
        self.items.push(Item::Figure {
            name: name.to_owned(),
            value: value.to_string(),
        });
        self
    }

    /// Adds `figure` only when there is a value.
    pub fn figure_if(self, name: &str, value: Option<impl fmt::Display>) -> Self {
        match value {
            Some(value) => self.figure(name, value),
            None => self,
        }
    }

    pub fn latencies(mut self, rows: &[(&str, &Percentiles)]) -> Self {
        let rows = rows
            .iter()
            .map(|(name, percentiles)| ((*name).to_owned(), **percentiles))
            .collect();
        self.items.push(Item::Latencies(rows));
        self
    }

    pub fn chart(mut self, chart: Chart, caption: &str) -> Self {
        self.items.push(Item::Chart {
            chart,
            caption: caption.to_owned(),
        });
        self
    }

    pub fn note(mut self, text: impl Into<String>) -> Self {
        self.items.push(Item::Note(text.into()));
        self
    }

    /// Adds `note` only when `shown`.
    pub fn note_if(self, shown: bool, text: &str) -> Self {
        if shown {
            self.note(text)
        } else {
            self
        }
    }
}

/// What every scenario's report states: its name and run, its checks, its figures. The
/// renderers in this module turn it into text, a page and a JSON; the scenario only says
/// what is in it.
pub trait ScenarioReport: Serialize {
    /// The scenario's name in the command line and in the report's file names.
    const SCENARIO: &'static str;

    fn run_id(&self) -> &str;

    /// Problems met during the run; any makes the run dirty.
    fn errors(&self) -> &[String];

    /// What the run promises, each judged.
    fn checks(&self) -> Vec<Check>;

    /// One line saying what ran: the run, its accounts, its size.
    fn headline(&self) -> String;

    /// What a clean run showed, for the verdict line.
    fn clean_means(&self) -> String;

    /// The figures, latency tables and charts, in sections.
    fn sections(&self) -> Vec<Section>;

    /// No check failed and no error was met. Checks that could not be judged do not make
    /// a run dirty; the report says they were not judged.
    fn is_clean(&self) -> bool {
        self.errors().is_empty()
            && self
                .checks()
                .iter()
                .all(|check| check.outcome != Outcome::Failed)
    }

    /// The verdict line at the top of the text and the page.
    fn verdict(&self) -> String {
        if self.is_clean() {
            return format!("clean: {}", self.clean_means());
        }
        let failed: Vec<String> = self
            .checks()
            .into_iter()
            .filter(|check| check.outcome == Outcome::Failed)
            .map(|check| check.name)
            .collect();
        if failed.is_empty() {
            format!("NOT clean: {} errors", self.errors().len())
        } else {
            format!("NOT clean: {}", failed.join(", "))
        }
    }
}
