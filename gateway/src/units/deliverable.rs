//! Whether a point queued for an account's integration session may still go to it: the
//! account still sees the asset (owned, a mirror it holds, or a grant in force) and the
//! point's stamp lies inside what it may see of it — the one predicate history, latest and
//! the live streams use (`storage::visibility::Seen::shows`).
//!
//! Asked only for what was queued before access changed, so a queue of 1,024 points costs
//! one read transaction and one lookup per asset in it. Anything that cannot be read or
//! parsed is not delivered: this decides whether a point leaves, so it fails closed.

use std::cell::RefCell;
use std::collections::HashMap;

use bytes::Bytes;
use storage::redb::ReadTransaction;
use storage::time::Timestamp;
use storage::visibility::Seen;
use storage::{AccountId, AssetId, Store};

/// One re-check of one account's queue, at one instant.
pub(super) struct Still {
    rtx: Option<ReadTransaction>,
    account: Option<AccountId>,
    now: Timestamp,
    /// What the account sees of each asset met so far (`None`: nothing).
    seen: RefCell<HashMap<String, Option<Seen>>>,
}

impl Still {
    pub(super) fn new(store: &Store, tenant: &str, now: Timestamp) -> Still {
        Still {
            rtx: store.begin_read().ok(),
            account: AccountId::parse(tenant).ok(),
            now,
            seen: RefCell::default(),
        }
    }

    /// Whether the point `payload`, queued on `topic`, may still go to the account.
    pub(super) fn sees(&self, topic: &str, payload: &Bytes) -> bool {
        let (Some(rtx), Some(account)) = (&self.rtx, &self.account) else {
            return false;
        };
        let (Some(asset), Some(ts)) = (asset_of(topic, account.as_str()), stamp_of(payload)) else {
            return false;
        };
        let mut seen = self.seen.borrow_mut();
        let seen = seen.entry(asset.to_owned()).or_insert_with(|| {
            let asset = AssetId::parse(asset).ok()?;
            storage::visibility::seen_by(rtx, account, &asset, self.now)
                .ok()
                .flatten()
        });
        seen.as_ref().is_some_and(|seen| seen.shows(Timestamp(ts)))
    }
}

/// The asset of `/tenants/{account}/assets/{asset}/telemetry`, the only topic points are
/// queued on (`transport::acl::asset_topic`).
fn asset_of<'t>(topic: &'t str, account: &str) -> Option<&'t str> {
    topic
        .strip_prefix("/tenants/")?
        .strip_prefix(account)?
        .strip_prefix("/assets/")?
        .strip_suffix("/telemetry")
}

/// The point's `ts_ms`, as the live rendering writes it (`storage::telemetry::render`).
fn stamp_of(payload: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Stamp {
        ts_ms: u64,
    }
    serde_json::from_slice::<Stamp>(payload)
        .ok()
        .map(|stamp| stamp.ts_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_asset_comes_from_the_accounts_own_point_topic_only() {
        let topic = crate::transport::acl::asset_topic("acc1", "ex1");
        assert_eq!(asset_of(&topic, "acc1"), Some("ex1"));
        assert_eq!(asset_of(&topic, "acc2"), None, "another account's topic");
        assert_eq!(asset_of("/tenants/acc1/assets/ex1/status", "acc1"), None);
        assert_eq!(asset_of("/tenants/acc1/keys", "acc1"), None);
    }

    #[test]
    fn the_stamp_is_the_rendered_points_ts_ms() {
        assert_eq!(
            stamp_of(br#"{"asset_id":"ex1","ts":"2026-11-30T00:00:00Z","ts_ms":1796083200000}"#),
            Some(1_796_083_200_000)
        );
        assert_eq!(stamp_of(br#"{"asset_id":"ex1"}"#), None);
        assert_eq!(stamp_of(b"not json"), None);
    }
}
