//! The unit session's TLS stream against a rustls client (tokio-rustls) over an in-memory
//! pipe: messages of every size, records split across reads and many in one read, both
//! close_notify directions, KeyUpdate, garbage, a revoked certificate, and that an idle
//! stream holds no buffer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_rustls::client::TlsStream as ClientStream;
use tokio_rustls::TlsConnector;

use super::{accept, TlsStream, MAX_PENDING, MAX_RECORD, WRITE_CHUNK};
use crate::pki::CertificateAuthority;
use crate::transport::tls::{server_config, DenyList, TlsFiles};

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// A gateway CA, the server's configuration (with its deny list) and one unit's identity.
struct Fixture {
    _dir: tempfile::TempDir,
    server: Arc<rustls::ServerConfig>,
    deny: DenyList,
    ca_pem: String,
    unit_cert: String,
    unit_key: String,
    unit_serial: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = CertificateAuthority::open_or_create(dir.path()).expect("ca");
    let (cert_path, key_path) = ca
        .issue_server(&["localhost".into()], YEAR)
        .expect("server");
    let files = TlsFiles {
        ca_pem: ca.ca_pem().to_owned(),
        cert_pem: std::fs::read_to_string(cert_path).expect("server cert"),
        key_pem: std::fs::read_to_string(key_path).expect("server key"),
    };
    let deny = DenyList::default();
    let server = Arc::new(server_config(&files, deny.clone()).expect("server config"));
    let unit = ca.issue_device("unit1", YEAR).expect("unit");
    Fixture {
        _dir: dir,
        server,
        deny,
        ca_pem: files.ca_pem,
        unit_cert: unit.cert_pem,
        unit_key: unit.key_pem.expect("generated key"),
        unit_serial: unit.serial,
    }
}

impl Fixture {
    fn client_config(&self, tls12: bool) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.expect("ca pem")).expect("root");
        }
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let chain = CertificateDer::pem_slice_iter(self.unit_cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("unit cert");
        let key = PrivateKeyDer::from_pem_slice(self.unit_key.as_bytes()).expect("unit key");
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .expect("client auth");
        Arc::new(config)
    }

    /// A handshake over a pipe of `pipe` bytes (a small pipe splits every record across
    /// reads); returns both ends.
    async fn pair(
        &self,
        pipe: usize,
        tls12: bool,
    ) -> (ClientStream<DuplexStream>, TlsStream<DuplexStream>) {
        let (client_io, server_io) = tokio::io::duplex(pipe);
        self.handshake(client_io, server_io, tls12).await
    }

    /// Both ends' handshakes, run together over `client_io` and `server_io`.
    async fn handshake(
        &self,
        client_io: DuplexStream,
        server_io: DuplexStream,
        tls12: bool,
    ) -> (ClientStream<DuplexStream>, TlsStream<DuplexStream>) {
        let connector = TlsConnector::from(self.client_config(tls12));
        let name = ServerName::try_from("localhost").expect("name");
        let (client, server) = tokio::join!(
            connector.connect(name, client_io),
            accept(server_io, self.server.clone())
        );
        (
            client.expect("client handshake"),
            server.expect("server handshake"),
        )
    }
}

/// Copies the server's bytes to the client record by record, counting the records.
async fn counting_relay(
    mut from_server: tokio::io::ReadHalf<DuplexStream>,
    mut to_client: tokio::io::WriteHalf<DuplexStream>,
    records: Arc<AtomicUsize>,
) {
    let mut header = [0; 5];
    while from_server.read_exact(&mut header).await.is_ok() {
        // RFC 8446 §5.1: type, legacy version, then the length of what follows.
        let mut body = vec![0; usize::from(u16::from_be_bytes([header[3], header[4]]))];
        if from_server.read_exact(&mut body).await.is_err() {
            return;
        }
        records.fetch_add(1, Ordering::SeqCst);
        if to_client.write_all(&header).await.is_err() || to_client.write_all(&body).await.is_err()
        {
            return;
        }
    }
}

impl Fixture {
    /// Like [`Fixture::pair`], with the server's records counted on their way to the client.
    async fn counted_pair(
        &self,
    ) -> (
        ClientStream<DuplexStream>,
        TlsStream<DuplexStream>,
        Arc<AtomicUsize>,
    ) {
        let (client_io, client_relay) = tokio::io::duplex(1 << 16);
        let (server_relay, server_io) = tokio::io::duplex(1 << 16);
        let (mut from_client, to_client) = tokio::io::split(client_relay);
        let (from_server, mut to_server) = tokio::io::split(server_relay);
        let records = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
        });
        tokio::spawn(counting_relay(from_server, to_client, records.clone()));
        let (client, server) = self.handshake(client_io, server_io, false).await;
        (client, server, records)
    }
}

