//! Platform staff as the platform admin manages them (rules in `storage::staff_admin`):
//! disable or enable, delete, rotate a token. Each is one transaction; what the member
//! held ends in it (token, console sessions, support access) and, as for a user, the
//! stream guard ends the live streams that relied on any of it before the call answers
//! (the writer waits for that check). Ended support access may move the scheduler's next
//! deadline, so those wake it, as a revoke does.

use storage::model::Principal;
use storage::staff_admin::StaffChange;
use storage::OpError;

use super::UseCases;

impl UseCases {
    /// Disables (`true`) or enables (`false`) a staff member; disabling ends its token,
    /// sessions, streams and support access before this answers.
    pub async fn set_staff_disabled(
        &self,
        who: Principal,
        member: String,
        disabled: bool,
    ) -> Result<StaffChange, OpError> {
        let now = self.now();
        let change = self
            .commit(false, move |tx| {
                storage::staff_admin::set_disabled(tx, &who, &member, disabled, now)
            })
            .await?;
        if !change.ended_support.is_empty() {
            self.scheduler.wake();
        }
        Ok(change)
    }

    /// Deletes a staff member: as disabling, and the member is gone.
    pub async fn delete_staff(&self, who: Principal, member: String) -> Result<(), OpError> {
        let now = self.now();
        let ended = self
            .commit(false, move |tx| {
                storage::staff_admin::delete(tx, &who, &member, now)
            })
            .await?;
        if !ended.is_empty() {
            self.scheduler.wake();
        }
        Ok(())
    }

    /// Gives a staff member a new API token; the old one, its console sessions and the
    /// streams opened with either end.
    pub async fn rotate_staff_token(
        &self,
        who: Principal,
        member: String,
    ) -> Result<String, OpError> {
        let now = self.now();
        self.commit(false, move |tx| {
            storage::staff_admin::rotate_token(tx, &who, &member, now)
        })
        .await
    }
}
