//! Model-based test of the support access state machine (rule 4): random requests,
//! decisions, cases, closes, time passing and scheduler runs against the real store and a
//! plain model; after every step both agree on each access's state, on which transitions
//! were allowed, and on where each staff member holds Admin rights right now.

use std::collections::BTreeMap;

use proptest::prelude::*;
use storage::model::{Principal, Role, StaffRole};
use storage::ops;
use storage::support::{self, Decision, SupportDuration, SupportState};
use storage::time::Timestamp;
use storage::{read, AccountId, OpError, Store};

const START: u64 = 1_800_000_000_000;
const HOUR: u64 = 3_600_000;

#[derive(Debug, Clone)]
enum Op {
    Request { account: usize, duration: usize },
    Decide { access: usize, decision: usize },
    OpenCase { account: usize },
    Close { access: usize },
    Advance(u64),
    ApplyDue,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 0..3usize).prop_map(|(account, duration)| Op::Request { account, duration }),
        4 => (0..8usize, 0..3usize).prop_map(|(access, decision)| Op::Decide { access, decision }),
        1 => (0..2usize).prop_map(|account| Op::OpenCase { account }),
        1 => (0..8usize).prop_map(|access| Op::Close { access }),
        2 => (1u64..400).prop_map(|hours| Op::Advance(hours * HOUR)),
        1 => Just(Op::ApplyDue),
    ]
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    account: usize,
    case: bool,
    state: SupportState,
    ends: Option<u64>,
    duration: SupportDuration,
}

fn allowed(decision: Decision, state: SupportState) -> Option<SupportState> {
    match (decision, state) {
        (Decision::Approve, SupportState::Pending) => Some(SupportState::Active),
        (Decision::Decline, SupportState::Pending) => Some(SupportState::Declined),
        (Decision::Revoke, SupportState::Active) => Some(SupportState::Revoked),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_store_follows_the_state_machine(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.redb")).expect("open");
        let token = store.bootstrap(Timestamp(1)).expect("bootstrap").expect("token");
        let platform = read::principal_for_token(&store.begin_read().expect("read"), &token).expect("lookup").expect("admin");
        let t0 = Timestamp(START);
        let (accounts, admins, support, tech): (Vec<AccountId>, Vec<Principal>, Principal, Principal) = {
            let tx = store.begin_write().expect("write");
            let mut accounts = Vec::new();
            let mut admins = Vec::new();
            for name in ["A", "B"] {
                let account = ops::create_account(&tx, &platform, name, None, t0).expect("account").id;
                admins.push(ops::create_user(&tx, &platform, &account, "admin", Role::Admin, t0).expect("admin").0);
                accounts.push(account);
            }
            let support = ops::create_staff(&tx, &platform, "s", StaffRole::Support, t0).expect("staff").0;
            let tech = ops::create_staff(&tx, &platform, "t", StaffRole::TechSupport, t0).expect("staff").0;
            tx.commit().expect("commit");
            (accounts, admins, support, tech)
        };
        let mut now = START;
        let mut model: Vec<Entry> = Vec::new();
        for op in ops {
            let at = Timestamp(now);
            match op {
                Op::Request { account, duration } => {
                    let duration = [SupportDuration::Day, SupportDuration::TwoWeeks, SupportDuration::ThreeMonths][duration];
                    let created = store.transact(|tx| support::request(tx, &support, &accounts[account], "why", duration, at)).expect("a request is always accepted");
                    model.push(Entry { id: created.id, account, case: false, state: SupportState::Pending, ends: None, duration });
                }
                Op::Decide { access, decision } => {
                    let Some(entry) = model.get_mut(access) else { continue };
                    let decision = [Decision::Approve, Decision::Decline, Decision::Revoke][decision];
                    let admin = &admins[entry.account];
                    let real = store.transact(|tx| support::decide(tx, admin, &entry.id, decision, at));
                    // An access whose end has passed is expired in effect, even before
                    // the scheduler archives it; the store still calls it active until then.
                    let expected = allowed(decision, entry.state);
                    prop_assert_eq!(real.is_ok(), expected.is_some(), "{:?} on {:?}: {:?}", decision, entry.state, real);
                    if let Err(err) = &real {
                        prop_assert!(matches!(err, OpError::Conflict(_)), "invalid transitions are 409: {err:?}");
                    }
                    if let Some(next) = expected {
                        entry.state = next;
                        match next {
                            SupportState::Active => entry.ends = Some(entry.duration.end(at).0),
                            SupportState::Revoked => entry.ends = Some(now.min(entry.ends.unwrap_or(now))),
                            _ => {}
                        }
                    }
                }
                Op::OpenCase { account } => {
                    let created = store.transact(|tx| support::open_case(tx, &tech, &accounts[account], "T-1", None, at)).expect("case opens");
                    model.push(Entry { id: created.id, account, case: true, state: SupportState::Active, ends: Some(SupportDuration::ThreeMonths.end(at).0), duration: SupportDuration::ThreeMonths });
                }
                Op::Close { access } => {
                    let Some(entry) = model.get_mut(access) else { continue };
                    let real = store.transact(|tx| support::close_case(tx, &tech, &entry.id, at));
                    let expected = entry.case && entry.state == SupportState::Active;
                    prop_assert_eq!(real.is_ok(), expected);
                    if expected {
                        entry.state = SupportState::Closed;
                        entry.ends = Some(now);
                    }
                }
                Op::Advance(ms) => now += ms,
                Op::ApplyDue => {
                    store.transact(|tx| support::apply_due(tx, at)).expect("apply");
                    for entry in &mut model {
                        if entry.state == SupportState::Active && entry.ends.is_some_and(|end| end <= now) {
                            entry.state = SupportState::Expired;
                        }
                    }
                }
            }
            // Agreement: every record's state, and the rights each staff member holds now.
            let rtx = store.begin_read().expect("read");
            let mut states = BTreeMap::new();
            for (index, account) in accounts.iter().enumerate() {
                for list in ["pending", "active", "archived"] {
                    for access in support::list(&rtx, &admins[index], account, Some(list)).expect("list") {
                        states.insert(access.id.clone(), access.state);
                    }
                }
            }
            for entry in &model {
                prop_assert_eq!(states.get(&entry.id), Some(&entry.state), "state of {}", entry.id);
            }
            for (who, case) in [(&support, false), (&tech, true)] {
                let mut real: Vec<String> = support::active_for(&rtx, &who.id, Timestamp(now))
                    .expect("active")
                    .into_iter()
                    .map(|active| active.account_id.to_string())
                    .collect();
                real.sort();
                let mut expected: Vec<String> = model
                    .iter()
                    .filter(|e| e.case == case && e.state == SupportState::Active && e.ends.is_some_and(|end| now < end))
                    .map(|e| accounts[e.account].to_string())
                    .collect();
                expected.sort();
                prop_assert_eq!(real, expected, "rights of the {} staff member", if case { "tech" } else { "support" });
            }
        }
    }
}
