//! The shared harness for end-to-end tests: [`TestGateway`] runs a real gateway in this
//! process on ephemeral loopback ports with a temporary data directory, waits for its
//! `ready.json`, and can be restarted on the same directory.
//!
//! Tests drive it the way a third party would, through the simulator's HTTP client and
//! simulated units (MQTT), never through gateway internals.

pub mod browser;
pub mod raw;
mod reports;

pub use reports::{check_written_report, read_written, sampled_run, tls_target};

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use gateway::clock::{Clock, ManualClock};
use gateway::{Config, Gateway, Ready};

/// A running gateway with its own temporary data directory.
#[derive(Debug)]
pub struct TestGateway {
    gateway: Option<Gateway>,
    dir: tempfile::TempDir,
    commit_window: Duration,
    /// Set when the test drives time itself; kept across restarts.
    clock: Option<Arc<ManualClock>>,
    /// What [`TestGateway::start_with`] was given; applied again on every restart.
    configure: Configure,
    /// The bootstrap platform_admin token read from `{data_dir}/bootstrap-token`.
    pub admin_token: String,
}

impl TestGateway {
    /// A gateway with the plain loopback MQTT listener and a short commit window.
    pub fn start() -> TestGateway {
        Self::start_with_window(Duration::from_millis(10))
    }

    pub fn start_with_window(commit_window: Duration) -> TestGateway {
        Self::start_inner(commit_window, None, Configure::default())
    }

    /// A gateway like [`TestGateway::start`] with the test's changes to its config (for
    /// example the SMS sender), applied again on every restart.
    pub fn start_with(configure: impl Fn(&mut Config) + Send + Sync + 'static) -> TestGateway {
        Self::start_inner(
            Duration::from_millis(10),
            None,
            Configure(Some(Arc::new(configure))),
        )
    }

    /// A gateway whose clock only moves when the test moves it ([`TestGateway::advance`]).
    /// It starts at the real current time, so units' own timestamps stay plausible.
    pub fn start_with_manual_clock() -> TestGateway {
        let now = gateway::clock::SystemClock.now();
        Self::start_inner(
            Duration::from_millis(10),
            Some(Arc::new(ManualClock::new(now))),
            Configure::default(),
        )
    }

    fn launch(
        dir: &Path,
        commit_window: Duration,
        clock: &Option<Arc<ManualClock>>,
        configure: &Configure,
    ) -> Gateway {
        let mut config = config(dir, commit_window);
        if let Some(configure) = &configure.0 {
            configure(&mut config);
        }
        match clock {
            Some(clock) => Gateway::start_with_clock(config, clock.clone()),
            None => Gateway::start(config),
        }
        .expect("gateway starts")
    }

    fn start_inner(
        commit_window: Duration,
        clock: Option<Arc<ManualClock>>,
        configure: Configure,
    ) -> TestGateway {
        let dir = tempfile::tempdir().expect("temporary data dir");
        let gateway = Self::launch(dir.path(), commit_window, &clock, &configure);
        let admin_token = std::fs::read_to_string(dir.path().join(gateway::TOKEN_FILE))
            .expect("bootstrap token written")
            .trim()
            .to_owned();
        TestGateway {
            gateway: Some(gateway),
            dir,
            commit_window,
            clock,
            configure,
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

    /// The TLS listener, reached by the name in the broker certificate.
    pub fn mqtt_tls(&self) -> simulator::BrokerAddr {
        let addr = self.ready().mqtt_tls.expect("TLS listener on");
        simulator::BrokerAddr {
            host: "localhost".into(),
            port: addr.port(),
        }
    }

    /// `host:port` of the plain MQTT listener (development only, no isolation): tests use
    /// it for integration observers, which hold no device certificate.
    pub fn mqtt_plain(&self) -> (String, u16) {
        let addr = self.ready().mqtt_plain.expect("plain listener on");
        (addr.ip().to_string(), addr.port())
    }

    /// Stops the gateway (flushing the store) and leaves it stopped until
    /// [`TestGateway::restart`] starts it again on the same data dir.
    pub fn stop(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown();
        }
    }

    /// Stops the gateway (flushing the store) and starts a new one on the same data dir.
    pub fn restart(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown();
        }
        self.gateway = Some(Self::launch(
            self.dir.path(),
            self.commit_window,
            &self.clock,
            &self.configure,
        ));
    }

    /// Moves the manual clock forward; the scheduler notices within its short nap.
    pub fn advance(&self, by: Duration) {
        let clock = self.clock.as_ref().expect("started with a manual clock");
        clock.advance(u64::try_from(by.as_millis()).expect("a sane duration"));
    }

