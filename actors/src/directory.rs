//! The directory: finds the actor for a device or an account, starting it when needed.
//!
//! Device actors are started for every registered unit at boot and at registration;
//! account actors on first use. Actors live on a small pool of arbiters (threads) owned by
//! the directory, never on HTTP worker threads, so a slow HTTP worker cannot stall a unit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use actix::prelude::*;
use storage::model::Device;
use storage::{AccountId, DeviceId, Store, StoreError};

use crate::account::AccountActor;
use crate::device::{DeviceActor, Rebind, Viewer};
use crate::writer::WriterHandle;
use crate::Context as Shared;

#[derive(Debug)]
pub struct Directory {
    store: Store,
    shared: Shared,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
    devices: RwLock<HashMap<DeviceId, Addr<DeviceActor>>>,
    accounts: Mutex<HashMap<AccountId, Addr<AccountActor>>>,
    /// The accounts whose actor holds a live stream: the only ones the guard asks.
    streaming: crate::account::Streaming,
}

impl Directory {
    /// Starts an actor for every registered device. `arbiters` must not be empty.
    pub fn start(
        store: Store,
        shared: Shared,
        arbiters: Vec<ArbiterHandle>,
    ) -> Result<Arc<Directory>, StoreError> {
        assert!(
            !arbiters.is_empty(),
            "the directory needs at least one arbiter"
        );
        let directory = Arc::new(Directory {
            store,
            shared,
            arbiters,
            next_arbiter: AtomicUsize::new(0),
            devices: RwLock::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
            streaming: Default::default(),
        });
        let devices = storage::read::all_devices(&directory.store.begin_read()?)?;
        for device in &devices {
            directory.start_device(device)?;
        }
        Ok(directory)
    }

    fn arbiter(&self) -> &ArbiterHandle {
        let index = self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        &self.arbiters[index]
    }

    pub fn device(&self, id: &DeviceId) -> Option<Addr<DeviceActor>> {
        self.devices.read().ok()?.get(id).cloned()
    }

    pub fn device_count(&self) -> usize {
        self.devices
            .read()
            .map(|devices| devices.len())
            .unwrap_or(0)
    }

    /// The account's actor, started on first use.
    pub fn account(&self, id: &AccountId) -> Addr<AccountActor> {
        let mut accounts = self
            .accounts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(addr) = accounts.get(id) {
            if addr.connected() {
                return addr.clone();
            }
        }
        let actor = AccountActor::new(id.clone(), self.streaming.clone(), self.shared.clone());
        let addr = AccountActor::start_in_arbiter(self.arbiter(), move |_| actor);
        accounts.insert(id.clone(), addr.clone());
        addr
    }

    /// Starts the stream guard: after every control-plane commit (an HTTP change, the
    /// scheduler's expiries) every live stream's authority is checked again, in this task,
    /// so it completes even when the request that made the change is gone; the change's
    /// caller waits for it (`WriterHandle::settle`). Runs until the actix system stops.
    pub fn guard_streams(self: &Arc<Self>, writer: WriterHandle) {
        let mut commits = writer.watch_commits();
        let directory = self.clone();
        actix::spawn(async move {
            while commits.changed().await.is_ok() {
                let epoch = *commits.borrow_and_update();
                directory.reauthorize_streams().await;
                directory.shared.mqtt.access_changed();
                writer.mark_settled(epoch);
            }
        });
    }

    /// Each account's telemetry retention, as the device actors judge stamps by it.
    pub fn horizon(&self) -> &crate::horizon::Horizon {
        &self.shared.horizon
    }

    /// Asks every account actor that holds a live stream to check its streams' authority
    /// again (see [`crate::account::Reauthorize`]); returns once all have. An actor without
    /// a stream has nothing to check, and a stream subscribing after this looked checks
    /// its authority as it subscribes.
    pub async fn reauthorize_streams(&self) {
        let streaming: Vec<AccountId> = self
            .streaming
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .cloned()
            .collect();
        let accounts: Vec<Addr<AccountActor>> = {
            let accounts = self
                .accounts
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            streaming
                .iter()
                .filter_map(|id| accounts.get(id).cloned())
                .collect()
        };
        let asks = accounts
            .iter()
            .map(|addr| addr.send(crate::account::Reauthorize));
        futures_util::future::join_all(asks).await;
    }

    fn viewers(&self, device: &Device) -> Result<Vec<Viewer>, StoreError> {
        let rtx = self.store.begin_read()?;
        Ok(
            storage::visibility::audience(&rtx, device, self.shared.clock.now())?
                .into_iter()
                .map(|member| Viewer {
                    addr: self.account(&member.account_id),
                    account_id: member.account_id,
                    asset_id: member.asset_id,
                    mirror: member.mirror,
                    window: member.window,
                })
                .collect(),
        )
    }

