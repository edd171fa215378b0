//! Deleting a details-sharing profile (rule 5). A details share names the profile that
//! selects what it copies, so a profile some share still uses is not deleted: the refusal
//! (409) names every such share, its source asset and its target (account and asset), so
//! the admin knows what to stop or move to another profile first. [`ProfileUsers`] is
//! that rule, a plain type tested below.

use redb::{ReadableTable, WriteTransaction};

use crate::error::OpError;
use crate::ids::{AccountId, AssetId};
use crate::model::Asset;
use crate::ops::{audit, AuditNote, Who};
use crate::store::decode_as;
use crate::tables::*;
use crate::tenant::SourceSharing;
use crate::time::Timestamp;

/// The details shares that use one profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUsers {
    /// Source asset, target account, target asset; in the order they were noted.
    shares: Vec<(AssetId, AccountId, AssetId)>,
}

impl ProfileUsers {
    /// Notes the details targets of source asset `source` (its `sharing`) that use
    /// `profile`.
    pub fn note(&mut self, source: &AssetId, sharing: &SourceSharing, profile: &str) {
        for (account, target, used) in &sharing.details {
            if used == profile {
                self.shares
                    .push((source.clone(), account.clone(), target.clone()));
            }
        }
    }

    /// Whether no share uses the profile.
    pub fn is_empty(&self) -> bool {
        self.shares.is_empty()
    }

    /// The refusal of a delete while shares use `profile`; `None` when none does.
    pub fn refusal(&self, profile: &str) -> Option<OpError> {
        if self.is_empty() {
            return None;
        }
        let shares: Vec<String> = self
            .shares
            .iter()
            .map(|(source, account, target)| {
                format!("asset {source} to asset {target} of account {account}")
            })
            .collect();
        Some(OpError::Conflict(format!(
            "sharing profile {profile} is used by the details sharing of {}: stop those shares \
             or give them another profile first",
            shares.join(", ")
        )))
    }
}

/// Deletes sharing profile `id`, audited as `profile.delete`.
///
/// # Errors
/// 404 for a profile the caller cannot see, 403 for one it may see but not administer,
/// 409 naming the shares that still use it.
pub fn delete_profile(
    tx: &WriteTransaction,
    caller: &crate::model::Principal,
    id: &str,
    now: Timestamp,
) -> Result<(), OpError> {
    let profile = crate::tenant::load_profile(tx, caller, id)?;
    let mut users = ProfileUsers::default();
    {
        let assets = tx.open_table(ASSETS)?;
        for row in assets.range((profile.account_id.as_str(), "")..)? {
            let (key, value) = row?;
            if key.value().0 != profile.account_id.as_str() {
                break;
            }
            let source: Asset = decode_as("assets", value.value())?;
            users.note(&source.id, &source.sharing, &profile.id);
        }
    }
    if let Some(refusal) = users.refusal(&profile.id) {
        return Err(refusal);
    }
    tx.open_table(PROFILES)?.remove(profile.id.as_str())?;
    let fields: Vec<&str> = profile.fields.iter().map(|field| field.as_str()).collect();
    audit(
        tx,
        Who::Principal(caller),
        AuditNote {
            account_id: Some(&profile.account_id),
            action: "profile.delete",
            target: profile.id.clone(),
            before: Some(fields.join(",")),
            after: None,
        },
        now,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(users: &mut ProfileUsers, id: &str, details: &[(&str, &str, &str)], profile: &str) {
        let sharing = SourceSharing {
            telemetry: Vec::new(),
            details: details
                .iter()
                .map(|(account, target, profile)| {
                    (
                        AccountId::parse(account).expect("id"),
                        AssetId::parse(target).expect("id"),
                        (*profile).to_owned(),
                    )
                })
                .collect(),
        };
        users.note(&AssetId::parse(id).expect("id"), &sharing, profile);
    }

    #[test]
    fn an_unused_profile_may_go() {
        let mut users = ProfileUsers::default();
        note(&mut users, "ex1", &[("depot", "m1", "prfother")], "prfa");
        assert!(users.is_empty());
        assert!(users.refusal("prfa").is_none());
    }

    #[test]
    fn the_refusal_names_every_share_using_it() {
        let mut users = ProfileUsers::default();
        let both = [("depot", "m1", "prfa"), ("yard", "m9", "prfb")];
        note(&mut users, "ex1", &both, "prfa");
        note(&mut users, "ex2", &[("yard", "m2", "prfa")], "prfa");
        match users.refusal("prfa") {
            Some(OpError::Conflict(detail)) => assert_eq!(
                detail,
                "sharing profile prfa is used by the details sharing of asset ex1 to asset m1 \
                 of account depot, asset ex2 to asset m2 of account yard: stop those shares \
                 or give them another profile first"
            ),
            other => panic!("{other:?}"),
        }
    }
}
