//! Access events a unit reports (`/tenants/{d}/events/access`): decoded and validated like
//! telemetry (size, JSON, field types, a `ts` not far in the future), stored per asset for
//! the owner's history, and rendered as the owner receives them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::AssetId;
use crate::telemetry::{PointError, MAX_FUTURE_MS, MAX_PAYLOAD_BYTES, MIN_TS_MS};
use crate::time::Timestamp;

const MAX_TEXT: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Granted,
    Denied,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEvent {
    pub ts: Timestamp,
    pub key_id: Option<String>,
    pub credential_hint: Option<String>,
    pub result: Outcome,
    pub reason: Option<String>,
}

fn text(field: &str, value: &Value) -> Result<String, PointError> {
    match value.as_str() {
        Some(text) if text.chars().count() <= MAX_TEXT => Ok(text.to_owned()),
        Some(_) => Err(PointError::OutOfRange {
            field: field.to_owned(),
            value: MAX_TEXT as f64,
            range: "at most 128 characters",
        }),
        None => Err(PointError::WrongType {
            field: field.to_owned(),
            expected: "a string",
        }),
    }
}

pub fn decode(payload: &[u8], now: Timestamp) -> Result<AccessEvent, PointError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(PointError::TooLarge {
            size: payload.len(),
        });
    }
    let object: Map<String, Value> = match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            return Err(PointError::InvalidJson(
                "top level must be an object".into(),
            ))
        }
        Err(err) => return Err(PointError::InvalidJson(err.to_string())),
    };
    let mut event = AccessEvent {
        ts: now,
        key_id: None,
        credential_hint: None,
        result: Outcome::Denied,
        reason: None,
    };
    let mut result = None;
    for (field, value) in &object {
        match field.as_str() {
            "ts" => {
                let ts = value.as_u64().ok_or_else(|| PointError::WrongType {
                    field: "ts".into(),
                    expected: "milliseconds since the epoch as a non-negative integer",
                })?;
                if ts < MIN_TS_MS {
                    return Err(PointError::OutOfRange {
                        field: "ts".into(),
                        value: ts as f64,
                        range: "2000-01-01 or later",
                    });
                }
                if ts > now.0.saturating_add(MAX_FUTURE_MS) {
                    return Err(PointError::FutureTs { ts });
                }
                event.ts = Timestamp(ts);
            }
            "key_id" => event.key_id = Some(text(field, value)?),
            "credential_hint" => event.credential_hint = Some(text(field, value)?),
            "reason" => event.reason = Some(text(field, value)?),
            "result" => {
                result = Some(match value.as_str() {
                    Some("granted") => Outcome::Granted,
                    Some("denied") => Outcome::Denied,
                    _ => {
                        return Err(PointError::WrongType {
                            field: "result".into(),
                            expected: "\"granted\" or \"denied\"",
                        })
                    }
                })
            }
            other => {
                return Err(PointError::UnknownField {
                    field: other.to_owned(),
                })
            }
        }
    }
    event.result = result.ok_or_else(|| PointError::WrongType {
        field: "result".into(),
        expected: "\"granted\" or \"denied\" (required)",
    })?;
    Ok(event)
}

impl AccessEvent {
    pub fn to_json(&self, asset_id: &AssetId) -> Value {
        serde_json::json!({
            "asset_id": asset_id.as_str(),
            "ts": self.ts.to_rfc3339(),
            "ts_ms": self.ts.0,
            "key_id": self.key_id,
            "credential_hint": self.credential_hint,
            "result": match self.result { Outcome::Granted => "granted", Outcome::Denied => "denied" },
            "reason": self.reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    #[test]
    fn events_decode_and_refusals_name_the_field() {
        let event = decode(
            br#"{"ts":1799999999000,"key_id":"key1","result":"granted"}"#,
            NOW,
        )
        .expect("valid");
        assert_eq!(event.result, Outcome::Granted);
        assert_eq!(event.key_id.as_deref(), Some("key1"));
        for (payload, names) in [
            (&br#"{"ts":1799999999000}"#[..], "result"),
            (br#"{"result":"maybe"}"#, "result"),
            (br#"{"result":"denied","reason":5}"#, "reason"),
            (br#"{"result":"denied","door":"open"}"#, "door"),
            (br#"{"result":"denied","ts":1800000400000}"#, "ts"),
            (b"[]", "object"),
        ] {
            let err = decode(payload, NOW).expect_err("refused");
            assert!(err.to_string().contains(names), "{err}");
        }
    }
}
