//! The rules a refusal names, as a type. Each variant is one distinct reason an operation
//! the caller may see is refused (403): it knows the design rule it comes from (DESIGN
//! section 6), its stable problem `type` URI, and the sentence a person reads. Tests match
//! the variant; clients match the URI; people read the sentence.

use std::fmt;

use crate::ids::{AccountId, AssetId};
use crate::model::Role;

/// Every problem `type` URI of a rule starts with this; the rest is the rule's slug.
pub const TYPE_URI_BASE: &str = "https://fleetgate.dev/problems/";

/// Why an operation on something the caller may see is refused (403).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Rule 1: only the owner's admin or fleet admin changes a fleet.
    ManageFleet { role: Role },
    /// Only the account's admin administers it: users, sub-accounts, certificates, audit,
    /// sharing profiles and tenant sharing (DESIGN 5.1, "who").
    Administer { role: Role },
    /// Operators and keys carry personal data and credentials: only those who manage
    /// access (admin, fleet admin) read them (DESIGN 5.1, "who").
    ReadAccessData { role: Role },
    /// Platform-wide actions (organization roots, staff) are `platform_admin`'s.
    PlatformAdminOnly { action: &'static str },
    /// What concerns platform staff themselves (the staff list, a member's own support
    /// access) is read by staff only: users hold no support access.
    StaffOnly { action: &'static str },
    /// Rule 3: partnerships are created and ended by `platform_admin` only.
    PartnershipsByPlatformAdmin { action: &'static str },
    /// Rule 2: a grantee sees an asset read-only; it never changes, re-shares or keys it.
    SharedReadOnly {
        asset_id: AssetId,
        action: &'static str,
    },
    /// Rule 2: a grant's target must be a descendant of the owner or its partner.
    GrantOutOfReach { owner: AccountId, target: AccountId },
    /// Rule 2: the grantee's side may not remove a grant; the owner's managers may.
    GrantRemovedByOwner,
    /// Rule 4: temporary access creates no lasting access (users, tokens, integration
    /// certificates, unit certificates and their keys).
    NoLastingAccess { what: &'static str },
    /// Rule 4: only `support` staff request support access.
    SupportRequestedBySupport,
    /// Rule 4: only the account's admin (a user, not staff) decides on support access;
    /// `role` is the caller's role there, `None` for staff.
    SupportDecidedByAdmin { role: Option<Role> },
    /// Rule 4: inherited support access is decided at the account it was approved for.
    SupportDecidedWhereApproved { account_id: AccountId },
    /// Rule 4: only `tech_support` or `platform_admin` open or close support cases.
    CasesByTechSupport { action: &'static str },
    /// Rule 5: a mirror belongs to its source; it is not changed, shared onward or keyed.
    MirrorReadOnly {
        asset_id: AssetId,
        action: &'static str,
    },
}

impl Rule {
    /// The numbered rule of DESIGN section 6 this refusal enforces; `None` for the roles
    /// of section 5.1's "who" column.
    pub fn design_rule(&self) -> Option<u8> {
        match self {
            Rule::ManageFleet { .. } => Some(1),
            Rule::SharedReadOnly { .. }
            | Rule::GrantOutOfReach { .. }
            | Rule::GrantRemovedByOwner => Some(2),
            Rule::PartnershipsByPlatformAdmin { .. } => Some(3),
            Rule::NoLastingAccess { .. }
            | Rule::SupportRequestedBySupport
            | Rule::SupportDecidedByAdmin { .. }
            | Rule::SupportDecidedWhereApproved { .. }
            | Rule::CasesByTechSupport { .. } => Some(4),
            Rule::MirrorReadOnly { .. } => Some(5),
            Rule::Administer { .. }
            | Rule::ReadAccessData { .. }
            | Rule::PlatformAdminOnly { .. }
            | Rule::StaffOnly { .. } => None,
        }
    }

    /// The stable slug after [`TYPE_URI_BASE`].
    pub fn slug(&self) -> &'static str {
        match self {
            Rule::ManageFleet { .. } => "fleet-managers-only",
            Rule::Administer { .. } => "account-admins-only",
            Rule::ReadAccessData { .. } => "access-data-managers-only",
            Rule::PlatformAdminOnly { .. } => "platform-admins-only",
            Rule::StaffOnly { .. } => "staff-only",
            Rule::PartnershipsByPlatformAdmin { .. } => "partnerships-by-platform-admins",
            Rule::SharedReadOnly { .. } => "shared-asset-read-only",
            Rule::GrantOutOfReach { .. } => "grant-target-out-of-reach",
            Rule::GrantRemovedByOwner => "grant-removed-by-owner",
            Rule::NoLastingAccess { .. } => "no-lasting-access",
            Rule::SupportRequestedBySupport => "support-requested-by-support",
            Rule::SupportDecidedByAdmin { .. } => "support-decided-by-account-admin",
            Rule::SupportDecidedWhereApproved { .. } => "support-decided-where-approved",
            Rule::CasesByTechSupport { .. } => "cases-by-tech-support",
            Rule::MirrorReadOnly { .. } => "mirror-read-only",
        }
    }

    /// The problem `type` URI (RFC 9457 §3.1.1): [`TYPE_URI_BASE`] and the slug.
    pub fn type_uri(&self) -> String {
        format!("{TYPE_URI_BASE}{}", self.slug())
    }

    /// The sentence a person reads, after the "rule N: " prefix.
    fn reason(&self) -> String {
        match self {
            Rule::ManageFleet { role } => format!(
                "only the owner's admin or fleet admin may change its fleet (you are {})",
                role.as_str()
            ),
            Rule::Administer { role } => format!(
                "only the account's admin may administer it (you are {})",
                role.as_str()
            ),
            Rule::ReadAccessData { role } => format!(
                "only the account's admin or fleet admin may read operators and keys \
                 (personal data and credentials) (you are {})",
                role.as_str()
            ),
            Rule::PlatformAdminOnly { action } => format!("only platform_admin may {action}"),
            Rule::StaffOnly { action } => format!("only platform staff may {action}"),
            Rule::PartnershipsByPlatformAdmin { action } => {
                format!("only platform_admin may {action} partnerships")
            }
            Rule::SharedReadOnly { asset_id, action } => format!(
                "asset {asset_id} is shared with this account read-only; it may not {action} it"
            ),
            Rule::GrantOutOfReach { owner, target } => format!(
                "account {target} is neither a descendant of {owner} nor its partner; \
                 a partnership must be set up by platform staff first"
            ),
            Rule::GrantRemovedByOwner => {
                "only the owner's admin or fleet admin may remove a grant".into()
            }
            Rule::NoLastingAccess { what } => format!(
                "support access creates no lasting access; {what} cannot be created or changed \
                 under it (ask the account's admin)"
            ),
            Rule::SupportRequestedBySupport => "only support staff request support access".into(),
            Rule::SupportDecidedByAdmin { role } => {
                let decides =
                    "only the account's admin approves, declines or revokes support access";
                match role {
                    Some(role) => format!("{decides} (you are {})", role.as_str()),
                    None => decides.into(),
                }
            }
            Rule::SupportDecidedWhereApproved { account_id } => format!(
                "only the account's admin approves, declines or revokes support access: this \
                 access was approved at account {account_id} and is decided there"
            ),
            Rule::CasesByTechSupport { action } => {
                format!("only tech_support or platform_admin {action} support cases")
            }
            Rule::MirrorReadOnly { asset_id, action } => format!(
                "asset {asset_id} is a mirror of another account's asset; it may not {action} it"
            ),
        }
    }

    /// The human sentence, opening with "rule N: " when a numbered rule is broken.
    pub fn sentence(&self) -> String {
        match self.design_rule() {
            Some(number) => format!("rule {number}: {}", self.reason()),
            None => self.reason(),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        out.write_str(&self.sentence())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each variant. The match below stops compiling when a variant is added, as a
    /// reminder to list it here (and in DESIGN's error conventions).
    fn every_rule() -> Vec<Rule> {
        let asset_id = AssetId::parse("ex1").expect("id");
        let account_id = AccountId::parse("acme").expect("id");
        let rules = vec![
            Rule::ManageFleet { role: Role::Viewer },
            Rule::Administer {
                role: Role::FleetAdmin,
            },
            Rule::ReadAccessData { role: Role::Viewer },
            Rule::PlatformAdminOnly {
                action: "create staff",
            },
            Rule::StaffOnly {
                action: "list staff",
            },
            Rule::PartnershipsByPlatformAdmin { action: "create" },
            Rule::SharedReadOnly {
                asset_id: asset_id.clone(),
                action: "change",
            },
            Rule::GrantOutOfReach {
                owner: account_id.clone(),
                target: account_id.clone(),
            },
            Rule::GrantRemovedByOwner,
            Rule::NoLastingAccess { what: "a user" },
            Rule::SupportRequestedBySupport,
            Rule::SupportDecidedByAdmin { role: None },
            Rule::SupportDecidedWhereApproved { account_id },
            Rule::CasesByTechSupport { action: "open" },
            Rule::MirrorReadOnly {
                asset_id,
                action: "key",
            },
        ];
        for rule in &rules {
            match rule {
                Rule::ManageFleet { .. }
                | Rule::Administer { .. }
                | Rule::ReadAccessData { .. }
                | Rule::PlatformAdminOnly { .. }
                | Rule::StaffOnly { .. }
                | Rule::PartnershipsByPlatformAdmin { .. }
                | Rule::SharedReadOnly { .. }
                | Rule::GrantOutOfReach { .. }
                | Rule::GrantRemovedByOwner
                | Rule::NoLastingAccess { .. }
                | Rule::SupportRequestedBySupport
                | Rule::SupportDecidedByAdmin { .. }
                | Rule::SupportDecidedWhereApproved { .. }
                | Rule::CasesByTechSupport { .. }
                | Rule::MirrorReadOnly { .. } => {}
            }
        }
        rules
    }

    #[test]
    fn every_rule_has_its_own_uri_and_names_its_number() {
        let rules = every_rule();
        let mut slugs: Vec<&str> = rules.iter().map(Rule::slug).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), rules.len(), "slugs are unique: {slugs:?}");
        for rule in &rules {
            assert!(rule.type_uri().starts_with(TYPE_URI_BASE));
            match rule.design_rule() {
                Some(number) => assert!(
                    rule.sentence().starts_with(&format!("rule {number}: ")),
                    "{rule}"
                ),
                None => assert!(!rule.sentence().starts_with("rule "), "{rule}"),
            }
        }
    }

    #[test]
    fn the_design_lists_every_rule_uri() {
        let design = include_str!("../../docs/design.md");
        for rule in every_rule() {
            assert!(
                design.contains(&format!("`{}`", rule.slug())),
                "docs/design.md's error conventions list {}",
                rule.slug()
            );
        }
    }
}
