//! Record encoding: one schema version byte, then postcard.
//!
//! postcard is maintained, compact and serde-native (bincode 3 is a compile-error tombstone).
//! The version byte lets a later release read old records and migrate them instead of
//! misreading them: a record with an unknown version is an error, never garbage.

use serde::{de::DeserializeOwned, Serialize};

/// Bumped whenever a record layout changes incompatibly.
pub const SCHEMA_VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("record is empty")]
    Empty,
    #[error("record has schema version {found}, this build reads {SCHEMA_VERSION}")]
    Version { found: u8 },
    #[error("record does not decode: {0}")]
    Postcard(#[from] postcard::Error),
    /// A telemetry chunk whose columns disagree with each other (see `telemetry::chunk`).
    #[error("telemetry chunk is corrupt: {0}")]
    Chunk(&'static str),
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// [`encode`] into a buffer the caller reuses (cleared first): the writer encodes every
/// telemetry point, and one buffer per batch spares two allocations per point.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    out.clear();
    out.push(SCHEMA_VERSION);
    // Serializing our own plain records into a Vec cannot fail (no maps with non-string
    // keys, no custom serializers that error); a failure here is a programming error.
    let taken = std::mem::take(out);
    *out = postcard::to_extend(value, taken).expect("records always serialize");
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&SCHEMA_VERSION, body)) => Ok(postcard::from_bytes(body)?),
        Some((&found, _)) => Err(CodecError::Version { found }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        name: String,
        value: Option<u64>,
    }

    #[test]
    fn round_trips_with_version_byte() {
        let sample = Sample {
            name: "x".into(),
            value: Some(7),
        };
        let bytes = encode(&sample);
        assert_eq!(bytes[0], SCHEMA_VERSION);
        assert_eq!(decode::<Sample>(&bytes).expect("decodes"), sample);
    }

    #[test]
    fn refuses_unknown_version_and_empty() {
        let mut bytes = encode(&Sample {
            name: "x".into(),
            value: None,
        });
        bytes[0] = SCHEMA_VERSION + 1;
        assert!(matches!(
            decode::<Sample>(&bytes),
            Err(CodecError::Version { .. })
        ));
        assert!(matches!(decode::<Sample>(&[]), Err(CodecError::Empty)));
    }
}
