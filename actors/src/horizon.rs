//! How far back a point may be stamped and still be kept: each account's telemetry
//! retention (its own setting, or the global default), held in memory for the device
//! actors, which refuse a point already past it instead of acknowledging it as stored and
//! letting the next prune delete it unannounced.
//!
//! Loaded from the store at start; the use case that changes an account's setting updates
//! it after its commit.

use std::collections::HashMap;
use std::sync::RwLock;

use storage::redb::ReadableTable;
use storage::retention::cutoff;
use storage::tables::TELEMETRY_RETENTION;
use storage::time::Timestamp;
use storage::{AccountId, Store, StoreError};

/// Every account's telemetry retention in days (0: kept forever).
#[derive(Debug)]
pub struct Horizon {
    /// Accounts without their own setting.
    default_days: u32,
    own: RwLock<HashMap<AccountId, u32>>,
}

impl Horizon {
    /// The accounts' own settings as stored, with `default_days` for the others.
    ///
    /// # Errors
    /// [`StoreError`] when the table cannot be read.
    pub fn load(store: &Store, default_days: u32) -> Result<Horizon, StoreError> {
        let rtx = store.begin_read()?;
        let mut own = HashMap::new();
        for row in rtx.open_table(TELEMETRY_RETENTION)?.iter()? {
            let (account, days) = row?;
            if let Ok(account) = AccountId::parse(account.value()) {
                own.insert(account, days.value());
            }
        }
        Ok(Horizon {
            default_days,
            own: RwLock::new(own),
        })
    }

    /// Everything kept forever (tests, and accounts before the store is read).
    pub fn forever() -> Horizon {
        Horizon {
            default_days: 0,
            own: RwLock::default(),
        }
    }

    /// `account` now keeps `days` (`None`: the default again).
    pub fn set(&self, account: &AccountId, days: Option<u32>) {
        let mut own = self.own.write().unwrap_or_else(|p| p.into_inner());
        match days {
            Some(days) => own.insert(account.clone(), days),
            None => own.remove(account),
        };
    }

    /// The account's retention in days (0: forever).
    pub fn days(&self, account: &AccountId) -> u32 {
        let own = self.own.read().unwrap_or_else(|p| p.into_inner());
        own.get(account).copied().unwrap_or(self.default_days)
    }

    /// The oldest stamp `account` keeps at `now`, with the days it keeps; `None`: all.
    pub fn oldest_kept(&self, account: &AccountId, now: Timestamp) -> Option<(Timestamp, u32)> {
        let days = self.days(account);
        cutoff(now, days).map(|at| (at, days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accounts_own_setting_wins_over_the_default_until_cleared() {
        let horizon = Horizon {
            default_days: 365,
            own: RwLock::default(),
        };
        let account = AccountId::parse("acc1").expect("id");
        let now = Timestamp(400 * 86_400_000);
        assert_eq!(
            horizon.oldest_kept(&account, now),
            Some((Timestamp(35 * 86_400_000), 365))
        );
        horizon.set(&account, Some(30));
        assert_eq!(
            horizon.oldest_kept(&account, now),
            Some((Timestamp(370 * 86_400_000), 30))
        );
        horizon.set(&account, None);
        assert_eq!(horizon.days(&account), 365);
        assert_eq!(Horizon::forever().oldest_kept(&account, now), None);
    }
}
