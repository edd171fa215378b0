//! The scale scenario: as many idle units as the machine allows, each holding a real
//! (usually mutual-TLS) MQTT session, to find how many concurrent units one gateway holds,
//! what an idle unit costs in memory, and which limit is hit first.
//!
//! Order of a run: register the units (one device each, with its certificate) and, for a
//! few probe units, a bound asset; note the gateway's memory; open every session, at most
//! `connect_parallelism` at a time, spread over the loopback source addresses (each source
//! address has its own ephemeral port range, which is what caps one address near 28,000),
//! each unit subscribing to its key set and taking it (an idle unit: connected, subscribed,
//! holding its key set); note the memory again; hold them all for `hold`; then prove the
//! gateway still serves every one of them: a ping round to every unit, and a telemetry
//! point from each probe unit that must be acknowledged and counted by the gateway; finally
//! end every session cleanly.
//!
//! With `mosquitto` set, the same number of units then does the same against a mosquitto
//! the run starts and stops itself (`mosquitto/`), and the report puts memory per idle
//! mutual-TLS unit of both brokers side by side.
//!
//! Opening stops once `max_failures` attempts have failed: by then the first limit is known,
//! and the rest would only time out.

mod conn;
mod hold;
mod mosquitto;
mod report;
mod unit;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt, TryStreamExt};
use rumqttc::tokio_rustls::rustls::pki_types::ServerName;
use tokio::time::Instant;

use super::fleet::{create_managed_account, device_id};
use super::runner::{self, Run, Scenario};
use super::timeline::{read_rss_kib, Sampler};
use super::{progress_bar, ErrorLog, RunOptions, ScenarioError, Target};
use crate::api::{AccountId, ApiClient, AssetId, Device, NewAsset, NewDevice};
use conn::{Dial, Identity};
use hold::HeldUnits;
use mosquitto::{run_side_by_side, SideBySide};
use unit::{Phase, Tally, UnitPlan};

pub use mosquitto::MosquittoReport;
pub use report::{FailureCount, MemoryFigures, ScaleReport};

pub const MAX_UNITS: usize = 200_000;
pub const MAX_SOURCES: usize = 64;
pub const MAX_HOLD: Duration = Duration::from_secs(3600);
pub const MAX_PROBES: usize = 1000;
const MAX_PARALLELISM: usize = 4096;
/// How long the ping round, the probes and the key sets may take to be answered.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Lets the gateway finish the work each new session causes (status, actors) before its
/// memory is read.
const SETTLE: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(50);

/// What to run and against which gateway.
#[derive(Clone, Debug)]
pub struct ScaleConfig {
    pub target: Target,
    pub units: usize,
    /// Loopback addresses the sessions come from, used in turn.
    pub sources: Vec<IpAddr>,
    /// Session openings (TCP + TLS + CONNECT) in flight at once.
    pub connect_parallelism: usize,
    /// Parallelism, progress, run id and the gateway's pid, as every scenario takes them.
    pub run: RunOptions,
    /// How long every session is held open, all at once, before the checks.
    pub hold: Duration,
    pub keep_alive: Duration,
    /// Units that publish one point each at full load (they get an asset).
    pub probes: usize,
    pub connect_timeout: Duration,
    /// Failed openings after which no more are tried.
    pub max_failures: u64,
    /// A mosquitto binary (Debian's: `/usr/sbin/mosquitto`, installed by scripts/setup.sh)
    /// to measure side by side after the gateway: the run starts it on a free loopback
    /// port, holds as many idle mutual-TLS units with it, and stops it. `None`: not run.
    /// Needs TLS and `gateway_pid` (the comparison is of memory per idle TLS unit).
    pub mosquitto: Option<PathBuf>,
}

impl ScaleConfig {
    /// Defaults: 100 units from 127.0.0.1, 10 s hold, 10 probes, plain MQTT, quiet.
    pub fn for_target(target: Target) -> Self {
        Self {
            target,
            units: 100,
            sources: vec![IpAddr::from([127, 0, 0, 1])],
            connect_parallelism: 256,
            run: RunOptions::default(),
            hold: Duration::from_secs(10),
            keep_alive: Duration::from_secs(60),
            probes: 10,
            connect_timeout: Duration::from_secs(30),
            max_failures: 1000,
            mosquitto: None,
        }
    }

