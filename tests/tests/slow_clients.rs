//! A client that sends a request's head and then only part of its body is answered, not
//! held for ever: past the body deadline (`Config::http_body_timeout`) the gateway answers
//! 408 and closes the connection, and nothing was changed by the half-sent request.

use std::time::Duration;

use reqwest::Method;
use tests::{call, Fleet, TestGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_completes_is_answered_408_within_the_deadline() {
    let gateway = TestGateway::start_with(|config| {
        config.http_body_timeout = Duration::from_secs(1);
    });
    let fleet = Fleet::create(&gateway, "Acme").await;
    let address = gateway.http_base().trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connects");
    let head = format!(
        "POST /v1/assets HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"id\":\"half",
        fleet.admin_token
    );
    socket.write_all(head.as_bytes()).await.expect("sent");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "answered and closed, not held");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("did not arrive within 1 s"), "{text}");
    let (status, assets) = call(&fleet.admin, Method::GET, "/v1/assets", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        assets["items"],
        serde_json::json!([]),
        "nothing half-made: {assets}"
    );
}
