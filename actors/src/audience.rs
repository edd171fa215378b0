//! The order in which a point reaches its audience, and the live ids it takes.
//!
//! An account may see one unit under several asset ids (a grant of the source and a
//! telemetry mirror of it). Each such view is its own event on the account's `/v1/stream`
//! and needs an id of its own, or a client that reconnects after the first would skip the
//! second (design 5.4). Each view has a *slot* (`storage::visibility::view_slots`: 0 for
//! the account's own asset or grant, 1, 2, ... for its mirrors of the unit by asset id),
//! a point takes as many consecutive arrival ids as the highest slot of its audience plus
//! one (its *width*, usually 1), and the view in slot `k` goes out as `arrival + k`. A
//! resume gives each view the id of its slot again (`storage::resume`), so a grant that
//! ends between a disconnect and its resume moves no other view's id.

use storage::{AccountId, AssetId};

/// One member of an audience: the account, the asset id it knows the unit by, and the
/// view's slot among the account's views of the unit.
pub trait View {
    fn account(&self) -> &AccountId;
    fn asset(&self) -> &AssetId;
    fn slot(&self) -> u32;
}

/// An audience in (account, slot) order, and its width.
#[derive(Debug)]
pub struct Audience<V> {
    viewers: Vec<V>,
    /// The highest slot plus one (at least 1): the arrival ids a point takes.
    pub width: u32,
}

impl<V: View> Audience<V> {
    pub fn new(mut viewers: Vec<V>) -> Audience<V> {
        // Slot order within an account: its stream sees the ids of one point rise.
        viewers.sort_by(|a, b| (a.account(), a.slot()).cmp(&(b.account(), b.slot())));
        let width = viewers.iter().map(|v| v.slot().saturating_add(1)).max();
        Audience {
            viewers,
            width: width.unwrap_or(1),
        }
    }

    /// The viewers `seen` accepts, each with its slot: `account::Deliver::view`.
    pub fn views<'a>(
        &'a self,
        seen: impl Fn(&V) -> bool + 'a,
    ) -> impl Iterator<Item = (&'a V, u32)> + 'a {
        self.viewers
            .iter()
            .filter(move |viewer| seen(viewer))
            .map(|viewer| (viewer, viewer.slot()))
    }

    /// The view `account` has under `asset` (the owner's of its own asset takes its
    /// access events).
    pub fn find(&self, account: &AccountId, asset: &AssetId) -> Option<&V> {
        self.viewers
            .iter()
            .find(|viewer| viewer.account() == account && viewer.asset() == asset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (account, asset, slot).
    type Member = (AccountId, AssetId, u32);

    impl View for Member {
        fn account(&self) -> &AccountId {
            &self.0
        }
        fn asset(&self) -> &AssetId {
            &self.1
        }
        fn slot(&self) -> u32 {
            self.2
        }
    }

    fn member(account: &str, asset: &str, slot: u32) -> Member {
        (
            AccountId::parse(account).expect("account id"),
            AssetId::parse(asset).expect("asset id"),
            slot,
        )
    }

    fn names(views: Vec<(&Member, u32)>) -> Vec<(String, String, u32)> {
        views
            .into_iter()
            .map(|((a, x, _), k)| (a.to_string(), x.to_string(), k))
            .collect()
    }

    #[test]
    fn an_accounts_views_go_out_in_slot_order_and_keep_their_slots() {
        let audience = Audience::new(vec![
            member("owner", "ex2", 0),
            member("depot", "m2", 1),
            member("partner", "p2", 1),
            member("depot", "a2", 0),
        ]);
        assert_eq!(audience.width, 2);
        assert_eq!(
            names(audience.views(|_| true).collect()),
            [
                ("depot".into(), "a2".into(), 0),
                ("depot".into(), "m2".into(), 1),
                ("owner".into(), "ex2".into(), 0),
                ("partner".into(), "p2".into(), 1),
            ]
        );
        // A view that does not show the point leaves the others' slots (and ids) alone.
        let without_a2 = audience.views(|(_, x, _)| x.as_str() != "a2");
        assert_eq!(
            names(without_a2.collect())[0],
            ("depot".into(), "m2".into(), 1)
        );
        let owner = audience.find(&member("owner", "x", 0).0, &member("x", "ex2", 0).1);
        assert_eq!(owner, Some(&member("owner", "ex2", 0)));
    }

    #[test]
    fn an_audience_of_one_or_none_takes_one_id() {
        assert_eq!(Audience::<Member>::new(Vec::new()).width, 1);
        assert_eq!(Audience::new(vec![member("owner", "ex1", 0)]).width, 1);
    }
}
