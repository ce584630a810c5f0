//! Socket settings both ends of a chat connection use, and what the server counts a
//! peer address as.

use std::io;
use std::net::IpAddr;
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

/// How long data sent may stay unacknowledged before the connection counts as dead
/// (`TCP_USER_TIMEOUT`, RFC 5482; Linux `tcp(7)`). Keepalive probes only a connection
/// with nothing in flight: a peer that vanishes while a line to it is unacknowledged
/// would otherwise be retransmitted to for about 15 minutes (`tcp_retries2`). The same
/// 90 s as keepalive, so a vanished peer is dropped within about 90 s either way; with
/// both set, Linux ends a keepalive-probed connection once no answer came for this long
/// and a probe is out, which is the keepalive figure above too.
pub const USER_TIMEOUT: Duration = Duration::from_secs(
    KEEPALIVE_IDLE.as_secs() + KEEPALIVE_INTERVAL.as_secs() * KEEPALIVE_PROBES as u64,
);

/// Sets up a connected chat socket: no Nagle delay (chat lines are small, and latency
/// matters more than packet count), and keepalive probes and a user timeout so a
/// vanished peer is noticed whether or not data to it is in flight.
pub fn tune(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    let socket = SockRef::from(stream);
    socket.set_tcp_keepalive(&keepalive)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    socket.set_tcp_user_timeout(Some(USER_TIMEOUT))?;
    Ok(())
}

/// What a peer address counts as, for `--max-per-ip` and for the wrong-password backoff
/// ([`crate::auth::Failures`]): an IPv4 address as itself (also when it arrives
/// IPv4-mapped on a dual-stack listener), an IPv6 address as its /64 network. One IPv6
/// host usually holds a whole /64 and can connect from as many addresses as it likes,
/// so a count per IPv6 address would limit nobody.
pub fn origin(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !(u128::MAX >> 64)).into()),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_as_its_64_network_and_mapped_ipv4_as_ipv4() {
        let o = |s: &str| origin(s.parse().unwrap()).to_string();
        assert_eq!(o("192.0.2.7"), "192.0.2.7");
        assert_eq!(o("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(o("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(o("2001:db8:1:2::1"), o("2001:db8:1:2:ffff::9"));
        assert_ne!(o("2001:db8:1:2::1"), o("2001:db8:1:3::1"));
        assert_eq!(o("::1"), "::");
    }
}
