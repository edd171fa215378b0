//! Who may see and change what: the single authorization authority (DESIGN section 6).
//!
//! Plain functions over a principal and an account's ancestor chain, so every rule is unit
//! tested without a database. Refusal shape matters: what the caller may not see is
//! `NotFound` (indistinguishable from absence), what it may see but not change is
//! `Forbidden` naming the [`Rule`].

use crate::error::OpError;
use crate::ids::AccountId;
use crate::model::{Principal, PrincipalKind, Role, StaffRole};
use crate::rule::Rule;

/// What an operation needs in an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read the account's own objects.
    View,
    /// Change the fleet: devices, assets, sharing, keys (admin or fleet admin; rule 1).
    ManageFleet,
    /// Administer the account: users, sub-accounts, support access (admin only).
    Administer,
    /// Read what carries personal data or credentials (operators, keys): those who manage
    /// access (admin or fleet admin), not viewers.
    ReadAccessData,
}

impl Need {
    /// The rule that refuses `role` this need, if it does.
    fn refusal(self, role: Role) -> Option<Rule> {
        match self {
            Need::View => None,
            Need::ManageFleet if !role.manages_fleet() => Some(Rule::ManageFleet { role }),
            Need::ReadAccessData if !role.manages_fleet() => Some(Rule::ReadAccessData { role }),
            Need::Administer if role != Role::Admin => Some(Rule::Administer { role }),
            Need::ManageFleet | Need::ReadAccessData | Need::Administer => None,
        }
    }
}

/// The role `principal` holds in the account whose ancestor chain is `chain` (the account
/// itself first, its root last): a user's role holds in its account and every descendant.
/// Staff hold none, except Admin where active support access covers the account (rule 4;
/// like an account admin's, it extends to the account's descendants).
pub fn role_in(principal: &Principal, chain: &[AccountId]) -> Option<Role> {
    match &principal.kind {
        PrincipalKind::User { account_id, role } => {
            chain.iter().any(|id| id == account_id).then_some(*role)
        }
        PrincipalKind::Staff { .. } => support_via(principal, chain).map(|_| Role::Admin),
    }
}

/// The support access (request or ticket id) under which a staff member acts in the
/// account with ancestor `chain`, if any.
pub fn support_via<'a>(principal: &'a Principal, chain: &[AccountId]) -> Option<&'a str> {
    principal
        .support
        .iter()
        .find(|support| chain.contains(&support.account_id))
        .map(|support| support.via.as_str())
}

/// Checks `need` in the account with ancestor `chain`; `what` names the object for a 404.
pub fn require(
    principal: &Principal,
    chain: &[AccountId],
    need: Need,
    what: &str,
) -> Result<Role, OpError> {
    let role = role_in(principal, chain).ok_or_else(|| OpError::not_found(what))?;
    match need.refusal(role) {
        None => Ok(role),
        Some(rule) => Err(OpError::Forbidden(rule)),
    }
}

/// Rule 4: temporary access creates no lasting access. Staff act in an account only
/// through support access, which ends; what authenticates someone (a user, a token, an
/// integration certificate) would outlive it, so staff may not create one there. Call it
/// after the caller's rights in the account were checked (a stranger still gets 404).
pub fn refuse_lasting_access(principal: &Principal, what: &'static str) -> Result<(), OpError> {
    match principal.kind {
        PrincipalKind::Staff { .. } => Err(OpError::Forbidden(Rule::NoLastingAccess { what })),
        PrincipalKind::User { .. } => Ok(()),
    }
}

