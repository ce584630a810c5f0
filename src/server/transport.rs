//! The byte stream of one connection: the socket itself, or TLS over it.
//!
//! The connection task is readiness-based (it waits on the socket, then reads and writes
//! without blocking), so TLS is a rustls session driven over the non-blocking socket
//! ([`TlsSession`], on rustls's unbuffered API) rather than an async wrapper: the task
//! keeps one readiness future, and an idle connection no buffer. [`detect`] tells a TLS ClientHello from a typed line
//! by peeking at the first bytes within the hello window, so both share one port.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{Interest, Ready};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout, timeout_at};

use super::tls_session::TlsSession;
use crate::fingerprint::Fingerprint;

/// How long a TLS client has to finish its handshake once its ClientHello began. A
/// client that stops half-way holds a slot for no longer than this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// While only one byte has arrived and it may start a ClientHello, look again this often.
const PEEK_RETRY: Duration = Duration::from_millis(5);

/// What the first bytes of a connection say it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// A TLS handshake record (content type 22, then major version 3): RFC 8446 §5.1.
    Tls,
    /// Anything else, or nothing within the hello window: typed lines.
    Plain,
}

/// Classifies the first bytes; `None` while one byte is not enough to tell.
pub fn classify(first: &[u8]) -> Option<Detected> {
    match first {
        [] | [0x16] => None,
        [0x16, 0x03, ..] => Some(Detected::Tls),
        _ => Some(Detected::Plain),
    }
}

/// Waits until the client's first bytes show what it speaks, or until `deadline`
/// (silence means a plain client waiting for the welcome, such as `nc`). Consumes
/// nothing: the bytes stay for the line reader or rustls.
pub async fn detect(stream: &TcpStream, deadline: Instant) -> io::Result<Detected> {
    let mut first = [0u8; 2];
    loop {
        let Ok(peeked) = timeout_at(deadline, stream.peek(&mut first)).await else {
            return Ok(Detected::Plain);
        };
        let n = peeked?;
        if n == 0 {
            // Closed at once: the line reader sees the end and cleans up.
            return Ok(Detected::Plain);
        }
        match classify(&first[..n]) {
            Some(detected) => return Ok(detected),
            None if Instant::now() >= deadline => return Ok(Detected::Plain),
            // The next byte may be on its way; readiness would not wait for it.
            None => sleep(PEEK_RETRY).await,
        }
    }
}

/// One connection's byte stream. Reads and writes never block: they return
/// `WouldBlock` (or `None`) like the socket's own `try_read`/`try_write`.
pub struct Transport {
    stream: TcpStream,
    /// Boxed: rustls's state is large and only TLS connections pay for it.
    tls: Option<Box<TlsSession>>,
}

impl Transport {
    pub fn plain(stream: TcpStream) -> Transport {
        Transport { stream, tls: None }
    }

    /// Runs the TLS handshake, bounded by [`HANDSHAKE_TIMEOUT`].
    pub async fn accept_tls(stream: TcpStream, config: Arc<ServerConfig>) -> io::Result<Transport> {
        let tls = TlsSession::new(config).map_err(io::Error::other)?;
        let mut t = Transport { stream, tls: Some(Box::new(tls)) };
        match timeout(HANDSHAKE_TIMEOUT, t.handshake()).await {
            Ok(result) => result.map(|()| t),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
        }
    }

