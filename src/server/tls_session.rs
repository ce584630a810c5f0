//! One server-side TLS session over a non-blocking socket, on rustls's unbuffered API.
//!
//! The session holds its own buffers (received records, records to send, decrypted bytes
//! not yet read) and frees each as soon as it is empty, so an idle connection holds none.
//! rustls's buffered `ServerConnection` keeps a 4 KiB read buffer (and the queues' spare
//! room) for as long as the connection lives: 10,000 idle TLS connections held about
//! 9.8 KiB each with it (docs/benchmarks.md).

use std::io;
use std::sync::Arc;

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ProtocolVersion, ServerConfig};
use tokio::net::TcpStream;

use crate::fingerprint::Fingerprint;

/// Room made for each socket read: a typical record or a few, in one system call.
const READ_ROOM: usize = 8 * 1024;

/// Most received bytes held while they do not yet form a complete message: a record is
/// at most about 16.7 KiB (RFC 8446 §5.2), and rustls joins handshake messages of up to
/// 64 KiB. Beyond this the peer is sending something no client sends.
const MAX_INCOMING: usize = 96 * 1024;

/// TLS bytes added per record when sealing application data: header, content type and
/// AEAD tag (RFC 8446 §5.2), rounded up. Only a first guess: rustls says what it needs.
const RECORD_OVERHEAD: usize = 64;

/// Largest plaintext per record (RFC 8446 §5.1).
const MAX_FRAGMENT: usize = 16 * 1024;

/// What the session should do once it may send application data.
#[derive(Clone, Copy)]
enum Outbound<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

pub struct TlsSession {
    conn: UnbufferedServerConnection,
    /// Received TLS bytes not yet processed (the start of a record, say).
    incoming: Vec<u8>,
    /// TLS bytes to send, of which `sent` went out already.
    outgoing: Vec<u8>,
    sent: usize,
    /// Decrypted bytes not yet read, of which `taken` were.
    plaintext: Vec<u8>,
    taken: usize,
    /// The client sent close_notify: reads end once `plaintext` is drained.
    peer_closed: bool,
}

