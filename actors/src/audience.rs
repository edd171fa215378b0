//! Who sees a unit's points, split the way live ids are given.
//!
//! An account may see one unit under several asset ids (a grant of the source and
//! telemetry mirrors of it). Each such view is its own event on the account's `/v1/stream`
//! and needs an id of its own, or a client that reconnects after the first would skip the
//! second (design 5.4). So the owner's and the grantees' views of a point share its arrival
//! id (an account has at most one of those per unit), and each mirror's view that shows
//! the point takes the next id and an index entry of its own
//! (`storage::arrivals::Arrived::View`), which a resume replays by that id, whatever the
//! account sees of the unit by then.

use storage::{AccountId, AssetId};

/// One member of an audience: the account, the asset id it knows the unit by, and, for a
/// telemetry mirror, the mirror asset's key.
pub trait View {
    fn account(&self) -> &AccountId;
    fn asset(&self) -> &AssetId;
    fn mirror(&self) -> Option<u64>;
}

/// An audience: the direct views (owner, grantees) first, then the mirrors, each part in
/// (account, asset id) order.
#[derive(Debug)]
pub struct Audience<V> {
    viewers: Vec<V>,
    /// Where the mirrors start in `viewers`.
    mirrors_from: usize,
}

impl<V: View> Audience<V> {
    pub fn new(mut viewers: Vec<V>) -> Audience<V> {
        fn key<V: View>(v: &V) -> (bool, &AccountId, &AssetId) {
            (v.mirror().is_some(), v.account(), v.asset())
        }
        viewers.sort_by(|a, b| key(a).cmp(&key(b)));
        let mirrors_from = viewers.partition_point(|viewer| viewer.mirror().is_none());
        Audience {
            viewers,
            mirrors_from,
        }
    }

    /// The owner's and the grantees' views: they show a point under its arrival id.
    pub fn direct(&self) -> &[V] {
        &self.viewers[..self.mirrors_from]
    }

    /// The mirrors' views: each shows a point under an id of its own.
    pub fn mirrors(&self) -> &[V] {
        &self.viewers[self.mirrors_from..]
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

    /// (account, asset, mirror key).
    type Member = (AccountId, AssetId, Option<u64>);

    impl View for Member {
        fn account(&self) -> &AccountId {
            &self.0
        }
        fn asset(&self) -> &AssetId {
            &self.1
        }
        fn mirror(&self) -> Option<u64> {
            self.2
        }
    }

    fn member(account: &str, asset: &str, mirror: Option<u64>) -> Member {
        (
            AccountId::parse(account).expect("account id"),
            AssetId::parse(asset).expect("asset id"),
            mirror,
        )
    }

    #[test]
    fn direct_views_come_first_then_the_mirrors_each_in_order() {
        let audience = Audience::new(vec![
            member("partner", "p2", Some(9)),
            member("owner", "ex2", None),
            member("depot", "m2", Some(7)),
            member("depot", "ex2", None),
        ]);
        assert_eq!(
            audience.direct(),
            [member("depot", "ex2", None), member("owner", "ex2", None)]
        );
        assert_eq!(
            audience.mirrors(),
            [
                member("depot", "m2", Some(7)),
                member("partner", "p2", Some(9))
            ]
        );
        let owner = audience.find(&member("owner", "x", None).0, &member("x", "ex2", None).1);
        assert_eq!(owner, Some(&member("owner", "ex2", None)));
        assert!(Audience::<Member>::new(Vec::new()).mirrors().is_empty());
    }
}
