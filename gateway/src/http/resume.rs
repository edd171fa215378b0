//! Resuming a live stream: the `Last-Event-ID` a client sends (header, or the
//! `last_event_id` query parameter for clients that cannot set headers on their first
//! connect), the replay that precedes the live events, and the seam between the two.
//!
//! The order is: subscribe (live events buffer from here), the use case
//! `UseCases::resume_stream` (which waits until every event an account actor handled before
//! the subscription is committed, see `actors::arrival`, and reads the replay), then go live
//! skipping every event the replay's read already covered (`through`). So nothing between
//! the two is lost or sent twice.

use actix_web::http::header::HeaderMap;
use actors::account::{sse_frame, LiveEvent};
use actors::usecases::streams::ResumeFrom;
use bytes::Bytes;
use storage::arrivals::ArrivalId;
use storage::resume::Resume;

use super::auth::Caller;
use super::problem::ApiError;
use super::AppState;

/// The header an SSE client resumes with (WHATWG HTML, server-sent events).
pub const HEADER: &str = "Last-Event-ID";

/// Replayed events coalesced into one HTTP chunk at most.
const REPLAY_PER_CHUNK: usize = 512;

/// The id to resume after: the header when present (an `EventSource` that reconnects
/// sends the newest id it saw there, while its URL still carries the query parameter it
/// was first opened with), else the query parameter. Absent or empty: no resume.
///
/// Errors: 422 naming `Last-Event-ID` (or `last_event_id`) when it is not a decimal id.
/// Our ids are always decimal, so only a hand-made client sends anything else; an id that
/// is well-formed but not ours is answered with `event: reset` instead.
pub fn last_event_id(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<ArrivalId>, ApiError> {
    let (field, text) = match headers.get(HEADER) {
        Some(value) => (HEADER, value.to_str().unwrap_or("\u{fffd}")),
        None => ("last_event_id", query.unwrap_or("")),
    };
    parse(text).map_err(|reason| storage::OpError::invalid(field, reason).into())
}

/// An id as a client sent it: decimal digits, surrounding blanks ignored.
fn parse(text: &str) -> Result<Option<ArrivalId>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err("expected the decimal id of an event this gateway sent".into());
    }
    text.parse::<u64>()
        .map(|id| Some(ArrivalId(id)))
        .map_err(|_| "the id is larger than any this gateway sends".into())
}

/// What a resumed stream sends before its live events.
#[derive(Debug, Default)]
pub struct Prelude {
    /// Replayed events (or one `event: reset`) as HTTP chunks.
    pub chunks: Vec<Bytes>,
    /// Live events up to this id were covered by the replay's read: skipped.
    pub through: Option<ArrivalId>,
}

/// Reads the replay for a stream of `account` (`scope`) resuming after `last`. Call it
/// after subscribing.
pub async fn prelude(
    state: &AppState,
    caller: &Caller,
    account: &storage::AccountId,
    asset: Option<&storage::AssetId>,
    last: ArrivalId,
) -> Result<Prelude, ApiError> {
    let from = ResumeFrom {
        who: caller.0.clone(),
        account: account.clone(),
        asset: asset.cloned(),
        last,
    };
    let resume = (state.usecases)
        .resume_stream(&state.store, &state.arrivals, from)
        .await?;
    Ok(match resume {
        Resume::Reset { data, .. } => Prelude {
            chunks: vec![sse_frame(None, "reset", data.as_bytes())],
            through: None,
        },
        Resume::Replay { events, through } => Prelude {
            chunks: events
                .chunks(REPLAY_PER_CHUNK)
                .map(|chunk| {
                    let mut bytes = Vec::new();
                    for event in chunk {
                        let frame =
                            sse_frame(Some(event.id), event.kind.as_str(), event.data.as_bytes());
                        bytes.extend_from_slice(&frame);
                    }
                    Bytes::from(bytes)
                })
                .collect(),
            through,
        },
    })
}

/// Whether a live event is to be sent after a replay that read `through`: an event up to
/// it was replayed (or is not the caller's to see any more), and a gap wholly within it
/// was made good by the replay.
pub fn after_replay(event: &LiveEvent, through: Option<ArrivalId>) -> bool {
    let Some(through) = through else {
        return true;
    };
    match event {
        LiveEvent::Event { id, .. } => *id > through,
        LiveEvent::Gap(gap) => gap.to_id > through,
        LiveEvent::KeepAlive => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(value) = value {
            let name = HeaderName::from_static("last-event-id");
            map.insert(name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    #[test]
    fn ids_parse_from_the_header_first_then_the_query() {
        let id = |h, q| last_event_id(&headers(h), q).ok().flatten();
        assert_eq!(
            id(Some("42"), Some("7")),
            Some(ArrivalId(42)),
            "header wins"
        );
        assert_eq!(id(None, Some(" 7 ")), Some(ArrivalId(7)));
        assert_eq!(id(None, None), None);
        assert_eq!(id(Some(""), Some("7")), None, "an empty header: no resume");
    }

    #[test]
    fn malformed_ids_are_refused_naming_where_they_came_from() {
        for bad in ["abc", "-1", "1.5", "99999999999999999999999", "0x10"] {
            let refused = last_event_id(&headers(Some(bad)), None);
            let Err(ApiError::Op(storage::OpError::Invalid { field, .. })) = refused else {
                panic!("{bad} accepted");
            };
            assert_eq!(field, HEADER);
        }
        let refused = last_event_id(&headers(None), Some("x"));
        assert!(matches!(
            refused,
            Err(ApiError::Op(storage::OpError::Invalid { field, .. })) if field == "last_event_id"
        ));
    }

    #[test]
    fn live_events_the_replay_covered_are_skipped() {
        let event = |id| LiveEvent::Event {
            id: ArrivalId(id),
            event: "point",
            data: Bytes::new(),
        };
        assert!(after_replay(&event(5), None));
        assert!(!after_replay(&event(5), Some(ArrivalId(5))));
        assert!(after_replay(&event(6), Some(ArrivalId(5))));
        assert!(after_replay(&LiveEvent::KeepAlive, Some(ArrivalId(5))));
    }
}
