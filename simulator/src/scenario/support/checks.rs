//! The pure checks of the support scenario: whether a support access, a list or the audit
//! log says what rule 4 and the contract promise at each step of a flow. Each returns the
//! problems it found as sentences (empty when all is well), so the flows only decide when
//! to look, and these rules can be tested without a gateway.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::api::{
    AccountId, AssetId, AuditEntry, PrincipalId, StaffRole, SupportAccessId, SupportDuration,
    SupportList, SupportState, SupportView,
};

/// What a support access should look like at one step. `None` in `id`, `duration`,
/// `decided_by` and `ended_by` means "not checked"; `ticket_id` is always compared, since
/// a request must have none and a case its own.
#[derive(Debug, Clone)]
pub(super) struct Expect<'a> {
    pub(super) id: Option<&'a SupportAccessId>,
    pub(super) account_id: &'a AccountId,
    pub(super) staff_id: &'a PrincipalId,
    pub(super) staff_role: StaffRole,
    pub(super) state: SupportState,
    pub(super) duration: Option<SupportDuration>,
    pub(super) ticket_id: Option<&'a str>,
    pub(super) decided_by: Option<&'a PrincipalId>,
    pub(super) ended_by: Option<&'a PrincipalId>,
}

impl<'a> Expect<'a> {
    /// The same access one step later.
    pub(super) fn with_state(&self, state: SupportState) -> Self {
        Self {
            state,
            ..self.clone()
        }
    }
}

/// Everything about `view` that differs from `expect`, including the times its state
/// implies (an active access has a start and an end `duration` apart; an ended one says
/// when it ended).
pub(super) fn view_problems(view: &SupportView, expect: &Expect<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut differs = |field: &str, got: String, want: String| {
        if got != want {
            problems.push(format!("{field} is {got}, not {want}"));
        }
    };
    if let Some(id) = expect.id {
        differs("id", view.id.to_string(), id.to_string());
    }
    differs(
        "account_id",
        view.account_id.to_string(),
        expect.account_id.to_string(),
    );
    differs(
        "staff_id",
        view.staff_id.to_string(),
        expect.staff_id.to_string(),
    );
    differs(
        "staff_role",
        view.staff_role.to_string(),
        expect.staff_role.to_string(),
    );
    differs("state", view.state.to_string(), expect.state.to_string());
    if let Some(duration) = expect.duration {
        differs("duration", shown(view.duration), duration.to_string());
    }
    differs(
        "ticket_id",
        shown(view.ticket_id.as_deref()),
        shown(expect.ticket_id),
    );
    if let Some(decided_by) = expect.decided_by {
        differs(
            "decided_by",
            shown(view.decided_by.as_ref()),
            decided_by.to_string(),
        );
    }
    if let Some(ended_by) = expect.ended_by {
        differs(
            "ended_by",
            shown(view.ended_by.as_ref()),
            ended_by.to_string(),
        );
    }
    if let Err(problem) = parse_time("requested_at", &view.requested_at) {
        problems.push(problem);
    }
    // Only judge the times of the state the access actually has: a wrong state is already
    // reported above, and its times would only repeat it.
    if view.state == expect.state {
        problems.extend(time_problems(view));
    }
    problems
}

/// An optional field as messages show it.
fn shown(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "absent".to_owned(), |value| value.to_string())
}

