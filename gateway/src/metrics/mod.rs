//! What the gateway crate itself counts (HTTP requests, the SMS outbox) and the process
//! metrics, and the one `/metrics` page that renders them after the actors' and the
//! transport's registries. Each layer keeps its own registry so none depends on another:
//! actors know nothing of HTTP, the transport nothing of actors.
//!
//! Names follow the Prometheus conventions: counters end in `_total` (prometheus-client adds
//! it), values are in base units (`_seconds`, `_bytes`). HTTP labels are bounded: the
//! route is the route table's template (`/v1/assets/{x}/telemetry`), never the raw path,
//! and every path no route matches shares [`UNMATCHED`].

pub mod process;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `route` label of a request no route of the table matched.
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds of the HTTP latency buckets, seconds: 1 ms to 10 s.
pub const HTTP_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The labels of one kind of HTTP request; every value is `'static`, from a fixed set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// The method, or `other` for one no route uses.
    pub method: &'static str,
    /// The route table's template, or [`UNMATCHED`].
    pub route: &'static str,
    /// The answer's status code.
    pub status: u16,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

/// The gateway crate's counters.
#[derive(Debug)]
pub struct GatewayMetrics {
    /// Prefix `fleetgate`.
    registry: Registry,
    /// No prefix: the standard `process_*` names.
    process: Registry,
    /// HTTP requests answered, by method, route template and status.
    pub http_requests: Family<RequestLabels, Counter>,
    /// Seconds from a request's arrival until its answer's head was ready (a live stream's
    /// body is not included), by method, route template and status.
    pub http_request_seconds: HistogramFamily,
    /// SMS invitations the sender confirmed (each then left the outbox).
    pub outbox_sent: Counter,
    /// Sends that failed (each is retried after its backoff).
    pub outbox_failed: Counter,
    /// Send attempts of invitations that had failed before (a subset of sent plus failed).
    pub outbox_retries: Counter,
    /// Invitations waiting in the outbox, due or not, as of the drainer's last look.
    pub outbox_pending: Gauge,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl GatewayMetrics {
    pub fn new() -> GatewayMetrics {
        let mut registry = Registry::with_prefix("fleetgate");
        let mut process = Registry::default();
        process.register_collector(Box::new(process::ProcessCollector));
        let metrics = GatewayMetrics {
            registry: Registry::default(),
            process: Registry::default(),
            http_requests: Family::default(),
            http_request_seconds: Family::new_with_constructor(http_histogram),
            outbox_sent: Counter::default(),
            outbox_failed: Counter::default(),
            outbox_retries: Counter::default(),
            outbox_pending: Gauge::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            metrics.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Seconds until an HTTP answer's head was ready, by method, route template and status",
            metrics.http_request_seconds.clone(),
        );
        registry.register(
            "sms_outbox_sent",
            "SMS invitations the sender confirmed",
            metrics.outbox_sent.clone(),
        );
        registry.register(
            "sms_outbox_failed",
            "SMS invitation sends that failed (retried after a backoff)",
            metrics.outbox_failed.clone(),
        );
        registry.register(
            "sms_outbox_retries",
            "SMS invitation send attempts after an earlier failure",
            metrics.outbox_retries.clone(),
        );
        registry.register(
            "sms_outbox_pending",
            "SMS invitations waiting in the outbox",
            metrics.outbox_pending.clone(),
        );
        GatewayMetrics {
            registry,
            process,
            ..metrics
        }
    }

    /// Counts one answered request that took `seconds`.
    pub fn request(&self, labels: RequestLabels, seconds: f64) {
        self.http_request_seconds
            .get_or_create(&labels)
            .observe(seconds);
        self.http_requests.get_or_create(&labels).inc();
    }

    /// The gateway's and the process's metrics, without the closing `# EOF` line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.process);
        let mut own = String::new();
        let _ = encode(&mut own, &self.registry);
        out.truncate(out.trim_end_matches("# EOF\n").len());
        out.push_str(own.trim_end_matches("# EOF\n"));
        out
    }
}

/// The `/metrics` page: the actors', the transport's and the gateway's metrics, closed by
/// one `# EOF` (OpenMetrics text).
pub fn page(
    actors: &actors::metrics::Metrics,
    transport: &crate::transport::metrics::TransportMetrics,
    gateway: &GatewayMetrics,
) -> String {
    format!(
        "{}{}{}# EOF\n",
        actors.render().trim_end_matches("# EOF\n"),
        transport.render(),
        gateway.render()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_render_with_their_route_template_and_status() {
        let metrics = GatewayMetrics::new();
        let labels = RequestLabels {
            method: "GET",
            route: "/v1/assets/{x}",
            status: 404,
        };
        metrics.request(labels.clone(), 0.003);
        metrics.request(labels, 0.2);
        metrics.outbox_sent.inc();
        let text = metrics.render();
        let series = "method=\"GET\",route=\"/v1/assets/{x}\",status=\"404\"";
        assert!(
            text.contains(&format!("fleetgate_http_requests_total{{{series}}} 2")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "fleetgate_http_request_duration_seconds_count{{{series}}} 2"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "fleetgate_http_request_duration_seconds_bucket{{le=\"0.005\",{series}}} 1"
            )),
            "{text}"
        );
        assert!(text.contains("fleetgate_sms_outbox_sent_total 1"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
            assert!(text.contains("\nprocess_cpu_seconds_total "), "{text}");
        }
    }
}
