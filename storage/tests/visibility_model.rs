//! Model-based test of rule 2: random sequences of grants, removals, time passing,
//! scheduler runs and partnership changes, applied to the real store and to a plain
//! `BTreeMap` model; after every step both must agree on what succeeded and on who sees
//! which asset (through `visibility::resolve` and the live audience).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use storage::model::{Capabilities, Principal, Role};
use storage::ops::{self, NewAsset};
use storage::sharing::{self, GrantRequest};
use storage::time::Timestamp;
use storage::{read, visibility, AccountId, AssetId, DeviceId, OpError, PartnershipId, Store};

const ASSETS: [&str; 3] = ["a1", "a2", "a3"];
/// Targets 0-1 are descendants of the owner; 2-3 are outside its tree.
const TARGETS: usize = 4;
const START: u64 = 1_800_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Grant {
        target: usize,
        assets: Vec<usize>,
        from: Option<u64>,
        until: Option<u64>,
    },
    Remove {
        target: usize,
        assets: Vec<usize>,
    },
    Advance(u64),
    ApplyDue,
    Partner(usize),
    Unpartner(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let assets = proptest::sample::subsequence((0..ASSETS.len()).collect::<Vec<_>>(), 1..=3);
    prop_oneof![
        4 => (0..TARGETS, assets.clone(), proptest::option::of(0u64..100), proptest::option::of(1u64..200))
            .prop_map(|(target, assets, from, until)| Op::Grant { target, assets, from, until }),
        2 => (0..TARGETS, assets).prop_map(|(target, assets)| Op::Remove { target, assets }),
        2 => (1u64..80).prop_map(Op::Advance),
        1 => Just(Op::ApplyDue),
        1 => (2..TARGETS).prop_map(Op::Partner),
        1 => (2..TARGETS).prop_map(Op::Unpartner),
    ]
}

/// The model: grants by (asset, target) with their window and the partnership they need.
#[derive(Debug, Default)]
struct Model {
    now: u64,
    grants: BTreeMap<(usize, usize), (u64, Option<u64>, bool)>,
    partners: BTreeSet<usize>,
}

impl Model {
    fn sees(&self, asset: usize, target: usize) -> bool {
        self.grants
            .get(&(asset, target))
            .is_some_and(|(from, until, _)| *from <= self.now && until.is_none_or(|u| self.now < u))
    }

    /// Rule 2, plain: returns whether the call succeeds, and applies it if so.
    fn grant(
        &mut self,
        target: usize,
        assets: &[usize],
        from: Option<u64>,
        until: Option<u64>,
    ) -> bool {
        let descendant = target < 2;
        if !descendant && !self.partners.contains(&target) {
            return false;
        }
        let mut staged = Vec::new();
        for asset in assets {
            let existing = self.grants.get(&(*asset, target));
            let from = from.or(existing.map(|e| e.0)).unwrap_or(self.now);
            if let Some(until) = until {
                if until <= from || until <= self.now {
                    return false;
                }
            }
            staged.push((*asset, from));
        }
        for (asset, from) in staged {
            self.grants
                .insert((asset, target), (from, until, !descendant));
        }
        true
    }

    fn remove(&mut self, target: usize, assets: &[usize]) -> bool {
        if assets
            .iter()
            .any(|asset| !self.grants.contains_key(&(*asset, target)))
        {
            return false;
        }
        for asset in assets {
            self.grants.remove(&(*asset, target));
        }
        true
    }

    fn apply_due(&mut self) {
        let now = self.now;
        self.grants
            .retain(|_, (_, until, _)| until.is_none_or(|u| u > now));
    }

    fn unpartner(&mut self, target: usize) -> bool {
        if !self.partners.remove(&target) {
            return false;
        }
        self.grants
            .retain(|(_, t), (_, _, needs_partner)| !(*t == target && *needs_partner));
        true
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    platform: Principal,
    owner_admin: Principal,
    owner: AccountId,
    targets: Vec<(AccountId, Principal)>,
    partnerships: BTreeMap<usize, PartnershipId>,
}

fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.redb")).expect("open");
    let token = store
        .bootstrap(Timestamp(1))
        .expect("bootstrap")
        .expect("token");
    let platform = read::principal_for_token(&store.begin_read().expect("read"), &token)
        .expect("lookup")
        .expect("admin");
    let tx = store.begin_write().expect("write");
    let t = Timestamp(START);
    let owner = ops::create_account(&tx, &platform, "Owner", None, t)
        .expect("owner")
        .id;
    let (owner_admin, _) =
        ops::create_user(&tx, &platform, &owner, "admin", Role::Admin, t).expect("admin");
    let mut targets = Vec::new();
    for index in 0..TARGETS {
        let parent = (index < 2).then(|| owner.clone());
        let account = ops::create_account(&tx, &platform, &format!("T{index}"), parent, t)
            .expect("target")
            .id;
        let (admin, _) =
            ops::create_user(&tx, &platform, &account, "admin", Role::Viewer, t).expect("user");
        targets.push((account, admin));
    }
    for (index, asset) in ASSETS.iter().enumerate() {
        let device = DeviceId::parse(&format!("unit{index}")).expect("id");
        ops::register_device(
            &tx,
            &owner_admin,
            &owner,
            device.clone(),
            Capabilities::default(),
            t,
        )
        .expect("device");
        let new = NewAsset {
            id: AssetId::parse(asset).expect("id"),
            name: (*asset).into(),
            serial: None,
            device_id: Some(device),
            details: Default::default(),
        };
        ops::create_asset(&tx, &owner_admin, &owner, new, t).expect("asset");
    }
    tx.commit().expect("commit");
    World {
        _dir: dir,
        store,
        platform,
        owner_admin,
        owner,
        targets,
        partnerships: BTreeMap::new(),
    }
}

