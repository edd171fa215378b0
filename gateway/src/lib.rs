//! The `fleetgate` gateway: configuration, the MQTT transport, the HTTP control API, and
//! the start/stop sequence that ties them together.
//!
//! # Layout
//! - [`config`]: flags, environment and TOML settings.
//! - [`transport`]: Fleetgate's own MQTT sessions (TLS, ACL, PUBACK after commit).
//! - [`units`]: transport <-> `DeviceActor`s, both directions.
//! - [`http`]: the control API.
//! - [`outbox`]: the task that hands queued SMS invitations to the configured sender.
//! - [`metrics`]: HTTP, outbox and process metrics, and the `/metrics` page.
//! - [`Gateway::start`]: opens the store, starts the writer, the actors, the transport and
//!   the HTTP server on their own threads, writes `ready.json`, and returns.
//!
//! **Invariant:** the gateway crate holds no domain rule; it wires storage and actors to
//! the network.

pub mod config;
pub mod data_dir;
pub mod http;
pub mod metrics;
pub mod outbox;
pub mod pki;
pub mod transport;
pub mod units;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::{web, App, HttpServer};
use actors::directory::Directory;
use actors::metrics::Metrics;
use actors::writer::StoreWriter;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use storage::time::{Clock, SystemClock};
use storage::Store;
use tokio::sync::oneshot;

pub use config::{Config, ServeArgs};
/// Tests only: the full-disk switch a test puts in [`Config::store_faults`].
pub use storage::faults::FaultSwitch;
/// Time sources, so embedders and tests can run the gateway on a manual clock.
pub mod clock {
    pub use storage::time::{Clock, ManualClock, SystemClock, Timestamp};
}

/// The addresses written to `{data_dir}/ready.json` once every listener is bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub http: SocketAddr,
    /// The HTTPS listener, when `--http-tls-addr` turned it on.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub https: Option<SocketAddr>,
    pub mqtt_tls: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mqtt_plain: Option<SocketAddr>,
}

impl Ready {
    /// The web console's address: the HTTP listener, with a wildcard address (`0.0.0.0`,
    /// `::`) shown as loopback, which a browser on the same machine can open.
    pub fn console_url(&self) -> String {
        let mut addr = self.http;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}/")
    }
}

/// A running gateway. [`Gateway::shutdown`] stops it cleanly; dropping it leaves it running
/// until the process exits.
#[derive(Debug)]
pub struct Gateway {
    pub ready: Ready,
    /// Tells when the last handle on the store is gone (its file lock released).
    store_watch: storage::store::StoreWatch,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// File names in the data directory.
pub const READY_FILE: &str = "ready.json";
pub const TOKEN_FILE: &str = "bootstrap-token";

impl Gateway {
    /// Starts everything and returns once `ready.json` is written.
    pub fn start(config: Config) -> anyhow::Result<Gateway> {
        Self::start_with_clock(config, Arc::new(SystemClock))
    }

