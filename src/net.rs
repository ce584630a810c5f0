//! Socket settings both ends of a chat connection use.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// Silence after which the kernel starts probing the peer. A chat connection can be
/// quiet for hours; a peer that vanished without a FIN or RST (a laptop closed, a NAT
/// entry expired, a host powered off) would otherwise hold its nick and its slot until
/// the server restarts, and a client would wait forever for a server that is gone.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Between unanswered probes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes before the connection counts as dead: found within about
/// 60 + 3 × 10 = 90 seconds, instead of Linux's default of over two hours.
const KEEPALIVE_PROBES: u32 = 3;

/// Sets up a connected chat socket: no Nagle delay (chat lines are small, and latency
/// matters more than packet count), and keepalive probes so a vanished peer is noticed.
pub fn tune(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    SockRef::from(stream).set_tcp_keepalive(&keepalive)
}
