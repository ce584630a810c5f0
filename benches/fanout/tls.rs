//! The load generator's TLS side: rustls's low-level [`ClientConnection`] driven over the
//! non-blocking mio socket, as the server drives its `ServerConnection`, so TLS clients
//! live in the same epoll loop as plain ones and cost the generator as little.
//!
//! The server's certificate is its generated, self-signed one: it is trusted by the
//! fingerprint the server prints on its `Listening` line, as `tchat join --fingerprint`
//! trusts it, and the handshake signature is still verified.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use tchat::fingerprint::Fingerprint;

/// A client configuration that trusts exactly the certificate with `fingerprint`:
/// the client's own pinned verifier.
pub fn client_config(fingerprint: Fingerprint) -> Arc<ClientConfig> {
    tchat::client::tls::pinned_config(fingerprint).expect("ring supports TLS 1.2 and 1.3")
}

/// A new TLS session to the server; its ClientHello waits in the session until flushed.
pub fn connect(config: &Arc<ClientConfig>) -> io::Result<ClientConnection> {
    let name = ServerName::try_from("localhost").expect("a valid name");
    ClientConnection::new(config.clone(), name).map_err(io::Error::other)
}

/// Reads plaintext like a socket's `read`: `Ok(0)` at the end of the stream (or the
/// server's close_notify), `WouldBlock` once the socket is empty.
pub fn read(
    tls: &mut ClientConnection,
    stream: &mut TcpStream,
    buf: &mut [u8],
) -> io::Result<usize> {
    loop {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if tls.read_tls(stream)? == 0 {
            return Ok(0);
        }
        tls.process_new_packets().map_err(io::Error::other)?;
        // Handshake answers go out at once; application data waits for `flush`.
        flush(tls, stream)?;
    }
}

/// Hands `data` to the session; returns how much it took (it buffers up to its limit).
pub fn write(tls: &mut ClientConnection, stream: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    let n = tls.writer().write(data)?;
    flush(tls, stream)?;
    Ok(n)
}

/// Sends the records the session holds, as far as the socket takes them.
pub fn flush(tls: &mut ClientConnection, stream: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