/// The times a state implies.
fn time_problems(view: &SupportView) -> Vec<String> {
    let mut problems = Vec::new();
    let present = |field: &str, value: &Option<String>, problems: &mut Vec<String>| match value {
        None => {
            problems.push(format!("{field} is missing"));
            None
        }
        Some(text) => parse_time(field, text)
            .map_err(|problem| problems.push(problem))
            .ok(),
    };
    let absent = |field: &str, value: &Option<String>, problems: &mut Vec<String>| {
        if let Some(text) = value {
            problems.push(format!(
                "{field} is {text} although the access is {}",
                view.state
            ));
        }
    };
    match view.state {
        SupportState::Pending => {
            absent("starts_at", &view.starts_at, &mut problems);
            absent("ends_at", &view.ends_at, &mut problems);
            absent("decided_at", &view.decided_at, &mut problems);
            absent("ended_at", &view.ended_at, &mut problems);
            if let Some(decided_by) = &view.decided_by {
                problems.push(format!("decided_by is {decided_by} although it is pending"));
            }
        }
        SupportState::Active => {
            let starts = present("starts_at", &view.starts_at, &mut problems);
            let ends = present("ends_at", &view.ends_at, &mut problems);
            absent("ended_at", &view.ended_at, &mut problems);
            if let (Some(starts), Some(ends), Some(duration)) = (starts, ends, view.duration) {
                let span = (ends - starts).whole_seconds();
                let (shortest, longest) = duration.bounds_s();
                if !(shortest..=longest).contains(&span) {
                    problems.push(format!(
                        "starts_at {} and ends_at {} are {span} s apart, not {duration}",
                        view.starts_at.as_deref().unwrap_or_default(),
                        view.ends_at.as_deref().unwrap_or_default()
                    ));
                }
            }
        }
        SupportState::Declined => {
            present("decided_at", &view.decided_at, &mut problems);
            if view.decided_by.is_none() {
                problems.push("decided_by is missing".to_owned());
            }
        }
        SupportState::Revoked | SupportState::Expired | SupportState::Closed => {
            let ended = present("ended_at", &view.ended_at, &mut problems);
            if view.ended_by.is_none() {
                problems.push("ended_by is missing".to_owned());
            }
            let starts = view
                .starts_at
                .as_deref()
                .and_then(|text| parse_time("starts_at", text).ok());
            if let (Some(starts), Some(ended)) = (starts, ended) {
                if ended < starts {
                    problems.push(format!(
                        "ended_at {} is before starts_at {}",
                        view.ended_at.as_deref().unwrap_or_default(),
                        view.starts_at.as_deref().unwrap_or_default()
                    ));
                }
            }
        }
    }
    problems
}

fn parse_time(field: &str, text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|error| format!("{field} {text:?} is not RFC 3339: {error}"))
}

/// Whether the access `expect.id` is in the `list` answer exactly once and as expected,
/// and whether the list holds only states that belong in it (rule 4 keeps them separate).
pub(super) fn listed_problems(
    items: &[SupportView],
    list: SupportList,
    expect: &Expect<'_>,
) -> Vec<String> {
    let mut problems = misplaced(items, list);
    let Some(id) = expect.id else {
        problems.push("internal: a listing check without an id".to_owned());
        return problems;
    };
    let found: Vec<&SupportView> = items.iter().filter(|item| &item.id == id).collect();
    match found.as_slice() {
        [] => problems.push(format!("{id} is not in the {list} list")),
        [view] => problems.extend(
            view_problems(view, expect)
                .into_iter()
                .map(|problem| format!("in the {list} list, {id}: {problem}")),
        ),
        many => problems.push(format!("{id} is in the {list} list {} times", many.len())),
    }
    problems
}

/// Whether the access `id` is absent from the `list` answer, as it must be once it moved on.
pub(super) fn unlisted_problems(
    items: &[SupportView],
    list: SupportList,
    id: &SupportAccessId,
) -> Vec<String> {
    let mut problems = misplaced(items, list);
    if let Some(view) = items.iter().find(|item| &item.id == id) {
        problems.push(format!(
            "{id} is still in the {list} list (as {})",
            view.state
        ));
    }
    problems
}

fn misplaced(items: &[SupportView], list: SupportList) -> Vec<String> {
    items
        .iter()
        .filter(|item| item.state.list() != list)
        .map(|item| format!("the {list} list holds {} as {}", item.id, item.state))
        .collect()
}

