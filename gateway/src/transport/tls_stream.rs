//! The unit session's TLS stream, on rustls's unbuffered API: the stream owns every buffer,
//! so an idle session holds none.
//!
//! rustls 0.23's buffered `ServerConnection` keeps a 4,096-byte record buffer for as long as
//! the connection lives once it has read (`DeframerVecBuffer::prepare_read`), and with
//! thousands of idle units that buffer was the largest single item of an idle session
//! (`docs/benchmarks.md`, "Where an idle unit's memory goes"). Here:
//! - the socket is read into one scratch buffer per thread; what a read leaves behind (a
//!   record split across reads, or records whose plaintext the caller has no room for yet)
//!   is copied into `incoming`, sized to what it holds, and freed once consumed;
//! - plaintext that does not fit the caller's buffer waits in `plaintext` (at most one
//!   record's worth per read), freed once read;
//! - encrypted bytes wait in `outgoing` only until the socket takes them, then it is freed.
//!
//! Every buffer is bounded: `incoming` by [`MAX_PENDING`] (one handshake message being joined
//! plus one record), `outgoing` by two write chunks, `plaintext` by one read's records.
//! rustls's own state (keys, the handshake joiner's positions, its queues, empty once
//! drained) is all an idle stream keeps.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::pki_types::CertificateDer;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The largest plaintext of one record, 2^14 bytes (RFC 8446 §5.1, RFC 5246 §6.2.1).
const MAX_PLAINTEXT: usize = 16_384;
/// The largest record on the wire: the 5-byte header and 2^14 + 2,048 bytes of ciphertext
/// (RFC 5246 §6.2.3; TLS 1.3 allows less, 2^14 + 256, RFC 8446 §5.2), as rustls bounds it.
const MAX_RECORD: usize = 5 + MAX_PLAINTEXT + 2_048;
/// rustls refuses handshake messages over 64 KiB (it would accept 16 MiB by the RFC).
const MAX_HANDSHAKE_MESSAGE: usize = 0xffff;
/// The most undecrypted input the stream holds: a handshake message being joined, and one
/// record more. rustls rejects larger messages and records first, so this is a backstop.
const MAX_PENDING: usize = MAX_HANDSHAKE_MESSAGE + MAX_RECORD;
/// One read from the socket when nothing is pending: a largest record.
const READ_CHUNK: usize = MAX_RECORD;
/// Plaintext encrypted per `poll_write`: four full records. A write waits for the socket
/// while this much is already queued, so `outgoing` stays under two chunks.
const WRITE_CHUNK: usize = 4 * MAX_PLAINTEXT;

thread_local! {
    /// The read buffer, one per thread: a read never spans an `.await`, so the sessions of
    /// a runtime worker can share it, and no session keeps one while idle.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Runs `work` over [`READ_CHUNK`] bytes of this thread's scratch buffer. The buffer is
/// taken out while `work` runs, so a nested call (none happens today) would get a fresh one
/// rather than alias it.
fn with_scratch<R>(work: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut scratch = SCRATCH.try_with(Cell::take).unwrap_or_default();
    if scratch.len() < READ_CHUNK {
        scratch.resize(READ_CHUNK, 0);
    }
    let result = work(&mut scratch[..READ_CHUNK]);
    let _ = SCRATCH.try_with(|cell| cell.set(scratch));
    result
}

/// Where the connection stopped after consuming what it could of the pending bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// It needs more bytes from the peer.
    NeedBytes,
    /// A record's plaintext went to the caller (or to `plaintext`).
    Plaintext,
    /// The write asked for is encrypted in `outgoing`.
    Encrypted,
    /// The peer sent close_notify: no more data will come (reported once).
    PeerClosed,
    /// Both sides sent close_notify.
    Closed,
}

