//! The one run lifecycle every scenario goes through, owned here so that no scenario writes
//! it again: validate the settings, name the run, **setup** (accounts, devices, streams,
//! units), **load** (what the scenario measures under), **settle** (wait for what is still
//! on the way), **check** (read back, compare, judge) and the report. A scenario states
//! only its own steps ([`Scenario`]); criterion's `Bencher` owning the timing loop is the
//! model.
//!
//! A setup that fails ends the run with [`ScenarioError`]: without its accounts or units it
//! measures nothing. From the load on, problems are the run's findings: they go to the
//! run's error log ([`Run::errors`]) and into the report.

use std::future::Future;
use std::sync::Arc;

use super::{ErrorLog, RunOptions, ScenarioError};
use crate::report::ScenarioReport;

/// One run in progress: its id, its options, and its error log shared by all its tasks.
pub(crate) struct Run {
    /// Names the run's accounts, devices and assets.
    pub(crate) id: String,
    pub(crate) options: RunOptions,
    /// Shared with every task of the run; the check phase takes what it holds into the
    /// report once the tasks are done with it ([`Run::finish_errors`]).
    pub(crate) errors: Arc<ErrorLog>,
}

impl Run {
    fn new(options: &RunOptions) -> Self {
        Self {
            id: options.run_id(),
            options: options.clone(),
            errors: Arc::new(ErrorLog::default()),
        }
    }

    /// The errors for the report; every task must be done with the log by now.
    pub(crate) fn finish_errors(self) -> Vec<String> {
        ErrorLog::finish(self.errors)
    }
}

/// One scenario's own steps; [`run`] calls them in order. `Setup` is what setup made and
/// the later steps use (accounts, streams, connected units); `Load` is what the load
/// measured, which settle may complete.
pub(crate) trait Scenario {
    type Setup;
    type Load;
    type Report: ScenarioReport;

    /// Creates what the run needs through the public API and connects its units.
    fn setup(&self, run: &Run) -> impl Future<Output = Result<Self::Setup, ScenarioError>>;

    /// Applies the load the scenario measures under.
    fn load(&self, run: &Run, setup: &mut Self::Setup) -> impl Future<Output = Self::Load>;

    /// Waits for what is still on the way (acknowledgements, deliveries, history).
    fn settle(
        &self,
        run: &Run,
        setup: &mut Self::Setup,
        load: &mut Self::Load,
    ) -> impl Future<Output = ()>;

    /// Reads back and compares, disconnects, and states the report.
    fn check(
        &self,
        run: Run,
        setup: Self::Setup,
        load: Self::Load,
    ) -> impl Future<Output = Self::Report>;
}

/// Runs `scenario` with `options` through setup, load, settle and check. `settings` is
/// the scenario's own judgement of its settings (its config's `validate`): refused
/// settings create nothing. `Err` only when the run could not take place at all (bad
/// settings, setup refused, no unit connected); everything else is in the report.
pub(crate) async fn run<S: Scenario>(
    scenario: &S,
    options: &RunOptions,
    settings: Result<(), ScenarioError>,
) -> Result<S::Report, ScenarioError> {
    settings?;
    let run = Run::new(options);
    let mut setup = scenario.setup(&run).await?;
    let mut load = scenario.load(&run, &mut setup).await;
    scenario.settle(&run, &mut setup, &mut load).await;
    Ok(scenario.check(run, setup, load).await)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde::Serialize;

    use super::*;
    use crate::report::{Check, Section};

    /// A scenario that records the order its steps ran in and reports it.
    struct Recorder {
        steps: Mutex<Vec<&'static str>>,
    }

    #[derive(Serialize)]
    struct Steps {
        run_id: String,
        steps: Vec<&'static str>,
        errors: Vec<String>,
    }

    impl ScenarioReport for Steps {
        const SCENARIO: &'static str = "steps";

        fn run_id(&self) -> &str {
            &self.run_id
        }

        fn errors(&self) -> &[String] {
            &self.errors
        }

        fn checks(&self) -> Vec<Check> {
            Vec::new()
        }

        fn headline(&self) -> String {
            self.steps.join(", ")
        }

        fn clean_means(&self) -> String {
            "ran".into()
        }

        fn sections(&self) -> Vec<Section> {
            Vec::new()
        }
    }

    impl Recorder {
        fn step(&self, name: &'static str) {
            self.steps.lock().expect("steps").push(name);
        }
    }

    impl Scenario for Recorder {
        type Setup = ();
        type Load = ();
        type Report = Steps;

        async fn setup(&self, _run: &Run) -> Result<(), ScenarioError> {
            self.step("setup");
            Ok(())
        }

        async fn load(&self, run: &Run, _setup: &mut ()) {
            run.errors.push("a finding of the load");
            self.step("load");
        }

        async fn settle(&self, _run: &Run, _setup: &mut (), _load: &mut ()) {
            self.step("settle");
        }

        async fn check(&self, run: Run, _setup: (), _load: ()) -> Steps {
            self.step("check");
            Steps {
                run_id: run.id.clone(),
                steps: self.steps.lock().expect("steps").clone(),
                errors: run.finish_errors(),
            }
        }
    }

    fn recorder() -> Recorder {
        Recorder {
            steps: Mutex::new(Vec::new()),
        }
    }

    fn options() -> RunOptions {
        RunOptions {
            run_id: Some("r1".into()),
            ..RunOptions::default()
        }
    }

    #[tokio::test]
    async fn the_steps_run_in_order_and_the_findings_reach_the_report() {
        let report = run(&recorder(), &options(), Ok(())).await.expect("runs");
        assert_eq!(report.steps, ["setup", "load", "settle", "check"]);
        assert_eq!(report.run_id, "r1");
        assert_eq!(report.errors, ["a finding of the load"]);
        assert!(!report.is_clean());
    }

    #[tokio::test]
    async fn invalid_settings_run_nothing() {
        let scenario = recorder();
        let refused = Err(ScenarioError::InvalidConfig("not valid".into()));
        let error = run(&scenario, &options(), refused)
            .await
            .err()
            .expect("refused");
        assert!(matches!(error, ScenarioError::InvalidConfig(_)), "{error}");
        assert!(scenario.steps.lock().expect("steps").is_empty());
    }
}
