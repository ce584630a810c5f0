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

/// A server with a control socket for `tchat ctl`; returns it with the socket.
fn server_with_ctl(extra: &[&str]) -> (Server, std::path::PathBuf) {
    let socket = common::temp_path("control.sock");
    let mut args = vec!["--control-socket", socket.to_str().unwrap()];
    args.extend_from_slice(extra);
    (Server::start(&args), socket)
}

fn ctl_ok(socket: &std::path::Path, args: &[&str]) -> String {
    let out = common::ctl(socket, args);
    assert_eq!(out.code, 0, "tchat ctl {args:?} failed: {}{}", out.stdout, out.stderr);
    out.stdout
}

/// A muted user reaches nobody with any text of its choosing: not a topic, not a nick,
/// not a new room's name, not a quit reason, not an away message; it may still move to
/// a room that exists. Witnesses see none of it.
#[test]
fn a_muted_user_reaches_nobody_by_any_command() {
    let (server, socket) = server_with_ctl(&[]);
    let mut witness = server.text_client("witness");
    let mut mo = server.text_client("mo");
    witness.expect("mo joined");
    ctl_ok(&socket, &["mute", "mo", "5m"]);
    mo.expect("you have been muted");
    for (command, refused) in [
        ("/topic BUY CHEAP PILLS", "/topic TEXT is not sent"),
        ("/nick BuyCheapPills", "/nick is not sent"),
        ("/join #buy-cheap-pills", "/join of a new room is not sent"),
        ("/away visit spam.example", "/away MESSAGE is not sent"),
    ] {
        mo.send(command);
        let line = mo.expect(refused);
        assert!(line.starts_with("!!! you are muted until"), "{line}");
    }
    // /whois shows no away text of its choosing, and /rooms no new room.
    witness.send("/whois mo");
    let whois = witness.expect("mo");
    assert!(!whois.contains("spam"), "{whois}");
    witness.send("/rooms");
    let rooms = witness.sync().join("\n");
    assert!(!rooms.contains("pills"), "{rooms}");
    // A room that exists is fine.
    witness.send("/join #dev");
    witness.expect("#dev");
    mo.send("/join #dev");
    mo.expect("You are in #dev");
    mo.send("/quit see my profile at spam.example");
    mo.read_to_close();
    let left = witness.expect("mo left");
    assert!(!left.contains("spam"), "{left}");
    witness.sync();
    let seen = witness.seen.join("\n");
    for spam in ["PILLS", "BuyCheapPills", "buy-cheap-pills", "spam.example"] {
        assert!(!seen.contains(spam), "{spam} reached the witness:\n{seen}");
    }
}

/// A mute with a duration outlasts the connection: the user comes back under the same
/// nick, or from the same address under another, and is still muted, until unmuted.
#[test]
fn a_mute_lasts_across_reconnects_by_nick_and_by_address() {
    let (server, socket) = server_with_ctl(&[]);
    let mut witness = server.text_client("witness");
    let mut mo = server.text_client("mo");
    witness.expect("mo joined");
    ctl_ok(&socket, &["mute", "mo", "10m"]);
    mo.expect("you have been muted");
    mo.send("/quit");
    mo.read_to_close();
    witness.expect("mo left");
    let mut mo = server.text_client("mo");
    mo.send("back to spam");
    assert!(mo.expect("!!! ").contains("you are muted until"));
    mo.send("/quit");
    mo.read_to_close();
    // Same address, another nick.
    let mut other = server.text_client("mo2");
    other.send("spam under another name");
    assert!(other.expect("!!! ").contains("you are muted until"));
    ctl_ok(&socket, &["unmute", "mo2"]);
    other.expect("you may speak again");
    other.send("fine now");
    witness.expect("<mo2> fine now");
    witness.sync();
    assert!(!witness.seen.iter().any(|l| l.contains("spam")), "{:?}", witness.seen);
}

/// The server's own burst on join must fit the send queue it sets: a MOTD too large for
/// `--send-queue` is refused at start with a clear error, instead of every client being
/// dropped as too slow on joining; one that fits is sent and nobody is dropped.
#[test]
fn a_motd_that_does_not_fit_the_send_queue_is_refused_at_start() {
    let motd = common::temp_path("big.motd");
    // Under the 16 KiB any MOTD may have, over what a 20,000-byte queue leaves it.
    std::fs::write(&motd, "welcome to the chat, please read the rules\n".repeat(300)).unwrap();
    let state = common::state_dir::StateDir::new("motd-queue");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tchat"))
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--send-queue", "20000"])
        .arg("--motd")
        .arg(&motd)
        .env("XDG_STATE_HOME", &*state)
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started: {stderr}");
    assert!(
        stderr.contains("do not fit the burst a client gets on join with --send-queue 20000")
            && stderr.contains("raise --send-queue or shorten the MOTD"),
        "{stderr}"
    );
    // A MOTD that fits: sent whole, the client stays.
    std::fs::write(&motd, "welcome to the chat, please read the rules\n".repeat(40)).unwrap();
    let server = Server::start(&["--send-queue", "20000", "--motd", motd.to_str().unwrap()]);
    let (mut c, _) = server.json_client("reader");
    let shown = c.expect_event("motd");
    assert_eq!(shown["text"].as_str().unwrap().matches("read the rules").count(), 40);
    c.send("/list");
    c.expect_event("users");
    let _ = std::fs::remove_file(&motd);
}

/// Combining marks per character are bounded in nicks and room names: a "zalgo" name
/// is refused and never announced; real names that stack a few marks still pass.
#[test]
fn zalgo_names_are_refused_and_real_names_with_marks_pass() {
    let server = Server::start(&[]);
    let mut witness = server.text_client("witness");
    let mut c = server.text_client("plain");
    witness.expect("plain joined");
    let zalgo = format!("h{}i", "\u{300}\u{301}\u{302}\u{303}\u{304}\u{305}".repeat(4));
    c.send(&format!("/nick {zalgo}"));
    assert!(c.expect("!!! ").contains("cannot stack more than 4 combining marks"));
    c.send(&format!("/join #{zalgo}"));
    assert!(c.expect("!!! ").contains("a room name cannot stack more than 4 combining marks"));
    for name in ["Nguye\u{302}\u{303}n", "प्रियंका", "สมศักดิ์"] {
        c.send(&format!("/nick {name}"));
        witness.expect("is now known as");
    }
    c.send("/join #ที่รัก");
    c.expect("You are in #ที่รัก");
    witness.sync();
    assert!(!witness.seen.iter().any(|l| l.contains('\u{305}')), "{:?}", witness.seen);
}
