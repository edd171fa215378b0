//! HTTP request metrics: the labels of a request, taken from the route table so that they
//! stay a small fixed set whatever clients send. The route is the template actix matched
//! (`/v1/assets/{x}`), found again in [`super::ROUTES`] so the label is the table's own
//! `'static` string (or the console's, [`super::console::ROUTES`]); a path no route matches is [`UNMATCHED`], and a method no route uses
//! is `other`. The middleware itself is a `wrap_fn` in `bind_http` (`lib.rs`) that times
//! each call and hands the outcome to [`record`].

use std::time::Instant;

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;

use crate::metrics::{GatewayMetrics, RequestLabels, UNMATCHED};

/// What is known of a request before it is served: its method and route labels.
#[derive(Debug, Clone, Copy)]
pub struct Observed {
    method: &'static str,
    route: &'static str,
    started: Instant,
}

/// The method label: one the route table or HTTP itself names, else `other`.
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("other")
}

/// The route label: the table's template for `pattern` (what actix matched), else
/// [`UNMATCHED`].
pub fn route_label(pattern: Option<&str>) -> &'static str {
    pattern
        .and_then(|pattern| {
            let api = super::ROUTES.iter().map(|route| route.path);
            api.chain(super::console::ROUTES)
                .find(|path| *path == pattern)
        })
        .unwrap_or(UNMATCHED)
}

/// Notes the request's labels and the time it arrived.
pub fn observe(request: &ServiceRequest) -> Observed {
    Observed {
        method: method_label(request.method()),
        route: route_label(request.match_pattern().as_deref()),
        started: Instant::now(),
    }
}

/// Counts the answer (or the error an inner service returned, by its status).
pub fn record(
    metrics: &GatewayMetrics,
    observed: Observed,
    outcome: &Result<ServiceResponse, actix_web::Error>,
) {
    let status = match outcome {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    let labels = RequestLabels {
        method: observed.method,
        route: observed.route,
        status: status.as_u16(),
    };
    metrics.request(labels, observed.started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_a_fixed_set() {
        assert_eq!(
            route_label(Some("/v1/assets/{x}/telemetry")),
            "/v1/assets/{x}/telemetry"
        );
        assert_eq!(route_label(Some("/v1/assets/ex1/telemetry")), UNMATCHED);
        assert_eq!(route_label(None), UNMATCHED);
        assert_eq!(route_label(Some("/console/{file}")), "/console/{file}");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let odd = Method::from_bytes(b"BREW").expect("a method token");
        assert_eq!(method_label(&odd), "other");
    }
}
