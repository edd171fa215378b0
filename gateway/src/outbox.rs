//! The SMS invitation drainer: a task that hands each due outbox entry to an [`SmsSender`]
//! and records the outcome through the store writer (deleted once sent; otherwise its
//! attempt count and next attempt time, with exponential backoff up to a cap).
//!
//! Nothing here decides what an invitation is: operators queue them in their own
//! transaction (`storage::operators`). Because an entry leaves the outbox only after a
//! confirmed send, an entry survives any restart or crash; a crash between the send and the
//! delete sends it again, so delivery is at least once and receivers de-duplicate by `seq`.
//!
//! Two backoffs work together: each entry's persisted `next_attempt_at` (so a restart does
//! not hammer a failing receiver), and an in-memory pause of the whole drainer after
//! consecutive failures (so an outage costs one request per backoff step, not one per
//! pending entry).

use std::sync::Arc;
use std::time::Duration;

use actors::writer::WriterHandle;
use futures_util::future::BoxFuture;
use serde::Serialize;
use storage::operators::{self, Invitation};
use storage::time::{Clock, Timestamp};
use storage::Store;
use tokio::sync::{oneshot, Notify};

/// Invitations read per round; the next round follows at once while more are due.
const ROUND: usize = 100;

/// Why a send failed; every failure is retried.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the webhook could not be reached: {0}")]
    Transport(String),
    #[error("the webhook answered {status}")]
    Rejected { status: u16 },
}

/// Delivers one invitation. `Ok` means the receiver has it: the entry is then deleted.
pub trait SmsSender: Send + Sync + std::fmt::Debug {
    fn send<'a>(&'a self, invitation: &'a Invitation) -> BoxFuture<'a, Result<(), SendError>>;
}

/// The default: writes the invitation to the log (development, or no SMS provider yet).
#[derive(Debug, Default)]
pub struct LogSender;

impl SmsSender for LogSender {
    fn send<'a>(&'a self, invitation: &'a Invitation) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            tracing::info!(
                seq = invitation.seq,
                operator = %invitation.operator_id,
                to = %invitation.phone,
                // The log is read by more people than the operator: no keypad PIN in it.
                text = %storage::operators::redact_pin(&invitation.text),
                "SMS invitation (log sender)"
            );
            Ok(())
        })
    }
}

/// What the webhook receives: one JSON object per invitation.
#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    /// Unique per gateway; the same on a repeated delivery.
    pub seq: u64,
    pub operator_id: &'a str,
    pub account_id: &'a str,
    /// E.164.
    pub phone: &'a str,
    pub text: &'a str,
    /// Failed attempts before this one.
    pub attempts: u32,
    pub created_at: String,
}

/// POSTs each invitation as JSON to a configured URL; any 2xx is a confirmed send.
#[derive(Debug)]
pub struct WebhookSender {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl WebhookSender {
    pub fn new(url: reqwest::Url, timeout: Duration) -> anyhow::Result<WebhookSender> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(WebhookSender { client, url })
    }
}

impl SmsSender for WebhookSender {
    fn send<'a>(&'a self, invitation: &'a Invitation) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let body = WebhookBody {
                seq: invitation.seq,
                operator_id: invitation.operator_id.as_str(),
                account_id: invitation.account_id.as_str(),
                phone: &invitation.phone,
                text: &invitation.text,
                attempts: invitation.attempts,
                created_at: invitation.created_at.to_rfc3339(),
            };
            let response = self
                .client
                .post(self.url.clone())
                .header("Idempotency-Key", format!("invitation-{}", invitation.seq))
                .json(&body)
                .send()
                .await
                .map_err(|err| SendError::Transport(err.without_url().to_string()))?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(SendError::Rejected {
                    status: status.as_u16(),
                })
            }
        })
    }
}

/// How long to wait after failures: `base`, doubling per failure, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The wait after the `failures`-th consecutive failure (1 -> `base`).
    pub fn after(self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }
}

fn later(now: Timestamp, wait: Duration) -> Timestamp {
    let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    Timestamp(now.0.saturating_add(millis))
}

/// Tells the drainer that an invitation was queued, so it does not wait for its next nap.
#[derive(Debug, Clone, Default)]
pub struct OutboxWaker(Arc<Notify>);

impl OutboxWaker {
    /// The notification the use cases fire after they queue an invitation.
    pub fn notify(&self) -> Arc<Notify> {
        self.0.clone()
    }

    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// The running drainer. [`Drainer::stop`] ends it; an in-flight send is abandoned and its
/// entry stays in the outbox.
#[derive(Debug)]
pub struct Drainer {
    /// Dropping or firing it ends the task at its next await.
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Drainer {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Everything the drain loop needs.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub store: Store,
    pub writer: WriterHandle,
    pub clock: Arc<dyn Clock>,
    pub sender: Arc<dyn SmsSender>,
    pub backoff: Backoff,
    /// The longest nap without looking at the outbox and the clock again (bounds how late
    /// a jump of a manual clock is noticed).
    pub max_nap: Duration,
    /// Sends, failures, retries and the outbox's length.
    pub metrics: Arc<crate::metrics::GatewayMetrics>,
}

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Nothing was due.
    Idle,
    /// Everything due was sent.
    Sent,
    /// A send failed; the round stopped there.
    Failed,
}

impl Outbox {
    /// Starts the drain loop on the current (actix/tokio) runtime.
    pub fn spawn(self, waker: OutboxWaker) -> Drainer {
        let (stop, stopped) = oneshot::channel();
        let task = actix_rt::spawn(self.run(waker, stopped));
        Drainer { stop, task }
    }