    pub fn start_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Gateway> {
        config.validate()?;
        data_dir::prepare(&config)?;
        let _ = std::fs::remove_file(config.data_dir.join(READY_FILE));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("fleetgate".into())
            .spawn(move || {
                let system = actix_rt::System::new();
                let outcome = system.block_on(serve(config, clock, ready_tx.clone(), stopped));
                if let Err(err) = outcome {
                    let _ = ready_tx.send(Err(err));
                }
            })?;
        let (ready, store_watch) = ready_rx
            .recv()
            .context("the gateway thread ended before it was ready")??;
        Ok(Gateway {
            ready,
            store_watch,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops taking requests and sessions (acknowledging what the writer commits), flushes
    /// the store writer and returns when the store is closed.
    pub fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // HTTP workers and tasks drop their handles on the store as they wind down; the
        // next start on this data dir needs the file lock they hold.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.store_watch.is_closed() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if !self.store_watch.is_closed() {
            tracing::error!("the store is still open 10 s after shutdown");
        }
    }
}

async fn serve(
    config: Config,
    clock: Arc<dyn Clock>,
    ready_tx: std::sync::mpsc::Sender<anyhow::Result<(Ready, storage::store::StoreWatch)>>,
    stopped: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let store = open_store(&config, clock.now())?;
    let store_watch = store.watch();
    let metrics = Arc::new(Metrics::new());
    let gateway_metrics = Arc::new(metrics::GatewayMetrics::new());
    let metrics_token = match &config.metrics_token_file {
        Some(path) => Some(Arc::new(http::metrics_token::MetricsToken::read(path)?)),
        None => None,
    };
    let writer = StoreWriter::spawn(store.clone(), config.commit_window, metrics.clone())?;
    let ca = Arc::new(pki::CertificateAuthority::open_or_create(&config.data_dir)?);
    // The store and the CA created their files just now on a first start.
    data_dir::tighten_secrets(&config.data_dir)?;
    let sessions_out = Arc::new(units::SessionsOut::default());
    let arrivals = Arc::new(actors::arrival::Arrivals::from_store(&store)?);
    let (directory, arbiters) = start_actors(
        &store,
        actors::Context {
            writer: writer.handle(),
            metrics: metrics.clone(),
            clock: clock.clone(),
            mqtt: sessions_out.clone(),
            arrivals: arrivals.clone(),
            shed: Default::default(),
            horizon: Arc::new(actors::horizon::Horizon::load(
                &store,
                config.retention.telemetry_days,
            )?),
        },
    )?;
    // Every control-plane commit (HTTP changes, the scheduler's expiries) re-checks the
    // live streams before its caller answers: access that ends, ends on open streams too.
    directory.guard_streams(writer.handle());
    let transport = start_transport(&config, &ca, &store, &directory, &clock)?;
    let https = https_config(&config, &ca)?;
    sessions_out.connect(transport.handle.clone());
    let (outbox, drainer) = outbox::start(
        &config,
        store.clone(),
        writer.handle(),
        clock.clone(),
        gateway_metrics.clone(),
    )?;
    let usecases = actors::usecases::UseCases {
        writer: writer.handle(),
        directory: directory.clone(),
        clock: clock.clone(),
        scheduler: Default::default(),
        sessions: sessions_out,
        outbox: outbox.notify(),
        key_ack_wait: config.key_ack_wait,
        sms_key_pin: config.sms_key_pin,
        retention: config.retention,
    };
    spawn_background(&config, &store, &usecases, &metrics);
    let last_used = Arc::new(http::last_used::LastUsed::default());
    last_used.spawn_flusher(usecases.clone());
    let streams = Arc::new(http::stream::StreamCaps::new(
        config.sse_max_streams,
        config.sse_max_streams_per_principal,
        config.sse_buffer_events,
    ));
    let state = web::Data::new(http::AppState {
        store,
        usecases: usecases.clone(),
        directory,
        metrics,
        clock,
        ca,
        device_cert_validity: config.device_cert_validity,
        transport: transport.handle.clone(),
        transport_metrics: transport.metrics.clone(),
        gateway_metrics,
        metrics_token,
        streams,
        arrivals,
        last_used: last_used.clone(),
        auth_failures: Arc::new(http::auth_limit::FailureLimiter::new(
            config.auth_failures_per_minute,
        )),
        trusted_proxies: Arc::new(config.trusted_proxies.clone()),
        map_tile_url: config.map_tile_url.as_deref().map(Arc::from),
    });
    let (server, http_addr, https_addr) = bind_http(&config, state, https)?;
    let handle = server.handle();
    let ready = announce(&config, http_addr, https_addr, &transport)?;
    let _ = ready_tx.send(Ok((ready, store_watch)));

    let running = Running {
        server_task: actix_rt::spawn(server),
        http: handle,
        last_used,
        usecases,
        transport,
        arbiters,
        drainer,
        writer,
    };
    let _ = stopped.await;
    running.stop(&config.data_dir).await;
    Ok(())
}

/// The addresses the gateway listens on, written atomically to the data dir's ready file
/// (what `fleetgate-sim --data-dir` and the tests read) and logged with the console's URL.
fn announce(
    config: &Config,
    http: SocketAddr,
    https: Option<SocketAddr>,
    transport: &transport::Transport,
) -> anyhow::Result<Ready> {
    let ready = Ready {
        http,
        https,
        mqtt_tls: transport.tls_addr,
        mqtt_plain: transport.plain_addr,
    };
    let ready_json = serde_json::to_string(&ready)?;
    write_atomic(&config.data_dir.join(READY_FILE), ready_json.as_bytes())?;
    tracing::info!(ready = %ready_json, console = %ready.console_url(), "fleetgate ready");
    Ok(ready)
}

/// The actors' directory (one actor per device, one per account, started on demand) and
/// the two arbiters (threads of their own, apart from the HTTP workers) they run on.
fn start_actors(
    store: &Store,
    shared: actors::Context,
) -> anyhow::Result<(Arc<Directory>, Vec<actix_rt::Arbiter>)> {
    let arbiters: Vec<actix_rt::Arbiter> = (0..2).map(|_| actix_rt::Arbiter::new()).collect();
    let directory = Directory::start(
        store.clone(),
        shared,
        arbiters.iter().map(actix_rt::Arbiter::handle).collect(),
    )?;
    Ok((directory, arbiters))
}

/// The gateway's own schedules: the scheduler (grant and key expiries, support access
/// ends) and retention (pruning, sealing, compaction).
fn spawn_background(
    config: &Config,
    store: &Store,
    usecases: &actors::usecases::UseCases,
    metrics: &Arc<Metrics>,
) {
    actors::scheduler::spawn(
        store.clone(),
        usecases.clone(),
        metrics.clone(),
        config.scheduler_max_nap,
    );
    let retention = actors::retention::Schedule {
        prune_every: config.prune_every,
        compact_every: config.compact_every,
        nap: config.scheduler_max_nap,
        limits: config.prune_limits,
    };
    actors::retention::spawn(store.clone(), usecases.clone(), metrics.clone(), retention);
}

/// What runs until shutdown, stopped in [`Running::stop`]'s order.
struct Running {
    last_used: Arc<http::last_used::LastUsed>,
    usecases: actors::usecases::UseCases,
    transport: transport::Transport,
    arbiters: Vec<actix_rt::Arbiter>,
    http: actix_web::dev::ServerHandle,
    server_task: actix_rt::task::JoinHandle<std::io::Result<()>>,
    drainer: outbox::Drainer,
    writer: StoreWriter,
}

impl Running {
    async fn stop(self, data_dir: &Path) {
        tracing::info!("shutting down");
        // While the actors still answer the stream guard that follows every commit.
        if let Err(err) = self.last_used.flush(&self.usecases).await {
            tracing::warn!(%err, "storing last-used instants at shutdown failed");
        }
        // Sessions first, while the writer still commits: each acknowledges what is
        // committed, then gets MQTT 5 DISCONNECT 0x8B; nothing acknowledged is left
        // uncommitted.
        self.transport.stop().await;
        // Actors first: their end closes every live stream, which would otherwise hold the
        // graceful HTTP stop until its timeout. Requests in flight then finish or fail fast.
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        self.http.stop(true).await;
        let _ = self.server_task.await;
        // Before the writer: an invitation it was sending stays in the outbox for next time.
        self.drainer.stop().await;
        self.writer.shutdown();
        let _ = std::fs::remove_file(data_dir.join(READY_FILE));
        tracing::info!("store flushed; stopped");
    }
}

/// `fleetgate admin reset-token`: with the gateway stopped, gives the bootstrap
/// platform_admin a new token and writes it (0600, atomically) to the token file; returns
/// that file's path. Errors: no database in `data_dir`, the database locked by a running
/// gateway, or no platform_admin in it.
pub fn reset_platform_token(data_dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let config = Config::with_data_dir(data_dir);
    let db = config.db_path();
    anyhow::ensure!(
        std::fs::metadata(&db).is_ok_and(|meta| meta.len() > 0),
        "{} has no database: nothing to reset",
        data_dir.display()
    );
    let store = Store::open(&db)
        .with_context(|| format!("opening {} (is the gateway still running?)", db.display()))?;
    let now = SystemClock.now();
    let (admin, token) = store.transact(|tx| storage::users::reset_platform_token(tx, now))?;
    let file = data_dir.join(TOKEN_FILE);
    write_private_atomic(&file, token.as_bytes())?;
    tracing::info!(%admin, file = %file.display(), "reset the platform_admin token");
    Ok(file)
}

/// Opens the store (over a test's full-disk switch when it set one); on a first start,
/// creates the platform admin and writes its token.
fn open_store(config: &Config, now: storage::time::Timestamp) -> anyhow::Result<Store> {
    let store = match &config.store_faults {
        None => Store::open(&config.db_path()),
        Some(faults) => Store::open_with_faults(&config.db_path(), faults.clone()),
    }
    .context("opening the store")?;
    if let Some(token) = store.bootstrap(now)? {
        write_private_atomic(&config.data_dir.join(TOKEN_FILE), token.as_bytes())?;
        tracing::info!(file = %config.data_dir.join(TOKEN_FILE).display(), "created the bootstrap platform_admin");
    }
    Ok(store)
}

/// The HTTPS listener's TLS settings: the given PEM files, else the gateway's server
/// certificate issued for `--mqtt-tls-names`. `None` when HTTPS is off.
fn https_config(
    config: &Config,
    ca: &pki::CertificateAuthority,
) -> anyhow::Result<Option<rustls::ServerConfig>> {
    if config.http_tls_addr.is_none() {
        return Ok(None);
    }
    let (cert, key) = match &config.http_tls_files {
        Some(files) => files.clone(),
        None => ca.issue_server(&config.mqtt_tls_names, config.device_cert_validity)?,
    };
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    transport::tls::https_config(&read(&cert)?, &read(&key)?).map(Some)
}

/// Binds the HTTP API (port 0 picks one), and HTTPS when `https` is given, and returns the
/// server, not yet polled, with the two addresses.
fn bind_http(
    config: &Config,
    state: web::Data<http::AppState>,
    https: Option<rustls::ServerConfig>,
) -> anyhow::Result<(actix_web::dev::Server, SocketAddr, Option<SocketAddr>)> {
    use actix_web::dev::Service as _;
    let body_timeout = config.http_body_timeout;
    let server = HttpServer::new(move || {
        let metrics = state.gateway_metrics.clone();
        App::new()
            .app_data(state.clone())
            // Answers carry tokens, key secrets, PINs and private keys; none may sit in a
            // browser's or a proxy's cache. Live streams set their own `no-cache`.
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((actix_web::http::header::CACHE_CONTROL, "no-store")),
            )
            .configure(http::configure)
            .wrap_fn(move |mut request, service| {
                http::body_deadline::limit(&mut request, body_timeout);
                service.call(request)
            })
            // Outermost: times and counts every answer, the 404s of unmatched paths too.
            .wrap_fn(move |request, service| {
                let observed = http::observe::observe(&request);
                let call = service.call(request);
                let metrics = metrics.clone();
                async move {
                    let outcome = call.await;
                    http::observe::record(&metrics, observed, &outcome);
                    outcome
                }
            })
    })
    .workers(config.http_workers)
    .disable_signals()
    .shutdown_timeout(5)
    .bind(config.http_addr)
    .with_context(|| format!("binding HTTP on {}", config.http_addr))?;
    let http_addr = server
        .addrs()
        .first()
        .copied()
        .context("HTTP bound no address")?;
    let (server, https_addr) = match (config.http_tls_addr, https) {
        (Some(addr), Some(tls)) => {
            let server = server
                .bind_rustls_0_23(addr, tls)
                .with_context(|| format!("binding HTTPS on {addr}"))?;
            let bound = server.addrs().get(1).copied();
            (server, bound)
        }
        _ => (server, None),
    };
    Ok((server.run(), http_addr, https_addr))
}

/// Issues the server certificate, loads the deny list from the store, and starts the
/// listeners with the session cap resolved against the open-file limit.
fn start_transport(
    config: &Config,
    ca: &pki::CertificateAuthority,
    store: &Store,
    directory: &Arc<Directory>,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<transport::Transport> {
    let now = clock.now();
    let tls = match config.mqtt_tls_addr {
        Some(addr) => {
            let (cert, key) =
                ca.issue_server(&config.mqtt_tls_names, config.device_cert_validity)?;
            let files = transport::tls::TlsFiles {
                ca_pem: ca.ca_pem().to_owned(),
                cert_pem: std::fs::read_to_string(&cert).context("reading the server cert")?,
                key_pem: std::fs::read_to_string(&key).context("reading the server key")?,
            };
            Some((addr, files))
        }
        None => None,
    };
    let deny = transport::tls::DenyList::default();
    let rtx = store.begin_read()?;
    for serial in storage::certificates::revoked_serials(&rtx, now)? {
        deny.deny(&serial);
    }
    for (tenant, before) in storage::certificates::revoked_subjects(&rtx)? {
        deny.deny_issued_before(&tenant, before.0);
    }
    drop(rtx);
    let nofile = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let mut limits = config.mqtt_limits.clone();
    limits.max_sessions = config.session_cap(nofile);
    tracing::info!(
        max_sessions = limits.max_sessions,
        nofile,
        "MQTT session cap"
    );
    let backend = Arc::new(units::ActorBackend {
        directory: directory.clone(),
        store: store.clone(),
        clock: clock.clone(),
    });
    let listeners = transport::Listeners {
        tls,
        plain: config.mqtt_plain_addr,
    };
    transport::Transport::start(listeners, limits, backend, deny)
}

/// Writes via a temporary file and a rename, so a reader never sees half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

/// Writes a secret readable by the owner only (mode 0600).
/// [`write_private`] to a temporary file, then renamed over `path`: a crash leaves the old
/// file or the new one, never half of one.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    write_private(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("renaming {} into place", temporary.display()))?;
    Ok(())
}

pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}
