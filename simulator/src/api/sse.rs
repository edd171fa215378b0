//! A server-sent-events reader for the gateway's live streams (`/v1/stream`,
//! `/v1/assets/{x}/stream`).
//!
//! It is split in two so the fiddly part can be unit-tested without a server: `SseParser`
//! turns arbitrary byte chunks into events (chunks split lines, even UTF-8 sequences, at
//! random places), and `SseStream` feeds it from a reqwest body and decodes each event's data
//! as JSON. Only what the gateway uses is implemented: `event:`, `data:` (multi-line data is
//! joined with `\n`), `id:`, comments as keep-alives; `retry:` is ignored.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

use super::keys::AccessEvent;
use super::types::Point;
use super::ApiError;

/// One event exactly as it appeared on the wire, before its data is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSseEvent {
    /// `message` when the event had no `event:` line, as the SSE standard says.
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

/// Incremental SSE parser: feed it chunks, collect complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line whose terminator has not arrived yet. Kept as bytes, not text, because
    /// a chunk may end in the middle of a multi-byte character; a newline byte never occurs
    /// inside one, so decoding whole lines is always safe.
    partial_line: Vec<u8>,
    /// Set when the previous chunk ended in `\r`, so a `\n` opening the next chunk belongs to
    /// the same line break and must not end an (empty) extra line.
    after_carriage_return: bool,
    event: Option<String>,
    data_lines: Vec<String>,
    id: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes one chunk and returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<RawSseEvent> {
        let mut completed = Vec::new();
        for &byte in chunk {
            let skip_line_feed = std::mem::take(&mut self.after_carriage_return);
            match byte {
                b'\n' if skip_line_feed => {}
                b'\n' | b'\r' => {
                    self.after_carriage_return = byte == b'\r';
                    let line_bytes = std::mem::take(&mut self.partial_line);
                    let line = String::from_utf8_lossy(&line_bytes);
                    if let Some(event) = self.take_line(&line) {
                        completed.push(event);
                    }
                }
                _ => self.partial_line.push(byte),
            }
        }
        completed
    }

    fn take_line(&mut self, line: &str) -> Option<RawSseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => self.data_lines.push(value.to_owned()),
            "id" => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }

    /// Ends the current event at a blank line. An event without data lines is dropped, as
    /// the standard says, which also makes stray blank lines harmless.
    fn dispatch(&mut self) -> Option<RawSseEvent> {
        let event = self.event.take();
        let id = self.id.take();
        if self.data_lines.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.data_lines).join("\n");
        Some(RawSseEvent {
            event: event.unwrap_or_else(|| "message".to_owned()),
            data,
            id,
        })
    }
}

/// One decoded event of a live stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub data: Value,
    pub id: Option<String>,
}

impl SseEvent {
    /// The event as a telemetry point, when it is one (`event: point`).
    pub fn point(&self) -> Option<Result<Point, serde_json::Error>> {
        (self.event == "point").then(|| <Point as serde::Deserialize>::deserialize(&self.data))
    }

    /// The event as a reported access attempt, when it is one (`event: access`).
    pub fn access(&self) -> Option<Result<AccessEvent, serde_json::Error>> {
        (self.event == "access")
            .then(|| <AccessEvent as serde::Deserialize>::deserialize(&self.data))
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An open live stream. Dropping it closes the HTTP connection, which is how the gateway
/// learns that the subscriber is gone.
pub struct SseStream {
    body: ByteStream,
    parser: SseParser,
    /// Events already parsed from earlier chunks; kept here, not in a local, so that `next`
    /// stays cancel-safe when raced against a timeout.
    ready: VecDeque<RawSseEvent>,
}

impl SseStream {
    pub(crate) fn new(body: ByteStream) -> Self {
        Self {
            body,
            parser: SseParser::new(),
            ready: VecDeque::new(),
        }
    }

    /// The next event; `None` when the server closed the stream. An event whose data is not
    /// JSON comes back as an error item and the stream stays usable.
    pub async fn next(&mut self) -> Option<Result<SseEvent, ApiError>> {
        loop {
            if let Some(raw) = self.ready.pop_front() {
                return Some(decode(raw));
            }
            match self.body.next().await? {
                Ok(chunk) => self.ready.extend(self.parser.push(&chunk)),
                Err(error) => return Some(Err(ApiError::Transport(error))),
            }
        }
    }

    /// Like `next`, but gives up after `timeout`; `None` then means "nothing arrived".
    pub async fn next_timeout(&mut self, timeout: Duration) -> Option<Result<SseEvent, ApiError>> {
        tokio::time::timeout(timeout, self.next())
            .await
            .ok()
            .flatten()
    }

    /// The next `point` event, skipping others; `None` on end of stream or after `timeout`.
    pub async fn next_point(&mut self, timeout: Duration) -> Option<Result<Point, ApiError>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = match self.next_timeout(remaining).await? {
                Ok(event) => event,
                Err(error) => return Some(Err(error)),
            };
            if let Some(point) = event.point() {
                return Some(point.map_err(|source| ApiError::Decode {
                    what: "SSE point",
                    source,
                    body: event.data.to_string(),
                }));
            }
        }
    }

