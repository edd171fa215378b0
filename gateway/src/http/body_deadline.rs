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

/// Replaces `request`'s body by one that fails once `deadline` has passed since now.
pub fn limit(request: &mut ServiceRequest, deadline: Duration) {
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

fn timed_out(deadline: Duration) -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the request body did not arrive within {} s",
            deadline.as_secs()
        ),
    ))
}