    /// The gateway's current time in ms since the epoch.
    pub fn now_ms(&self) -> u64 {
        match &self.clock {
            Some(clock) => clock.now().0,
            None => gateway::clock::SystemClock.now().0,
        }
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

/// A test's change to the gateway config.
type ConfigChange = dyn Fn(&mut Config) + Send + Sync;

/// A change to the config, kept so restarts apply it again.
#[derive(Clone, Default)]
struct Configure(Option<Arc<ConfigChange>>);

impl std::fmt::Debug for Configure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = if self.0.is_some() {
            "Configure(..)"
        } else {
            "Configure(none)"
        };
        f.write_str(shown)
    }
}

fn config(dir: &Path, commit_window: Duration) -> Config {
    let mut config = Config::with_data_dir(dir);
    config.http_addr = "127.0.0.1:0".parse().expect("addr");
    config.mqtt_plain_addr = Some("127.0.0.1:0".parse().expect("addr"));
    config.mqtt_tls_addr = Some("127.0.0.1:0".parse().expect("addr"));
    config.mqtt_tls_names = vec!["localhost".into()];
    config.commit_window = commit_window;
    config.scheduler_max_nap = Duration::from_millis(20);
    // Tests make many deliberate failures from one loopback address; the limit itself is
    // tested with its own setting.
    config.auth_failures_per_minute = 1_000_000;
    config
}

/// An account with an admin user, ready to register units: the setup most tests share.
/// Units connect over TLS with the certificate `POST /v1/devices` issued them.
#[derive(Debug)]
pub struct Fleet {
    pub platform: simulator::ApiClient,
    pub admin: simulator::ApiClient,
    pub account_id: simulator::api::AccountId,
    /// The plain development listener (client id = identity), for integration observers
    /// without a certificate.
    pub broker: simulator::BrokerAddr,
    pub tls_broker: simulator::BrokerAddr,
    /// Issued identities by device id.
    pub identities: std::sync::Mutex<std::collections::HashMap<String, simulator::MqttTransport>>,
    /// The admin user's bearer token, for raw requests.
    pub admin_token: String,
}

impl Fleet {
    pub async fn create(gateway: &TestGateway, name: &str) -> Fleet {
        Self::create_under(gateway, name, None).await
    }

    /// A sub-account of this fleet's account, with its own admin.
    pub async fn child(&self, gateway: &TestGateway, name: &str) -> Fleet {
        Self::create_under(gateway, name, Some(&self.account_id)).await
    }