    /// Refuses settings that would run unbounded or leave loopback, naming the setting.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |message: String| Err(ScenarioError::InvalidConfig(message));
        if !(1..=MAX_UNITS).contains(&self.units) {
            return invalid(format!("units must be 1..={MAX_UNITS}, got {}", self.units));
        }
        if !(1..=MAX_SOURCES).contains(&self.sources.len()) {
            return invalid(format!(
                "sources must name 1..={MAX_SOURCES} addresses, got {}",
                self.sources.len()
            ));
        }
        if let Some(outside) = self.sources.iter().find(|source| !source.is_loopback()) {
            return invalid(format!(
                "sources must be loopback addresses (127.0.0.0/8 or ::1), got {outside}"
            ));
        }
        for (name, value) in [
            ("connect parallelism", self.connect_parallelism),
            ("parallelism", self.run.parallelism),
        ] {
            if !(1..=MAX_PARALLELISM).contains(&value) {
                return invalid(format!("{name} must be 1..={MAX_PARALLELISM}, got {value}"));
            }
        }
        if self.hold > MAX_HOLD {
            return invalid(format!(
                "hold must be at most {} s, got {:?}",
                MAX_HOLD.as_secs(),
                self.hold
            ));
        }
        if !(5..=3600).contains(&self.keep_alive.as_secs()) {
            return invalid(format!(
                "keep-alive must be 5..=3600 s, got {:?}",
                self.keep_alive
            ));
        }
        if self.probes > MAX_PROBES.min(self.units) {
            return invalid(format!(
                "probes must be at most {} (and at most units), got {}",
                MAX_PROBES, self.probes
            ));
        }
        if self.connect_timeout.is_zero() || self.connect_timeout > Duration::from_secs(600) {
            return invalid(format!(
                "connect timeout must be more than 0 and at most 600 s, got {:?}",
                self.connect_timeout
            ));
        }
        if self.max_failures == 0 {
            return invalid("max failures must be at least 1".to_owned());
        }
        if let Some(binary) = &self.mosquitto {
            self.validate_mosquitto(binary)?;
        }
        self.run.validate(MAX_PARALLELISM)
    }

    /// The side by side compares memory per idle TLS unit: it needs TLS, the gateway's
    /// memory, and a mosquitto binary that is there.
    fn validate_mosquitto(&self, binary: &std::path::Path) -> Result<(), ScenarioError> {
        let invalid = |message: String| Err(ScenarioError::InvalidConfig(message));
        if self.target.tls_server_name.is_none() {
            return invalid(
                "mosquitto side by side: the gateway must be dialled over TLS (a TLS server name)"
                    .to_owned(),
            );
        }
        if self.run.gateway_pid.is_none() {
            return invalid(
                "mosquitto side by side: the gateway's pid is needed to compare memory".to_owned(),
            );
        }
        if !binary.is_file() {
            return invalid(format!(
                "mosquitto side by side: no mosquitto binary at {} (scripts/setup.sh installs \
                 Debian's mosquitto at /usr/sbin/mosquitto)",
                binary.display()
            ));
        }
        Ok(())
    }

    /// Which units publish a probe point: spread evenly over the run.
    fn is_probe(&self, index: usize) -> bool {
        if self.probes == 0 {
            return false;
        }
        let stride = (self.units / self.probes).max(1);
        index.is_multiple_of(stride) && index / stride < self.probes
    }
}

/// Runs the scenario. Setup failures are errors; what happens once the units connect (the
/// limit, drops, unanswered pings, the mosquitto side by side) is the report.
pub async fn run_scale(config: &ScaleConfig) -> Result<ScaleReport, ScenarioError> {
    runner::run(config, &config.run, config.validate()).await
}

/// What setup made: the account and its devices (registered, not yet connected), how to
/// dial the broker, and the memory before any session.
pub(crate) struct ScaleSetup {
    simulator_open_files: Option<u64>,
    account_id: AccountId,
    client: ApiClient,
    devices: Vec<Device>,
    device_ids: Vec<String>,
    registration: Duration,
    memory_before: MemorySnapshot,
    dial: Arc<Dial>,
}

/// The gateway's sessions while they are held, and what was measured of them.
pub(crate) struct ScaleLoad {
    held: HeldUnits,
    tally: Arc<Tally>,
    sampler: Sampler,
    /// From the first opening until every unit opened, failed or was skipped.
    connect_phase: Duration,
    /// With every unit idle (holding its key set), and at the end of the hold.
    memory_full: MemorySnapshot,
    memory_held: MemorySnapshot,
}

impl Scenario for ScaleConfig {
    type Setup = ScaleSetup;
    type Load = ScaleLoad;
    type Report = ScaleReport;

