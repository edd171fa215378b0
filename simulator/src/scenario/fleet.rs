//! Sets up a scenario's world through the public API only: an account of its own, an admin
//! user for it, and one device plus one bound asset per simulated unit; then connects the
//! units, and switches them off again. Everything is named after a random run id so runs
//! never collide.

use std::sync::Arc;

use futures_util::{stream, StreamExt, TryStreamExt};
use rand::distr::{Alphanumeric, SampleString};

use super::{ErrorLog, ScenarioError, Target};
use crate::api::{
    Account, AccountId, ApiClient, AssetId, Capabilities, Device, DeviceId, NewAsset, NewDevice,
    PrincipalId, UserRole,
};
use crate::unit::{BrokerAddr, MqttTransport, SimUnit, UnitOptions};

/// A run id: short, lowercase alphanumeric, so it fits inside device ids (which must be
/// ASCII alphanumeric because they become MQTT tenant ids).
pub(crate) fn new_run_id() -> String {
    Alphanumeric
        .sample_string(&mut rand::rng(), 8)
        .to_ascii_lowercase()
}

pub(crate) fn device_id(run_id: &str, index: usize) -> DeviceId {
    DeviceId::new(format!("sim{run_id}d{index}"))
}

pub(crate) fn asset_id(run_id: &str, index: usize) -> AssetId {
    AssetId::new(format!("sim-{run_id}-a{index}"))
}

/// One simulated machine as the gateway knows it.
#[derive(Debug, Clone)]
pub(crate) struct SimMachine {
    pub(crate) device: Device,
    pub(crate) asset_id: AssetId,
}

/// The scenario's account, a client acting as its admin, and its machines by unit index.
pub(crate) struct Fleet {
    pub(crate) account: Account,
    pub(crate) client: ApiClient,
    pub(crate) machines: Vec<SimMachine>,
}

/// Creates the account, its admin and `units` machines, at most `parallelism` API calls
/// at a time. Any failure here aborts the scenario: without its fleet it measures nothing.
pub(crate) async fn provision(
    platform_admin: &ApiClient,
    run_id: &str,
    units: usize,
    parallelism: usize,
) -> Result<Fleet, ScenarioError> {
    provision_with(
        platform_admin,
        run_id,
        units,
        parallelism,
        Capabilities::default(),
    )
    .await
}

/// `provision` with units that declare `capabilities` (the key scenario needs keypads,
/// DualID readers and Bluetooth relays, or the gateway refuses its keys).
pub(crate) async fn provision_with(
    platform_admin: &ApiClient,
    run_id: &str,
    units: usize,
    parallelism: usize,
    capabilities: Capabilities,
) -> Result<Fleet, ScenarioError> {
    let ManagedAccount {
        account, client, ..
    } = create_managed_account(platform_admin, &format!("sim-{run_id}"), None, "sim-admin").await?;

    let machines = stream::iter(0..units)
        .map(|index| create_machine(&client, run_id, index, capabilities))
        .buffered(parallelism.max(1))
        .try_collect()
        .await?;
    Ok(Fleet {
        account,
        client,
        machines,
    })
}

/// An account a scenario created, and its admin: the principal id (what decisions and
/// audit entries name) and a client acting as it.
pub(crate) struct ManagedAccount {
    pub(crate) account: Account,
    pub(crate) admin_id: PrincipalId,
    pub(crate) client: ApiClient,
}

/// Creates the account `name` (an organization root without `parent`) and its admin user
/// `admin_name`, as the platform admin (the contract lets it create both anywhere).
pub(crate) async fn create_managed_account(
    platform_admin: &ApiClient,
    name: &str,
    parent: Option<&AccountId>,
    admin_name: &str,
) -> Result<ManagedAccount, ScenarioError> {
    let account = platform_admin
        .create_account(name, parent)
        .await
        .map_err(ScenarioError::api(format!("create account {name}")))?;
    let admin = platform_admin
        .create_user(&account.id, admin_name, UserRole::Admin)
        .await
        .map_err(ScenarioError::api(format!("create the admin of {name}")))?;
    Ok(ManagedAccount {
        account,
        admin_id: admin.id,
        client: platform_admin.with_token(admin.token),
    })
}

async fn create_machine(
    client: &ApiClient,
    run_id: &str,
    index: usize,
    capabilities: Capabilities,
) -> Result<SimMachine, ScenarioError> {
    let device_id = device_id(run_id, index);
    let new_device = NewDevice {
        capabilities: Some(capabilities),
        ..NewDevice::new(device_id.clone())
    };
    let device = client
        .create_device(&new_device)
        .await
        .map_err(ScenarioError::api(format!("create device {device_id}")))?;
    let asset_id = asset_id(run_id, index);
    let new_asset =
        NewAsset::new(asset_id.clone(), format!("Simulated machine {index}")).bound_to(device_id);
    client
        .create_asset(&new_asset)
        .await
        .map_err(ScenarioError::api(format!("create asset {asset_id}")))?;
    Ok(SimMachine { device, asset_id })
}