impl TlsSession {
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsSession, rustls::Error> {
        Ok(TlsSession {
            conn: UnbufferedServerConnection::new(config)?,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            plaintext: Vec::new(),
            taken: 0,
            peer_closed: false,
        })
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The fingerprint of the certificate the client presented, if it did (see
    /// [`super::client_key`]); known once the handshake is done.
    pub fn client_key(&self) -> Option<Fingerprint> {
        self.conn.peer_certificates()?.first().map(|cert| Fingerprint::of(cert))
    }

    /// Whether TLS bytes wait to be sent.
    pub fn wants_write(&self) -> bool {
        self.sent < self.outgoing.len()
    }

    /// Reads once from the socket and processes what came: `Ok(false)` at the end of the
    /// stream, `WouldBlock` when nothing was there. Decrypted bytes wait for
    /// [`TlsSession::take`]; answers (handshake messages, tickets) for [`TlsSession::flush`].
    pub fn receive(&mut self, stream: &TcpStream) -> io::Result<bool> {
        if self.incoming.len() >= MAX_INCOMING {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS message too large"));
        }
        if self.incoming.capacity() - self.incoming.len() < READ_ROOM / 2 {
            self.incoming.reserve(READ_ROOM);
        }
        let n = stream.try_read_buf(&mut self.incoming);
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        if n? == 0 {
            return Ok(false);
        }
        self.process(Outbound::Nothing).map_err(|e| self.failed(e))?;
        Ok(true)
    }

    /// Copies decrypted bytes into `buf`: `None` when there are none, `Some(0)` once the
    /// client closed its side with close_notify and everything was read.
    pub fn take(&mut self, buf: &mut [u8]) -> Option<usize> {
        let left = &self.plaintext[self.taken..];
        if left.is_empty() {
            return self.peer_closed.then_some(0);
        }
        let n = left.len().min(buf.len());
        buf[..n].copy_from_slice(&left[..n]);
        self.taken += n;
        if self.taken == self.plaintext.len() {
            (self.plaintext, self.taken) = (Vec::new(), 0);
        }
        Some(n)
    }

    /// Encrypts as much of `data` as one record takes (16 KiB); returns how much.
    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let data = &data[..data.len().min(MAX_FRAGMENT)];
        self.process(Outbound::Data(data)).map_err(|e| self.failed(e))
    }

    /// Queues close_notify, so the client can tell a close from a cut.
    pub fn close_notify(&mut self) {
        let _ = self.process(Outbound::CloseNotify);
    }

    /// Sends the TLS bytes waiting, as far as the socket takes them.
    pub fn flush(&mut self, stream: &TcpStream) -> io::Result<()> {
        while self.wants_write() {
            match stream.try_write(&self.outgoing[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        (self.outgoing, self.sent) = (Vec::new(), 0);
        Ok(())
    }

    /// Runs rustls over the received bytes until it needs more, then (if asked and the
    /// handshake is done) seals `send`. Returns how many bytes of `send` were sealed.
    fn process(&mut self, mut send: Outbound<'_>) -> Result<usize, rustls::Error> {
        let TlsSession { conn, incoming, outgoing, plaintext, peer_closed, .. } = self;
        let mut taken = 0;
        loop {
            let UnbufferedStatus { discard, state } = conn.process_tls_records(incoming);
            let done = match state? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        plaintext.extend_from_slice(record?.payload);
                    }
                    false
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    append(outgoing, 512, |buf| encoded(encode.encode(buf)))?;
                    false
                }
                // The bytes wait in `outgoing`, in order, for the next flush.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    false
                }
                ConnectionState::PeerClosed => {
                    *peer_closed = true;
                    false
                }
                ConnectionState::WriteTraffic(mut traffic) => {
                    match send {
                        Outbound::Nothing => {}
                        Outbound::Data(data) => {
                            let guess = data.len() + RECORD_OVERHEAD;
                            append(outgoing, guess, |buf| sealed(traffic.encrypt(data, buf)))?;
                            taken = data.len();
                        }
                        Outbound::CloseNotify => {
                            append(outgoing, RECORD_OVERHEAD, |buf| {
                                sealed(traffic.queue_close_notify(buf))
                            })?;
                        }
                    }
                    send = Outbound::Nothing;
                    true
                }
                ConnectionState::Closed => {
                    *peer_closed = true;
                    true
                }
                ConnectionState::BlockedHandshake => true,
                // Early data is off (the configuration's default), and so never comes.
                _ => return Err(rustls::Error::General("unexpected TLS state".into())),
            };
            incoming.drain(..discard);
            if done {
                break;
            }
        }
        if incoming.is_empty() {
            *incoming = Vec::new();
        }
        Ok(taken)
    }

    /// Queues the alert rustls prepared for `e`, best effort, and returns `e` as an I/O
    /// error.
    fn failed(&mut self, e: rustls::Error) -> io::Error {
        // The same buffer as the failed call: rustls remembers how far it got in it.
        let status = self.conn.process_tls_records(&mut self.incoming);
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state {
            let _ = append(&mut self.outgoing, 512, |buf| encoded(encode.encode(buf)));
        }
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Why writing into a buffer stopped short.
enum Short {
    /// It needs this many bytes.
    Room(usize),
    Failed(rustls::Error),
}

fn encoded(result: Result<usize, EncodeError>) -> Result<usize, Short> {
    match result {
        Ok(n) => Ok(n),
        Err(EncodeError::InsufficientSize(e)) => Err(Short::Room(e.required_size)),
        Err(e) => Err(Short::Failed(rustls::Error::General(e.to_string()))),
    }
}

fn sealed(result: Result<usize, EncryptError>) -> Result<usize, Short> {
    match result {
        Ok(n) => Ok(n),
        Err(EncryptError::InsufficientSize(e)) => Err(Short::Room(e.required_size)),
        Err(_) => Err(Short::Failed(rustls::Error::EncryptError)),
    }
}

/// Appends what `fill` writes to `out`, giving it `room` bytes first and as many as it
/// asks for if that was too few.
fn append(
    out: &mut Vec<u8>,
    mut room: usize,
    mut fill: impl FnMut(&mut [u8]) -> Result<usize, Short>,
) -> Result<(), rustls::Error> {
    let start = out.len();
    loop {
        out.resize(start + room, 0);
        match fill(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(Short::Room(needed)) if needed > room => room = needed,
            Err(Short::Room(_)) => {
                out.truncate(start);
                return Err(rustls::Error::General("TLS output buffer sizing".into()));
            }
            Err(Short::Failed(e)) => {
                out.truncate(start);
                return Err(e);
            }
        }
    }
}
