//! A listener on 127.0.0.1 that closes every connection before a tchat welcome, at one
//! stage: at once, after a banner line, or after completing a TLS handshake (with a
//! close_notify). It counts the connections, so a test can tell a client that gave up
//! from one that keeps coming back.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tchat::server::tls::{CertSource, Certs};

/// Where a [`Closer`] ends each connection.
#[derive(Clone)]
pub enum Stage {
    /// Right after accepting it.
    Accept,
    /// After writing this line.
    Banner(&'static str),
    /// After the TLS handshake, with a close_notify, using a certificate generated in
    /// this directory.
    Tls(std::path::PathBuf),
}

pub struct Closer {
    pub addr: SocketAddr,
    /// The TLS certificate's fingerprint, for [`Stage::Tls`].
    pub fingerprint: Option<String>,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Closer {
    pub fn start(stage: Stage) -> Closer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, accepted) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let tls = match &stage {
            Stage::Tls(dir) => Some(certs(dir)),
            _ => None,
        };
        let fingerprint = tls.as_ref().map(|certs| certs.fingerprint().to_string());
        let (stopped, count) = (stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let runtime = runtime.unwrap();
            while !stopped.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_nonblocking(false);
                match (&stage, &tls) {
                    (Stage::Banner(line), _) => {
                        let _ = stream.write_all(format!("{line}\r\n").as_bytes());
                        // Let the line arrive before the close (no reset over it).
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    (Stage::Tls(_), Some(certs)) => runtime.block_on(handshake(stream, certs)),
                    _ => close_at_once(stream),
                }
            }
        });
        Closer { addr, fingerprint, accepted, stop }
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Closes `stream` as a server that hangs up at once does, with a FIN and never a
/// reset: the client may have sent its first bytes already (a ClientHello sent right
/// after the connect can be there before this accept, which polls every 10 ms), and
/// closing over unread bytes would reset the connection instead. So: FIN first, then
/// what the client sends is read and dropped until it closes too (or 2 s pass).
fn close_at_once(mut stream: std::net::TcpStream) {
    use std::io::Read;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

fn certs(dir: &Path) -> Arc<Certs> {
    Arc::new(Certs::open(CertSource::Generated(dir.to_owned())).expect("a generated certificate"))
}

/// Completes the server side of a TLS handshake on `stream`, then sends close_notify.
async fn handshake(stream: std::net::TcpStream, certs: &Arc<Certs>) {
    use tokio::io::AsyncWriteExt;
    let _ = stream.set_nonblocking(true);
    let Ok(stream) = tokio::net::TcpStream::from_std(stream) else { return };
    let _ = stream.set_nodelay(true);
    let acceptor = tokio_rustls::TlsAcceptor::from(Certs::server_config(certs));
    if let Ok(mut tls) = acceptor.accept(stream).await {
        let _ = tls.shutdown().await;
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
