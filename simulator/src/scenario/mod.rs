//! Scenarios: scripted end-to-end runs against a live gateway that produce a report.
//!
//! A scenario sets up everything it needs through the public API (its own account, users,
//! devices and assets under a run-specific prefix), so it can run against a gateway that
//! already holds other data, and several scenarios can share one gateway.

pub mod baseline;
pub mod fanout;
mod fleet;
pub mod ingest;
pub mod keys;
mod measure;
mod options;
mod publish;
pub mod revoke_storm;
mod runner;
pub mod scale;
mod sharing;
pub mod soak;
pub mod support;
mod target;
pub mod timeline;
pub mod visibility;

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};

use crate::api::ApiError;
use crate::unit::UnitError;

pub use baseline::BaselineReport;
pub use fanout::{run_fanout, FanoutConfig, FanoutReport};
pub use ingest::{run_ingest, IngestConfig, IngestReport};
pub use keys::{run_keys, KeysConfig, KeysReport};
pub use options::RunOptions;
pub(crate) use options::{check_count, check_duration, check_rate};
pub use revoke_storm::{run_revoke_storm, RevokeMode, RevokeStormConfig, RevokeStormReport};
pub use scale::{run_scale, ScaleConfig, ScaleReport};
pub use soak::{run_soak, SoakConfig, SoakReport};
pub use support::{run_support, SupportConfig, SupportReport};
pub use target::Target;
pub use timeline::{Timeline, TimelineSample};
pub use visibility::{run_visibility, VisibilityConfig, VisibilityReport};

/// Why a scenario could not produce a report at all. Problems during the measured run
/// (a unit dropping, a point not stored) do not end up here: they are part of the report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    #[error("invalid scenario settings: {0}")]
    InvalidConfig(String),
    // The cause is part of the message and deliberately not a `source()`: callers that
    // print the whole error chain would otherwise show it twice.
    #[error("{step}: {cause}")]
    Api { step: String, cause: ApiError },
    #[error("{step}: {cause}")]
    Unit { step: String, cause: UnitError },
    #[error("no unit could connect; first error: {0}")]
    NoUnits(String),
    /// The simulator could not set itself up (a thread, a runtime).
    #[error("{0}")]
    Setup(String),
}

impl ScenarioError {
    fn api(step: impl Into<String>) -> impl FnOnce(ApiError) -> ScenarioError {
        let step = step.into();
        move |cause| ScenarioError::Api { step, cause }
    }
}

/// Problems seen during a run, shared by all its tasks. Capped so that ten thousand units
/// failing the same way give a readable report rather than ten thousand lines.
#[derive(Debug, Default)]
pub(crate) struct ErrorLog {
    inner: Mutex<ErrorLogInner>,
}

#[derive(Debug, Default)]
struct ErrorLogInner {
    entries: Vec<String>,
    dropped: u64,
}

impl ErrorLog {
    const LIMIT: usize = 50;

    pub(crate) fn push(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!("{message}");
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if inner.entries.len() < Self::LIMIT {
            inner.entries.push(message);
        } else {
            inner.dropped += 1;
        }
    }

    pub(crate) fn first(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entries
            .first()
            .cloned()
    }

    /// The entries for the report once every task is done with the log. A task still
    /// holding it (one that was lost instead of joined) is itself reported.
    pub(crate) fn finish(log: Arc<ErrorLog>) -> Vec<String> {
        Arc::try_unwrap(log)
            .map(ErrorLog::into_entries)
            .unwrap_or_else(|shared| {
                vec![format!(
                    "internal: {} tasks still held the error log",
                    Arc::strong_count(&shared) - 1
                )]
            })
    }

    pub(crate) fn into_entries(self) -> Vec<String> {
        let inner = self
            .inner
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut entries = inner.entries;
        if inner.dropped > 0 {
            entries.push(format!("… and {} more errors", inner.dropped));
        }
        entries
    }
}

/// A progress bar on stderr counting `what`, or a hidden one when quiet or when stderr is
/// not a terminal (CI logs would fill with redraws).
pub(crate) fn progress_bar(total: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {what} ({{per_sec}})"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_log_is_capped_and_says_how_much_it_dropped() {
        let log = ErrorLog::default();
        for index in 0..ErrorLog::LIMIT + 3 {
            log.push(format!("error {index}"));
        }
        let entries = log.into_entries();
        assert_eq!(entries.len(), ErrorLog::LIMIT + 1);
        assert_eq!(
            entries.last().map(String::as_str),
            Some("… and 3 more errors")
        );
    }
}