fn asset_ids(assets: &[usize]) -> Vec<AssetId> {
    assets
        .iter()
        .map(|i| AssetId::parse(ASSETS[*i]).expect("id"))
        .collect()
}

fn check_agreement(world: &World, model: &Model) -> Result<(), TestCaseError> {
    let now = Timestamp(START + model.now);
    let rtx = world.store.begin_read().expect("read");
    for (asset_index, asset) in ASSETS.iter().enumerate() {
        let asset_id = AssetId::parse(asset).expect("id");
        let device = read::device(
            &rtx,
            &DeviceId::parse(&format!("unit{asset_index}")).expect("id"),
        )
        .expect("read")
        .expect("device");
        let audience: BTreeSet<AccountId> = visibility::audience(&rtx, &device, now)
            .expect("audience")
            .into_iter()
            .map(|member| member.account_id)
            .collect();
        prop_assert!(
            audience.contains(&world.owner),
            "the owner always sees its asset"
        );
        for (target_index, (account, principal)) in world.targets.iter().enumerate() {
            let expected = model.sees(asset_index, target_index);
            let seen = visibility::resolve(&rtx, principal, account, &asset_id, now);
            prop_assert_eq!(
                seen.is_ok(),
                expected,
                "{} as seen by T{}: {:?}",
                asset,
                target_index,
                seen
            );
            if let Err(err) = seen {
                prop_assert!(
                    matches!(err, OpError::NotFound(_)),
                    "invisible means 404: {err:?}"
                );
            }
            prop_assert_eq!(
                audience.contains(account),
                expected,
                "live audience of {} for T{}",
                asset,
                target_index
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn store_and_model_agree_on_who_sees_what(ops in proptest::collection::vec(op(), 1..30)) {
        let mut world = world();
        let mut model = Model::default();
        for op in ops {
            let now = Timestamp(START + model.now);
            match op {
                Op::Grant { target, assets, from, until } => {
                    let request = GrantRequest {
                        owner: world.owner.clone(),
                        target: world.targets[target].0.clone(),
                        asset_ids: asset_ids(&assets),
                        from: from.map(|f| Timestamp(START + model.now + f)),
                        until: until.map(|u| Timestamp(START + model.now + u)),
                    };
                    let admin = world.owner_admin.clone();
                    let real = world.store.transact(|tx| sharing::grant(tx, &admin, request, now)).is_ok();
                    let expected = model.grant(
                        target,
                        &assets,
                        from.map(|f| model.now + f),
                        until.map(|u| model.now + u),
                    );
                    prop_assert_eq!(real, expected, "grant to T{} of {:?}", target, assets);
                }
                Op::Remove { target, assets } => {
                    let admin = world.owner_admin.clone();
                    let (owner, account) = (world.owner.clone(), world.targets[target].0.clone());
                    let ids = asset_ids(&assets);
                    let real = world.store.transact(|tx| sharing::remove_grants(tx, &admin, &owner, &account, &ids, now)).is_ok();
                    prop_assert_eq!(real, model.remove(target, &assets));
                }
                Op::Advance(ms) => model.now += ms,
                Op::ApplyDue => {
                    world.store.transact(|tx| Ok(sharing::apply_due(tx, now)?)).expect("apply due");
                    model.apply_due();
                }
                Op::Partner(target) => {
                    let platform = world.platform.clone();
                    let (a, b) = (world.owner.clone(), world.targets[target].0.clone());
                    let real = world.store.transact(|tx| sharing::create_partnership(tx, &platform, a, b, now));
                    prop_assert_eq!(real.is_ok(), model.partners.insert(target));
                    if let Ok(partnership) = real {
                        world.partnerships.insert(target, partnership.id);
                    }
                }
                Op::Unpartner(target) => {
                    let expected = model.unpartner(target);
                    match world.partnerships.remove(&target) {
                        Some(id) => {
                            let platform = world.platform.clone();
                            let real = world.store.transact(|tx| sharing::end_partnership(tx, &platform, &id, now));
                            prop_assert_eq!(real.is_ok(), expected);
                        }
                        None => prop_assert!(!expected),
                    }
                }
            }
            check_agreement(&world, &model)?;
        }
    }
}
