//! The admin flow before and after the measured part of a visibility run: grantee
//! sub-accounts with their admins, one bulk grant per grantee, and the checks that the
//! gateway's own listings agree with what the run did (grants live before, none after).
//!
//! Refusals while setting up end the run (`ScenarioError`): without its grants it measures
//! nothing. Answers that are accepted but do not match the contract go to the error log, so
//! the report shows them and the run still measures what it can.

use std::collections::HashSet;

use futures_util::{stream, StreamExt, TryStreamExt};

use super::cutoff::PlannedRemoval;
use crate::api::{
    Account, AccountId, ApiClient, AssetId, AssetRelation, GrantChange, GrantQuery, NewGrants,
};
use crate::scenario::fleet::{create_managed_account, provision, Fleet};
use crate::scenario::{ErrorLog, ScenarioError, Target};

/// A sub-account of the owner that receives grants, and a client acting as its admin.
pub(crate) struct Grantee {
    pub(crate) account: Account,
    pub(crate) client: ApiClient,
}

/// Creates `count` sub-accounts of `owner`, each with an admin, using the platform admin
/// (the contract lets it create accounts and users anywhere).
pub(crate) async fn create_grantees(
    platform_admin: &ApiClient,
    owner: &AccountId,
    run_id: &str,
    count: usize,
    parallelism: usize,
) -> Result<Vec<Grantee>, ScenarioError> {
    stream::iter(0..count)
        .map(|index| async move {
            let name = format!("sim-{run_id}-g{index}");
            let managed =
                create_managed_account(platform_admin, &name, Some(owner), "sim-grantee-admin")
                    .await?;
            Ok::<_, ScenarioError>(Grantee {
                account: managed.account,
                client: managed.client,
            })
        })
        .buffered(parallelism.max(1))
        .try_collect()
        .await
}

/// Grants every asset to every grantee, one bulk call per grantee, and returns the grants to
/// remove later (without pauses: those come with the order). Answers are checked against
/// the contract: every asset once, for that grantee, active, newly created.
pub(crate) async fn grant_all(
    owner_admin: &ApiClient,
    grantees: &[Grantee],
    assets: &[AssetId],
    errors: &ErrorLog,
) -> Result<Vec<PlannedRemoval>, ScenarioError> {
    let mut removals = Vec::with_capacity(grantees.len() * assets.len());
    for (index, grantee) in grantees.iter().enumerate() {
        let request = NewGrants::permanent(grantee.account.id.clone(), assets.to_vec());
        let batch = owner_admin
            .grant_visibility(&request, false)
            .await
            .map_err(ScenarioError::api(format!(
                "grant {} assets to {}",
                assets.len(),
                grantee.account.id
            )))?;
        if batch.dry_run {
            errors.push(format!(
                "granting to {}: a real call answered dry_run: true",
                grantee.account.id
            ));
        }
        let mut granted = HashSet::new();
        for grant in batch.items {
            let problem = if grant.account_id != grantee.account.id {
                Some(format!("is for account {}", grant.account_id))
            } else if !assets.contains(&grant.asset_id) {
                Some("is for an asset the call did not name".to_owned())
            } else if !granted.insert(grant.asset_id.clone()) {
                Some("appears twice".to_owned())
            } else if !grant.active {
                Some("is not active".to_owned())
            } else if grant.change != Some(GrantChange::Created) {
                Some(format!("has change {:?}, not created", grant.change))
            } else {
                None
            };
            match problem {
                Some(problem) => errors.push(format!(
                    "grant {} of {} to {} {problem}",
                    grant.id, grant.asset_id, grantee.account.id
                )),
                None => removals.push(PlannedRemoval {
                    grantee: index,
                    asset_id: grant.asset_id,
                    grant_id: grant.id,
                    pause: std::time::Duration::ZERO,
                }),
            }
        }
        if granted.len() != assets.len() {
            errors.push(format!(
                "granting {} assets to {} answered {} of them",
                assets.len(),
                grantee.account.id,
                granted.len()
            ));
        }
    }
    Ok(removals)
}

