//! What a user or a script can try against the real server, and what it must not get:
//! a held session taken from its owner by a limit, a mute with holes, bans wider than
//! an operator should cast, names and texts that forge or smear what others see.

mod common;

use common::proxy::Proxy;
use common::{Client, Server};
use serde_json::Value;

/// A structured client through `addr` with a resume hello; its first line.
fn resume_hello(addr: std::net::SocketAddr, nick: &str, token: &str) -> (Client, String) {
    let mut c = Client::connect(addr);
    c.send(&format!("/hello json {nick} resume {token} 0"));
    let first = c.next_line().expect("a first line");
    (c, first)
}

/// Jay, structured, through a proxy that can cut him off; returns him and his token.
fn jay_through(proxy: &Proxy) -> (Client, String) {
    let mut c = Client::connect(proxy.addr);
    c.send("/hello json jay");
    let token = c.expect_event("welcome")["resume"].as_str().unwrap().to_owned();
    (c, token)
}

/// Under `--max-per-ip 1`, a reset must not end a user's session for good: the owner's
/// token takes it back although its held session fills the address's one slot. A
/// stranger from the address (no token, a wrong one) is still refused.
#[test]
fn the_owner_resumes_a_held_session_under_max_per_ip_1() {
    let mut server = Server::start(&["--max-per-ip", "1", "--max-per-ip-exempt", "none"]);
    let proxy = Proxy::start(server.addr);
    let (mut jay, token) = jay_through(&proxy);
    proxy.cut();
    jay.read_to_close();
    server.wait_console("Held for resume");
    let mut stranger = Client::connect(server.addr);
    stranger.send("/nick mallory");
    assert_eq!(stranger.read_to_close(), ["!!! too many connections from your address (limit 1)"]);
    let wrong = format!("{}{}", &token[..8], "f".repeat(32));
    let (mut thief, first) = resume_hello(server.addr, "jay", &wrong);
    assert_eq!(first, "!!! too many connections from your address (limit 1)");
    assert!(thief.read_to_close().is_empty());
    let (mut back, first) = resume_hello(server.addr, "jay", &token);
    let welcome: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        (welcome["type"].as_str(), welcome["nick"].as_str()),
        (Some("welcome"), Some("jay"))
    );
    assert_eq!(back.expect_event("resumed")["resumed"], true);
    server.wait_console("Resumed");
    // The slot is the resumed session's: it chats on.
    back.send("/list");
    assert!(back.expect_event("users")["users"].to_string().contains("jay"));
}

/// A full server, and the laptop that slept: its old connection still looks open
/// (not even held yet) when it comes back. The token takes the session over; a stranger
/// let in meanwhile is told "server full" once its hello resumed nothing.
#[test]
fn the_owner_resumes_on_a_full_server_and_strangers_are_still_refused() {
    let server = Server::start(&["--max-clients", "2"]);
    let mut alice = server.text_client("alice");
    let (mut old, welcome) = server.json_client("jay");
    let token = welcome["resume"].as_str().unwrap().to_owned();
    alice.expect("jay joined");
    // A stranger, with no token: the hello window passes, and it is refused.
    let mut stranger = Client::connect(server.addr);
    assert_eq!(stranger.read_to_close(), ["!!! server full (2 clients); try again later"]);
    let mut stranger = Client::connect(server.addr);
    stranger.send("/hello json eve");
    assert_eq!(stranger.read_to_close(), ["!!! server full (2 clients); try again later"]);
    let (mut new, first) = resume_hello(server.addr, "jay", &token);
    assert!(first.contains("\"welcome\""), "{first}");
    assert_eq!(new.expect_event("resumed")["resumed"], true);
    old.read_to_close();
    alice.send("still here");
    assert_eq!(new.expect_event("public")["text"], "still here");
    alice.sync();
    assert!(!alice.seen.iter().any(|l| l.contains("jay left") || l.contains("eve")));
}

/// `tchat join --reconnect` told "server full; try again later" keeps trying with its
/// backoff, and gets in once a place frees.
#[test]
fn a_client_told_to_try_again_later_retries_until_it_gets_in() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let server = Server::start(&["--max-clients", "2"]);
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    let state = common::state_dir::StateDir::new("try-later");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tchat"))
        .args(["join", "127.0.0.1", "--port", &server.addr.port().to_string()])
        .args(["--nick", "pat", "--reconnect", "--fingerprint", &server.fingerprint])
        .env("XDG_STATE_HOME", &*state)
        .env("HOME", &*state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |needle: &str| loop {
        match lines.recv_timeout(common::WAIT) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no {needle:?} from tchat join ({e}); it showed {seen:#?}"),
        }
    };
    wait_for("server full (2 clients); try again later");
    // Still trying: a second refusal, after the backoff.
    wait_for("server full (2 clients); try again later");
    assert!(child.try_wait().unwrap().is_none(), "tchat join gave up");
    bob.send("/quit");
    wait_for("as pat;");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"made it\n").unwrap();
    assert_eq!(alice.expect("made it"), "<pat> made it");
    drop(stdin);
    let status = common::wait_exit(&mut child);
    assert!(status.success(), "{status:?}");
}