/// Reads exactly `len` bytes through a caller buffer of `chunk` bytes.
async fn read_exactly(server: &mut TlsStream<DuplexStream>, len: usize, chunk: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(len);
    let mut buf = vec![0; chunk];
    while got.len() < len {
        let n = server.read(&mut buf).await.expect("server read");
        assert!(n > 0, "EOF after {} of {len} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
        // Bounded at every step, however small the caller's buffer.
        assert!(server.buffered_bytes() <= MAX_PENDING + MAX_RECORD);
    }
    got
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn echo_round_trip(tls12: bool) {
    let fixture = fixture();
    let (mut client, mut server) = fixture.pair(1 << 20, tls12).await;
    for len in [1, 5, 300, MAX_RECORD, 3 * WRITE_CHUNK + 7] {
        let sent = pattern(len);
        client.write_all(&sent).await.expect("client write");
        client.flush().await.expect("client flush");
        // A caller buffer smaller than one record: the rest waits in the stream.
        let got = read_exactly(&mut server, len, 256).await;
        assert_eq!(got, sent, "{len} bytes up");
        server.write_all(&got).await.expect("server write");
        server.flush().await.expect("server flush");
        let mut back = vec![0; len];
        client.read_exact(&mut back).await.expect("client read");
        assert_eq!(back, sent, "{len} bytes down");
    }
    assert_eq!(server.buffered_bytes(), 0, "idle stream holds a buffer");
}

#[tokio::test]
async fn messages_of_every_size_round_trip_over_tls13() {
    echo_round_trip(false).await;
}

#[tokio::test]
async fn messages_of_every_size_round_trip_over_tls12() {
    echo_round_trip(true).await;
}

#[tokio::test]
async fn records_split_across_reads_are_joined() {
    let fixture = fixture();
    // Seven bytes at a time: every record, handshake ones too, arrives in pieces.
    let (mut client, mut server) = fixture.pair(7, false).await;
    let sent = pattern(2 * MAX_RECORD);
    let writer = async {
        client.write_all(&sent).await.expect("client write");
        client.flush().await.expect("client flush");
    };
    let (_, got) = tokio::join!(writer, read_exactly(&mut server, sent.len(), 4096));
    assert_eq!(got, sent);
    assert_eq!(server.buffered_bytes(), 0);
}

#[tokio::test]
async fn many_records_in_one_read_are_all_delivered() {
    let fixture = fixture();
    let (mut client, mut server) = fixture.pair(1 << 20, false).await;
    let mut sent = Vec::new();
    for i in 0..500u32 {
        let message = format!("message {i};");
        // One record each: tokio-rustls encrypts every write as its own record.
        client.write_all(message.as_bytes()).await.expect("write");
        client.flush().await.expect("flush");
        sent.extend_from_slice(message.as_bytes());
    }
    // All 500 records wait in the pipe; the server reads them in a few socket reads.
    let got = read_exactly(&mut server, sent.len(), 64).await;
    assert_eq!(got, sent);
    assert_eq!(server.buffered_bytes(), 0);
}

#[tokio::test]
async fn the_idle_stream_holds_no_buffer_after_an_exchange() {
    let fixture = fixture();
    let (mut client, mut server) = fixture.pair(1 << 16, false).await;
    assert_eq!(server.buffered_bytes(), 0, "right after the handshake");
    client.write_all(b"ping").await.expect("write");
    client.flush().await.expect("flush");
    let mut buf = [0; 256];
    let n = server.read(&mut buf).await.expect("read");
    assert_eq!(&buf[..n], b"ping");
    server.write_all(b"pong").await.expect("write");
    server.flush().await.expect("flush");
    let n = client.read(&mut buf).await.expect("read");
    assert_eq!(&buf[..n], b"pong");
    assert_eq!(server.buffered_bytes(), 0);
}

#[tokio::test]
async fn close_notify_is_honoured_both_ways() {
    let fixture = fixture();
    let (mut client, mut server) = fixture.pair(1 << 16, false).await;
    client.write_all(b"last words").await.expect("write");
    client.shutdown().await.expect("client close_notify");
    let mut got = Vec::new();
    server
        .read_to_end(&mut got)
        .await
        .expect("a clean end, not an error");
    assert_eq!(got, b"last words");
    // Writing after the peer's close_notify is allowed (RFC 8446 §6.1), then ours.
    server
        .write_all(b"bye")
        .await
        .expect("write after the peer closed");
    server.shutdown().await.expect("server close_notify");
    let mut back = Vec::new();
    client
        .read_to_end(&mut back)
        .await
        .expect("the client sees a clean end");
    assert_eq!(back, b"bye");
    assert!(
        server.write_all(b"more").await.is_err(),
        "no write after close_notify"
    );
}

#[tokio::test]
async fn a_connection_dropped_without_close_notify_is_an_error() {
    let fixture = fixture();
    let (client, mut server) = fixture.pair(1 << 16, false).await;
    drop(client);
    let mut buf = [0; 16];
    let err = server.read(&mut buf).await.expect_err("truncation");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn a_key_update_from_the_client_is_answered() {
    let fixture = fixture();
    let (mut client, mut server, records) = fixture.counted_pair().await;
    // Round 0 without a key update (one record back), then three with one (two records
    // back: our KeyUpdate, RFC 8446 §4.6.3, then the data under the new keys).
    for round in 0..4 {
        if round > 0 {
            client
                .get_mut()
                .1
                .refresh_traffic_keys()
                .expect("key update");
        }
        let message = format!("round {round}");
        client.write_all(message.as_bytes()).await.expect("write");
        client.flush().await.expect("flush");
        let got = read_exactly(&mut server, message.len(), 256).await;
        assert_eq!(got, message.as_bytes());
        let before = records.load(Ordering::SeqCst);
        server.write_all(b"ok").await.expect("write");
        server.flush().await.expect("flush");
        let mut back = [0; 2];
        client
            .read_exact(&mut back)
            .await
            .expect("read with the new keys");
        assert_eq!(&back, b"ok");
        let expected = if round == 0 { 1 } else { 2 };
        assert_eq!(
            records.load(Ordering::SeqCst) - before,
            expected,
            "round {round}"
        );
    }
    assert_eq!(server.buffered_bytes(), 0);
}

#[tokio::test]
async fn garbage_after_the_handshake_fails_the_stream_with_an_alert() {
    let fixture = fixture();
    let (mut client, mut server) = fixture.pair(1 << 16, false).await;
    // An application-data record whose ciphertext does not authenticate.
    let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x40];
    record.extend_from_slice(&[0xAB; 0x40]);
    client
        .get_mut()
        .0
        .write_all(&record)
        .await
        .expect("raw write");
    let mut buf = [0; 64];
    let err = server.read(&mut buf).await.expect_err("bad record");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(server.read(&mut buf).await.is_err(), "failed for good");
    assert!(server.write_all(b"x").await.is_err());
    let _ = server.shutdown().await;
    // The client hears bad_record_mac.
    let heard = client.read(&mut buf).await.expect_err("alert");
    assert!(heard.to_string().contains("BadRecordMac"), "{heard}");
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_is_refused_without_panic() {
    let fixture = fixture();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut inputs: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        // A handshake record announcing the largest length, then nothing.
        vec![0x16, 0x03, 0x01, 0xff, 0xff],
        // A ClientHello header claiming 16 MiB.
        vec![0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0xff, 0xff, 0xff],
    ];
    for len in 0..64 {
        let bytes = (0..len * 7)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        inputs.push(bytes);
    }
    for input in inputs {
        let (mut client_io, server_io) = tokio::io::duplex(1 << 16);
        client_io.write_all(&input).await.expect("write");
        client_io.shutdown().await.expect("eof");
        let accepted = tokio::time::timeout(
            Duration::from_secs(5),
            accept(server_io, fixture.server.clone()),
        )
        .await
        .expect("ends by itself");
        assert!(accepted.is_err(), "{input:?} accepted");
    }
}

#[tokio::test]
async fn a_revoked_certificate_fails_the_handshake_with_certificate_revoked() {
    let fixture = fixture();
    fixture.deny.deny(&fixture.unit_serial);
    for tls12 in [false, true] {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let connector = TlsConnector::from(fixture.client_config(tls12));
        let name = ServerName::try_from("localhost").expect("name");
        let client = async {
            // TLS 1.2 fails the client's handshake itself; over TLS 1.3 the client's flight
            // ends its handshake and the refusal comes as an alert to its first read.
            let mut client = connector.connect(name, client_io).await?;
            let mut buf = [0; 8];
            client.read(&mut buf).await
        };
        let (heard, accepted) = tokio::join!(client, accept(server_io, fixture.server.clone()));
        let err = accepted.expect_err("refused");
        assert_eq!(
            crate::transport::listener::handshake_failure(&err),
            "revoked"
        );
        let heard = heard.expect_err("the client hears the alert");
        assert!(
            heard.to_string().contains("CertificateRevoked"),
            "TLS 1.2: {tls12}: {heard}"
        );
    }
}

#[tokio::test]
async fn over_tcp_the_handshake_and_identity_work() {
    let fixture = fixture();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connector = TlsConnector::from(fixture.client_config(false));
    let client = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let mut client = connector.connect(name, tcp).await.expect("client");
        client.write_all(b"hello").await.expect("write");
        client.shutdown().await.expect("close");
        client
    };
    let server = async {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut server = accept(tcp, fixture.server.clone()).await.expect("server");
        let cert = server
            .peer_certificates()
            .and_then(|chain| chain.first())
            .cloned();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.expect("read");
        (cert, got)
    };
    let (_client, (cert, got)) = tokio::join!(client, server);
    let identity = crate::transport::tls::identity_of(&cert.expect("peer certificate"));
    assert_eq!(identity.expect("identity").tenant, "unit1");
    assert_eq!(got, b"hello");
}
