//! The pure part of the visibility scenario: in which order grants are removed, and the
//! accounting that decides whether a point a grantee received broke the cut-off contract
//! ("when `DELETE` of a grant answers, no point published after it reaches the removed
//! account", DESIGN.md section 2).
//!
//! # Why the ledger is built this way
//!
//! A violation is a point for a removed (grantee, asset) pair whose `sent_us` is later than
//! the time the removal's answer arrived. The answer time is only known after the round
//! trip, while points keep arriving on the SSE streams meanwhile, so the ledger keeps, per
//! pair, the time the removal was *requested*: a point sent before that can never be a
//! violation and is forgotten at once; one sent after it waits (in `pending`) until the
//! answer time is known. So memory holds only the points of the one removal in flight, never
//! the whole run.
//!
//! The request time is stamped while the ledger's lock is held, and observers read the
//! clock before taking it. A point whose observer found no removal entry therefore arrived
//! before the request stamp, was sent before it, and so before the answer: dropping it is
//! exact, not a heuristic.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::api::{AccountId, AssetId, GrantId};
use crate::report::Section;
use crate::stats::format_us;

/// How many violations a report lists in full; the count is always exact.
const VIOLATION_EXAMPLES: usize = 10;

/// One grant to take back: which grantee (index into the run's grantees), which asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedRemoval {
    pub(crate) grantee: usize,
    pub(crate) asset_id: AssetId,
    pub(crate) grant_id: GrantId,
    /// Waited before sending this removal, so removals land at random phases of the units'
    /// send schedules instead of always right after a tick.
    pub(crate) pause: Duration,
}

/// Shuffles the grants into the order they are removed and draws each one's pause in
/// `[0, max_pause]`. The same seed gives the same plan, so a run that found a violation can
/// be repeated.
pub(crate) fn plan_removals(
    mut removals: Vec<PlannedRemoval>,
    seed: u64,
    max_pause: Duration,
) -> Vec<PlannedRemoval> {
    let mut rng = StdRng::seed_from_u64(seed);
    removals.shuffle(&mut rng);
    let max_pause_us = u64::try_from(max_pause.as_micros()).unwrap_or(u64::MAX);
    for removal in &mut removals {
        removal.pause = Duration::from_micros(rng.random_range(0..=max_pause_us));
    }
    removals
}

/// A point delivered to an account that no longer had the right to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub grantee: AccountId,
    pub asset_id: AssetId,
    /// When the unit sent it, µs since the epoch.
    pub sent_us: u64,
    /// When the removal's answer had arrived, µs since the epoch: before `sent_us`.
    pub removal_answered_us: u64,
    /// When the grantee's stream delivered it, µs since the epoch.
    pub received_us: u64,
}

/// Where one pair's removal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    NotYet,
    Requested {
        requested_us: u64,
    },
    Answered {
        answered_us: u64,
    },
    /// The removal failed or its outcome is unknown: the grant may still stand, so later
    /// points prove nothing. The failure itself is in the run's errors.
    Failed,
}

#[derive(Debug)]
struct Pair {
    delivered: u64,
    removal: Removal,
    /// `(sent_us, received_us)` of points sent after the request while the answer is
    /// outstanding.
    pending: Vec<(u64, u64)>,
}

/// What the ledger found over a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CutoffTally {
    pub(crate) violations: u64,
    pub(crate) examples: Vec<Violation>,
    /// Points of granted pairs delivered on the grantees' streams.
    pub(crate) delivered: u64,
    /// Points of assets the grantee was never granted (a leak of another kind).
    pub(crate) foreign: u64,
    /// Points without a readable `sensors.sent_us`, which the ledger cannot judge.
    pub(crate) untracked: u64,
}

/// Shared by the grantees' stream readers and the remover, behind one mutex.
#[derive(Debug)]
pub(crate) struct CutoffLedger {
    grantees: Vec<AccountId>,
    /// Per grantee (same index as `grantees`), the pairs it was granted.
    pairs: Vec<HashMap<AssetId, Pair>>,
    tally: CutoffTally,
}