    async fn run(self, waker: OutboxWaker, mut stopped: oneshot::Receiver<()>) {
        let mut failures: u32 = 0;
        let mut paused_until: Option<Timestamp> = None;
        loop {
            let now = self.clock.now();
            if paused_until.is_none_or(|until| until <= now) {
                let round = tokio::select! {
                    _ = &mut stopped => return,
                    round = self.round() => round,
                };
                match round {
                    Ok(Round::Sent) => {
                        failures = 0;
                        paused_until = None;
                        continue;
                    }
                    Ok(Round::Idle) => paused_until = None,
                    Ok(Round::Failed) => {
                        failures = failures.saturating_add(1);
                        paused_until = Some(later(self.clock.now(), self.backoff.after(failures)));
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "SMS outbox: reading or recording failed");
                        failures = failures.saturating_add(1);
                        paused_until = Some(later(self.clock.now(), self.backoff.after(failures)));
                    }
                }
            }
            self.note_pending();
            let nap = self.nap(paused_until);
            tokio::select! {
                _ = &mut stopped => return,
                _ = waker.0.notified() => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// Sets the pending gauge to the outbox's length (left as it was when unreadable).
    fn note_pending(&self) {
        let pending = self
            .store
            .begin_read()
            .ok()
            .and_then(|rtx| operators::pending_invitations(&rtx).ok());
        if let Some(pending) = pending {
            let pending = i64::try_from(pending).unwrap_or(i64::MAX);
            self.metrics.outbox_pending.set(pending);
        }
    }

    /// Until the next due entry or the end of the pause, at most `max_nap`.
    fn nap(&self, paused_until: Option<Timestamp>) -> Duration {
        let now = self.clock.now();
        let next = match paused_until {
            Some(until) if until > now => Some(until),
            _ => self
                .store
                .begin_read()
                .ok()
                .and_then(|rtx| operators::next_invitation_at(&rtx).ok().flatten()),
        };
        match next {
            Some(at) => Duration::from_millis(at.0.saturating_sub(now.0)).min(self.max_nap),
            None => self.max_nap,
        }
    }

    /// Sends every due invitation, oldest due first, until one fails.
    async fn round(&self) -> Result<Round, storage::OpError> {
        let due = operators::due_invitations(&self.store.begin_read()?, self.clock.now(), ROUND)?;
        if due.is_empty() {
            return Ok(Round::Idle);
        }
        for invitation in due {
            let seq = invitation.seq;
            if invitation.attempts > 0 {
                self.metrics.outbox_retries.inc();
            }
            match self.sender.send(&invitation).await {
                Ok(()) => {
                    self.metrics.outbox_sent.inc();
                    let now = self.clock.now();
                    self.writer
                        .execute(move |tx| operators::invitation_sent(tx, seq, now))
                        .await?;
                    tracing::info!(seq, operator = %invitation.operator_id, "SMS invitation sent");
                }
                Err(err) => {
                    self.metrics.outbox_failed.inc();
                    let attempts = invitation.attempts.saturating_add(1);
                    let next = later(self.clock.now(), self.backoff.after(attempts));
                    self.writer
                        .execute(move |tx| operators::invitation_failed(tx, seq, next))
                        .await?;
                    tracing::warn!(seq, attempts, error = %err, next_attempt_at = %next, "SMS invitation not sent; will retry");
                    return Ok(Round::Failed);
                }
            }
        }
        Ok(Round::Sent)
    }
}

/// Builds the configured sender and starts the drainer: what `serve` calls.
pub fn start(
    config: &crate::Config,
    store: Store,
    writer: WriterHandle,
    clock: Arc<dyn Clock>,
    metrics: Arc<crate::metrics::GatewayMetrics>,
) -> anyhow::Result<(OutboxWaker, Drainer)> {
    let sender: Arc<dyn SmsSender> = match config.sms_sender {
        crate::config::SmsSenderKind::Log => Arc::new(LogSender),
        crate::config::SmsSenderKind::Webhook => Arc::new(WebhookSender::new(
            config.sms_webhook_url()?,
            config.sms_webhook_timeout,
        )?),
    };
    let waker = OutboxWaker::default();
    let outbox = Outbox {
        store,
        writer,
        clock,
        sender,
        backoff: Backoff {
            base: config.sms_retry_base,
            cap: config.sms_retry_cap,
        },
        max_nap: config.scheduler_max_nap,
        metrics,
    };
    Ok((waker.clone(), outbox.spawn(waker)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_base_up_to_the_cap() {
        let backoff = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        let waits: Vec<u64> = (1..=8).map(|n| backoff.after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff.after(0), Duration::from_secs(1));
        assert_eq!(backoff.after(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn later_saturates() {
        assert_eq!(later(Timestamp(5), Duration::from_millis(7)), Timestamp(12));
        assert_eq!(
            later(Timestamp(u64::MAX - 1), Duration::from_secs(1)),
            Timestamp(u64::MAX)
        );
    }
}
