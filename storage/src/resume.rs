//! What a live stream that reconnects with `Last-Event-ID` is replayed before it goes live
//! again: every point and access event of the arrival index ([`crate::arrivals`]) after
//! that id that the caller may see *now*, through the same visibility rule history reads
//! use ([`crate::visibility`]: a grantee only inside its grant window, an asset whose grant
//! was removed not at all), access events only on the owner's account, each rendered
//! exactly as the live stream renders it.
//!
//! An id the index no longer covers, an id never handed out, or more than one resume
//! replays is answered with a [`Reset`], never with a silent partial replay.

use std::collections::HashMap;

use redb::ReadTransaction;
use serde_json::json;

use crate::arrivals::{self, ArrivalId, Arrived};
use crate::error::{OpError, StoreError};
use crate::ids::{AccountId, AssetId};
use crate::model::Principal;
use crate::store::decode_as;
use crate::tables::ACCESS_EVENTS;
use crate::time::Timestamp;
use crate::visibility::{self, Relation, Seen};

/// The most index entries one resume reads (every asset's, not only the caller's).
pub const MAX_SCAN: usize = 500_000;
/// The most events one resume replays; past it the caller gets a [`Reset`] and reads the
/// history API instead.
pub const MAX_EVENTS: usize = 50_000;

/// Which live stream resumes.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// `/v1/stream`: every asset the account sees.
    Account,
    /// `/v1/assets/{x}/stream`: one asset, as the caller named it.
    Asset(&'a AssetId),
}

/// The SSE event name of a replayed or live event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Point,
    Access,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Point => "point",
            Kind::Access => "access",
        }
    }
}

/// One replayed event: its arrival id, its name and its JSON data.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub id: ArrivalId,
    pub kind: Kind,
    pub data: String,
}

/// Why a stream cannot be resumed from the id it gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// Events after the id were pruned from the index (older than its retention).
    Expired,
    /// This gateway never handed out the id.
    Unknown,
    /// More arrived since the id than one resume replays ([`MAX_SCAN`], [`MAX_EVENTS`]).
    TooFarBehind,
}

impl Reset {
    pub fn as_str(self) -> &'static str {
        match self {
            Reset::Expired => "expired",
            Reset::Unknown => "unknown",
            Reset::TooFarBehind => "too_far_behind",
        }
    }

    /// The `event: reset` data: the reason, the id asked for and what the index holds.
    pub fn to_json(self, asked: ArrivalId, bounds: &arrivals::Bounds) -> String {
        json!({
            "reason": self.as_str(),
            "last_event_id": asked.0,
            "oldest_id": bounds.oldest.map(|id| id.0),
            "newest_id": bounds.newest.map(|id| id.0),
        })
        .to_string()
    }
}

/// What a resume answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// The events to replay, oldest first, and the highest id the index held when read: a
    /// live event up to it was either replayed or is not to be shown, so it is skipped.
    Replay {
        events: Vec<Replayed>,
        through: Option<ArrivalId>,
    },
    /// Nothing is replayed; `data` is the `event: reset` data.
    Reset { reset: Reset, data: String },
}

/// The events after `last` that `caller` may see now on `account`'s stream (`scope`).
/// `issued` is the highest arrival id the gateway handed out so far: a later id was never
/// one of ours.
pub fn resume(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: &AccountId,
    scope: Scope<'_>,
    (last, issued): (ArrivalId, ArrivalId),
    now: Timestamp,
) -> Result<Resume, OpError> {
    let viewed = viewed_assets(rtx, caller, account, scope, now)?;
    let bounds = arrivals::bounds(rtx)?;
    let reset = |reset: Reset| {
        Ok(Resume::Reset {
            reset,
            data: reset.to_json(last, &bounds),
        })
    };
    if last > issued {
        return reset(Reset::Unknown);
    }
    if last.0 < bounds.pruned_through {
        return reset(Reset::Expired);
    }
    let entries = arrivals::after(rtx, last, MAX_SCAN + 1)?;
    if entries.len() > MAX_SCAN {
        return reset(Reset::TooFarBehind);
    }
    let mut events = Vec::new();
    let records = Records::open(rtx)?;
    for entry in &entries {
        // A point's entry is its owner's and grantees' view; a mirror's view has its own.
        for seen in viewed.get(&entry.what.asset_key()).into_iter().flatten() {
            if let Some(event) = records.render(entry.id, entry.what, seen)? {
                events.push(event);
            }
        }
        if events.len() > MAX_EVENTS {
            return reset(Reset::TooFarBehind);
        }
    }
    Ok(Resume::Replay {
        events,
        through: entries.last().map(|entry| entry.id),
    })
}

/// What the stream shows, by each asset's own key (a point's entry names its asset, a
/// mirror's view names the mirror): every asset of the account for [`Scope::Account`], the
/// one asset otherwise.
/// Errors as the visibility rule refuses (404 for what the caller may not see).
fn viewed_assets(
    rtx: &ReadTransaction,
    caller: &Principal,
    account: &AccountId,
    scope: Scope<'_>,
    now: Timestamp,
) -> Result<HashMap<u64, Vec<Seen>>, OpError> {
    let mut viewed: HashMap<u64, Vec<Seen>> = HashMap::new();
    let mut add = |seen: Seen| viewed.entry(seen.asset.key).or_default().push(seen);
    match scope {
        Scope::Asset(asset_id) => add(visibility::resolve(rtx, caller, account, asset_id, now)?),
        Scope::Account => {
            let mut cursor = None;
            loop {
                let page = visibility::list(
                    rtx,
                    caller,
                    account,
                    &Default::default(),
                    (cursor.as_deref(), 500),
                    now,
                )?;
                page.items.into_iter().for_each(&mut add);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    Ok(viewed)
}

/// The tables a replay reads its records from.
struct Records {
    telemetry: crate::telemetry::stored::Stored,
    access: redb::ReadOnlyTable<(u64, u64, u64), &'static [u8]>,
}

impl Records {
    fn open(rtx: &ReadTransaction) -> Result<Records, StoreError> {
        Ok(Records {
            telemetry: crate::telemetry::stored::Stored::open(rtx)?,
            access: rtx.open_table(ACCESS_EVENTS)?,
        })
    }

    /// The event as `seen`'s account receives it live, if it may see it now: a point
    /// inside what it may read, an access event on the owner's account only. `None` too
    /// when the record is not stored (its commit failed after it went out live).
    fn render(
        &self,
        id: ArrivalId,
        what: Arrived,
        seen: &Seen,
    ) -> Result<Option<Replayed>, StoreError> {
        let asset_id = &seen.asset.id;
        let (kind, data) = match what {
            Arrived::Point { ts, reading, .. } | Arrived::View { ts, reading, .. }
                if seen.shows(ts) =>
            {
                // A mirror's view reads its source's telemetry.
                let readings = self.telemetry.at(seen.telemetry_key(), ts.0)?;
                let Some(point) = usize::try_from(reading).ok().and_then(|i| readings.get(i))
                else {
                    return Ok(None);
                };
                (Kind::Point, point.render_json(asset_id))
            }
            Arrived::Access { asset_key, ts, seq } if seen.relation == Relation::Owned => {
                let Some(stored) = self.access.get((asset_key, ts.0, seq))? else {
                    return Ok(None);
                };
                let event: crate::access::AccessEvent = decode_as("access_events", stored.value())?;
                (Kind::Access, event.to_json(asset_id).to_string())
            }
            _ => return Ok(None),
        };
        Ok(Some(Replayed { id, kind, data }))
    }
}