impl CutoffLedger {
    /// Every grantee is granted every asset, as in the scenario.
    pub(crate) fn new(grantees: Vec<AccountId>, assets: &[AssetId]) -> Self {
        let pairs = grantees
            .iter()
            .map(|_| {
                assets
                    .iter()
                    .map(|asset| {
                        let pair = Pair {
                            delivered: 0,
                            removal: Removal::NotYet,
                            pending: Vec::new(),
                        };
                        (asset.clone(), pair)
                    })
                    .collect()
            })
            .collect();
        Self {
            grantees,
            pairs,
            tally: CutoffTally::default(),
        }
    }

    /// A point grantee `grantee` received; `received_us` must be read before the ledger's
    /// lock is taken (see the module doc).
    pub(crate) fn observe(
        &mut self,
        grantee: usize,
        asset_id: &AssetId,
        sent_us: Option<u64>,
        received_us: u64,
    ) {
        let Some(pair) = self
            .pairs
            .get_mut(grantee)
            .and_then(|pairs| pairs.get_mut(asset_id))
        else {
            self.tally.foreign += 1;
            return;
        };
        pair.delivered += 1;
        self.tally.delivered += 1;
        let Some(sent_us) = sent_us else {
            self.tally.untracked += 1;
            return;
        };
        match pair.removal {
            Removal::NotYet | Removal::Failed => {}
            Removal::Requested { requested_us } => {
                if sent_us > requested_us {
                    pair.pending.push((sent_us, received_us));
                }
            }
            Removal::Answered { answered_us } => {
                if sent_us > answered_us {
                    let grantee_id = self.grantees[grantee].clone();
                    record_violation(
                        &mut self.tally,
                        grantee_id,
                        asset_id,
                        sent_us,
                        answered_us,
                        received_us,
                    );
                }
            }
        }
    }

    /// Marks the removal as sent; `requested_us` must be read while the lock is held.
    pub(crate) fn removal_requested(&mut self, grantee: usize, asset_id: &AssetId, at_us: u64) {
        if let Some(pair) = self.pair_mut(grantee, asset_id) {
            pair.removal = Removal::Requested {
                requested_us: at_us,
            };
        }
    }

    /// The removal's success answer arrived at `at_us`; points waiting on it are judged now.
    pub(crate) fn removal_answered(&mut self, grantee: usize, asset_id: &AssetId, at_us: u64) {
        let Some(grantee_id) = self.grantees.get(grantee).cloned() else {
            return;
        };
        let Some(pair) = self
            .pairs
            .get_mut(grantee)
            .and_then(|pairs| pairs.get_mut(asset_id))
        else {
            return;
        };
        pair.removal = Removal::Answered { answered_us: at_us };
        for (sent_us, received_us) in std::mem::take(&mut pair.pending) {
            if sent_us > at_us {
                record_violation(
                    &mut self.tally,
                    grantee_id.clone(),
                    asset_id,
                    sent_us,
                    at_us,
                    received_us,
                );
            }
        }
    }

    /// The removal did not succeed: the grant may still stand, so nothing is judged.
    pub(crate) fn removal_failed(&mut self, grantee: usize, asset_id: &AssetId) {
        if let Some(pair) = self.pair_mut(grantee, asset_id) {
            pair.removal = Removal::Failed;
            pair.pending.clear();
        }
    }

    /// Pairs among `assets` whose grantee has not received a single point yet, with one
    /// of them as an example: the run waits for zero before removing anything, because a
    /// cut-off of a delivery that never started proves nothing.
    pub(crate) fn undelivered(&self, assets: &[AssetId]) -> (usize, Option<(AccountId, AssetId)>) {
        let mut count = 0;
        let mut example = None;
        for (grantee, pairs) in self.grantees.iter().zip(&self.pairs) {
            for asset in assets {
                if pairs.get(asset).is_some_and(|pair| pair.delivered == 0) {
                    count += 1;
                    example.get_or_insert_with(|| (grantee.clone(), asset.clone()));
                }
            }
        }
        (count, example)
    }

