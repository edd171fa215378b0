//! The shared harness for end-to-end tests: [`TestGateway`] runs a real gateway in this
//! process on ephemeral loopback ports with a temporary data directory, waits for its
//! `ready.json`, and can be restarted on the same directory.
//!
//! Tests drive it the way a third party would, through the simulator's HTTP client and
//! simulated units (MQTT), never through gateway internals.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway::{Config, Gateway, Ready};

/// A running gateway with its own temporary data directory.
#[derive(Debug)]
pub struct TestGateway {
    gateway: Option<Gateway>,
    dir: tempfile::TempDir,
    commit_window: Duration,
    /// The bootstrap platform_admin token read from `{data_dir}/bootstrap-token`.
    pub admin_token: String,
}

impl TestGateway {
    /// A gateway with the plain loopback MQTT listener and a short commit window.
    pub fn start() -> TestGateway {
        Self::start_with_window(Duration::from_millis(10))
    }

    pub fn start_with_window(commit_window: Duration) -> TestGateway {
        let dir = tempfile::tempdir().expect("temporary data dir");
        let gateway = Gateway::start(config(dir.path(), commit_window)).expect("gateway starts");
        let admin_token = std::fs::read_to_string(dir.path().join(gateway::TOKEN_FILE))
            .expect("bootstrap token written")
            .trim()
            .to_owned();
        TestGateway {
            gateway: Some(gateway),
            dir,
            commit_window,
            admin_token,
        }
    }

    pub fn ready(&self) -> &Ready {
        &self.gateway.as_ref().expect("gateway running").ready
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn http_base(&self) -> String {
        format!("http://{}", self.ready().http)
    }

    /// `host:port` of the plain MQTT listener.
    pub fn mqtt_plain(&self) -> (String, u16) {
        let addr = self.ready().mqtt_plain.expect("plain listener on");
        (addr.ip().to_string(), addr.port())
    }

    /// Stops the gateway (flushing the store) and starts a new one on the same data dir.
    pub fn restart(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown();
        }
        let gateway =
            Gateway::start(config(self.dir.path(), self.commit_window)).expect("gateway restarts");
        self.gateway = Some(gateway);
    }

    pub fn ready_file(&self) -> PathBuf {
        self.dir.path().join(gateway::READY_FILE)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown();
        }
    }
}

fn config(dir: &Path, commit_window: Duration) -> Config {
    let mut config = Config::with_data_dir(dir);
    config.http_addr = "127.0.0.1:0".parse().expect("addr");
    config.mqtt_plain_addr = Some("127.0.0.1:0".parse().expect("addr"));
    config.mqtt_tls_addr = None;
    config.commit_window = commit_window;
    config
}

/// An account with an admin user, ready to register units: the setup most tests share.
#[derive(Debug)]
pub struct Fleet {
    pub platform: simulator::ApiClient,
    pub admin: simulator::ApiClient,
    pub account_id: simulator::api::AccountId,
    pub broker: simulator::BrokerAddr,
    /// The admin user's bearer token, for raw requests.
    pub admin_token: String,
}

impl Fleet {
    pub async fn create(gateway: &TestGateway, name: &str) -> Fleet {
        let platform = simulator::ApiClient::new(&gateway.http_base(), gateway.admin_token.clone())
            .expect("client");
        let account = platform.create_account(name, None).await.expect("account");
        let user = platform
            .create_user(&account.id, "admin", simulator::api::UserRole::Admin)
            .await
            .expect("admin user");
        let (host, port) = gateway.mqtt_plain();
        Fleet {
            admin: platform.with_token(user.token.clone()),
            admin_token: user.token,
            platform,
            account_id: account.id,
            broker: simulator::BrokerAddr { host, port },
        }
    }

    /// Registers a unit and an asset bound to it.
    pub async fn unit_with_asset(&self, device: &str, asset: &str) {
        use simulator::api::{NewAsset, NewDevice};
        self.admin
            .create_device(&NewDevice::new(device))
            .await
            .expect("device registered");
        self.admin
            .create_asset(&NewAsset::new(asset, format!("machine {asset}")).bound_to(device))
            .await
            .expect("asset created");
    }

    pub async fn connect(&self, device: &str) -> simulator::SimUnit {
        simulator::SimUnit::connect(simulator::UnitOptions::unit(device, self.broker.clone()))
            .await
            .expect("unit connects")
    }

    /// A token for a new user of this account with `role`.
    pub async fn user(&self, role: simulator::api::UserRole) -> simulator::ApiClient {
        let user = self
            .admin
            .create_user(&self.account_id, "someone", role)
            .await
            .expect("user");
        self.admin.with_token(user.token)
    }
}
