//! A request body must arrive whole within a deadline. actix bounds the time to receive a
//! request's head (`client_request_timeout`), not its body: a client that sends headers
//! with `Content-Length: 100` and then 10 bytes would hold its connection (and a worker's
//! extractor) open for ever. Past the deadline the body ends in an error, the extractor
//! refuses the request, and the connection closes with the answer.

use std::time::Duration;

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::HttpMessage as _;
use futures_util::StreamExt;

/// Replaces `request`'s body by one that fails once `deadline` has passed since now. A
/// request that announces no body (no `Content-Length` above 0, no `Transfer-Encoding`:
/// RFC 9112 §6.3, most of them GETs and live streams) is left as it is.
pub fn limit(request: &mut ServiceRequest, deadline: Duration) {
    if !has_body(request) {
        return;
    }
    let body = request.take_payload();
    let until = tokio::time::Instant::now() + deadline;
    let timed = futures_util::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout_at(until, body.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(body))),
            Ok(None) => None,
            // One error, then the end: the extractor sees the body fail.
            Err(_) => Some((Err(timed_out(deadline)), None)),
        }
    });
    request.set_payload(Payload::Stream {
        payload: Box::pin(timed),
    });
}

fn has_body(request: &ServiceRequest) -> bool {
    use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    let headers = request.headers();
    if headers.contains_key(TRANSFER_ENCODING) {
        return true;
    }
    match headers.get(CONTENT_LENGTH) {
        None => false,
        // A length that does not read is actix's to refuse; the deadline stays on it.
        Some(length) => length.to_str().map_or(true, |length| length.trim() != "0"),
    }
}

fn timed_out(deadline: Duration) -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the request body did not arrive within {} s",
            deadline.as_secs()
        ),
    ))
}