    async fn create_under(
        gateway: &TestGateway,
        name: &str,
        parent: Option<&simulator::api::AccountId>,
    ) -> Fleet {
        let platform = simulator::ApiClient::new(&gateway.http_base(), gateway.admin_token.clone())
            .expect("client");
        let account = platform
            .create_account(name, parent)
            .await
            .expect("account");
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
            tls_broker: gateway.mqtt_tls(),
            identities: Default::default(),
        }
    }

    /// Registers a unit and an asset bound to it.
    pub async fn unit_with_asset(&self, device: &str, asset: &str) {
        use simulator::api::NewAsset;
        self.register(device).await;
        self.admin
            .create_asset(&NewAsset::new(asset, format!("machine {asset}")).bound_to(device))
            .await
            .expect("asset created");
    }

    /// Registers a unit and keeps the identity the gateway issued for it.
    pub async fn register(&self, device: &str) -> simulator::api::Device {
        // Fully equipped units, so any key access type can be tested on them.
        let mut new = simulator::api::NewDevice::new(device);
        new.capabilities = Some(simulator::api::Capabilities {
            bluetooth_relay: true,
            keypad: true,
            dualid: true,
        });
        let created = self
            .admin
            .create_device(&new)
            .await
            .expect("device registered");
        let transport = simulator::MqttTransport::Tls {
            ca_pem: created.ca_pem.clone().expect("ca_pem"),
            cert_pem: created.cert_pem.clone().expect("cert_pem"),
            key_pem: created.key_pem.clone().expect("key_pem"),
            server_name: "localhost".into(),
        };
        self.identities
            .lock()
            .expect("lock")
            .insert(device.to_owned(), transport);
        created
    }

    /// Connects a registered unit over TLS with its own certificate.
    pub async fn connect(&self, device: &str) -> simulator::SimUnit {
        simulator::SimUnit::connect(self.unit_options(device))
            .await
            .expect("unit connects")
    }

    pub fn unit_options(&self, device: &str) -> simulator::UnitOptions {
        let transport = self
            .identities
            .lock()
            .expect("lock")
            .get(device)
            .cloned()
            .expect("registered here");
        simulator::UnitOptions::unit(device, self.tls_broker.clone()).with_transport(transport)
    }

    /// Registers `device` with an asset `asset` bound to it and writes its issued files as a
    /// stock client wants them: `ca.pem`, `{device}.pem`, `{device}.key` in a new temporary
    /// directory.
    pub async fn unit_files(&self, device: &str, asset: &str) -> tempfile::TempDir {
        let created = self.register(device).await;
        self.admin
            .create_asset(&simulator::api::NewAsset::new(asset, "machine").bound_to(device))
            .await
            .expect("asset");
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in [
            ("ca.pem".to_owned(), created.ca_pem),
            (format!("{device}.pem"), created.cert_pem),
            (format!("{device}.key"), created.key_pem),
        ] {
            std::fs::write(dir.path().join(name), text.expect("issued")).expect("write");
        }
        dir
    }

    /// The account's integration on the development listener, where the client id is the
    /// identity: it may subscribe to the account's asset topics and nothing else.
    pub async fn integration_observer(&self) -> simulator::SimUnit {
        simulator::SimUnit::connect(simulator::UnitOptions::observer(
            self.account_id.to_string(),
            self.broker.clone(),
        ))
        .await
        .expect("the account's integration connects")
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

/// How long a test waits for something asynchronous before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Polls `probe` every 20 ms until it answers `Some`, or returns `None` after [`WAIT`].
pub async fn eventually<T, F, Fut>(mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Fleet {
    /// The asset's history once it holds at least `count` points (or whatever it holds
    /// after [`WAIT`], for the caller's assertion to report).
    pub async fn history(&self, asset: &str, count: usize) -> Vec<simulator::api::Point> {
        let asset = simulator::api::AssetId::new(asset);
        let read = || async {
            self.admin
                .telemetry_all(&asset, &simulator::api::HistoryQuery::default())
                .await
                .expect("history")
        };
        match eventually(|| async { Some(read().await).filter(|points| points.len() >= count) })
            .await
        {
            Some(points) => points,
            None => read().await,
        }
    }

    /// The `/metrics` line that starts with `prefix`, once it appears.
    pub async fn metric_line(&self, prefix: &str) -> Option<String> {
        eventually(|| async {
            let (_, text) = self.admin.get_text("/metrics").await.expect("metrics");
            text.lines()
                .find(|line| line.starts_with(prefix))
                .map(str::to_owned)
        })
        .await
    }

    /// Whether `/metrics` shows exactly `series value` (a series is the name with its
    /// labels) within [`WAIT`]; on `false` the caller's message should say what it expected.
    pub async fn metric_is(&self, series: &str, value: impl std::fmt::Display) -> bool {
        let expected = format!("{series} {value}");
        eventually(|| async {
            let (_, text) = self.admin.get_text("/metrics").await.expect("metrics");
            text.lines().any(|line| line == expected).then_some(())
        })
        .await
        .is_some()
    }
}

impl Fleet {
    /// `POST /v1/visibility/grants` as this fleet's admin; the raw answer.
    pub async fn grant(
        &self,
        to: &Fleet,
        assets: &[&str],
        window: serde_json::Value,
    ) -> simulator::api::RawResponse {
        let mut body =
            serde_json::json!({"account_id": to.account_id.to_string(), "asset_ids": assets});
        if let (Some(body), Some(window)) = (body.as_object_mut(), window.as_object()) {
            body.extend(window.clone());
        }
        self.admin
            .request_raw(reqwest::Method::POST, "/v1/visibility/grants", Some(&body))
            .await
            .expect("answer")
    }

    /// Ends `to`'s grants of `assets` (`POST /v1/visibility/remove` as this fleet's admin),
    /// asserting the answer is 200.
    pub async fn remove_grants(&self, to: &Fleet, assets: &[&str]) {
        let body =
            serde_json::json!({"account_id": to.account_id.to_string(), "asset_ids": assets});
        let (status, answer) = call(
            &self.admin,
            reqwest::Method::POST,
            "/v1/visibility/remove",
            Some(body),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
}

/// `POST /v1/accounts/{account}/certificates/{serial}/revoke` as `client`: its answer.
pub async fn revoke_certificate(
    client: &simulator::ApiClient,
    account: &str,
    serial: &str,
) -> simulator::api::RawResponse {
    let path = format!("/v1/accounts/{account}/certificates/{serial}/revoke");
    client
        .request_raw(reqwest::Method::POST, &path, None)
        .await
        .expect("answer")
}

/// True once the server has closed `stream` (a live stream read as plain HTTP, as a
/// browser's cookie session reads it), false if it is still open after `within`.
pub async fn http_stream_ended(stream: &mut reqwest::Response, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(None)) | Ok(Err(_)) => return true,
            Ok(Ok(Some(_))) => continue,
            Err(_) => return false,
        }
    }
}

/// True once the server has closed `stream` (events before the end are skipped), false if
/// it is still open after `within`.
pub async fn stream_ended(stream: &mut simulator::api::SseStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(None) | Ok(Some(Err(_))) => return true,
            Ok(Some(Ok(_))) => continue,
            Err(_) => return false,
        }
    }
}

