//! The gateway's Prometheus metrics, in one registry. prometheus-client (the Prometheus
//! project's own Rust client) does the text encoding and histogram buckets, so `/metrics`
//! is what any Prometheus scraper expects.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub points_ingested: Counter,
    /// Dropped points by reason (`invalid_json`, `unknown_device`, ...).
    pub points_dropped: Family<Labels, Counter>,
    pub store_commits: Counter,
    pub store_batch_points: Histogram,
    pub store_commit_seconds: Histogram,
    /// Jobs waiting for the store writer: a growing value means the disk is the limit.
    pub store_queue_depth: Gauge,
    /// Commits the disk refused (a telemetry batch, a control operation, a probe while
    /// recovering): disk full or an I/O error. Each starts or prolongs a store outage.
    pub store_write_failures: Counter,
    /// Successful reopens of the database after a disk failure, made in process.
    pub store_reopens: Counter,
    pub actors_alive: Family<Labels, Gauge>,
    pub sse_subscribers: Gauge,
    /// Live events not delivered because a subscriber's buffer was full (slow reader);
    /// each stream hears of its own as `event: gap`.
    pub sse_events_dropped: Counter,
    /// Live events a device actor could not hand to an account actor (its mailbox was
    /// full): the live path sheds rather than slowing ingest.
    pub live_shed: Counter,
    /// Rows deleted by retention, by kind (`telemetry`, `access_events`, `audit`).
    pub retention_deleted: Family<Labels, Counter>,
    /// The database file's size on disk in bytes (free pages included until a compaction
    /// gives them back), refreshed by the retention task.
    pub store_bytes: Gauge,
    /// Compactions of the database file that ran (whether or not they freed space).
    pub store_compactions: Counter,
    /// Telemetry readings moved from rows into sealed chunks (`storage::telemetry::seal`).
    pub telemetry_sealed: Counter,
    /// Requests with a bearer token that matched nobody.
    pub auth_failures: Counter,
    /// Requests refused (429) because their source failed to authenticate too often.
    pub auth_throttled: Counter,
    /// Scheduler runs that found deadlines due and applied them.
    pub scheduler_runs: Counter,
    /// Scheduler runs that failed (retried at the next wake).
    pub scheduler_failures: Counter,
    /// Deadlines the scheduler applied, by kind (`grant`: a grant started or ended,
    /// `support`: support access expired, `key_set`: a unit's key set changed).
    pub scheduler_fired: Family<Labels, Counter>,
    /// The earliest pending deadline, seconds since the Unix epoch; 0 when none is pending.
    /// Far in the past while the gateway runs means the scheduler is stuck.
    pub scheduler_next_deadline: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("fleetgate");
        let metrics = Metrics {
            points_ingested: Counter::default(),
            points_dropped: Family::default(),
            store_commits: Counter::default(),
            store_batch_points: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            store_commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            store_queue_depth: Gauge::default(),
            store_write_failures: Counter::default(),
            store_reopens: Counter::default(),
            actors_alive: Family::default(),
            sse_subscribers: Gauge::default(),
            sse_events_dropped: Counter::default(),
            live_shed: Counter::default(),
            auth_failures: Counter::default(),
            auth_throttled: Counter::default(),
            retention_deleted: Family::default(),
            store_bytes: Gauge::default(),
            store_compactions: Counter::default(),
            telemetry_sealed: Counter::default(),
            scheduler_runs: Counter::default(),
            scheduler_failures: Counter::default(),
            scheduler_fired: Family::default(),
            scheduler_next_deadline: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "points_ingested",
            "Telemetry points accepted",
            metrics.points_ingested.clone(),
        );
        registry.register(
            "points_dropped",
            "Telemetry points dropped, by reason",
            metrics.points_dropped.clone(),
        );
        registry.register(
            "store_commits",
            "Store writer commits",
            metrics.store_commits.clone(),
        );
        registry.register(
            "store_batch_points",
            "Telemetry points per commit",
            metrics.store_batch_points.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Duration of a store commit",
            metrics.store_commit_seconds.clone(),
        );
        registry.register(
            "store_queue_depth",
            "Jobs queued for the store writer",
            metrics.store_queue_depth.clone(),
        );
        registry.register(
            "store_write_failures",
            "Store commits that failed on a disk or I/O error",
            metrics.store_write_failures.clone(),
        );
        registry.register(
            "store_reopens",
            "Reopens of the database after a disk failure",
            metrics.store_reopens.clone(),
        );
        registry.register(
            "actors_alive",
            "Live actors, by kind",
            metrics.actors_alive.clone(),
        );
        registry.register(
            "sse_subscribers",
            "Open server-sent event streams",
            metrics.sse_subscribers.clone(),
        );
        registry.register(
            "sse_events_dropped",
            "Live events dropped for slow SSE readers (each stream is sent a gap event)",
            metrics.sse_events_dropped.clone(),
        );
        registry.register(
            "live_shed",
            "Live events shed because an account actor's mailbox was full",
            metrics.live_shed.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests whose bearer token matched nobody",
            metrics.auth_failures.clone(),
        );
        registry.register(
            "auth_throttled",
            "Requests refused because their source failed to authenticate too often",
            metrics.auth_throttled.clone(),
        );
        registry.register(
            "retention_deleted",
            "Rows deleted by retention, by kind",
            metrics.retention_deleted.clone(),
        );
        registry.register(
            "store_bytes",
            "Size of the database file on disk in bytes",
            metrics.store_bytes.clone(),
        );
        registry.register(
            "store_compactions",
            "Compactions of the database file",
            metrics.store_compactions.clone(),
        );
        registry.register(
            "telemetry_sealed",
            "Telemetry readings moved from rows into compact sealed chunks",
            metrics.telemetry_sealed.clone(),
        );
        metrics.register_scheduler(&mut registry);
        Metrics {
            registry,
            ..metrics
        }
    }

    fn register_scheduler(&self, registry: &mut Registry) {
        registry.register(
            "scheduler_runs",
            "Scheduler runs that applied due deadlines",
            self.scheduler_runs.clone(),
        );
        registry.register(
            "scheduler_failures",
            "Scheduler runs that failed",
            self.scheduler_failures.clone(),
        );
        registry.register(
            "scheduler_fired",
            "Deadlines the scheduler applied, by kind",
            self.scheduler_fired.clone(),
        );
        registry.register(
            "scheduler_next_deadline_timestamp_seconds",
            "The earliest pending deadline in seconds since the Unix epoch (0: none)",
            self.scheduler_next_deadline.clone(),
        );
    }

    /// Counts `count` deadlines of `kind` applied by the scheduler.
    pub fn scheduler_fired(&self, kind: &'static str, count: usize) {
        self.scheduler_fired
            .get_or_create(&vec![("kind", kind)])
            .inc_by(count as u64);
    }

    pub fn dropped(&self, reason: &'static str) {
        self.points_dropped
            .get_or_create(&vec![("reason", reason)])
            .inc();
    }

    pub fn dropped_count(&self, reason: &'static str) -> u64 {
        self.points_dropped
            .get_or_create(&vec![("reason", reason)])
            .get()
    }

    /// Counts `rows` deleted by retention under `kind`.
    pub fn retention_deleted(&self, kind: &'static str, rows: usize) {
        self.retention_deleted
            .get_or_create(&vec![("kind", kind)])
            .inc_by(rows as u64);
    }

    pub fn actor_started(&self, kind: &'static str) {
        self.actors_alive.get_or_create(&vec![("kind", kind)]).inc();
    }

    pub fn actor_stopped(&self, kind: &'static str) {
        self.actors_alive.get_or_create(&vec![("kind", kind)]).dec();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_counters_with_labels() {
        let metrics = Metrics::new();
        metrics.points_ingested.inc();
        metrics.dropped("invalid_json");
        metrics.dropped("invalid_json");
        metrics.store_batch_points.observe(10.0);
        let text = metrics.render();
        assert!(text.contains("fleetgate_points_ingested_total 1"), "{text}");
        assert!(
            text.contains("fleetgate_points_dropped_total{reason=\"invalid_json\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("fleetgate_store_batch_points_count 1"),
            "{text}"
        );
        assert_eq!(metrics.dropped_count("invalid_json"), 2);
    }
}
