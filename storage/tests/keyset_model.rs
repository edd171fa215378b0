//! Model-based test of rule 6's distribution invariant: after any sequence of key
//! creations, edits, deletions, time passing and scheduler runs, the set built for each
//! unit holds exactly the keys of its asset that are valid now or later, and its version
//! rose whenever that set changed.

use std::collections::BTreeMap;

use proptest::prelude::*;
use storage::keys::{self, AccessType, KeyEdit, NewKey};
use storage::model::{Capabilities, Principal, Role};
use storage::ops::{self, NewAsset};
use storage::time::Timestamp;
use storage::{read, AccountId, AssetId, DeviceId, OpError, Store};

const START: u64 = 1_800_000_000_000;
const UNITS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Create {
        assets: Vec<usize>,
        from: u64,
        len: u64,
    },
    EditTo {
        key: usize,
        len: u64,
    },
    Delete {
        key: usize,
    },
    Advance(u64),
    ApplyDue,
}

fn op() -> impl Strategy<Value = Op> {
    let assets = proptest::sample::subsequence((0..UNITS).collect::<Vec<_>>(), 1..=UNITS);
    prop_oneof![
        4 => (assets, 0u64..50, 1u64..100).prop_map(|(assets, from, len)| Op::Create { assets, from, len }),
        2 => (0..8usize, 1u64..150).prop_map(|(key, len)| Op::EditTo { key, len }),
        1 => (0..8usize).prop_map(|key| Op::Delete { key }),
        2 => (1u64..60).prop_map(Op::Advance),
        1 => Just(Op::ApplyDue),
    ]
}

fn run<R>(
    store: &Store,
    op: impl FnOnce(&storage::redb::WriteTransaction) -> Result<R, OpError>,
) -> Result<R, OpError> {
    let tx = store.begin_write().expect("write");
    let result = op(&tx);
    if result.is_ok() {
        tx.commit().expect("commit");
    }
    result
}

struct ModelKey {
    id: String,
    assets: Vec<usize>,
    from: u64,
    to: u64,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn each_unit_holds_exactly_the_keys_valid_for_its_asset(ops in proptest::collection::vec(op(), 1..30)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.redb")).expect("open");
        let token = store.bootstrap(Timestamp(1)).expect("bootstrap").expect("token");
        let platform = read::principal_for_token(&store.begin_read().expect("read"), &token).expect("lookup").expect("admin");
        let t0 = Timestamp(START);
        let (account, admin): (AccountId, Principal) = {
            let tx = store.begin_write().expect("write");
            let account = ops::create_account(&tx, &platform, "A", None, t0).expect("account").id;
            let admin = ops::create_user(&tx, &platform, &account, "admin", Role::Admin, t0).expect("admin").0;
            let caps = Capabilities { bluetooth_relay: true, keypad: true, dualid: true };
            for unit in 0..UNITS {
                let device = DeviceId::parse(&format!("unit{unit}")).expect("id");
                ops::register_device(&tx, &admin, &account, device.clone(), caps, t0).expect("device");
                let new = NewAsset { id: AssetId::parse(&format!("a{unit}")).expect("id"), name: "x".into(), serial: None, device_id: Some(device), details: Default::default() };
                ops::create_asset(&tx, &admin, &account, new, t0).expect("asset");
            }
            tx.commit().expect("commit");
            (account, admin)
        };
        let mut now = START;
        let mut model: Vec<ModelKey> = Vec::new();
        let mut last_sets: BTreeMap<usize, (u64, Vec<String>)> = BTreeMap::new();
        for op in ops {
            let at = Timestamp(now);
            match op {
                Op::Create { assets, from, len } => {
                    let new = NewKey {
                        personal: false,
                        operator_id: None,
                        asset_ids: assets.iter().map(|a| AssetId::parse(&format!("a{a}")).expect("id")).collect(),
                        access_type: AccessType::KeypadPin,
                        valid_from: Timestamp(now + from),
                        valid_to: Timestamp(now + from + len),
                        credential: None,
                        description: None,
                        customer_id: None,
                    };
                    let (key, _) = run(&store, |tx| keys::create(tx, &admin, &account, new, at)).expect("created");
                    model.push(ModelKey { id: key.id, assets, from: now + from, to: now + from + len });
                }
                Op::EditTo { key, len } => {
                    let Some(entry) = model.get_mut(key) else { continue };
                    let to = entry.from + len;
                    let edit = KeyEdit { valid_to: Some(Timestamp(to)), description: None, customer: None };
                    let ids = vec![entry.id.clone()];
                    let real = run(&store, |tx| keys::edit(tx, &admin, &ids, &edit, at));
                    let allowed = to > now;
                    prop_assert_eq!(real.is_ok(), allowed, "{:?}", real);
                    if allowed {
                        entry.to = to;
                    }
                }
                Op::Delete { key } => {
                    if key >= model.len() { continue; }
                    let entry = model.remove(key);
                    let ids = vec![entry.id];
                    run(&store, |tx| keys::delete(tx, &admin, &ids, at)).expect("deleted");
                }
                Op::Advance(ms) => now += ms,
                Op::ApplyDue => {
                    run(&store, |tx| Ok(keys::apply_due(tx, at)?)).expect("apply");
                }
            }
            let rtx = store.begin_read().expect("read");
            for unit in 0..UNITS {
                let device = read::device(&rtx, &DeviceId::parse(&format!("unit{unit}")).expect("id")).expect("read").expect("device");
                let set = keys::key_set(&rtx, &device, Timestamp(now)).expect("set");
                let mut held: Vec<String> = set.keys.iter().map(|k| k.id.clone()).collect();
                held.sort();
                let mut expected: Vec<String> = model.iter().filter(|k| k.assets.contains(&unit) && k.to > now).map(|k| k.id.clone()).collect();
                expected.sort();
                prop_assert_eq!(&held, &expected, "unit{} at +{}", unit, now - START);
                if let Some((version, before)) = last_sets.get(&unit) {
                    prop_assert!(set.version >= *version, "versions never fall");
                    // The set may shrink by time alone before the scheduler runs; but a
                    // set that gained or changed keys always comes with a new version.
                    let gained = held.iter().any(|id| !before.contains(id));
                    if gained {
                        prop_assert!(set.version > *version, "unit{}: new keys need a new version", unit);
                    }
                }
                last_sets.insert(unit, (set.version, held));
            }
        }
    }
}
