//! The order in which a point reaches its audience, and the live ids it takes.
//!
//! An account may see one unit under several asset ids (a grant of the source and a
//! telemetry mirror of it). Each such view is its own event on the account's `/v1/stream`
//! and needs an id of its own, or a client that reconnects after the first would skip the
//! second (design 5.4). So a point takes as many consecutive arrival ids as the most views
//! any one account has (its *width*, usually 1), and view `k` of an account, counted in
//! asset-id order among the views that show the point, goes out as `arrival + k`. A
//! resume counts the views it may replay in the same order (`storage::resume`).

use storage::{AccountId, AssetId};

/// One member of an audience: the account and the asset id it knows the unit by.
pub trait View {
    fn account(&self) -> &AccountId;
    fn asset(&self) -> &AssetId;
}

/// An audience in (account, asset id) order, and its width.
#[derive(Debug)]
pub struct Audience<V> {
    viewers: Vec<V>,
    /// The most viewers one account has (at least 1): the arrival ids a point takes.
    pub width: u64,
}

impl<V: View> Audience<V> {
    pub fn new(mut viewers: Vec<V>) -> Audience<V> {
        viewers.sort_by(|a, b| (a.account(), a.asset()).cmp(&(b.account(), b.asset())));
        let width = viewers
            .chunk_by(|a, b| a.account() == b.account())
            .map(|run| run.len() as u64)
            .max()
            .unwrap_or(1);
        Audience { viewers, width }
    }

    /// The viewers `seen` accepts, each with its place among its account's accepted ones
    /// (0 for the first in asset-id order): `account::Deliver::view`.
    pub fn views<'a>(
        &'a self,
        seen: impl Fn(&V) -> bool + 'a,
    ) -> impl Iterator<Item = (&'a V, u32)> + 'a {
        let mut previous: Option<&AccountId> = None;
        let mut view = 0u32;
        self.viewers
            .iter()
            .filter(move |viewer| seen(viewer))
            .map(move |viewer| {
                view = match previous == Some(viewer.account()) {
                    true => view + 1,
                    false => 0,
                };
                previous = Some(viewer.account());
                (viewer, view)
            })
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

    type Member = (AccountId, AssetId);

    impl View for Member {
        fn account(&self) -> &AccountId {
            &self.0
        }
        fn asset(&self) -> &AssetId {
            &self.1
        }
    }

    fn member(account: &str, asset: &str) -> Member {
        (
            AccountId::parse(account).expect("account id"),
            AssetId::parse(asset).expect("asset id"),
        )
    }

    fn names(views: Vec<(&Member, u32)>) -> Vec<(String, String, u32)> {
        views
            .into_iter()
            .map(|((a, x), k)| (a.to_string(), x.to_string(), k))
            .collect()
    }

    #[test]
    fn an_account_with_two_views_gets_them_in_asset_order_numbered_from_zero() {
        let audience = Audience::new(vec![
            member("owner", "ex2"),
            member("depot", "m2"),
            member("partner", "p2"),
            member("depot", "ex2"),
        ]);
        assert_eq!(audience.width, 2);
        assert_eq!(
            names(audience.views(|_| true).collect()),
            [
                ("depot".into(), "ex2".into(), 0),
                ("depot".into(), "m2".into(), 1),
                ("owner".into(), "ex2".into(), 0),
                ("partner".into(), "p2".into(), 0),
            ]
        );
        // A view that does not show the point takes no place: the next counts from 0.
        let without_ex2 = audience.views(|(a, x)| !(a.as_str() == "depot" && x.as_str() == "ex2"));
        assert_eq!(
            names(without_ex2.collect())[0],
            ("depot".into(), "m2".into(), 0)
        );
        let owner = audience.find(&member("owner", "x").0, &member("x", "ex2").1);
        assert_eq!(owner, Some(&member("owner", "ex2")));
    }

    #[test]
    fn an_audience_of_one_or_none_takes_one_id() {
        assert_eq!(Audience::<Member>::new(Vec::new()).width, 1);
        assert_eq!(Audience::new(vec![member("owner", "ex1")]).width, 1);
    }
}