    /// Starts the actor of a (newly) registered device with its state from the store.
    pub fn start_device(&self, device: &Device) -> Result<Addr<DeviceActor>, StoreError> {
        let rtx = self.store.begin_read()?;
        let latest = match &device.bound_asset {
            Some(bound) => {
                storage::read::latest(&rtx, bound.asset_key, storage::read::ALL_TIME, |_| true)?
            }
            None => None,
        };
        let mut status = storage::read::device_status(&rtx, &device.id)?.unwrap_or_default();
        // The broker starts with the gateway, so no unit is connected yet.
        status.online = false;
        let loaded = crate::device::Loaded {
            account_id: device.account_id.clone(),
            binding: device.bound_asset.clone(),
            audience: self.viewers(device)?,
            latest,
            status,
            deregistered: device.deregistered_at.is_some(),
            key_set: Some(storage::keys::key_set(
                &rtx,
                device,
                self.shared.clock.now(),
            )?),
            recent_stamps: storage::stamps::of_device(&rtx, &device.id)?,
        };
        let actor = DeviceActor::new(device.id.clone(), loaded, self.shared.clone());
        let addr = DeviceActor::start_in_arbiter(self.arbiter(), move |_| actor);
        if let Ok(mut devices) = self.devices.write() {
            devices.insert(device.id.clone(), addr.clone());
        }
        Ok(addr)
    }

    /// Tells a device's actor its current binding and audience and waits until it has
    /// taken them: the ordering point of every visibility change. Callers run it inside
    /// [`crate::completing`] (the use cases do), so a dropped caller cannot skip it.
    pub async fn rebind(&self, device: &Device) -> Result<(), StoreError> {
        let viewers = self.viewers(device)?;
        let addr = match self.device(&device.id) {
            Some(addr) => addr,
            None => return self.start_device(device).map(|_| ()),
        };
        let message = Rebind {
            binding: device.bound_asset.clone(),
            audience: viewers,
            deregistered: device.deregistered_at.is_some(),
        };
        if addr.send(message).await.is_err() {
            // The actor is gone (arbiter stopped): nothing can deliver, nothing to cut.
            tracing::warn!(device = %device.id, "rebind found no live device actor");
        }
        Ok(())
    }
}

impl Directory {
    /// After grants changed (created, removed, started, expired): re-binds every affected
    /// unit and waits for each acknowledgement.
    pub async fn rebind_grants(&self, grants: &[storage::model::Grant]) -> Result<(), StoreError> {
        let devices = storage::visibility::devices_of(&self.store.begin_read()?, grants)?;
        for device in &devices {
            self.rebind(device).await?;
        }
        Ok(())
    }
}

impl Directory {
    /// After an asset's tenant sharing changed: re-binds the unit reporting for it.
    pub async fn rebind_asset(&self, asset: &storage::model::Asset) -> Result<(), StoreError> {
        let Some(device_id) = &asset.device_id else {
            return Ok(());
        };
        let device = storage::read::device(&self.store.begin_read()?, device_id)?;
        match device {
            Some(device) => self.rebind(&device).await,
            None => Ok(()),
        }
    }
}

/// Where a key change reached: units that acknowledged the new set in time, and units
/// that did not (offline, or slow); the latter get it when they reconnect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Distribution {
    pub delivered: Vec<storage::DeviceId>,
    pub pending: Vec<storage::DeviceId>,
}

impl Directory {
    /// Publishes the new key set of every changed unit, then waits up to `wait` for their
    /// acknowledgements (all at once, not one after another). Callers run it inside
    /// [`crate::completing`]: a removed key must leave the units even if they hang up.
    pub async fn push_keys(
        &self,
        changed: &[storage::keys::Changed],
        wait: std::time::Duration,
    ) -> Result<Distribution, StoreError> {
        let rtx = self.store.begin_read()?;
        let now = self.shared.clock.now();
        let mut waits = Vec::new();
        let mut cache = std::collections::HashMap::new();
        for change in changed {
            let Some(device) = storage::read::device(&rtx, &change.device)? else {
                continue;
            };
            let set = storage::keys::key_set_cached(&rtx, &device, now, &mut cache)?;
            let version = set.version;
            let Some(actor) = self.device(&device.id) else {
                continue;
            };
            let _ = actor.send(crate::keys::PushKeys(set)).await;
            let id = device.id.clone();
            waits.push(async move {
                let acked = actor
                    .send(crate::keys::AwaitAck {
                        version,
                        within: wait,
                    })
                    .await
                    .unwrap_or(false);
                (id, acked)
            });
        }
        let mut distribution = Distribution::default();
        for (id, acked) in futures_util::future::join_all(waits).await {
            if acked {
                distribution.delivered.push(id);
            } else {
                distribution.pending.push(id);
            }
        }
        Ok(distribution)
    }
}