/// Whether the audit log shows the creation of `asset_id` by `actor` under `via` (rule 4:
/// every action under support access is audited with the request or ticket).
pub(super) fn audit_problem(
    entries: &[AuditEntry],
    asset_id: &AssetId,
    actor: &PrincipalId,
    via: &str,
) -> Option<String> {
    let Some(entry) = entries.iter().find(|entry| {
        entry.target == asset_id.as_str() || entry.after.as_deref() == Some(asset_id.as_str())
    }) else {
        return Some(format!(
            "the audit log has no entry for asset {asset_id} (of {} entries read)",
            entries.len()
        ));
    };
    if entry.via.as_deref() != Some(via) {
        return Some(format!(
            "audit entry {} ({} of {asset_id}) has via {:?}, not {via:?}",
            entry.seq, entry.action, entry.via
        ));
    }
    if &entry.actor != actor {
        return Some(format!(
            "audit entry {} ({} of {asset_id}) names actor {}, not the staff member {actor}",
            entry.seq, entry.action, entry.actor
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (SupportAccessId, AccountId, PrincipalId, PrincipalId) {
        (
            SupportAccessId::new("req-1"),
            AccountId::new("acc1"),
            PrincipalId::new("stf1"),
            PrincipalId::new("usr1"),
        )
    }

    fn view(state: SupportState) -> SupportView {
        let (id, account, staff, admin) = ids();
        let decided = state != SupportState::Pending;
        let started = matches!(state, SupportState::Active | SupportState::Revoked);
        let ended = state == SupportState::Revoked;
        SupportView {
            id,
            account_id: account,
            staff_id: staff,
            staff_role: StaffRole::Support,
            purpose: "p".into(),
            duration: Some(SupportDuration::Day),
            ticket_id: None,
            state,
            requested_at: "2025-01-01T00:00:00Z".into(),
            starts_at: started.then(|| "2025-01-01T00:01:00Z".into()),
            ends_at: started.then(|| "2025-01-02T00:01:00Z".into()),
            decided_by: decided.then(|| admin.clone()),
            decided_at: decided.then(|| "2025-01-01T00:01:00Z".into()),
            ended_by: ended.then(|| admin.clone()),
            ended_at: ended.then(|| "2025-01-01T00:02:00Z".into()),
        }
    }

    /// What the checks expect of the access of `ids` in `state`: decided once past
    /// pending, ended when revoked.
    fn expected(
        (id, account, staff, admin): &(SupportAccessId, AccountId, PrincipalId, PrincipalId),
        state: SupportState,
        duration: Option<SupportDuration>,
    ) -> Expect<'_> {
        Expect {
            id: Some(id),
            account_id: account,
            staff_id: staff,
            staff_role: StaffRole::Support,
            state,
            duration,
            ticket_id: None,
            decided_by: (state != SupportState::Pending).then_some(admin),
            ended_by: (state == SupportState::Revoked).then_some(admin),
        }
    }

    fn check(view: &SupportView, state: SupportState) -> Vec<String> {
        let ids = ids();
        view_problems(view, &expected(&ids, state, Some(SupportDuration::Day)))
    }

    #[test]
    fn the_documented_lifecycle_passes() {
        for state in [
            SupportState::Pending,
            SupportState::Active,
            SupportState::Declined,
            SupportState::Revoked,
        ] {
            assert_eq!(check(&view(state), state), Vec::<String>::new(), "{state}");
        }
    }

    #[test]
    fn wrong_fields_are_named() {
        let mut wrong = view(SupportState::Active);
        wrong.staff_role = StaffRole::TechSupport;
        wrong.ticket_id = Some("T1".into());
        wrong.decided_by = Some(PrincipalId::new("usr9"));
        let problems = check(&wrong, SupportState::Active);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("staff_role is tech_support"),
            "{problems:?}"
        );
        let state = check(&view(SupportState::Pending), SupportState::Active);
        assert_eq!(
            state,
            vec![
                "state is pending, not active".to_owned(),
                "decided_by is absent, not usr1".to_owned()
            ]
        );
    }

    #[test]
    fn times_must_fit_the_state() {
        let mut long = view(SupportState::Active);
        long.ends_at = Some("2025-01-15T00:01:00Z".into());
        let problems = check(&long, SupportState::Active);
        assert!(
            problems[0].contains("1209600 s apart, not 24h"),
            "{problems:?}"
        );
        let mut early = view(SupportState::Pending);
        early.starts_at = Some("2025-01-01T00:01:00Z".into());
        assert_eq!(check(&early, SupportState::Pending).len(), 1);
        let mut unended = view(SupportState::Revoked);
        unended.ended_at = None;
        assert_eq!(
            check(&unended, SupportState::Revoked),
            vec!["ended_at is missing".to_owned()]
        );
        let mut garbled = view(SupportState::Revoked);
        garbled.ended_at = Some("yesterday".into());
        assert!(check(&garbled, SupportState::Revoked)[0].contains("not RFC 3339"));
        let mut backwards = view(SupportState::Revoked);
        backwards.ended_at = Some("2024-12-31T00:00:00Z".into());
        assert!(check(&backwards, SupportState::Revoked)[0].contains("before starts_at"));
    }

    #[test]
    fn three_months_is_a_calendar_span() {
        let mut case = view(SupportState::Active);
        case.duration = Some(SupportDuration::ThreeMonths);
        case.starts_at = Some("2025-01-31T10:00:00Z".into());
        case.ends_at = Some("2025-04-30T10:00:00Z".into());
        assert!(time_problems(&case).is_empty());
        case.ends_at = Some("2025-06-30T10:00:00Z".into());
        assert_eq!(time_problems(&case).len(), 1);
    }

    #[test]
    fn lists_hold_the_access_once_and_nothing_misplaced() {
        let ids = ids();
        let expect = expected(&ids, SupportState::Revoked, None);
        let revoked = view(SupportState::Revoked);
        assert!(listed_problems(
            std::slice::from_ref(&revoked),
            SupportList::Archived,
            &expect
        )
        .is_empty());
        assert_eq!(
            listed_problems(&[], SupportList::Archived, &expect),
            vec!["req-1 is not in the archived list".to_owned()]
        );
        let twice = [revoked.clone(), revoked.clone()];
        assert!(listed_problems(&twice, SupportList::Archived, &expect)[0].contains("2 times"));
        let mut other = view(SupportState::Active);
        other.id = SupportAccessId::new("req-2");
        let mixed = [revoked.clone(), other];
        assert_eq!(
            listed_problems(&mixed, SupportList::Archived, &expect),
            vec!["the archived list holds req-2 as active".to_owned()]
        );
        assert_eq!(
            listed_problems(
                &[revoked],
                SupportList::Archived,
                &expect.with_state(SupportState::Declined)
            ),
            vec!["in the archived list, req-1: state is revoked, not declined".to_owned()]
        );
    }

    #[test]
    fn moved_on_accesses_must_leave_their_list() {
        let (id, ..) = ids();
        assert!(unlisted_problems(&[], SupportList::Pending, &id).is_empty());
        let stale = [view(SupportState::Pending)];
        assert_eq!(
            unlisted_problems(&stale, SupportList::Pending, &id),
            vec!["req-1 is still in the pending list (as pending)".to_owned()]
        );
    }

    fn entry(target: &str, actor: &str, via: Option<&str>) -> AuditEntry {
        AuditEntry {
            seq: 3,
            at: "2025-01-01T00:00:00Z".into(),
            actor: PrincipalId::new(actor),
            via: via.map(str::to_owned),
            account_id: Some(AccountId::new("acc1")),
            action: "asset.create".into(),
            target: target.into(),
            before: None,
            after: None,
        }
    }

    #[test]
    fn audit_must_name_the_access_and_the_staff_member() {
        let asset = AssetId::new("sim-x-s0-1");
        let staff = PrincipalId::new("stf1");
        let good = [
            entry("other", "usr1", None),
            entry("sim-x-s0-1", "stf1", Some("request req-1")),
        ];
        assert_eq!(audit_problem(&good, &asset, &staff, "request req-1"), None);
        let missing = audit_problem(&good[..1], &asset, &staff, "request req-1");
        assert!(missing.is_some_and(|problem| problem.contains("no entry")));
        let unnamed = [entry("sim-x-s0-1", "stf1", None)];
        let problem = audit_problem(&unnamed, &asset, &staff, "request req-1");
        assert!(problem.is_some_and(|problem| problem.contains("via None")));
        let someone_else = [entry("sim-x-s0-1", "usr1", Some("request req-1"))];
        let problem = audit_problem(&someone_else, &asset, &staff, "request req-1");
        assert!(problem.is_some_and(|problem| problem.contains("actor usr1")));
    }
}