    /// Adapts the stream for `StreamExt` combinators.
    pub fn into_stream(self) -> impl Stream<Item = Result<SseEvent, ApiError>> + Send {
        futures_util::stream::unfold(self, |mut stream| async move {
            stream.next().await.map(|item| (item, stream))
        })
    }
}

fn decode(raw: RawSseEvent) -> Result<SseEvent, ApiError> {
    match serde_json::from_str(&raw.data) {
        Ok(data) => Ok(SseEvent {
            event: raw.event,
            data,
            id: raw.id,
        }),
        Err(source) => Err(ApiError::Decode {
            what: "SSE data",
            source,
            body: raw.data,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<RawSseEvent> {
        let mut parser = SseParser::new();
        chunks.iter().flat_map(|chunk| parser.push(chunk)).collect()
    }

    #[test]
    fn parses_named_event_with_data() {
        let events = parse_all(&[b"event: point\ndata: {\"a\":1}\n\n"]);
        assert_eq!(
            events,
            vec![RawSseEvent {
                event: "point".into(),
                data: "{\"a\":1}".into(),
                id: None
            }]
        );
    }

    #[test]
    fn comments_are_keep_alives_not_events() {
        let events = parse_all(&[b": keep-alive\n\n: again\n\nevent: point\ndata: 1\n\n"]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "1");
    }

    #[test]
    fn multi_line_data_is_joined_with_newline() {
        let events = parse_all(&[b"data: first\ndata:second\ndata\n\n"]);
        assert_eq!(events[0].data, "first\nsecond\n");
        assert_eq!(events[0].event, "message");
    }

    #[test]
    fn lines_split_across_chunks_and_crlf() {
        let whole = "event: point\r\ndata: {\"name\":\"Bagger é\"}\r\n\r\n".as_bytes();
        for split in 0..whole.len() {
            let events = parse_all(&[&whole[..split], &whole[split..]]);
            assert_eq!(events.len(), 1, "split at {split}");
            assert_eq!(
                events[0].data, "{\"name\":\"Bagger é\"}",
                "split at {split}"
            );
        }
    }

    #[test]
    fn byte_at_a_time_gives_the_same_events() {
        let whole = b"id: 7\nevent: point\ndata: {}\n\nevent: other\ndata: 2\n\n";
        let single: Vec<&[u8]> = whole.chunks(1).collect();
        let events = parse_all(&single);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id.as_deref(), Some("7"));
        assert_eq!(events[1].event, "other");
        assert_eq!(events[1].id, None);
    }

    #[test]
    fn event_without_data_is_dropped_and_fields_reset() {
        let events = parse_all(&[b"event: point\n\ndata: x\n\n"]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "message");
    }

    #[test]
    fn incomplete_event_is_not_dispatched() {
        assert!(parse_all(&[b"event: point\ndata: 1\n"]).is_empty());
    }

    #[test]
    fn non_json_data_is_an_error_item() {
        let raw = RawSseEvent {
            event: "point".into(),
            data: "not json".into(),
            id: None,
        };
        assert!(matches!(decode(raw), Err(ApiError::Decode { .. })));
    }

    #[test]
    fn access_event_decodes_and_is_not_a_point() {
        let raw = RawSseEvent {
            event: "access".into(),
            data: r#"{"asset_id":"x","ts":"t","ts_ms":5,"key_id":"k1","result":"granted"}"#.into(),
            id: None,
        };
        let event = decode(raw).expect("json");
        assert!(event.point().is_none());
        let access = event.access().expect("is access").expect("valid access");
        assert_eq!(
            access.key_id.map(|id| id.to_string()).as_deref(),
            Some("k1")
        );
    }

    #[test]
    fn point_event_decodes_to_point() {
        let raw = RawSseEvent {
            event: "point".into(),
            data: r#"{"asset_id":"x","ts":"t","ts_ms":5}"#.into(),
            id: None,
        };
        let event = decode(raw).expect("json");
        let point = event.point().expect("is a point").expect("valid point");
        assert_eq!(point.ts_ms, 5);
    }
}
