//! What every scenario is told besides its own load ([`RunOptions`]), and the checks every
//! config's `validate` uses, each refusing a setting by name before anything is created.

use std::time::Duration;

use super::ScenarioError;

/// The options every scenario shares, whatever its load: how many setup calls and
/// connection attempts it may have in flight, whether it draws progress, the run id its
/// accounts and devices are named after, and whose memory it samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// API calls and connection attempts in flight at once during setup and checks.
    pub parallelism: usize,
    /// No progress bar.
    pub quiet: bool,
    /// Names the run's accounts, devices and assets (1..=16 lowercase ASCII letters or
    /// digits); random when `None`.
    pub run_id: Option<String>,
    /// The gateway's process id when it runs on this machine: its resident memory is then
    /// sampled each second from `/proc/<pid>/status`. `None`: memory is not measured.
    pub gateway_pid: Option<u32>,
}

impl Default for RunOptions {
    /// 32 in flight, quiet, a random run id, memory not measured.
    fn default() -> Self {
        Self {
            parallelism: 32,
            quiet: true,
            run_id: None,
            gateway_pid: None,
        }
    }
}

impl RunOptions {
    /// Refuses a parallelism outside `1..=max_parallelism` or a run id that would not fit
    /// inside the ids a scenario derives from it.
    pub fn validate(&self, max_parallelism: usize) -> Result<(), ScenarioError> {
        check_count("parallelism", self.parallelism, max_parallelism)?;
        check_run_id(self.run_id.as_deref())
    }

    /// The run id asked for, or a fresh random one.
    pub fn run_id(&self) -> String {
        self.run_id.clone().unwrap_or_else(super::fleet::new_run_id)
    }
}

/// Refuses a run id that would not fit inside the ids a scenario derives from it (device
/// ids must be ASCII alphanumeric, and names stay short).
pub(crate) fn check_run_id(run_id: Option<&str>) -> Result<(), ScenarioError> {
    let Some(run_id) = run_id else {
        return Ok(());
    };
    let fits = (1..=16).contains(&run_id.len())
        && run_id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if fits {
        Ok(())
    } else {
        Err(ScenarioError::InvalidConfig(format!(
            "run id must be 1..=16 lowercase ASCII letters or digits, got {run_id:?}"
        )))
    }
}

/// Asserts that `settings` (a config's `validate`) is a refusal naming `word`: every
/// scenario's tests hold each refusal to name the setting it refuses.
#[cfg(test)]
pub(crate) fn assert_refused(settings: Result<(), ScenarioError>, word: &str) {
    let error = settings.expect_err("refused");
    assert!(error.to_string().contains(word), "{word}: {error}");
}

/// Asserts that a scenario's config passes its [`RunOptions`] through
/// [`RunOptions::validate`]: no parallelism, more than `max_parallelism`, and run ids that
/// cannot name devices are refused by name, `max_parallelism` itself is not. `with_run` is
/// the `validate` of the scenario's default config holding the given options.
#[cfg(test)]
pub(crate) fn assert_run_options_checked(
    max_parallelism: usize,
    with_run: impl Fn(RunOptions) -> Result<(), ScenarioError>,
) {
    let parallel = |parallelism| RunOptions {
        parallelism,
        ..RunOptions::default()
    };
    assert_refused(with_run(parallel(0)), "parallelism");
    assert_refused(with_run(parallel(max_parallelism + 1)), "parallelism");
    assert!(with_run(parallel(max_parallelism)).is_ok());
    for run_id in ["", "Has-Caps", "Bad/Id", "seventeenletters1"] {
        let run = RunOptions {
            run_id: Some(run_id.into()),
            ..RunOptions::default()
        };
        assert_refused(with_run(run), "run id");
    }
}

/// Refuses a duration outside `(0, max]` (or `[0, max]` when zero is meaningful), naming
/// the setting.
pub(crate) fn check_duration(
    name: &str,
    value: Duration,
    max: Duration,
    zero_ok: bool,
) -> Result<(), ScenarioError> {
    if (value.is_zero() && !zero_ok) || value > max {
        let lower = if zero_ok { "at least 0" } else { "more than 0" };
        Err(ScenarioError::InvalidConfig(format!(
            "{name} must be {lower} and at most {max:?}, got {value:?}"
        )))
    } else {
        Ok(())
    }
}

/// Refuses a count outside `1..=max`, naming the setting.
pub(crate) fn check_count(name: &str, value: usize, max: usize) -> Result<(), ScenarioError> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(ScenarioError::InvalidConfig(format!(
            "{name} must be 1..={max}, got {value}"
        )))
    }
}

/// Refuses a rate that is not a finite number in `(0, max]`, naming the setting.
pub(crate) fn check_rate(value: f64, max: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(())
    } else {
        Err(ScenarioError::InvalidConfig(format!(
            "rate must be more than 0 and at most {max} points/s per unit, got {value}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_setting() {
        let message = |result: Result<(), ScenarioError>| result.expect_err("refused").to_string();
        assert!(message(check_count("grantees", 0, 5)).contains("grantees"));
        assert!(message(check_count("grantees", 6, 5)).contains("1..=5"));
        assert!(check_count("grantees", 5, 5).is_ok());
        assert!(message(check_rate(f64::NAN, 10.0)).contains("rate"));
        assert!(message(check_rate(0.0, 10.0)).contains("rate"));
        assert!(check_rate(10.0, 10.0).is_ok());
        let max = Duration::from_secs(5);
        assert!(message(check_duration("settle", Duration::ZERO, max, false)).contains("settle"));
        assert!(check_duration("pause", Duration::ZERO, max, true).is_ok());
        assert!(message(check_duration("pause", max * 2, max, true)).contains("pause"));
    }

    #[test]
    fn run_options_refuse_a_bad_run_id_and_parallelism() {
        assert!(RunOptions::default().validate(32).is_ok());
        let bad_id = RunOptions {
            run_id: Some("Has-Dash".into()),
            ..RunOptions::default()
        };
        assert!(bad_id.validate(32).is_err());
        let too_wide = RunOptions {
            parallelism: 33,
            ..RunOptions::default()
        };
        let error = too_wide.validate(32).expect_err("refused").to_string();
        assert!(error.contains("parallelism"), "{error}");
    }
}