/// Active grants of the run's assets, per the owner's listing, summed over grantees.
pub(crate) async fn count_live_grants(
    owner_admin: &ApiClient,
    grantees: &[Grantee],
    assets: &[AssetId],
    parallelism: usize,
    errors: &ErrorLog,
) -> u64 {
    let counts: Vec<u64> = stream::iter(grantees)
        .map(|grantee| async move {
            let query = GrantQuery {
                account_id: Some(grantee.account.id.clone()),
                ..GrantQuery::default()
            };
            match owner_admin.list_grants(&query).await {
                Ok(grants) => grants
                    .iter()
                    .filter(|grant| grant.active && assets.contains(&grant.asset_id))
                    .count() as u64,
                Err(error) => {
                    errors.push(format!(
                        "listing the grants of {}: {error}",
                        grantee.account.id
                    ));
                    0
                }
            }
        })
        .buffered(parallelism.max(1))
        .collect()
        .await;
    counts.into_iter().sum()
}

/// Each grantee's `GET /v1/assets` must list every granted asset as `shared`.
pub(crate) async fn check_shared_listing(
    grantees: &[Grantee],
    assets: &[AssetId],
    parallelism: usize,
    errors: &ErrorLog,
) {
    stream::iter(grantees)
        .map(|grantee| async move {
            let listed = match grantee.client.list_all_assets().await {
                Ok(listed) => listed,
                Err(error) => {
                    errors.push(format!(
                        "listing the assets of grantee {}: {error}",
                        grantee.account.id
                    ));
                    return;
                }
            };
            let shared: HashSet<&AssetId> = listed
                .iter()
                .filter(|asset| asset.relation == AssetRelation::Shared)
                .map(|asset| &asset.id)
                .collect();
            let absent: Vec<&AssetId> = assets
                .iter()
                .filter(|asset| !shared.contains(asset))
                .collect();
            if let Some(first) = absent.first() {
                errors.push(format!(
                    "grantee {} does not list {} granted assets as shared (e.g. {first})",
                    grantee.account.id,
                    absent.len()
                ));
            }
        })
        .buffer_unordered(parallelism.max(1))
        .collect::<()>()
        .await;
}

/// An owner's fleet with every asset granted to every grantee: where the sharing scenarios
/// (visibility, fanout, revoke-storm) all start.
pub(crate) struct SharedFleet {
    pub(crate) platform_admin: ApiClient,
    pub(crate) fleet: Fleet,
    pub(crate) owner_admin: ApiClient,
    pub(crate) grantees: Vec<Grantee>,
    /// Every asset of the fleet, by unit index.
    pub(crate) assets: Vec<AssetId>,
    /// The grants made, one per (grantee, asset), in the order `grant_all` made them.
    pub(crate) granted: Vec<PlannedRemoval>,
}

/// Provisions `units` machines and `grantees` sub-accounts, grants every asset to every
/// grantee, and checks that each grantee's listing shows them (mismatches go to `errors`).
pub(crate) async fn share_fleet(
    target: &Target,
    run_id: &str,
    units: usize,
    grantees: usize,
    parallelism: usize,
    errors: &ErrorLog,
) -> Result<SharedFleet, ScenarioError> {
    let platform_admin = target
        .platform_admin()
        .map_err(ScenarioError::api("gateway URL"))?;
    let fleet = provision(&platform_admin, run_id, units, parallelism).await?;
    let owner_admin = fleet.client.clone();
    let grantees = create_grantees(
        &platform_admin,
        &fleet.account.id,
        run_id,
        grantees,
        parallelism,
    )
    .await?;
    let assets: Vec<AssetId> = fleet
        .machines
        .iter()
        .map(|machine| machine.asset_id.clone())
        .collect();
    let granted = grant_all(&owner_admin, &grantees, &assets, errors).await?;
    check_shared_listing(&grantees, &assets, parallelism, errors).await;
    Ok(SharedFleet {
        platform_admin,
        fleet,
        owner_admin,
        grantees,
        assets,
        granted,
    })
}