/// What the caller of [`advance`] wants done once nothing is left to read.
enum Want<'a, 'b> {
    /// Decrypt only; plaintext goes to this buffer first, then to `plaintext`.
    Read(Option<&'a mut ReadBuf<'b>>),
    /// Encrypt this application data.
    Encrypt(&'a [u8]),
    /// Encrypt a close_notify alert.
    CloseNotify,
}

/// The stream's buffers apart from the connection, so that a state borrowing the connection
/// can write into them.
#[derive(Default)]
struct Buffers {
    /// Encrypted bytes for the peer; `out_at` of them are already written.
    outgoing: Vec<u8>,
    out_at: usize,
    /// Decrypted bytes the caller had no room for; `plain_at` of them are already read.
    plaintext: Vec<u8>,
    plain_at: usize,
    /// The peer sent close_notify.
    peer_closed: bool,
}

impl Buffers {
    /// Copies leftover plaintext into `out`; frees it once all of it is read.
    fn deliver(&mut self, out: &mut ReadBuf<'_>) {
        let waiting = &self.plaintext[self.plain_at..];
        let n = waiting.len().min(out.remaining());
        out.put_slice(&waiting[..n]);
        self.plain_at += n;
        if self.plain_at == self.plaintext.len() {
            self.plaintext = Vec::new();
            self.plain_at = 0;
        }
    }

    fn has_plaintext(&self) -> bool {
        self.plain_at < self.plaintext.len()
    }

    fn has_outgoing(&self) -> bool {
        self.out_at < self.outgoing.len()
    }
}

/// Appends what `write` produces to `out`, growing it to the size rustls asks for.
fn append<E>(
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
    required: impl Fn(&E) -> Option<usize>,
) -> Result<(), E> {
    let filled = out.len();
    // An empty slice first: rustls answers with the exact size it needs, so `out` grows by
    // exactly that much and never holds spare capacity.
    let written = match write(&mut []) {
        Ok(written) => written,
        Err(err) => {
            let Some(size) = required(&err) else {
                return Err(err);
            };
            out.resize(filled + size, 0);
            match write(&mut out[filled..]) {
                Ok(written) => written,
                Err(err) => {
                    out.truncate(filled);
                    return Err(err);
                }
            }
        }
    };
    out.truncate(filled + written);
    Ok(())
}

fn encode_size(err: &EncodeError) -> Option<usize> {
    match err {
        EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        _ => None,
    }
}

fn encrypt_size(err: &EncryptError) -> Option<usize> {
    match err {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        _ => None,
    }
}

/// Runs the connection over `pending[*start..]` until a state needs the caller, advancing
/// `*start` past what rustls consumed. Handshake records and alerts rustls emits go to
/// `outgoing`, in order; on an error, so does the alert rustls queued for it.
fn advance(
    conn: &mut UnbufferedServerConnection,
    bufs: &mut Buffers,
    pending: &mut [u8],
    start: &mut usize,
    want: &mut Want<'_, '_>,
) -> Result<Progress, rustls::Error> {
    loop {
        let UnbufferedStatus { mut discard, state } =
            conn.process_tls_records(&mut pending[*start..]);
        let step = match state {
            Ok(state) => step(state, bufs, &mut discard, want),
            Err(err) => Err(err),
        };
        *start += discard;
        match step {
            Ok(Some(progress)) => return Ok(progress),
            Ok(None) => {}
            Err(err) => {
                collect_alert(conn, bufs, pending, start);
                return Err(err);
            }
        }
    }
}

/// Handles one state; `None` means "call rustls again".
fn step(
    state: ConnectionState<'_, '_, ServerConnectionData>,
    bufs: &mut Buffers,
    discard: &mut usize,
    want: &mut Want<'_, '_>,
) -> Result<Option<Progress>, rustls::Error> {
    let progress = match state {
        ConnectionState::ReadTraffic(mut records) => {
            while let Some(record) = records.next_record() {
                let record = record?;
                *discard += record.discard;
                let mut payload = record.payload;
                if let Want::Read(Some(out)) = want {
                    let n = payload.len().min(out.remaining());
                    out.put_slice(&payload[..n]);
                    payload = &payload[n..];
                }
                bufs.plaintext.extend_from_slice(payload);
            }
            Some(Progress::Plaintext)
        }
        ConnectionState::EncodeTlsData(mut encode) => {
            append(&mut bufs.outgoing, |out| encode.encode(out), encode_size)
                .map_err(|err| rustls::Error::General(err.to_string()))?;
            None
        }
        // The encoded records wait in `outgoing`, which is written before anything later.
        ConnectionState::TransmitTlsData(transmit) => {
            transmit.done();
            None
        }
        ConnectionState::WriteTraffic(mut traffic) => match want {
            Want::Read(_) => Some(Progress::NeedBytes),
            Want::Encrypt(data) => {
                append(
                    &mut bufs.outgoing,
                    |out| traffic.encrypt(data, out),
                    encrypt_size,
                )
                .map_err(|_| rustls::Error::EncryptError)?;
                Some(Progress::Encrypted)
            }
            Want::CloseNotify => {
                append(
                    &mut bufs.outgoing,
                    |out| traffic.queue_close_notify(out),
                    encrypt_size,
                )
                .map_err(|_| rustls::Error::EncryptError)?;
                Some(Progress::Encrypted)
            }
        },
        ConnectionState::BlockedHandshake => Some(Progress::NeedBytes),
        ConnectionState::PeerClosed => {
            bufs.peer_closed = true;
            Some(Progress::PeerClosed)
        }
        ConnectionState::Closed => {
            bufs.peer_closed = true;
            Some(Progress::Closed)
        }
        // Early data is off (`max_early_data_size` 0), so rustls never offers it; any state
        // a later rustls adds is refused rather than guessed at.
        _ => {
            return Err(rustls::Error::General(
                "unexpected TLS connection state".into(),
            ))
        }
    };
    Ok(progress)
}

/// After an error rustls has queued a fatal alert (RFC 8446 §6.2): encode it into
/// `outgoing`. rustls hands out queued records before it reads any input again, and it is
/// asked only while some are queued: reading the failed input again would raise a second
/// alert.
fn collect_alert(
    conn: &mut UnbufferedServerConnection,
    bufs: &mut Buffers,
    pending: &mut [u8],
    start: &mut usize,
) {
    // A few rounds at most: an alert is one record.
    for _ in 0..8 {
        if !conn.wants_write() {
            return;
        }
        let UnbufferedStatus { discard, state } = conn.process_tls_records(&mut pending[*start..]);
        let encoded = match state {
            Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                append(&mut bufs.outgoing, |out| encode.encode(out), encode_size).is_ok()
            }
            _ => false,
        };
        *start += discard;
        if !encoded {
            return;
        }
    }
}