    /// The account, one device per unit (and a probe asset per probe unit), the dial.
    async fn setup(&self, run: &Run) -> Result<ScaleSetup, ScenarioError> {
        // Each session is a file descriptor here too: use all the hard limit allows.
        let simulator_open_files = rlimit::increase_nofile_limit(u64::MAX).ok();
        let platform_admin = self
            .target
            .platform_admin()
            .map_err(ScenarioError::api("gateway URL"))?;
        let name = format!("sim-{}", run.id);
        let managed = create_managed_account(&platform_admin, &name, None, "sim-admin").await?;
        let registering = Instant::now();
        let devices = register(self, &managed.client, &run.id).await?;
        let registration = registering.elapsed();
        let device_ids = devices
            .iter()
            .map(|device| device.id.as_str().to_owned())
            .collect();
        let memory_before = MemorySnapshot::take(self.run.gateway_pid);
        Ok(ScaleSetup {
            simulator_open_files,
            account_id: managed.account.id,
            client: managed.client,
            devices,
            device_ids,
            registration,
            memory_before,
            dial: Arc::new(dial(self).await?),
        })
    }

    /// Opens every unit's session with the gateway and waits until each holds its key set.
    async fn load(&self, run: &Run, setup: &mut ScaleSetup) -> ScaleLoad {
        let started = Instant::now();
        let tally = Arc::new(Tally::new(started, self.max_failures));
        let sampler = Sampler::start(
            tally.opened.clone(),
            self.run.gateway_pid,
            Some(self.target.http_base.clone()),
            started,
        );
        let plans = std::mem::take(&mut setup.devices)
            .into_iter()
            .enumerate()
            .map(|(index, device)| UnitPlan {
                source: self.sources[index % self.sources.len()],
                identity: identity(device, self.target.tls_server_name.is_some()),
                probe: self.is_probe(index),
            })
            .collect();
        let held = HeldUnits::start(
            plans,
            setup.dial.clone(),
            tally.clone(),
            self.connect_parallelism,
        );
        held.wait_opened("sessions", self.run.quiet).await;
        let connect_phase = started.elapsed();
        if !held.wait_key_sets().await {
            run.errors.push(format!(
                "units still without their key set {ANSWER_TIMEOUT:?} after the last opening"
            ));
        }
        let snapshot = MemorySnapshot::default();
        ScaleLoad {
            held,
            tally,
            sampler,
            connect_phase,
            memory_full: snapshot,
            memory_held: snapshot,
        }
    }

    /// The sessions idle: memory with all of them open, then at the end of the hold.
    async fn settle(&self, _run: &Run, _setup: &mut ScaleSetup, load: &mut ScaleLoad) {
        tokio::time::sleep(SETTLE).await;
        load.memory_full = MemorySnapshot::take(self.run.gateway_pid);
        tokio::time::sleep(self.hold).await;
        load.memory_held = MemorySnapshot::take(self.run.gateway_pid);
    }

    /// The checks at full load, every session ended, and the mosquitto side by side.
    async fn check(&self, run: Run, setup: ScaleSetup, load: ScaleLoad) -> ScaleReport {
        let checks = run_checks(self, &load.held, &setup.client, &run.id, &run.errors).await;
        load.held.stop(&run.errors).await;
        let timeline = load.sampler.finish(&run.errors).await;
        let opened = load.tally.opened.load(Ordering::Relaxed);
        let mut memory =
            MemoryFigures::new(setup.memory_before, load.memory_full, load.memory_held);
        memory.per_session(opened);
        let mosquitto = match &self.mosquitto {
            Some(binary) => Some(self.side_by_side(binary, &setup, opened, &memory).await),
            None => None,
        };
        report::build(report::Inputs {
            config: self,
            run_id: run.id.clone(),
            account_id: setup.account_id,
            registration: setup.registration,
            connect_phase: load.connect_phase,
            tally: &load.tally,
            open_before_checks: checks.open_before,
            probes_counted: checks.probes_counted,
            memory,
            gateway_open_files: self.run.gateway_pid.and_then(open_file_limit),
            simulator_open_files: setup.simulator_open_files,
            timeline,
            mosquitto,
            errors: run.finish_errors(),
        })
    }
}

impl ScaleConfig {
    /// The same units, as many as the gateway held, against a mosquitto the run starts.
    async fn side_by_side(
        &self,
        binary: &std::path::Path,
        setup: &ScaleSetup,
        opened: u64,
        memory: &MemoryFigures,
    ) -> MosquittoReport {
        let held_units = usize::try_from(opened).unwrap_or(usize::MAX);
        run_side_by_side(SideBySide {
            binary,
            devices: setup.device_ids.iter().take(held_units).cloned().collect(),
            gateway_dial: &setup.dial,
            server_name: self.target.tls_server_name.as_deref().unwrap_or_default(),
            sources: &self.sources,
            connect_parallelism: self.connect_parallelism,
            max_failures: self.max_failures,
            quiet: self.run.quiet,
            gateway_kib_per_unit: memory.gateway_kib_per_session,
        })
        .await
    }
}

