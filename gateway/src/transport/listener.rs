//! The accept loops and the running transport.
//!
//! The transport runs on its own multi-thread tokio runtime, apart from the actix system:
//! thousands of sessions do not share a thread with the HTTP workers or the actors. Each
//! accepted socket gets its own task at once; the TLS handshake runs there under a
//! deadline and a cap on concurrent handshakes, so a client that never finishes its
//! handshake delays nobody, and a reconnect storm queues instead of starving the CPU.
//! An accept error (say, out of file descriptors) is counted, logged at most once a second,
//! and followed by a short pause: the loop never spins.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::metrics::TransportMetrics;
use super::registry::Registry;
use super::session::{self, Shared};
use super::tls::{self, DenyList};
use super::tls_stream;
use super::{Backend, CloseReason, Limits, Listeners};

/// The running transport: its addresses, its handle, and what [`Transport::stop`] needs.
pub struct Transport {
    pub tls_addr: Option<SocketAddr>,
    pub plain_addr: Option<SocketAddr>,
    pub metrics: Arc<TransportMetrics>,
    pub handle: TransportHandle,
    /// Owns the sessions' threads; shut down (in the background) by [`Transport::stop`].
    runtime: Option<tokio::runtime::Runtime>,
    accept_tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What the rest of the gateway drives live sessions with; cheap to clone.
#[derive(Clone)]
pub struct TransportHandle {
    registry: Arc<Registry>,
    /// Weak: the backend holds the actors, whose outbound side holds this handle; a strong
    /// reference would keep the store open after shutdown.
    backend: std::sync::Weak<dyn Backend>,
    deny: DenyList,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for TransportHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportHandle")
            .field("denied", &self.deny.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("tls_addr", &self.tls_addr)
            .field("plain_addr", &self.plain_addr)
            .finish_non_exhaustive()
    }
}

fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("binding MQTT on {addr}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

impl Transport {
    /// Binds the listeners (port 0 picks a free port, read back at once) and starts
    /// accepting. `deny` holds the serials refused from the first handshake on.
    pub fn start(
        listeners: Listeners,
        limits: Limits,
        backend: Arc<dyn Backend>,
        deny: DenyList,
    ) -> anyhow::Result<Transport> {
        if listeners.tls.is_none() && listeners.plain.is_none() {
            anyhow::bail!("no MQTT listener configured: set --mqtt-tls-addr or --mqtt-plain-addr");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mqtt")
            .enable_all()
            .build()?;
        let metrics = Arc::new(TransportMetrics::new());
        let registry = Arc::new(Registry::new(limits.clone(), metrics.clone()));
        let shared = Arc::new(Shared {
            backend,
            registry: registry.clone(),
            permits: Arc::new(Semaphore::new(limits.ingest_permits)),
        });
        let handshakes = Arc::new(Semaphore::new(limits.max_handshakes));
        let mut accept_tasks = Vec::new();
        let mut tls_addr = None;
        if let Some((addr, files)) = &listeners.tls {
            let config = Arc::new(tls::server_config(files, deny.clone())?);
            let listener = bind(*addr)?;
            tls_addr = Some(listener.local_addr()?);
            let accept = Accept {
                shared: shared.clone(),
                tls: Some((config, handshakes.clone())),
            };
            accept_tasks.push(runtime.spawn(accept.run(listener)));
        }
        let mut plain_addr = None;
        if let Some(addr) = listeners.plain {
            let listener = bind(addr)?;
            plain_addr = Some(listener.local_addr()?);
            let accept = Accept {
                shared: shared.clone(),
                tls: None,
            };
            accept_tasks.push(runtime.spawn(accept.run(listener)));
        }
        let handle = TransportHandle {
            registry,
            backend: Arc::downgrade(&shared.backend),
            deny,
            runtime: runtime.handle().clone(),
        };
        Ok(Transport {
            tls_addr,
            plain_addr,
            metrics,
            handle,
            runtime: Some(runtime),
            accept_tasks,
        })
    }

    /// Stops accepting, lets every session finish the acknowledgements the store writer
    /// commits (then MQTT 5 DISCONNECT 0x8B), and shuts the runtime down.
    pub async fn stop(mut self) {
        for task in &self.accept_tasks {
            task.abort();
        }
        let within = self.handle.registry.limits.drain_timeout;
        self.handle
            .run(move |registry| async move { registry.drain(within).await })
            .await;
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl TransportHandle {
    /// Sends a unit's new key set to its live session (if it is subscribed to its keys).
    pub fn push_keys(&self, device: &str, payload: Bytes) {
        self.registry.push_keys(device, payload);
    }

    /// Whether the account has an integration session (live or persistent) points may go to.
    pub fn listening(&self, account: &str) -> bool {
        self.registry.listening(account)
    }

    /// Queues a live point for an account's integration session; sheds when it is full.
    pub fn deliver(&self, account: &str, topic: &Arc<str>, payload: Bytes) {
        self.registry.deliver(account, topic, payload);
    }

    /// Access changed (a grant, share or partnership ended, an asset went): points queued
    /// for integration sessions that their account may no longer see are dropped from every
    /// persistent session's queue before this returns, and each live integration session
    /// re-checks its own queue before it sends another point.
    pub fn access_changed(&self) {
        // Gone only once the transport stopped: no queue is left to deliver from.
        let Some(backend) = self.backend.upgrade() else {
            return;
        };
        self.registry
            .recheck(|tenant, queue| backend.retain_deliverable(tenant, queue));
    }

    /// Closes the live session of `tenant` and returns once it has ended (at most ~5 s).
    pub async fn close(&self, tenant: &str) {
        let tenant = tenant.to_owned();
        self.run(
            move |registry| async move { registry.close(&tenant, CloseReason::Revoked).await },
        )
        .await;
    }

    /// Refuses `serials` at every later handshake and closes the live sessions presented
    /// with them; returns once those sessions have ended.
    pub async fn revoke(&self, serials: &[String]) {
        for serial in serials {
            self.deny.deny(serial);
        }
        let serials = serials.to_vec();
        self.run(move |registry| async move { registry.close_serials(&serials).await })
            .await;
    }

    /// Refuses every certificate of `tenant` issued before `before_ms` (ms since the Unix
    /// epoch) at every later handshake, and closes the tenant's live session (a unit that
    /// holds a newer certificate reconnects with it); returns once that session has ended.
    pub async fn revoke_issued_before(&self, tenant: &str, before_ms: u64) {
        self.deny.deny_issued_before(tenant, before_ms);
        self.close(tenant).await;
    }

    pub fn live_sessions(&self) -> usize {
        self.registry.live_sessions()
    }

    /// Runs `work` on the transport's runtime (its timers live there) and awaits it from
    /// whatever runtime the caller is on.
    async fn run<F, Fut>(&self, work: F)
    where
        F: FnOnce(Arc<Registry>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let _ = self.runtime.spawn(work(self.registry.clone())).await;
    }
}

/// One listener's accept loop.
struct Accept {
    shared: Arc<Shared>,
    /// The TLS listener's rustls configuration and its cap on handshakes in progress.
    tls: Option<(Arc<rustls::ServerConfig>, Arc<Semaphore>)>,
}

impl Accept {
    async fn run(self, listener: std::net::TcpListener) {
        let listener = match TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(err) => {
                tracing::error!(%err, "cannot register the MQTT listener");
                return;
            }
        };
        let this = Arc::new(self);
        let last_logged = AtomicU64::new(0);
        let started = Instant::now();
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let this = this.clone();
                    tokio::spawn(async move { this.connection(stream).await });
                }
                Err(err) => {
                    let metrics = &this.shared.registry.metrics;
                    metrics.accept_errors.inc();
                    let now = started.elapsed().as_secs();
                    if last_logged.swap(now, Ordering::Relaxed) != now {
                        tracing::warn!(%err, "MQTT accept failed; pausing (logged once a second)");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn connection(&self, stream: TcpStream) {
        let metrics = self.shared.registry.metrics.clone();
        let limits = &self.shared.registry.limits;
        let open = metrics.connections.inc() + 1;
        let _guard = Decrement(metrics.clone());
        if open as usize > limits.max_sessions + limits.max_handshakes {
            TransportMetrics::count(&metrics.refusals, "reason", "connection_cap");
            return;
        }
        let _ = stream.set_nodelay(true);
        let Some((config, handshakes)) = &self.tls else {
            session::run(stream, self.shared.clone(), None).await;
            return;
        };
        let deadline = tokio::time::Instant::now() + limits.handshake_timeout;
        // Boxed, like the session's phases (`session::run`): the handshake's state is freed
        // once it is done instead of staying reserved in the task of every idle unit.
        let handshake = Box::pin(async {
            let Ok(_permit) = handshakes.acquire().await else {
                return Err("error");
            };
            tls_stream::accept(stream, config.clone())
                .await
                // Boxed: a value passed into an `async fn` is stored in its caller's future
                // and again in the callee's (its arguments and then its locals), so the
                // 1.2 KB stream was held three times in every idle unit's task (dhat).
                .map(Box::new)
                .map_err(|err| handshake_failure(&err))
        });
        let stream = match tokio::time::timeout_at(deadline, handshake).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(reason)) => {
                TransportMetrics::count(&metrics.handshake_failures, "reason", reason);
                return;
            }
            Err(_) => {
                TransportMetrics::count(&metrics.handshake_failures, "reason", "timeout");
                return;
            }
        };
        metrics.handshakes.inc();
        let identity = stream
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| tls::identity_of(cert));
        match identity {
            Some(identity) => session::run(stream, self.shared.clone(), Some(identity)).await,
            None => TransportMetrics::count(&metrics.refusals, "reason", "no_identity"),
        }
    }
}

/// The `reason` label of a failed TLS handshake: `revoked` (the deny list refused the
/// certificate), `bad_certificate` (none, or one the CA did not sign or that expired),
/// `error` (anything else: a protocol error, a closed socket).
pub(super) fn handshake_failure(err: &std::io::Error) -> &'static str {
    use rustls::Error as Tls;
    match err.get_ref().and_then(|inner| inner.downcast_ref::<Tls>()) {
        Some(Tls::InvalidCertificate(rustls::CertificateError::Revoked)) => "revoked",
        Some(Tls::InvalidCertificate(_) | Tls::NoCertificatesPresented) => "bad_certificate",
        _ => "error",
    }
}

/// Counts a connection as closed when its task ends, however it ends.
struct Decrement(Arc<TransportMetrics>);

impl Drop for Decrement {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_failures_are_told_apart_by_the_tls_error() {
        let wrapped =
            |err: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, err);
        let revoked = rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked);
        assert_eq!(handshake_failure(&wrapped(revoked)), "revoked");
        let expired = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert_eq!(handshake_failure(&wrapped(expired)), "bad_certificate");
        assert_eq!(
            handshake_failure(&wrapped(rustls::Error::NoCertificatesPresented)),
            "bad_certificate"
        );
        let closed = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(handshake_failure(&closed), "error");
    }
}