/// A server-side TLS stream over `IO` whose buffers exist only while they hold bytes.
pub struct TlsStream<IO> {
    io: IO,
    conn: UnbufferedServerConnection,
    bufs: Buffers,
    /// Undecrypted bytes a read left behind: a partial record, or whole records the caller
    /// had no room for (`backlog`). Empty, with no allocation, while idle.
    incoming: Vec<u8>,
    /// `incoming` may hold whole records: decrypt them before reading the socket again.
    backlog: bool,
    /// close_notify is queued or sent: no more writes.
    close_sent: bool,
    /// A fatal TLS or I/O error: every later read and write fails with it.
    failed: Option<io::ErrorKind>,
}

impl<IO> std::fmt::Debug for TlsStream<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("incoming", &self.incoming.len())
            .field("close_sent", &self.close_sent)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// A rustls error as the I/O error the session and the listener's `handshake_failure` read.
fn tls_error(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

/// Runs the server side of a TLS handshake over `io` with `config` (mutual TLS, the deny
/// list, as [`super::tls::server_config`] builds it) and returns the stream once it is done.
///
/// # Errors
/// `InvalidData` wrapping the [`rustls::Error`] when the handshake fails (the alert rustls
/// chose, e.g. `certificate_revoked`, is sent first), `UnexpectedEof` when the peer closes
/// before the end, or the socket's own error. The caller bounds its duration.
pub async fn accept<IO>(io: IO, config: Arc<rustls::ServerConfig>) -> io::Result<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
    let mut stream = TlsStream {
        io,
        conn,
        bufs: Buffers::default(),
        incoming: Vec::new(),
        backlog: false,
        close_sent: false,
        failed: None,
    };
    stream.handshake().await?;
    Ok(stream)
}