/// What the checks at full load found.
struct Checks {
    /// Sessions open when the checks started.
    open_before: u64,
    /// Probe units whose point the gateway counted.
    probes_counted: u64,
}

/// With every session open: a ping round to every unit, then a point from each probe unit,
/// acknowledged and counted by the gateway.
async fn run_checks(
    config: &ScaleConfig,
    held: &HeldUnits,
    client: &ApiClient,
    run_id: &str,
    errors: &ErrorLog,
) -> Checks {
    let tally = held.tally();
    let open_before = tally.open.load(Ordering::Relaxed);
    held.command(Phase::PingRound);
    wait_for(|| tally.ping_answers.load(Ordering::Relaxed) >= tally.open.load(Ordering::Relaxed))
        .await;
    held.command(Phase::Probe);
    wait_for(|| {
        tally.probe_acks.load(Ordering::Relaxed) >= tally.probes_open.load(Ordering::Relaxed)
    })
    .await;
    Checks {
        open_before,
        probes_counted: count_probe_points(config, client, run_id, errors).await,
    }
}

/// Polls `done` until it holds or the answer timeout passes.
async fn wait_for(done: impl Fn() -> bool) {
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
}

async fn dial(config: &ScaleConfig) -> Result<Dial, ScenarioError> {
    let mqtt = &config.target.mqtt;
    let broker = tokio::net::lookup_host((mqtt.host.as_str(), mqtt.port))
        .await
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| {
            ScenarioError::InvalidConfig(format!(
                "cannot resolve the broker address {}:{}",
                mqtt.host, mqtt.port
            ))
        })?;
    if !broker.ip().is_loopback() {
        return Err(ScenarioError::InvalidConfig(format!(
            "the scale run only dials loopback brokers, got {broker}"
        )));
    }
    let tls_server_name = match &config.target.tls_server_name {
        Some(name) => Some(ServerName::try_from(name.clone()).map_err(|error| {
            ScenarioError::InvalidConfig(format!("TLS server name {name:?}: {error}"))
        })?),
        None => None,
    };
    Ok(Dial {
        broker,
        tls_server_name,
        keep_alive: config.keep_alive,
        timeout: config.connect_timeout,
    })
}

fn identity(device: Device, tls: bool) -> Identity {
    let pems = match (tls, device.ca_pem, device.cert_pem, device.key_pem) {
        (true, Some(ca), Some(cert), Some(key)) => Some((ca, cert, key)),
        _ => None,
    };
    Identity {
        device_id: device.id.as_str().to_owned(),
        tls: pems,
    }
}

fn probe_asset(run_id: &str, index: usize) -> AssetId {
    AssetId::new(format!("sim-{run_id}-p{index}"))
}

/// Registers one device per unit, and an asset for each probe unit.
async fn register(
    config: &ScaleConfig,
    client: &ApiClient,
    run_id: &str,
) -> Result<Vec<Device>, ScenarioError> {
    let bar = progress_bar(config.units as u64, "devices registered", config.run.quiet);
    let devices = stream::iter(0..config.units)
        .map(|index| {
            let bar = &bar;
            async move {
                let id = device_id(run_id, index);
                let device = client
                    .create_device(&NewDevice::new(id.clone()))
                    .await
                    .map_err(ScenarioError::api(format!("create device {id}")))?;
                if config.is_probe(index) {
                    let asset = NewAsset::new(probe_asset(run_id, index), format!("Probe {index}"))
                        .bound_to(id.clone());
                    client
                        .create_asset(&asset)
                        .await
                        .map_err(ScenarioError::api(format!(
                            "create the probe asset of {id}"
                        )))?;
                }
                bar.inc(1);
                Ok::<_, ScenarioError>(device)
            }
        })
        .buffered(config.run.parallelism)
        .try_collect()
        .await;
    bar.finish_and_clear();
    devices
}