/// Only `platform_admin` staff pass; everyone else is told `rule`.
pub fn require_platform_admin(principal: &Principal, rule: Rule) -> Result<(), OpError> {
    if principal.is_staff(StaffRole::PlatformAdmin) {
        Ok(())
    } else {
        Err(OpError::Forbidden(rule))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PrincipalId;
    use crate::time::Timestamp;

    fn account(id: &str) -> AccountId {
        AccountId::parse(id).expect("id")
    }

    fn user(home: &str, role: Role) -> Principal {
        Principal {
            id: PrincipalId::parse("u1").expect("id"),
            name: "u".into(),
            kind: PrincipalKind::User {
                account_id: account(home),
                role,
            },
            created_at: Timestamp(0),
            support: Vec::new(),
        }
    }

    fn staff(role: StaffRole) -> Principal {
        Principal {
            id: PrincipalId::parse("s1").expect("id"),
            name: "s".into(),
            kind: PrincipalKind::Staff { role },
            created_at: Timestamp(0),
            support: Vec::new(),
        }
    }

    #[test]
    fn roles_hold_in_own_account_and_descendants_only() {
        let root_admin = user("root", Role::Admin);
        let child_chain = [account("child"), account("root")];
        let root_chain = [account("root")];
        assert_eq!(role_in(&root_admin, &child_chain), Some(Role::Admin));
        assert_eq!(role_in(&root_admin, &root_chain), Some(Role::Admin));
        let child_viewer = user("child", Role::Viewer);
        assert_eq!(role_in(&child_viewer, &root_chain), None, "never upwards");
        assert_eq!(
            role_in(&child_viewer, &[account("other")]),
            None,
            "never sideways"
        );
    }

    #[test]
    fn strangers_get_not_found_and_weak_roles_get_the_rule() {
        let chain = [account("acme")];
        let stranger = user("other", Role::Admin);
        assert!(matches!(
            require(&stranger, &chain, Need::View, "asset ex1"),
            Err(OpError::NotFound(_))
        ));
        let viewer = user("acme", Role::Viewer);
        assert!(require(&viewer, &chain, Need::View, "asset").is_ok());
        assert!(matches!(
            require(&viewer, &chain, Need::ManageFleet, "asset"),
            Err(OpError::Forbidden(Rule::ManageFleet { role: Role::Viewer }))
        ));
        assert!(matches!(
            require(&viewer, &chain, Need::ReadAccessData, "operator"),
            Err(OpError::Forbidden(Rule::ReadAccessData {
                role: Role::Viewer
            }))
        ));
        let fleet_admin = user("acme", Role::FleetAdmin);
        assert!(require(&fleet_admin, &chain, Need::ManageFleet, "asset").is_ok());
        assert!(require(&fleet_admin, &chain, Need::ReadAccessData, "operator").is_ok());
        assert!(matches!(
            require(&fleet_admin, &chain, Need::Administer, "account"),
            Err(OpError::Forbidden(Rule::Administer {
                role: Role::FleetAdmin
            }))
        ));
    }

    #[test]
    fn support_access_makes_staff_admin_of_that_account_and_its_descendants_only() {
        let mut support = staff(StaffRole::Support);
        support.support.push(crate::model::ActiveSupport {
            account_id: account("acme"),
            via: "sup1".into(),
        });
        assert_eq!(role_in(&support, &[account("acme")]), Some(Role::Admin));
        assert_eq!(
            role_in(&support, &[account("depot"), account("acme")]),
            Some(Role::Admin)
        );
        assert_eq!(role_in(&support, &[account("other")]), None);
        assert_eq!(support_via(&support, &[account("acme")]), Some("sup1"));
    }

    #[test]
    fn staff_have_no_account_rights_by_themselves() {
        let chain = [account("acme")];
        for role in [
            StaffRole::PlatformAdmin,
            StaffRole::Support,
            StaffRole::TechSupport,
        ] {
            assert!(matches!(
                require(&staff(role), &chain, Need::View, "asset"),
                Err(OpError::NotFound(_))
            ));
        }
        let rule = || Rule::PlatformAdminOnly { action: "x" };
        assert!(require_platform_admin(&staff(StaffRole::PlatformAdmin), rule()).is_ok());
        assert!(require_platform_admin(&staff(StaffRole::Support), rule()).is_err());
        assert!(require_platform_admin(&user("acme", Role::Admin), rule()).is_err());
    }
}