impl<IO> TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    /// The chain the client presented, its own certificate first (verified by the handshake).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// Bytes the stream holds in buffers of its own (capacity, not length): 0 while idle.
    #[cfg(test)]
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.incoming.capacity() + self.bufs.plaintext.capacity() + self.bufs.outgoing.capacity()
    }

    /// The handshake's own loop: its input buffer lives only as long as the handshake.
    async fn handshake(&mut self) -> io::Result<()> {
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let mut start = 0;
            let advanced = advance(
                &mut self.conn,
                &mut self.bufs,
                &mut pending,
                &mut start,
                &mut Want::Read(None),
            );
            pending.drain(..start);
            let written = std::future::poll_fn(|cx| self.poll_write_out(cx)).await;
            let progress = advanced.map_err(tls_error)?;
            written?;
            if !self.conn.is_handshaking() {
                break;
            }
            match progress {
                Progress::NeedBytes => {}
                // Application data with the client's last flight waits in `plaintext`.
                Progress::Plaintext | Progress::Encrypted => continue,
                Progress::PeerClosed | Progress::Closed => {
                    return Err(io::ErrorKind::UnexpectedEof.into())
                }
            }
            let filled = pending.len();
            let room = READ_CHUNK.min(MAX_PENDING - filled);
            if room == 0 {
                return Err(tls_error(rustls::Error::General(
                    "handshake input over the buffer bound".into(),
                )));
            }
            pending.resize(filled + room, 0);
            let n = self.io.read(&mut pending[filled..]).await?;
            pending.truncate(filled + n);
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        // What came with the client's last flight (often its CONNECT) is read first.
        self.backlog = !pending.is_empty();
        pending.shrink_to_fit();
        self.incoming = pending;
        Ok(())
    }

    /// Writes `outgoing` to the socket; frees it once all of it is written.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.bufs.has_outgoing() {
            let waiting = &self.bufs.outgoing[self.bufs.out_at..];
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, waiting))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.bufs.out_at += n;
        }
        if self.bufs.outgoing.capacity() > 0 {
            self.bufs.outgoing = Vec::new();
            self.bufs.out_at = 0;
        }
        Poll::Ready(Ok(()))
    }

    /// Fails the stream for good with `err`; the alert rustls queued is sent if the socket
    /// takes it now (and by `poll_flush` or `poll_shutdown` otherwise).
    fn fail(&mut self, cx: &mut Context<'_>, err: io::Error) -> io::Error {
        self.failed = Some(err.kind());
        self.incoming = Vec::new();
        self.bufs.plaintext = Vec::new();
        self.bufs.plain_at = 0;
        let _ = self.poll_write_out(cx);
        err
    }

    fn failed(&self) -> io::Result<()> {
        match self.failed {
            Some(kind) => Err(io::Error::new(kind, "the TLS session failed earlier")),
            None => Ok(()),
        }
    }

    /// Decrypts what `pending` holds while `out` has room; returns the bytes consumed and
    /// where it stopped.
    fn consume(
        &mut self,
        pending: &mut [u8],
        out: &mut ReadBuf<'_>,
    ) -> Result<(usize, Progress), rustls::Error> {
        let mut start = 0;
        loop {
            let progress = advance(
                &mut self.conn,
                &mut self.bufs,
                pending,
                &mut start,
                &mut Want::Read(Some(out)),
            )?;
            if progress != Progress::Plaintext || out.remaining() == 0 || self.bufs.has_plaintext()
            {
                return Ok((start, progress));
            }
        }
    }

    /// Keeps what `pending[consumed..]` holds as `incoming`, sized to it.
    fn keep(&mut self, pending: &[u8], consumed: usize, progress: Progress) {
        let rest = &pending[consumed.min(pending.len())..];
        self.backlog = progress == Progress::Plaintext && !rest.is_empty();
        if rest.is_empty() || self.bufs.peer_closed {
            // Nothing after close_notify is read (RFC 8446 §6.1).
            self.incoming = Vec::new();
        } else {
            self.incoming = rest.to_vec();
        }
    }

    /// One read from the socket, appended to what is pending, then decrypted into `out`.
    /// `Ready(Ok(None))` is an end of file.
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<Option<Progress>>> {
        if self.incoming.is_empty() {
            return with_scratch(|scratch| {
                let mut read = ReadBuf::new(scratch);
                ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
                let n = read.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(None));
                }
                let (consumed, progress) =
                    self.consume(&mut scratch[..n], out).map_err(tls_error)?;
                self.keep(&scratch[..n], consumed, progress);
                Poll::Ready(Ok(Some(progress)))
            });
        }
        // A partial record is pending: read the rest into it.
        let mut pending = std::mem::take(&mut self.incoming);
        let filled = pending.len();
        let room = READ_CHUNK.min(MAX_PENDING - filled);
        if room == 0 {
            return Poll::Ready(Err(tls_error(rustls::Error::General(
                "TLS input over the buffer bound".into(),
            ))));
        }
        pending.resize(filled + room, 0);
        let mut read = ReadBuf::new(&mut pending[filled..]);
        let polled = Pin::new(&mut self.io).poll_read(cx, &mut read);
        let n = read.filled().len();
        pending.truncate(filled + n);
        if let Poll::Pending | Poll::Ready(Err(_)) = polled {
            pending.shrink_to_fit();
            self.incoming = pending;
            return polled.map_ok(|()| None);
        }
        if n == 0 {
            return Poll::Ready(Ok(None));
        }
        let (consumed, progress) = self.consume(&mut pending, out).map_err(tls_error)?;
        self.keep(&pending, consumed, progress);
        Poll::Ready(Ok(Some(progress)))
    }

    /// Decrypts the records a read left behind when the caller's buffer was full.
    fn drain_backlog(&mut self, out: &mut ReadBuf<'_>) -> io::Result<()> {
        let mut pending = std::mem::take(&mut self.incoming);
        let (consumed, progress) = self.consume(&mut pending, out).map_err(tls_error)?;
        self.keep(&pending, consumed, progress);
        Ok(())
    }

    /// Runs rustls until the write asked for is encrypted into `outgoing`.
    fn encrypt(&mut self, want: &mut Want<'_, '_>) -> io::Result<()> {
        let mut pending = std::mem::take(&mut self.incoming);
        let mut start = 0;
        let result = loop {
            match advance(
                &mut self.conn,
                &mut self.bufs,
                &mut pending,
                &mut start,
                want,
            ) {
                Ok(Progress::Encrypted) => break Ok(()),
                // Records read meanwhile wait as plaintext; close_notify is reported to reads.
                Ok(Progress::Plaintext | Progress::PeerClosed) => {}
                Ok(Progress::NeedBytes | Progress::Closed) => {
                    break Err(io::ErrorKind::BrokenPipe.into())
                }
                Err(err) => break Err(tls_error(err)),
            }
        };
        self.keep(&pending, start, Progress::NeedBytes);
        self.backlog = !self.incoming.is_empty();
        result
    }
}