    /// Reads once per readiness, so that readiness stays set after the last flight: the
    /// client's first line, often in the same segment as its Finished, is then read by
    /// the connection task at once.
    async fn handshake(&mut self) -> io::Result<()> {
        while self.tls.as_ref().is_some_and(|tls| tls.is_handshaking()) {
            self.flush()?;
            let ready = self.stream.ready(self.interest(true, false)).await?;
            if ready.is_readable() {
                let tls = self.tls.as_mut().expect("checked");
                match tls.receive(&self.stream) {
                    Ok(true) => {}
                    Ok(false) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    // A stale readiness: the socket said so, and tokio now knows it.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        // Best effort: the alert tells the client why.
                        let _ = self.flush();
                        return Err(e);
                    }
                }
            }
        }
        self.flush()
    }

    /// What the connection is carried over (its [`Carrier::name`] is for the log).
    pub fn carrier(&self) -> Carrier {
        match self.tls.as_ref().and_then(|tls| tls.protocol_version()) {
            Some(rustls::ProtocolVersion::TLSv1_3) => Carrier::Tls13,
            Some(rustls::ProtocolVersion::TLSv1_2) => Carrier::Tls12,
            Some(_) => Carrier::Tls,
            None => Carrier::Plain,
        }
    }

    /// The fingerprint of the client's certificate, on a TLS connection that presented
    /// one.
    pub fn client_key(&self) -> Option<Fingerprint> {
        self.tls.as_ref().and_then(|tls| tls.client_key())
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    /// The socket events to wait for: `write` when the caller has bytes to send, plus
    /// writability whenever TLS bytes wait to be sent.
    pub fn interest(&self, read: bool, write: bool) -> Interest {
        let write = write || self.wants_write();
        match (read, write) {
            (true, true) => Interest::READABLE | Interest::WRITABLE,
            (false, true) => Interest::WRITABLE,
            _ => Interest::READABLE,
        }
    }

    /// Polls the socket's readiness for `interest` through the registration's own
    /// reader and writer waker slots, so the waiting task keeps no readiness future.
    /// The readiness returned is `READABLE` (readable or closed for reading) and/or
    /// `WRITABLE` (writable or closed for writing).
    ///
    /// # Errors
    /// The runtime is gone (shutting down).
    pub fn poll_ready(&self, cx: &mut Context<'_>, interest: Interest) -> Poll<io::Result<Ready>> {
        let mut ready = Ready::EMPTY;
        if interest.is_readable() {
            match self.stream.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => ready |= Ready::READABLE,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if interest.is_writable() {
            match self.stream.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => ready |= Ready::WRITABLE,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if ready.is_empty() { Poll::Pending } else { Poll::Ready(Ok(ready)) }
    }

    /// Whether encrypted bytes wait to be sent (always false for plain text).
    pub fn wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// Reads what is available, like `try_read`: `Ok(0)` at the end of the stream,
    /// `WouldBlock` when nothing is there.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return self.stream.try_read(buf);
        };
        loop {
            // Ok(0) once the client sent close_notify.
            if let Some(n) = tls.take(buf) {
                return Ok(n);
            }
            let received = tls.receive(&self.stream);
            // Answers (a key update, an alert) go out at once when possible.
            tls.flush(&self.stream)?;
            if !received? {
                return Ok(0);
            }
        }
    }

    /// Writes like `try_write`: `None` when nothing more can be taken now.
    pub fn write(&mut self, data: &[u8]) -> io::Result<Option<usize>> {
        let n = match self.tls.as_mut() {
            None => match self.stream.try_write(data) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            },
            Some(tls) => {
                tls.flush(&self.stream)?;
                if tls.wants_write() {
                    return Ok(None);
                }
                let n = tls.write(data)?;
                tls.flush(&self.stream)?;
                n
            }
        };
        if n == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WriteZero.into());
        }
        Ok(Some(n))
    }

    /// Sends the encrypted bytes waiting, as far as the socket takes them.
    pub fn flush(&mut self) -> io::Result<()> {
        match self.tls.as_mut() {
            Some(tls) => tls.flush(&self.stream),
            None => Ok(()),
        }
    }

    /// Queues TLS's close_notify, so the client can tell a close from a cut. Sent by the
    /// next [`flush`](Transport::flush).
    pub fn close_notify(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.close_notify();
        }
    }

    /// The socket, for a graceful close after a refusal.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}

/// What a connection is carried over: one byte in every connection's task, where the
/// name itself (a `&str`) would be 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Plain,
    Tls12,
    Tls13,
    /// A TLS version other than 1.2 and 1.3.
    Tls,
}

impl Carrier {
    /// "TLSv1.3", "TLSv1.2", "TLS" or "plain", for the log.
    pub fn name(self) -> &'static str {
        match self {
            Carrier::Tls13 => "TLSv1.3",
            Carrier::Tls12 => "TLSv1.2",
            Carrier::Tls => "TLS",
            Carrier::Plain => "plain",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_hello_is_told_from_a_typed_line() {
        assert_eq!(classify(&[0x16, 0x03]), Some(Detected::Tls));
        assert_eq!(classify(&[0x16, 0x03, 0x01]), Some(Detected::Tls));
        assert_eq!(classify(b"/hello json"), Some(Detected::Plain));
        assert_eq!(classify(&[0x16, b'h']), Some(Detected::Plain));
        assert_eq!(classify(&[0x16]), None);
        assert_eq!(classify(&[]), None);
    }
}