/// The transport for one unit: plain, or mutual TLS with the certificate its device
/// registration returned.
pub(crate) fn transport_for(
    device: &Device,
    tls_server_name: Option<&str>,
) -> Result<MqttTransport, String> {
    let Some(server_name) = tls_server_name else {
        return Ok(MqttTransport::Plain);
    };
    match (&device.ca_pem, &device.cert_pem, &device.key_pem) {
        (Some(ca_pem), Some(cert_pem), Some(key_pem)) => Ok(MqttTransport::Tls {
            ca_pem: ca_pem.clone(),
            cert_pem: cert_pem.clone(),
            key_pem: key_pem.clone(),
            server_name: server_name.to_owned(),
        }),
        _ => Err(format!(
            "device {}: the gateway returned no CA, certificate and key, so it cannot use TLS",
            device.id
        )),
    }
}

/// Connects one unit per machine, `parallelism` at a time, each unit's options passed
/// through `adjust` first (e.g. to turn on `tcp_nodelay`). Units that fail are reported in
/// `errors` and left out; the result pairs each connected unit with its machine index.
pub(crate) async fn connect_units_with(
    machines: &[SimMachine],
    broker: &BrokerAddr,
    tls_server_name: Option<&str>,
    parallelism: usize,
    errors: &ErrorLog,
    adjust: impl Fn(UnitOptions) -> UnitOptions,
) -> Vec<(usize, SimUnit)> {
    let adjust = &adjust;
    stream::iter(machines.iter().enumerate())
        .map(|(index, machine)| async move {
            let transport = match transport_for(&machine.device, tls_server_name) {
                Ok(transport) => transport,
                Err(problem) => {
                    errors.push(problem);
                    return None;
                }
            };
            let options = adjust(
                UnitOptions::unit(machine.device.id.as_str(), broker.clone())
                    .with_transport(transport),
            );
            match SimUnit::connect(options).await {
                Ok(unit) => Some((index, unit)),
                Err(error) => {
                    errors.push(format!("unit {}: {error}", machine.device.id));
                    None
                }
            }
        })
        .buffered(parallelism.max(1))
        .filter_map(std::future::ready)
        .collect()
        .await
}

/// Connects every machine's unit for a streaming scenario, shared so they can be handed to
/// the publishing tasks. No unit at all is an error (the run would measure nothing), named
/// after the first failure; a partial fleet is the report's business.
pub(crate) async fn connect_fleet(
    fleet: &Fleet,
    target: &Target,
    parallelism: usize,
    errors: &ErrorLog,
) -> Result<Vec<(usize, Arc<SimUnit>)>, ScenarioError> {
    connect_fleet_with(fleet, target, parallelism, errors, |options| options).await
}

/// [`connect_fleet`] with every unit's options passed through `configure` first.
pub(crate) async fn connect_fleet_with(
    fleet: &Fleet,
    target: &Target,
    parallelism: usize,
    errors: &ErrorLog,
    configure: fn(UnitOptions) -> UnitOptions,
) -> Result<Vec<(usize, Arc<SimUnit>)>, ScenarioError> {
    let connected = connect_units_with(
        &fleet.machines,
        &target.mqtt,
        target.tls_server_name.as_deref(),
        parallelism,
        errors,
        configure,
    )
    .await;
    if connected.is_empty() {
        return Err(ScenarioError::NoUnits(
            errors
                .first()
                .unwrap_or_else(|| "no unit to connect".to_owned()),
        ));
    }
    Ok(connected
        .into_iter()
        .map(|(machine, unit)| (machine, Arc::new(unit)))
        .collect())
}

/// Ends every session cleanly (`offline` status, then DISCONNECT), as units switching off.
pub(crate) async fn disconnect_all(
    units: Vec<(usize, Arc<SimUnit>)>,
    parallelism: usize,
    errors: &ErrorLog,
) {
    stream::iter(units)
        .map(|(_, unit)| async move {
            match Arc::try_unwrap(unit) {
                Ok(unit) => {
                    let client_id = unit.client_id().to_owned();
                    if let Err(error) = unit.disconnect().await {
                        errors.push(format!(
                            "unit {client_id}: clean disconnect failed: {error}"
                        ));
                    }
                }
                // Still shared only if its task was lost; dropping it closes the socket.
                Err(unit) => drop(unit),
            }
        })
        .buffer_unordered(parallelism.max(1))
        .collect::<()>()
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AccountId;

    #[test]
    fn generated_ids_follow_the_id_rules() {
        let run_id = new_run_id();
        assert_eq!(run_id.len(), 8);
        let device = device_id(&run_id, 99_999);
        assert!(device.as_str().chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(device.as_str().len() <= 64);
        let asset = asset_id(&run_id, 99_999);
        assert!(asset
            .as_str()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn tls_needs_the_certificate_fields() {
        let mut device = Device {
            id: DeviceId::new("d1"),
            account_id: AccountId::new("a1"),
            capabilities: Capabilities::default(),
            ca_pem: None,
            cert_pem: None,
            key_pem: None,
        };
        assert_eq!(transport_for(&device, None), Ok(MqttTransport::Plain));
        assert!(transport_for(&device, Some("localhost")).is_err());
        device.ca_pem = Some("ca".into());
        device.cert_pem = Some("cert".into());
        device.key_pem = Some("key".into());
        assert!(matches!(
            transport_for(&device, Some("localhost")),
            Ok(MqttTransport::Tls { .. })
        ));
    }
}