impl<IO> AsyncRead for TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.failed()?;
        let before = out.filled().len();
        this.bufs.deliver(out);
        if this.backlog && out.remaining() > 0 && !this.bufs.has_plaintext() {
            if let Err(err) = this.drain_backlog(out) {
                return Poll::Ready(Err(this.fail(cx, err)));
            }
        }
        loop {
            if out.filled().len() > before || out.remaining() == 0 || this.bufs.peer_closed {
                return Poll::Ready(Ok(()));
            }
            let filled = match this.poll_fill(cx, out) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(filled) => filled,
            };
            // Whatever rustls answered (an alert, a handshake message) leaves now if it can.
            if let Poll::Ready(Err(err)) = this.poll_write_out(cx) {
                return Poll::Ready(Err(this.fail(cx, err)));
            }
            match filled {
                Ok(Some(_)) => {}
                // TCP closed without close_notify: a truncation, reported as rustls does.
                Ok(None) if !this.bufs.peer_closed => {
                    let err = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed connection without sending TLS close_notify",
                    );
                    return Poll::Ready(Err(this.fail(cx, err)));
                }
                Ok(None) => return Poll::Ready(Ok(())),
                Err(err) => return Poll::Ready(Err(this.fail(cx, err))),
            }
        }
    }
}

impl<IO> AsyncWrite for TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.failed()?;
        if this.close_sent {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.bufs.has_outgoing() {
            match this.poll_write_out(cx) {
                Poll::Ready(Err(err)) => return Poll::Ready(Err(this.fail(cx, err))),
                // Push back: a chunk is already waiting for the socket.
                Poll::Pending if this.bufs.outgoing.len() - this.bufs.out_at >= WRITE_CHUNK => {
                    return Poll::Pending
                }
                _ => {}
            }
        }
        let chunk = &data[..data.len().min(WRITE_CHUNK)];
        if let Err(err) = this.encrypt(&mut Want::Encrypt(chunk)) {
            return Poll::Ready(Err(this.fail(cx, err)));
        }
        // Sent now if the socket takes it; otherwise `poll_flush` finishes the job.
        if let Poll::Ready(Err(err)) = this.poll_write_out(cx) {
            return Poll::Ready(Err(this.fail(cx, err)));
        }
        Poll::Ready(Ok(chunk.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    /// Sends close_notify (RFC 8446 §6.1) once, flushes, then shuts the socket's write side.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent && this.failed.is_none() && !this.conn.is_handshaking() {
            this.close_sent = true;
            // A failure here leaves nothing to say to the peer: the socket closes anyway.
            let _ = this.encrypt(&mut Want::CloseNotify);
        }
        this.close_sent = true;
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
