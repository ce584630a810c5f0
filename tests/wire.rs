//! What reaches the server before the chat logic: telnet commands, line ends, the TCP
//! options of both ends, admission per address, and connections that never speak.
//! Through the real binary and raw TCP clients on 127.0.0.1.

mod common;

use common::Server;

/// What PuTTY sends first on a telnet connection: WILL NAWS, WILL TSPEED, WILL TTYPE,
/// WILL NEW-ENVIRON, DO ECHO, WILL SGA, DO SGA.
const PUTTY_HELLO: &[u8] =
    b"\xff\xfb\x1f\xff\xfb\x20\xff\xfb\x18\xff\xfb\x27\xff\xfd\x01\xff\xfb\x03\xff\xfd\x03";

#[test]
fn a_telnet_client_negotiating_first_sets_its_nick() {
    let server = Server::start(&[]);
    let mut alice = server.text_client("alice");
    let mut bob = server.connect();
    bob.send_raw(&[PUTTY_HELLO, b"/nick bob\r\n"].concat());
    assert!(bob.expect("Welcome").contains("You are bob;"), "{:?}", bob.seen);
    assert_eq!(alice.expect("joined"), "*** bob joined (2 online)");
    // Negotiation in the middle of a line, split across writes, is removed too (each
    // split point is covered by the unit tests of `framing` and `telnet`; here the
    // writes usually arrive as separate reads).
    bob.stream.set_nodelay(true).unwrap();
    bob.send_raw(b"hel\xff");
    bob.send_raw(b"\xfd\x01lo\xff\xf1 there\r");
    bob.send_raw(b"\n");
    assert_eq!(alice.expect("<bob>"), "<bob> hello there");
    assert!(alice.sync().iter().all(|l| !l.contains('\u{fffd}')), "{:?}", alice.seen);
}

#[test]
fn a_bare_cr_and_cr_nul_end_a_line() {
    let server = Server::start(&[]);
    let mut alice = server.text_client("alice");
    let mut crman = server.text_client("someone");
    crman.send_raw(b"/nick crman\rhello\rworld\n");
    assert_eq!(alice.expect("known as"), "*** someone is now known as crman");
    assert_eq!(alice.expect("<crman>"), "<crman> hello");
    assert_eq!(alice.expect("<crman>"), "<crman> world");
    // CR NUL (RFC 854) and CRLF split across two writes each end one line, no empty ones.
    crman.stream.set_nodelay(true).unwrap();
    crman.send_raw(b"one\r");
    crman.send_raw(b"\0two\r");
    crman.send_raw(b"\nthree\n");
    assert_eq!(alice.expect("<crman>"), "<crman> one");
    assert_eq!(alice.expect("<crman>"), "<crman> two");
    assert_eq!(alice.expect("<crman>"), "<crman> three");
    let after = alice.sync();
    assert!(after.iter().all(|l| !l.starts_with("<crman>")), "{after:?}");
    // An empty line is an empty request, never an error.
    assert!(crman.sync().iter().all(|l| !l.starts_with("!!!")), "{:?}", crman.seen);
}

/// Local connections (an SSH tunnel, a reverse proxy, a bot farm, a test run) carry many
/// users from one address: loopback is exempt from `--max-per-ip` by default.
#[test]
fn loopback_is_exempt_from_the_per_address_limit_by_default() {
    const CLIENTS: usize = 20; // more than the default --max-per-ip of 16
    let server = Server::start(&["--rate", "0"]);
    let mut clients: Vec<_> = (0..CLIENTS).map(|i| server.text_client(&format!("c{i}"))).collect();
    let list = clients[0].sync().pop().unwrap();
    assert!(list.starts_with(&format!("*** {CLIENTS} online: ")), "{list}");
    assert_eq!(server.console_count("Connection refused"), 0);
}

/// An exempt list replaces the default: without loopback in it, the limit applies here.
#[test]
fn an_exempt_list_without_loopback_limits_loopback() {
    let server =
        Server::start(&["--max-per-ip", "2", "--max-per-ip-exempt", "192.0.2.0/24,fd00::/8"]);
    let _a = server.text_client("a1");
    let _b = server.text_client("b2");
    let mut c = server.connect();
    assert_eq!(c.read_to_close(), ["!!! too many connections from your address (limit 2)"]);
    // And naming loopback exempts it again.
    let server =
        Server::start(&["--max-per-ip", "2", "--max-per-ip-exempt", "10.0.0.0/8,127.0.0.1"]);
    let mut clients: Vec<_> = (0..3).map(|i| server.text_client(&format!("n{i}"))).collect();
    assert_eq!(clients[2].sync().pop().unwrap(), "*** 3 online: n0, n1, n2");
}
