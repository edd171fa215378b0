//! The Fleetgate device simulator: simulated telematics units and admin tools that drive a
//! running gateway through its public protocol only (MQTT topics and payloads, the HTTP
//! control API), exactly as third-party units and integrations would. It never links the
//! gateway's crates, so it also checks that the documented contract is enough to use it.
//!
//! # Layout
//!
//! - [`api`]: `ApiClient`, a typed HTTP client for `/v1` (problem+json errors become
//!   `ApiError::Status`), raw requests for tests, and the SSE reader for live streams; the
//!   sharing endpoints (partnerships, visibility grants, audit) live in `api/sharing.rs`, the
//!   support-access ones (staff, requests and decisions, support cases) in `api/support.rs`.
//! - [`unit`]: `SimUnit`, one MQTT session of a unit (status announcements, QoS 1 telemetry
//!   that resolves on PUBACK and can say how long the PUBACK took, subscriptions, clean or
//!   abrupt disconnects), and `KeyHolder`,
//!   the unit's key firmware on top of it (holds and acks the retained key set, decides and
//!   reports access attempts).
//! - [`telemetry`]: payloads in the contract's shape, a plausible moving machine, and the
//!   `seq`/`sent_us` sensors that let scenarios find every point again.
//! - [`topics`]: the MQTT topic names of the contract.
//! - [`ready`]: finding a running gateway through `ready.json` and `bootstrap-token`.
//! - [`stats`]: latency percentiles and the stored-exactly-once accounting.
//! - [`report`]: the one report model every scenario fills (`ScenarioReport`: its checks,
//!   and its figures, latencies and charts in sections), rendered in one place each as text,
//!   as a self-contained HTML page whose inline SVG charts (`report/svg.rs`) show throughput
//!   over time, latency percentiles and gateway memory, and as JSON; `report::compare` lists
//!   what a later run's JSON lost; `scenario::timeline` samples the series the charts draw.
//! - [`scenario`]: scripted runs that produce reports, each a `Scenario` (its setup, load,
//!   settle and check) that `scenario/runner.rs`, the one run lifecycle, takes through them
//!   in order, with the options every scenario shares ([`RunOptions`]); `scenario::ingest` is the load and
//!   correctness run behind `fleetgate-sim ingest`, `scenario::visibility` the grant-removal
//!   cut-off check behind `fleetgate-sim visibility`, `scenario::support` the support-access
//!   admin flows (request, approve, act, revoke; decline; support cases) behind
//!   `fleetgate-sim support`, `scenario::keys` the access-key run (create, edit, delete keys;
//!   propagation to the units; their decisions and access events checked against the API)
//!   behind `fleetgate-sim keys`, `scenario::scale` the concurrent-session run (tens of
//!   thousands of idle TLS units, each subscribed to and holding its key set, from several
//!   loopback source addresses; memory per unit, the first limit; optionally the same
//!   units against a mosquitto it starts itself, for memory per idle unit side by side)
//!   behind `fleetgate-sim scale`.
//! - [`scenario::fanout`] and [`scenario::revoke_storm`]: sharing under load behind
//!   `fleetgate-sim fanout` (every asset shared with many live grantees: exactly-once
//!   delivery to each, nothing to an account without a grant, delivery latency and spread)
//!   and `fleetgate-sim revoke-storm` (thousands of grants removed at once with many calls in
//!   flight: the cut-off still holds, removal latency and rate); what the sharing
//!   scenarios share (grantee setup, the cut-off ledger, live streams) in `scenario/sharing/`.
//! - `scenario::baseline`: the ingest run's yardstick, the same load against a bare embedded
//!   rumqttd from crates.io (the version Cargo.lock pins, with the settings the gateway's
//!   embedded broker had before its own transport; plain TCP; a local link that only
//!   counts) in this process, so the ingest report can give the gateway's throughput as a
//!   ratio of it and name the broker it is a ratio of.
//! - `scenario::soak`: the bounded soak behind `fleetgate-sim soak` (steady telemetry, a
//!   churning admin loop and a live stream for a long time, cut into windows and judged on
//!   memory growth, latency creep and exactly-once storage).
//!
//! The binary `fleetgate-sim` (src/main.rs) is a thin command line over this library; the
//! end-to-end tests use the library directly.

pub mod api;
pub mod ready;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod telemetry;
pub mod topics;
pub mod unit;

pub use api::{ApiClient, ApiError};
pub use ready::{wait_ready, GatewayEndpoints};
pub use report::{ReportError, ScenarioReport, WrittenReport};
pub use scenario::BaselineReport;
pub use scenario::{
    run_fanout, run_revoke_storm, FanoutConfig, FanoutReport, RevokeMode, RevokeStormConfig,
    RevokeStormReport,
};
pub use scenario::{
    run_ingest, run_keys, run_scale, run_support, run_visibility, IngestConfig, IngestReport,
    KeysConfig, KeysReport, RunOptions, ScaleConfig, ScaleReport, ScenarioError, SupportConfig,
    SupportReport, Target, VisibilityConfig, VisibilityReport,
};
pub use scenario::{run_soak, SoakConfig, SoakReport};
pub use stats::Percentiles;
pub use telemetry::{TelemetryPayload, TrackGenerator};
pub use unit::{
    BrokerAddr, Decision, KeyHolder, KeySet, MqttTransport, SimUnit, UnitError, UnitOptions,
};
