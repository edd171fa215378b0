//! Live events shed before they reached an account actor: its mailbox was full, so a
//! device actor dropped the event rather than wait (ingest never slows for a slow
//! account). The account's streams hear of it as an `event: gap` (design 5.4), as they do
//! of what their own full buffer dropped; without this ledger such a loss was silent.
//!
//! Bounded: at most one [`Gap`] per (account, asset), kept until the account actor takes
//! them at its next event or keep-alive tick.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use storage::arrivals::ArrivalId;
use storage::{AccountId, AssetId};

use crate::lag::Gap;

/// What was shed per account and asset, not yet told to the account's streams.
#[derive(Debug, Default)]
pub struct ShedLedger {
    pending: Mutex<HashMap<AccountId, HashMap<AssetId, Gap>>>,
    /// Bumped at every note, so an account actor looks (and locks) only after a shed.
    generation: AtomicU64,
}

impl ShedLedger {
    /// Counts the event `id` of `asset` as shed before reaching `account`'s actor.
    pub fn note(&self, account: &AccountId, asset: &AssetId, id: ArrivalId) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let gaps = pending.entry(account.clone()).or_default();
        gaps.entry(asset.clone())
            .and_modify(|gap| {
                gap.dropped += 1;
                gap.from_id = gap.from_id.min(id);
                gap.to_id = gap.to_id.max(id);
            })
            .or_insert(Gap {
                dropped: 1,
                from_id: id,
                to_id: id,
            });
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current generation; an actor that saw this one has nothing new to take.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Takes what `account` was not told yet, by asset.
    pub fn take(&self, account: &AccountId) -> HashMap<AssetId, Gap> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.remove(account).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheds_add_up_per_account_and_asset_and_are_taken_once() {
        let ledger = ShedLedger::default();
        let (acme, beta) = (AccountId::generate("acc"), AccountId::generate("acc"));
        let (ex1, ex2) = (
            AssetId::parse("ex1").expect("id"),
            AssetId::parse("ex2").expect("id"),
        );
        let before = ledger.generation();
        for id in [7, 5, 9] {
            ledger.note(&acme, &ex1, ArrivalId(id));
        }
        ledger.note(&acme, &ex2, ArrivalId(6));
        ledger.note(&beta, &ex1, ArrivalId(8));
        assert_ne!(ledger.generation(), before);
        let taken = ledger.take(&acme);
        assert_eq!(
            taken[&ex1],
            Gap {
                dropped: 3,
                from_id: ArrivalId(5),
                to_id: ArrivalId(9)
            }
        );
        assert_eq!(taken[&ex2].dropped, 1);
        assert!(ledger.take(&acme).is_empty(), "taken once");
        assert_eq!(ledger.take(&beta)[&ex1].dropped, 1);
    }
}
