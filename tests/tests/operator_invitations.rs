//! SMS invitations end to end (issue 8): an operator created with `send_sms_invite` has its
//! invitation delivered by the webhook sender after failed attempts (retried with backoff,
//! sent once it succeeds, never again after), and an invitation still pending when the
//! gateway stops is delivered after the restart. The receiver is a tiny HTTP server on
//! 127.0.0.1:0 that this file controls.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use simulator::ApiClient;
use tests::{eventually, Fleet, TestGateway};

async fn call(client: &ApiClient, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let answer = client
        .request_raw(method, path, body.as_ref())
        .await
        .expect("answer");
    (answer.status, answer.body)
}

async fn create(client: &ApiClient, body: Value) -> (u16, Value) {
    call(client, Method::POST, "/v1/operators", Some(body)).await
}

/// A tiny webhook receiver on 127.0.0.1:0 that answers 503 while `failing` says so and
/// records every invitation it was sent.
struct Webhook {
    url: String,
    received: Arc<Mutex<Vec<(u16, Value)>>>,
    failing: Arc<Mutex<Box<dyn FnMut() -> bool + Send>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl Webhook {
    fn start(failing: impl FnMut() -> bool + Send + 'static) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let webhook = Webhook {
            url: format!("http://{addr}/sms"),
            received: Arc::default(),
            failing: Arc::new(Mutex::new(Box::new(failing))),
            stop: Arc::default(),
            addr,
        };
        let (received, failing, stop) = (
            webhook.received.clone(),
            webhook.failing.clone(),
            webhook.stop.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let fail = (failing.lock().expect("lock"))();
                let status = if fail { 503 } else { 200 };
                if let Some(body) = answer(stream, status) {
                    received.lock().expect("lock").push((status, body));
                }
            }
        });
        webhook
    }

    fn received(&self) -> Vec<(u16, Value)> {
        self.received.lock().expect("lock").clone()
    }

    fn set_failing(&self, failing: impl FnMut() -> bool + Send + 'static) {
        *self.failing.lock().expect("lock") = Box::new(failing);
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one HTTP request, answers `status` and closes; returns the JSON body.
fn answer(stream: TcpStream, status: u16) -> Option<Value> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let reason = if status == 200 {
        "OK"
    } else {
        "Service Unavailable"
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    serde_json::from_slice(&body).ok()
}

fn webhook_gateway(webhook: &Webhook) -> TestGateway {
    let url = webhook.url.clone();
    TestGateway::start_with(move |config| {
        config.sms_sender = gateway::config::SmsSenderKind::Webhook;
        config.sms_webhook_url = Some(url.clone());
        config.sms_retry_base = Duration::from_millis(50);
        config.sms_retry_cap = Duration::from_millis(200);
        config.sms_webhook_timeout = Duration::from_secs(2);
    })
}

async fn invitation_state(client: &ApiClient, id: &str) -> Value {
    let (status, operator) = call(client, Method::GET, &format!("/v1/operators/{id}"), None).await;
    assert_eq!(status, 200, "{operator}");
    operator["invitation"]["state"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_gets_the_invitation_after_failed_attempts_and_exactly_once_it_succeeds() {
    let mut calls = 0;
    let webhook = Webhook::start(move || {
        calls += 1;
        calls <= 2
    });
    let gateway = webhook_gateway(&webhook);
    let acme = Fleet::create(&gateway, "Acme").await;
    let (status, ann) = create(
        &acme.admin,
        json!({"name": "Ann", "phone": "+47 912 34 567", "send_sms_invite": true}),
    )
    .await;
    assert_eq!(status, 201, "{ann}");
    assert_eq!(ann["invitation"]["state"], "pending");
    let id = ann["id"].as_str().expect("id").to_owned();

    let delivered = eventually(|| async {
        let received = webhook.received();
        received
            .iter()
            .any(|(status, _)| *status == 200)
            .then_some(received)
    })
    .await
    .expect("delivered after the failures");
    let statuses: Vec<u16> = delivered.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    let attempts: Vec<u64> = delivered
        .iter()
        .map(|(_, body)| body["attempts"].as_u64().expect("attempts"))
        .collect();
    assert_eq!(
        attempts,
        [0, 1, 2],
        "each retry says how many failed before it"
    );
    let body = &delivered[2].1;
    assert_eq!(body["operator_id"], json!(id));
    assert_eq!(body["phone"], "+4791234567");
    assert_eq!(body["account_id"], json!(acme.account_id.to_string()));
    assert!(
        body["text"].as_str().expect("text").contains("Ann"),
        "{body}"
    );
    assert_eq!(
        delivered
            .iter()
            .map(|(_, b)| b["seq"].clone())
            .collect::<Vec<_>>(),
        vec![body["seq"].clone(); 3],
        "one invitation, one seq"
    );
    let sent = eventually(|| async {
        Some(invitation_state(&acme.admin, &id).await).filter(|state| state == "sent")
    })
    .await;
    assert_eq!(sent, Some(json!("sent")));
    // Sent means gone from the outbox: no further delivery, however long we wait.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(webhook.received().len(), 3);
    for (series, value) in [
        ("fleetgate_sms_outbox_sent_total", 1),
        ("fleetgate_sms_outbox_failed_total", 2),
        ("fleetgate_sms_outbox_retries_total", 2),
        ("fleetgate_sms_outbox_pending", 0),
    ] {
        assert!(acme.metric_is(series, value).await, "{series} {value}");
    }

    // An operator without an invitation sends nothing.
    let (status, _) = create(&acme.admin, json!({"name": "Bob", "phone": "+4792345678"})).await;
    assert_eq!(status, 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(webhook.received().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_pending_at_shutdown_is_delivered_after_the_restart() {
    let webhook = Webhook::start(|| true);
    let mut gateway = webhook_gateway(&webhook);
    let acme = Fleet::create(&gateway, "Acme").await;
    let (status, ann) = create(
        &acme.admin,
        json!({"name": "Ann", "phone": "+4791234567", "send_sms_invite": true}),
    )
    .await;
    assert_eq!(status, 201, "{ann}");
    let id = ann["id"].as_str().expect("id").to_owned();
    let failed = eventually(|| async { (webhook.received().len() >= 2).then_some(()) }).await;
    assert!(failed.is_some(), "the webhook is down and was tried");

    gateway.stop();
    assert!(webhook.received().iter().all(|(status, _)| *status == 503));
    webhook.set_failing(|| false);
    gateway.restart();

    let delivered = eventually(|| async {
        webhook
            .received()
            .into_iter()
            .find(|(status, _)| *status == 200)
    })
    .await
    .expect("delivered after the restart");
    assert_eq!(delivered.1["operator_id"], json!(id));
    assert!(
        delivered.1["attempts"].as_u64().expect("attempts") >= 1,
        "the failed attempts survived the restart: {}",
        delivered.1
    );
    // (A request cut off by the shutdown may still be logged as a 503; only one succeeds.)
    let successes = webhook
        .received()
        .iter()
        .filter(|(status, _)| *status == 200)
        .count();
    assert_eq!(successes, 1, "delivered once");
    let admin = acme.admin.rebase(&gateway.http_base());
    let sent = eventually(|| async {
        Some(invitation_state(&admin, &id).await).filter(|state| state == "sent")
    })
    .await;
    assert_eq!(sent, Some(json!("sent")));
}

#[test]
fn a_webhook_sender_without_a_url_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = gateway::Config::with_data_dir(dir.path());
    config.sms_sender = gateway::config::SmsSenderKind::Webhook;
    let err = gateway::Gateway::start(config.clone()).expect_err("refused");
    assert!(err.to_string().contains("--sms-webhook-url"), "{err}");
    config.sms_webhook_url = Some("ftp://example.invalid/sms".into());
    let err = gateway::Gateway::start(config).expect_err("refused");
    assert!(err.to_string().contains("http or https"), "{err}");
}

/// The invitation sent again on request: refused while one still waits in the outbox (409)
/// and for an operator without a phone (422 naming `phone`); after delivery it goes out
/// once more, a new outbox entry, audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_sent_again_on_request_once_the_first_went_out() {
    let fail_first = Arc::new(AtomicBool::new(true));
    let failing = fail_first.clone();
    let webhook = Webhook::start(move || failing.load(Ordering::SeqCst));
    let gateway = webhook_gateway(&webhook);
    let acme = Fleet::create(&gateway, "Acme").await;
    let (_, ann) = create(
        &acme.admin,
        json!({"name": "Ann", "phone": "+47 912 34 567", "send_sms_invite": true}),
    )
    .await;
    let id = ann["id"].as_str().expect("id").to_owned();
    let resend = format!("/v1/operators/{id}/invitation");
    // Still failing: the first invitation waits in the outbox, so a second is refused.
    let (status, problem) = call(&acme.admin, Method::POST, &resend, None).await;
    assert_eq!(status, 409, "{problem}");
    fail_first.store(false, Ordering::SeqCst);
    let sent = |count: usize| {
        let webhook = &webhook;
        async move {
            eventually(|| async {
                let ok = webhook
                    .received()
                    .iter()
                    .filter(|(status, _)| *status == 200)
                    .count();
                (ok >= count).then_some(ok)
            })
            .await
        }
    };
    assert_eq!(sent(1).await, Some(1));
    eventually(|| async {
        Some(invitation_state(&acme.admin, &id).await).filter(|state| state == "sent")
    })
    .await
    .expect("the first is sent");
    let (status, again) = call(&acme.admin, Method::POST, &resend, None).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["invitation"]["state"], "pending");
    assert_eq!(sent(2).await, Some(2));
    let seqs: Vec<Value> = webhook
        .received()
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body["seq"].clone())
        .collect();
    assert_ne!(seqs[0], seqs[1], "a new outbox entry");
    let (_, audit) = call(
        &acme.admin,
        Method::GET,
        "/v1/audit?action=operator.invite",
        None,
    )
    .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
    let (_, bob) = create(&acme.admin, json!({"name": "Bob"})).await;
    let bob = format!(
        "/v1/operators/{}/invitation",
        bob["id"].as_str().expect("id")
    );
    let (status, problem) = call(&acme.admin, Method::POST, &bob, None).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (422, Some("phone")),
        "{problem}"
    );
}

/// What the webhook delivered, texts only, once `count` arrived.
async fn texts(webhook: &Webhook, count: usize) -> Vec<String> {
    let delivered = || {
        webhook
            .received()
            .iter()
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body["text"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    eventually(|| async { Some(delivered()).filter(|texts| texts.len() >= count) })
        .await
        .unwrap_or_else(delivered)
}

async fn personal_key(fleet: &Fleet, gateway: &TestGateway, operator: &str, access: &str) -> Value {
    let now = gateway.now_ms();
    let at = |ms| simulator::telemetry::rfc3339_from_ms(ms).expect("time");
    let body = json!({"personal": true, "operator_id": operator, "asset_ids": ["ex1"],
        "access_type": access, "valid_from": at(now), "valid_to": at(now + 3_600_000)});
    let (status, created) = call(&fleet.admin, Method::POST, "/v1/keys", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["key"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_is_told_of_a_personal_key_with_the_pin_a_keypad_needs() {
    let webhook = Webhook::start(|| false);
    let gateway = webhook_gateway(&webhook);
    let acme = Fleet::create(&gateway, "Acme").await;
    acme.unit_with_asset("unit1", "ex1").await;
    let (_, ann) = create(
        &acme.admin,
        json!({"name": "Ann", "phone": "+47 912 34 567"}),
    )
    .await;
    let id = ann["id"].as_str().expect("id").to_owned();

    let keypad = personal_key(&acme, &gateway, &id, "keypad_pin").await;
    let pin = keypad["credential"].as_str().expect("pin");
    let sent = texts(&webhook, 1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].contains("ex1") && sent[0].contains(&format!("PIN: {pin}")),
        "{sent:?}"
    );
    // A digital key's secret never travels by SMS; a shared key tells nobody.
    personal_key(&acme, &gateway, &id, "digital_key").await;
    let sent = texts(&webhook, 2).await;
    assert!(!sent[1].contains("PIN") && !sent[1].contains(keypad["credential"].as_str().unwrap()));
    // Telling of keys is not an invitation: the operator's invitation state stays unset.
    assert_eq!(invitation_state(&acme.admin, &id).await, Value::Null);

    // With --sms-key-pin false the keypad's PIN stays out of the text.
    let quiet = Webhook::start(|| false);
    let url = quiet.url.clone();
    let gateway = TestGateway::start_with(move |config| {
        config.sms_sender = gateway::config::SmsSenderKind::Webhook;
        config.sms_webhook_url = Some(url.clone());
        config.sms_key_pin = false;
    });
    let acme = Fleet::create(&gateway, "Acme").await;
    acme.unit_with_asset("unit1", "ex1").await;
    let (_, bo) = create(
        &acme.admin,
        json!({"name": "Bo", "phone": "+47 912 34 568"}),
    )
    .await;
    personal_key(&acme, &gateway, bo["id"].as_str().unwrap(), "keypad_pin").await;
    let sent = texts(&quiet, 1).await;
    assert!(sent.len() == 1 && !sent[0].contains("PIN"), "{sent:?}");
}