/// How many probe units the gateway counted a point from (its device status), waiting for
/// the store to catch up.
async fn count_probe_points(
    config: &ScaleConfig,
    client: &ApiClient,
    run_id: &str,
    errors: &ErrorLog,
) -> u64 {
    let probes: Vec<usize> = (0..config.units)
        .filter(|index| config.is_probe(*index))
        .collect();
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let mut pending = probes;
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for index in pending {
            let id = device_id(run_id, index);
            match client.device_status(&id).await {
                Ok(status) if status.points >= 1 => {}
                Ok(_) => still.push(index),
                Err(error) => {
                    errors.push(format!("device status of {id}: {error}"));
                    still.push(index);
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    (config.probes - pending.len()) as u64
}

/// Resident memory of the gateway (when its pid is known) and of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct MemorySnapshot {
    pub gateway_kib: Option<u64>,
    pub simulator_kib: Option<u64>,
}

impl MemorySnapshot {
    fn take(gateway_pid: Option<u32>) -> Self {
        Self {
            gateway_kib: gateway_pid.and_then(|pid| read_rss_kib(pid).ok()),
            simulator_kib: read_rss_kib(std::process::id()).ok(),
        }
    }
}

/// The soft open-file limit of process `pid` (`Max open files` in `/proc/<pid>/limits`).
fn open_file_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    parse_open_file_limit(&limits)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::options::{assert_refused, assert_run_options_checked};

    fn config() -> ScaleConfig {
        ScaleConfig::for_target(Target::unreachable())
    }

    #[test]
    fn defaults_are_valid_and_bounds_are_named() {
        assert!(config().validate().is_ok());
        let cases: Vec<(ScaleConfig, &str)> = vec![
            (
                ScaleConfig {
                    units: 0,
                    ..config()
                },
                "units",
            ),
            (
                ScaleConfig {
                    units: MAX_UNITS + 1,
                    ..config()
                },
                "units",
            ),
            (
                ScaleConfig {
                    sources: vec![],
                    ..config()
                },
                "sources",
            ),
            (
                ScaleConfig {
                    sources: vec![IpAddr::from([10, 0, 0, 1])],
                    ..config()
                },
                "loopback",
            ),
            (
                ScaleConfig {
                    connect_parallelism: 0,
                    ..config()
                },
                "connect parallelism",
            ),
            (
                ScaleConfig {
                    hold: MAX_HOLD + Duration::from_secs(1),
                    ..config()
                },
                "hold",
            ),
            (
                ScaleConfig {
                    keep_alive: Duration::from_secs(1),
                    ..config()
                },
                "keep-alive",
            ),
            (
                ScaleConfig {
                    probes: 101,
                    ..config()
                },
                "probes",
            ),
            (
                ScaleConfig {
                    max_failures: 0,
                    ..config()
                },
                "max failures",
            ),
        ];
        for (bad, named) in cases {
            assert_refused(bad.validate(), named);
        }
        assert_run_options_checked(MAX_PARALLELISM, |run| {
            ScaleConfig { run, ..config() }.validate()
        });
    }

    #[test]
    fn the_mosquitto_side_by_side_needs_tls_the_gateway_pid_and_the_binary() {
        let mut tls = config();
        tls.target.tls_server_name = Some("localhost".into());
        let with = |mosquitto: &str, tls_target: bool, pid: Option<u32>| ScaleConfig {
            mosquitto: Some(PathBuf::from(mosquitto)),
            run: RunOptions {
                gateway_pid: pid,
                ..RunOptions::default()
            },
            ..if tls_target { tls.clone() } else { config() }
        };
        let cases = [
            (with("/bin/sh", false, Some(1)), "TLS"),
            (with("/bin/sh", true, None), "pid"),
            (
                with("/nonexistent/mosquitto", true, Some(1)),
                "scripts/setup.sh",
            ),
        ];
        for (bad, named) in cases {
            let error = bad.validate().expect_err(named).to_string();
            assert!(error.contains(named), "{named}: {error}");
        }
        assert!(with("/bin/sh", true, Some(1)).validate().is_ok());
    }

    #[test]
    fn probes_are_spread_and_counted_exactly() {
        for (units, probes) in [(100, 10), (7, 3), (5, 5), (50_000, 100), (10, 0), (3, 1)] {
            let config = ScaleConfig {
                units,
                probes,
                ..config()
            };
            let chosen: Vec<usize> = (0..units).filter(|index| config.is_probe(*index)).collect();
            assert_eq!(chosen.len(), probes, "{units} units, {probes} probes");
        }
    }

    #[test]
    fn reads_the_open_file_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             95524                95524                processes\n\
                      Max open files            20000                20000                files\n";
        assert_eq!(parse_open_file_limit(limits), Some(20_000));
        assert_eq!(parse_open_file_limit("nothing"), None);
    }
}