    /// The tally of the run. Every requested removal has been answered or failed by then
    /// (the remover settles each before the next), so nothing is left pending.
    pub(crate) fn finish(self) -> CutoffTally {
        self.tally
    }

    fn pair_mut(&mut self, grantee: usize, asset_id: &AssetId) -> Option<&mut Pair> {
        self.pairs
            .get_mut(grantee)
            .and_then(|pairs| pairs.get_mut(asset_id))
    }
}

fn record_violation(
    tally: &mut CutoffTally,
    grantee: AccountId,
    asset_id: &AssetId,
    sent_us: u64,
    removal_answered_us: u64,
    received_us: u64,
) {
    tally.violations += 1;
    if tally.examples.len() < VIOLATION_EXAMPLES {
        tally.examples.push(Violation {
            grantee,
            asset_id: asset_id.clone(),
            sent_us,
            removal_answered_us,
            received_us,
        });
    }
}

/// The violations a report shows, one figure each: who got which asset, how long after the
/// removal's answer its unit sent it.
pub(crate) fn violation_section(violations: &[Violation]) -> Section {
    violations
        .iter()
        .fold(Section::new("Violations"), |section, violation| {
            section.figure(
                &format!("{} got {}", violation.grantee, violation.asset_id),
                format!(
                    "sent {} after the removal answered",
                    format_us(
                        violation
                            .sent_us
                            .saturating_sub(violation.removal_answered_us)
                    )
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> (CutoffLedger, AssetId, AssetId) {
        let first = AssetId::new("a0");
        let second = AssetId::new("a1");
        let ledger = CutoffLedger::new(
            vec![AccountId::new("g0"), AccountId::new("g1")],
            &[first.clone(), second.clone()],
        );
        (ledger, first, second)
    }

    #[test]
    fn points_before_and_during_removal_are_allowed() {
        let (mut ledger, asset, _) = ledger();
        ledger.observe(0, &asset, Some(100), 110);
        ledger.removal_requested(0, &asset, 200);
        // Sent before the request, delivered late: fine.
        ledger.observe(0, &asset, Some(150), 210);
        // Sent while the DELETE was in flight, before its answer: fine.
        ledger.observe(0, &asset, Some(250), 260);
        ledger.removal_answered(0, &asset, 300);
        // Sent exactly at the answer time is not *later* than it.
        ledger.observe(0, &asset, Some(300), 320);
        let tally = ledger.finish();
        assert_eq!(tally.violations, 0);
        assert_eq!(tally.delivered, 4);
    }

    #[test]
    fn point_sent_after_the_answer_is_a_violation() {
        let (mut ledger, asset, _) = ledger();
        ledger.removal_requested(1, &asset, 200);
        ledger.removal_answered(1, &asset, 300);
        ledger.observe(1, &asset, Some(301), 400);
        let tally = ledger.finish();
        assert_eq!(tally.violations, 1);
        assert_eq!(
            tally.examples,
            vec![Violation {
                grantee: AccountId::new("g1"),
                asset_id: asset,
                sent_us: 301,
                removal_answered_us: 300,
                received_us: 400,
            }]
        );
    }

    #[test]
    fn pending_points_are_judged_when_the_answer_arrives() {
        let (mut ledger, asset, _) = ledger();
        ledger.removal_requested(0, &asset, 200);
        // Both arrive before the remover learns the answer time (350).
        ledger.observe(0, &asset, Some(340), 345);
        ledger.observe(0, &asset, Some(360), 365);
        ledger.removal_answered(0, &asset, 350);
        let tally = ledger.finish();
        assert_eq!(tally.violations, 1);
        assert_eq!(tally.examples[0].sent_us, 360);
    }

    #[test]
    fn removal_only_affects_its_own_pair() {
        let (mut ledger, first, second) = ledger();
        ledger.removal_requested(0, &first, 200);
        ledger.removal_answered(0, &first, 300);
        // The other grantee still holds a grant for the same asset, and grantee 0 still
        // holds one for the other asset.
        ledger.observe(1, &first, Some(500), 510);
        ledger.observe(0, &second, Some(500), 510);
        assert_eq!(ledger.finish().violations, 0);
    }

    #[test]
    fn failed_removals_judge_nothing() {
        let (mut ledger, asset, _) = ledger();
        ledger.removal_requested(0, &asset, 200);
        ledger.observe(0, &asset, Some(250), 260);
        ledger.removal_failed(0, &asset);
        ledger.observe(0, &asset, Some(900), 910);
        assert_eq!(ledger.finish().violations, 0);
    }

    #[test]
    fn foreign_and_untracked_points_are_counted_apart() {
        let (mut ledger, asset, _) = ledger();
        ledger.observe(0, &AssetId::new("not-granted"), Some(1), 2);
        ledger.observe(7, &asset, Some(1), 2);
        ledger.observe(0, &asset, None, 2);
        let tally = ledger.finish();
        assert_eq!(tally.foreign, 2);
        assert_eq!(tally.untracked, 1);
        assert_eq!(tally.delivered, 1);
    }

    #[test]
    fn examples_are_capped_but_the_count_is_exact() {
        let (mut ledger, asset, _) = ledger();
        ledger.removal_requested(0, &asset, 1);
        ledger.removal_answered(0, &asset, 2);
        for sent_us in 0..VIOLATION_EXAMPLES as u64 + 5 {
            ledger.observe(0, &asset, Some(10 + sent_us), 100);
        }
        let tally = ledger.finish();
        assert_eq!(tally.violations, VIOLATION_EXAMPLES as u64 + 5);
        assert_eq!(tally.examples.len(), VIOLATION_EXAMPLES);
    }

    #[test]
    fn undelivered_pairs_are_found_among_the_given_assets() {
        let (mut ledger, first, second) = ledger();
        assert_eq!(ledger.undelivered(std::slice::from_ref(&first)).0, 2);
        ledger.observe(0, &first, Some(1), 2);
        ledger.observe(1, &first, Some(1), 2);
        assert_eq!(ledger.undelivered(std::slice::from_ref(&first)), (0, None));
        let (count, example) = ledger.undelivered(&[first, second.clone()]);
        assert_eq!(count, 2);
        assert_eq!(example, Some((AccountId::new("g0"), second)));
    }

    fn planned(count: usize) -> Vec<PlannedRemoval> {
        (0..count)
            .map(|index| PlannedRemoval {
                grantee: index % 3,
                asset_id: AssetId::new(format!("a{index}")),
                grant_id: GrantId::new(format!("g{index}")),
                pause: Duration::ZERO,
            })
            .collect()
    }

    #[test]
    fn removal_plan_is_a_seeded_permutation_with_bounded_pauses() {
        let max_pause = Duration::from_millis(20);
        let plan = plan_removals(planned(50), 7, max_pause);
        let again = plan_removals(planned(50), 7, max_pause);
        assert_eq!(plan, again, "same seed, same plan");

        let mut ids: Vec<String> = plan.iter().map(|step| step.grant_id.to_string()).collect();
        let original: Vec<String> = (0..50).map(|index| format!("g{index}")).collect();
        assert_ne!(ids, original, "50 grants stay in order with chance 1/50!");
        ids.sort();
        let mut sorted_original = original;
        sorted_original.sort();
        assert_eq!(ids, sorted_original, "every grant exactly once");
        assert!(plan.iter().all(|step| step.pause <= max_pause));
        assert!(plan.iter().any(|step| step.pause > Duration::ZERO));

        let other = plan_removals(planned(50), 8, max_pause);
        assert_ne!(plan, other, "another seed, another plan");
    }

    #[test]
    fn zero_pause_plans_do_not_wait() {
        let plan = plan_removals(planned(5), 1, Duration::ZERO);
        assert!(plan.iter().all(|step| step.pause.is_zero()));
        assert!(plan_removals(Vec::new(), 1, Duration::ZERO).is_empty());
    }
}
