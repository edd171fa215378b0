//! What platform staff read about staff: the staff list (the platform admin's console
//! picks the tech support member a case is for from it) and a staff member's own support
//! access across every account (the Staff page's one list).
//!
//! Rule: both are staff matters. Users hold no support access and administer no staff, so
//! a user is refused with [`Rule::StaffOnly`] (403: the lists hide no object, like the
//! other platform-wide actions). Any staff member may read the staff list, as support
//! lists already name staff to the accounts' admins; a member's own access is its own.
//! [`StaffReader`] is that rule and the filters, a plain type tested below.

use redb::{ReadTransaction, ReadableTable};

use crate::error::OpError;
use crate::model::{Principal, PrincipalKind, StaffRole};
use crate::rule::Rule;
use crate::store::{decode_as, rows_where};
use crate::support::SupportAccess;
use crate::tables::*;
use crate::time::Timestamp;

/// Which of the three support lists ([`SupportState::list`]) a filter keeps.
pub const LISTS: [&str; 3] = ["pending", "active", "archived"];

/// A staff member allowed to read staff matters, with what it asked to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffReader {
    caller: crate::ids::PrincipalId,
}

impl StaffReader {
    /// The caller as a reader of staff matters (`action` says what, for the refusal).
    ///
    /// # Errors
    /// 403 [`Rule::StaffOnly`] for a user.
    pub fn new(caller: &Principal, action: &'static str) -> Result<StaffReader, OpError> {
        match caller.kind {
            PrincipalKind::Staff { .. } => Ok(StaffReader {
                caller: caller.id.clone(),
            }),
            PrincipalKind::User { .. } => Err(OpError::Forbidden(Rule::StaffOnly { action })),
        }
    }

    /// Whether the staff list shows `principal` under the role filter `role`.
    pub fn lists_member(principal: &Principal, role: Option<StaffRole>) -> bool {
        match principal.kind {
            PrincipalKind::Staff { role: theirs } => role.is_none_or(|wanted| wanted == theirs),
            PrincipalKind::User { .. } => false,
        }
    }

    /// Whether the caller's own list shows `access` under the list filter `list`
    /// (`pending`, `active` or `archived`; `None` every state).
    pub fn owns(&self, access: &SupportAccess, list: Option<&str>) -> bool {
        access.staff == self.caller && list.is_none_or(|list| access.state.list() == list)
    }
}

/// Parses a `state` filter of the support lists.
///
/// # Errors
/// 422 naming `state` for anything but the three lists.
pub fn list_filter(raw: Option<&str>) -> Result<Option<&str>, OpError> {
    match raw {
        None => Ok(None),
        Some(list) if LISTS.contains(&list) => Ok(Some(list)),
        Some(_) => Err(OpError::invalid(
            "state",
            "must be pending, active or archived",
        )),
    }
}

/// Every staff member (of `role`, when given), by id, with when it was disabled.
///
/// # Errors
/// As [`StaffReader::new`].
pub fn list(
    rtx: &ReadTransaction,
    caller: &Principal,
    role: Option<StaffRole>,
) -> Result<Vec<(Principal, Option<Timestamp>)>, OpError> {
    StaffReader::new(caller, "list staff")?;
    let mut out = Vec::new();
    for row in rtx.open_table(PRINCIPALS)?.iter()? {
        let principal: Principal = decode_as("principals", row?.1.value())?;
        if StaffReader::lists_member(&principal, role) {
            let disabled_at = crate::staff_admin::disabled_at(rtx, &principal.id)?;
            out.push((principal, disabled_at));
        }
    }
    Ok(out)
}

/// The caller's own support access in every account (in `list`, when given), by id.
///
/// # Errors
/// As [`StaffReader::new`].
pub fn my_access(
    rtx: &ReadTransaction,
    caller: &Principal,
    list: Option<&str>,
) -> Result<Vec<SupportAccess>, OpError> {
    let reader = StaffReader::new(caller, "read their own support access")?;
    Ok(rows_where(
        &rtx.open_table(SUPPORT)?,
        "support",
        |access: &SupportAccess| reader.owns(access, list),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, PrincipalId};
    use crate::model::Role;
    use crate::support::SupportState;

    fn principal(id: &str, kind: PrincipalKind) -> Principal {
        Principal {
            id: PrincipalId::parse(id).expect("id"),
            name: id.into(),
            kind,
            created_at: Timestamp(0),
            support: Vec::new(),
        }
    }

    fn staff(id: &str, role: StaffRole) -> Principal {
        principal(id, PrincipalKind::Staff { role })
    }

    fn access(staff: &str, state: SupportState) -> SupportAccess {
        SupportAccess {
            id: format!("sup{staff}{}", state.as_str()),
            account_id: AccountId::parse("acme").expect("id"),
            staff: PrincipalId::parse(staff).expect("id"),
            staff_role: StaffRole::Support,
            purpose: "check".into(),
            duration: None,
            ticket_id: None,
            state,
            requested_at: Timestamp(0),
            starts_at: None,
            ends_at: None,
            decided_by: None,
            decided_at: None,
            ended_by: None,
            ended_at: None,
        }
    }

    #[test]
    fn users_are_refused_and_every_staff_role_may_read() {
        let user = principal(
            "u1",
            PrincipalKind::User {
                account_id: AccountId::parse("acme").expect("id"),
                role: Role::Admin,
            },
        );
        match StaffReader::new(&user, "list staff") {
            Err(OpError::Forbidden(rule)) => {
                assert_eq!(rule.slug(), "staff-only");
                assert_eq!(rule.sentence(), "only platform staff may list staff");
            }
            other => panic!("a user was not refused: {other:?}"),
        }
        for role in [
            StaffRole::PlatformAdmin,
            StaffRole::Support,
            StaffRole::TechSupport,
        ] {
            assert!(StaffReader::new(&staff("s1", role), "list staff").is_ok());
        }
    }

    #[test]
    fn the_staff_list_keeps_staff_of_the_role_asked() {
        let tech = staff("s1", StaffRole::TechSupport);
        let support = staff("s2", StaffRole::Support);
        let user = principal(
            "u1",
            PrincipalKind::User {
                account_id: AccountId::parse("acme").expect("id"),
                role: Role::Viewer,
            },
        );
        assert!(StaffReader::lists_member(&tech, None));
        assert!(StaffReader::lists_member(
            &tech,
            Some(StaffRole::TechSupport)
        ));
        assert!(!StaffReader::lists_member(
            &support,
            Some(StaffRole::TechSupport)
        ));
        assert!(!StaffReader::lists_member(&user, None));
    }

    #[test]
    fn a_member_reads_only_its_own_access_in_the_list_asked() {
        let reader = StaffReader::new(&staff("s1", StaffRole::Support), "x").expect("staff");
        let active = access("s1", SupportState::Active);
        let expired = access("s1", SupportState::Expired);
        assert!(reader.owns(&active, None));
        assert!(reader.owns(&active, Some("active")));
        assert!(!reader.owns(&active, Some("pending")));
        assert!(reader.owns(&expired, Some("archived")));
        assert!(!reader.owns(&access("s2", SupportState::Active), None));
    }

    #[test]
    fn the_state_filter_takes_the_three_lists_only() {
        assert_eq!(list_filter(None).expect("none"), None);
        assert_eq!(list_filter(Some("archived")).expect("ok"), Some("archived"));
        match list_filter(Some("expired")) {
            Err(OpError::Invalid { field, .. }) => assert_eq!(field, "state"),
            other => panic!("{other:?}"),
        }
    }
}
