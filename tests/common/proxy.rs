//! A TCP proxy on 127.0.0.1 between a client and the server, that can cut every
//! connection through it at once (a Wi-Fi drop, as both ends see it: the connection
//! closes) and be pointed at another server (a restart on a new port), or hold one
//! connection's traffic for a while (a connection backed up: nothing lost, all late).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Proxy {
    pub addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    /// Both sockets of every connection made so far.
    open: Arc<Mutex<Vec<TcpStream>>>,
    /// While set, new connections are closed at once (the network is still down).
    refusing: Arc<AtomicBool>,
    /// One flag per connection, in the order they came: while set, what it carries
    /// either way waits in the proxy.
    held: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            upstream: Arc::new(Mutex::new(upstream)),
            open: Arc::default(),
            refusing: Arc::default(),
            held: Arc::default(),
            stop: Arc::default(),
        };
        let (upstream, open, refusing, held, stop) = (
            proxy.upstream.clone(),
            proxy.open.clone(),
            proxy.refusing.clone(),
            proxy.held.clone(),
            proxy.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) if refusing.load(Ordering::Relaxed) => drop(client),
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let target = *upstream.lock().unwrap();
                        let Ok(server) = TcpStream::connect(target) else { continue };
                        let mut open = open.lock().unwrap();
                        open.push(client.try_clone().unwrap());
                        open.push(server.try_clone().unwrap());
                        let hold = Arc::new(AtomicBool::new(false));
                        held.lock().unwrap().push(hold.clone());
                        pipe(
                            client.try_clone().unwrap(),
                            server.try_clone().unwrap(),
                            hold.clone(),
                        );
                        pipe(server, client, hold);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        proxy
    }

    /// Closes every connection through the proxy, on both sides.
    pub fn cut(&self) {
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// While `down`, connections are accepted and closed at once.
    pub fn set_down(&self, down: bool) {
        self.refusing.store(down, Ordering::Relaxed);
    }

    /// Holds (`true`) or lets go (`false`) the traffic of the `n`th connection made
    /// through the proxy (0: the first): while held, what either end sends waits in the
    /// proxy and arrives, in order, once it is let go.
    pub fn hold(&self, n: usize, held: bool) {
        self.held.lock().unwrap()[n].store(held, Ordering::Relaxed);
    }

    /// New connections go to `addr` from now on.
    pub fn point_to(&self, addr: SocketAddr) {
        *self.upstream.lock().unwrap() = addr;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
    }
}

/// Copies `from` to `to` on a thread of its own until either end closes, waiting while
/// `held`.
fn pipe(mut from: TcpStream, mut to: TcpStream, held: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            while held.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
            }
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