/// Whether `problem` is a 403 refusal by `rule`: its `type` is the rule's URI. Tests match
/// the rule (its variant), not the prose of its sentence.
pub fn refused_by(problem: &serde_json::Value, rule: &storage::Rule) -> bool {
    problem["status"] == 403 && problem["type"] == rule.type_uri().as_str()
}

/// Publishes `payload` on `topic` as `unit` at QoS 1 and waits up to [`WAIT`] for the
/// broker's acknowledgement, which it gives even for what the gateway then refuses (so a
/// test of a refusal publishes this way too).
pub async fn publish_acked(
    unit: &simulator::SimUnit,
    topic: &str,
    payload: impl Into<bytes::Bytes>,
) {
    unit.publish(topic, payload, rumqttc::QoS::AtLeastOnce, false)
        .await
        .expect("queued")
        .wait_timeout(WAIT)
        .await
        .unwrap_or_else(|error| panic!("no acknowledgement on {topic}: {error}"));
}

/// The id of the first grant an answer to [`Fleet::grant`] made.
pub fn first_grant(granted: &simulator::api::RawResponse) -> String {
    granted.body["items"][0]["id"]
        .as_str()
        .expect("a grant id")
        .to_owned()
}

/// `client`'s answer to removing the visibility grant `grant_id`.
pub async fn remove_grant(
    client: &simulator::ApiClient,
    grant_id: &str,
) -> (u16, serde_json::Value) {
    let path = format!("/v1/visibility/grants/{grant_id}");
    call(client, reqwest::Method::DELETE, &path, None).await
}

/// The visibility grants `client` lists (its account's own and those it received).
pub async fn grants_listed(client: &simulator::ApiClient) -> Vec<serde_json::Value> {
    let (status, grants) = call(client, reqwest::Method::GET, "/v1/visibility/grants", None).await;
    assert_eq!(status, 200, "{grants}");
    grants["items"].as_array().expect("items").clone()
}

/// Any call as `client`: its status and JSON body (`Null` when there is none).
pub async fn call(
    client: &simulator::ApiClient,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let answer = client
        .request_raw(method, path, body.as_ref())
        .await
        .expect("answer");
    (answer.status, answer.body)
}

impl Fleet {
    /// A new staff member of `role` (created by the platform admin): its client and id.
    pub async fn staff(&self, role: &str) -> (simulator::ApiClient, String) {
        let body = serde_json::json!({"name": format!("{role} staff"), "role": role});
        let (status, created) = call(
            &self.platform,
            reqwest::Method::POST,
            "/v1/staff",
            Some(body),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let client = self
            .platform
            .with_token(created["token"].as_str().expect("token"));
        (client, created["id"].as_str().expect("id").to_owned())
    }

    /// A partnership of this fleet's account with `other`'s, as the platform admin sets it
    /// up: its id.
    pub async fn partnership(&self, other: &Fleet) -> String {
        let body = serde_json::json!({"account_a": self.account_id.to_string(),
            "account_b": other.account_id.to_string()});
        let path = "/v1/partnerships";
        let (status, created) = call(&self.platform, reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().expect("id").to_owned()
    }

    /// A support staff member with support access to this account for `duration`, as the
    /// account's admin approved it: its client and the access id.
    pub async fn approved_support(&self, duration: &str) -> (simulator::ApiClient, String) {
        let (support, _) = self.staff("support").await;
        let body = serde_json::json!({"account_id": self.account_id.to_string(),
            "purpose": "investigate dropouts", "duration": duration});
        let path = "/v1/support-access/requests";
        let (status, created) = call(&support, reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_owned();
        let path = format!("/v1/support-access/requests/{id}/approve");
        let (status, approved) = call(&self.admin, reqwest::Method::POST, &path, None).await;
        assert_eq!(status, 200, "{approved}");
        (support, id)
    }
}

/// Sends one HTTP request with `token` and closes the connection without reading the
/// answer: a client that hangs up right after sending, whose handler future actix drops.
/// What the request changes must still happen in full (the use cases run in a task of
/// their own).
pub async fn send_and_hang_up(gateway: &TestGateway, method: &str, path: &str, token: &str) {
    use tokio::io::AsyncWriteExt as _;
    let address = gateway.ready().http;
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.expect("sent");
    drop(socket);
}
