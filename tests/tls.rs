//! TLS on the chat port, through the real binary: detection of a ClientHello next to
//! typed lines, the generated certificate, and bad input on the TLS path.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use common::{Client, Server, WAIT};

/// Whether `tool` runs; a missing tool skips the test with a notice, except in CI
/// (`CI` set), where .ci/packages installs it and the test must run.
fn have(tool: &str, package: &str) -> bool {
    let found = Command::new(tool)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        let msg =
            format!("`{tool}` is not installed (Debian package `{package}`, in .ci/packages)");
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("{msg}; CI must run this test");
        }
        eprintln!("SKIPPED: {msg}; this test runs in CI");
    }
    found
}

/// `openssl s_client -quiet` as a chat client: lines in on stdin, lines out on stdout.
struct OpensslClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl OpensslClient {
    fn connect(server: &Server) -> OpensslClient {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", &server.addr.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting openssl s_client");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stdin = child.stdin.take();
        OpensslClient { child, stdin, lines, seen: Vec::new() }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("openssl never showed {needle:?}; it showed {:?}", self.seen);
    }
}

impl Drop for OpensslClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn openssl_s_client_and_a_plain_client_chat_on_one_port() {
    if !have("openssl", "openssl") {
        return;
    }
    let mut server = Server::start(&[]);
    let mut plain = server.text_client("plainie");
    let mut tls = OpensslClient::connect(&server);
    tls.send("/nick secure");
    tls.expect("You are secure;");
    let nick_set = server.wait_console("new=secure");
    assert!(nick_set.contains("transport=TLSv1.3"), "{nick_set}");
    tls.send("hello over TLS");
    plain.expect("<secure> hello over TLS");
    plain.send("hello in plain text");
    tls.expect("<plainie> hello in plain text");
    let plain_set = server.console_text();
    assert!(
        plain_set.contains("new=plainie") && plain_set.contains("transport=plain"),
        "{plain_set}"
    );
}

#[test]
fn the_generated_certificate_is_kept_and_fingerprint_prints_it() {
    let server = Server::start(&[]);
    assert!(server.fingerprint.starts_with("SHA256:"), "{}", server.fingerprint);
    let out = Command::new(env!("CARGO_BIN_EXE_tchat"))
        .args(["serve", "--fingerprint"])
        .env("XDG_STATE_HOME", &*server.state)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{}\n", server.fingerprint));
    // --state-dir names the directory itself, for services.
    let dir = server.state.join("tchat");
    let out = Command::new(env!("CARGO_BIN_EXE_tchat"))
        .args(["serve", "--fingerprint", "--state-dir"])
        .arg(&dir)
        .env("XDG_STATE_HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{}\n", server.fingerprint));
}

#[test]
fn a_garbage_client_hello_leaves_the_server_serving() {
    let mut server = Server::start(&[]);
    let mut bad = Client::connect(server.addr);
    // A handshake record header, then a body that is no ClientHello.
    bad.send_raw(&[0x16, 0x03, 0x01, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
    server.wait_console("TLS handshake failed");
    let _ = bad.read_to_close();
    let mut a = server.text_client("alice");
    a.send("/list");
    a.expect("alice");
}

#[test]
fn a_plain_line_starting_with_0x16_is_a_plain_line() {
    let server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let mut odd = Client::connect(server.addr);
    odd.send_raw(b"\x16hi there\n");
    odd.expect("Welcome to tchat");
    // The control byte is stripped on the way in, as for any typed line.
    a.expect("hi there");
}

#[test]
fn a_stalled_handshake_is_dropped_and_others_chat_meanwhile() {
    let mut server = Server::start(&[]);
    let mut stalled = Client::connect(server.addr);
    // The start of a ClientHello, and then nothing.
    stalled.send_raw(&[0x16, 0x03, 0x01, 0x00, 0xff, 0x01]);
    let mut a = server.text_client("alice");
    let mut b = server.text_client("bob");
    a.send("still here");
    b.expect("<alice> still here");
    let line = server.wait_console("TLS handshake failed");
    assert!(line.contains("timed out"), "{line}");
    stalled.read_to_close();
}
