//! `tchat join` driven through piped stdin (how scripts use it), against a real
//! `tchat serve` on 127.0.0.1.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::peer::{BIN, Peer, TIMEOUT};
use common::silent::Silent;
use common::state_dir::StateDir;
use common::{Server, keepalive_timer, tcp_sockets};
use tchat::protocol::EventKind;

/// A piped `tchat join`, its stdout collected line by line.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// Kept until the client is gone.
    _state: Option<StateDir>,
}

impl Client {
    fn start(name: &str, args: &[&str]) -> Client {
        let dir = StateDir::new(name);
        let mut client = Client::start_in(&dir, args);
        client._state = Some(dir);
        client
    }

    /// [`Client::start`] with `dir` as its state directory, which outlives it: for a
    /// client started again with what the first one remembered.
    fn start_in(dir: &Path, args: &[&str]) -> Client {
        let mut child = Command::new(BIN)
            .arg("join")
            .args(args)
            .env("XDG_STATE_HOME", dir)
            .env("HOME", dir)
            .env_remove("NO_COLOR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tchat join");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stdin = child.stdin.take();
        Client { child, stdin, lines, seen: Vec::new(), _state: None }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for an output line containing `text`; returns it.
    fn expect(&mut self, text: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        let deadline = Instant::now() + TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("the client never printed {text:?}; it printed {:#?}", self.seen);
    }

    /// Closes stdin (unless already closed) and waits for the exit; returns the status,
    /// the rest of stdout and stderr.
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        drop(self.stdin.take());
        let Some(status) = common::poll_exit(TIMEOUT, || self.child.try_wait().unwrap()) else {
            let _ = self.child.kill();
            panic!("the client did not exit; it printed {:#?}", self.seen);
        };
        self.seen.extend(self.lines.iter());
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        (status, self.seen, stderr)
    }
}

#[test]
fn piped_lines_are_sent_and_events_printed_plain() {
    let server = Server::start(&["--rate", "0"]);
    let mut bob = Peer::join(server.addr, "bob");
    let addr = server.addr.to_string();
    let mut alice =
        Client::start("piped", &[&addr, "--fingerprint", &server.fingerprint, "--nick", "alice"]);
    alice.expect("You are alice; 2 online: alice, bob");
    bob.wait_for("alice joining", |e| matches!(e, EventKind::Join { nick, .. } if nick == "alice"));

    // What the other participant sends shows up in the client's output.
    bob.send("hi alice");
    alice.expect("<bob> hi alice");
    bob.send("/msg alice a secret");
    alice.expect("*bob* a secret");
    bob.send("/me waves");
    alice.expect("* bob waves");

    // And what the client sends reaches the other participant.
    alice.send("hello everyone");
    bob.wait_for("the public line", |e| {
        matches!(e, EventKind::Public { from, text, .. } if from == "alice" && text == "hello everyone")
    });
    alice.expect("<alice> hello everyone");
    alice.send("/me waves back");
    bob.wait_for("the action", |e| {
        matches!(e, EventKind::Action { from, text, .. } if from == "alice" && text == "waves back")
    });
    alice.expect("* alice waves back");
    alice.send("/msg bob psst");
    bob.wait_for("the private message", |e| {
        matches!(e, EventKind::Private { from, to, text } if from == "alice" && to == "bob" && text == "psst")
    });
    alice.expect("-> *bob* psst");
    alice.send("/nick alicia");
    bob.wait_for(
        "the rename",
        |e| matches!(e, EventKind::Nick { old, new, .. } if old == "alice" && new == "alicia"),
    );
    alice.expect("You are now known as alicia");
    alice.send("/list");
    alice.expect("2 online: alicia, bob");
    alice.send("/frobnicate");
    alice.expect("!!! unknown command /frobnicate");

    // End of input: the client says goodbye and exits once the server has answered.
    let (status, out, stderr) = alice.finish();
    assert!(status.success(), "exit {status:?}; stderr {stderr}");
    assert!(out.iter().any(|l| l.contains("Goodbye")), "{out:#?}");
    assert!(stderr.is_empty(), "{stderr}");
    // Not a terminal and --color auto: no escape sequences at all.
    assert!(!out.iter().any(|l| l.contains('\u{1b}')), "{out:#?}");
    // Every line starts with an HH:MM timestamp.
    for line in out.iter().filter(|l| !l.starts_with(' ')) {
        let b = line.as_bytes();
        assert!(b.len() > 6 && b[2] == b':' && b[5] == b' ', "no timestamp: {line:?}");
    }
    bob.wait_for(
        "alicia leaving",
        |e| matches!(e, EventKind::Leave { nick, .. } if nick == "alicia"),
    );
}

#[test]
fn everything_sent_before_the_end_of_input_is_answered() {
    let server = Server::start(&["--rate", "0"]);
    let addr = server.addr.to_string();
    let mut carol =
        Client::start("burst", &[&addr, "--fingerprint", &server.fingerprint, "--nick", "carol"]);
    for i in 0..10 {
        carol.send(&format!("line {i}"));
    }
    carol.send("/list");
    let (status, out, stderr) = carol.finish();
    assert!(status.success(), "exit {status:?}; stderr {stderr}");
    for i in 0..10 {
        assert!(out.iter().any(|l| l.ends_with(&format!("<carol> line {i}"))), "{out:#?}");
    }
    assert!(out.iter().any(|l| l.contains("1 online: carol")), "{out:#?}");
}

/// The original design's exact command line: `--host` in place of the positional HOST.
#[test]
fn the_original_designs_command_line_joins() {
    let server = Server::start(&[]);
    let port = server.addr.port().to_string();
    let fp = server.fingerprint.clone();
    let args =
        ["--host", "127.0.0.1", "--port", &port, "--nick", "MrLaction", "--fingerprint", &fp];
    let mut client = Client::start("design", &args);
    client.expect("You are MrLaction;");
    client.send("/quit");
    let (status, _, stderr) = client.finish();
    assert!(status.success(), "exit {status:?}; stderr {stderr}");
    // HOST and --host together are a usage error, not a guess.
    let both = Client::start("both", &["127.0.0.1", "--host", "127.0.0.1", "--port", &port]);
    let (status, _, stderr) = both.finish();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

/// A password file given for a server that needs none: the client joins without a word
/// about passwords (the server's answer to the unneeded `/pass` is not shown).
#[test]
fn a_password_for_a_server_without_one_is_not_mentioned() {
    let server = Server::start(&[]);
    let dir = StateDir::new("password-unneeded");
    let file = dir.join("password");
    std::fs::write(&file, "not-needed\n").unwrap();
    let addr = server.addr.to_string();
    let args = [&addr, "--plain", "--nick", "pat", "--password-file", file.to_str().unwrap()];
    let mut client = Client::start_in(&dir, &args);
    client.expect("You are pat;");
    client.send("/quit");
    let (status, lines, stderr) = client.finish();
    assert!(status.success(), "exit {status:?}; stderr {stderr}");
    assert!(!lines.iter().any(|l| l.contains("password")), "{lines:#?}");
    // --plain says, once, what it gives up.
    assert_eq!(stderr, "tchat: connecting without TLS (--plain): the network can read this chat\n");
}

/// `seq 1 N | tchat join … --nick NICK` through `sh`, as a user runs it; with the state
/// directory, to keep until the client is gone.
fn pipe_script(server: &Server, lines: usize, nick: &str) -> (Child, StateDir) {
    let state = StateDir::new(&format!("seq-{nick}"));
    let script = format!(
        "seq 1 {lines} | '{BIN}' join 127.0.0.1 --port {} --nick {nick} --fingerprint {}",
        server.addr.port(),
        server.fingerprint
    );
    let child = Command::new("sh")
        .args(["-c", &script])
        .env("XDG_STATE_HOME", &*state)
        .env("HOME", &*state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, state)
}

/// Collects, on `bob`, the lines each of `scripts` (nick, line count) says until every
/// one has said all of them and left; fails on any leave other than a `/quit`.
fn collect_scripts(bob: &mut Peer, scripts: &[(&str, usize)]) -> Vec<Vec<String>> {
    let mut got = vec![Vec::new(); scripts.len()];
    let mut left = vec![false; scripts.len()];
    let deadline = Instant::now() + Duration::from_secs(120);
    while left.iter().any(|l| !l) {
        assert!(Instant::now() < deadline, "scripts still running: {got:?}");
        let index = |nick: &str| scripts.iter().position(|(n, _)| *n == nick);
        match bob.next_event() {
            EventKind::Public { from, text, .. } if let Some(i) = index(&from) => got[i].push(text),
            EventKind::Leave { nick, reason, .. } if let Some(i) = index(&nick) => {
                assert_eq!(reason, "quit", "{nick} left after {} lines", got[i].len());
                left[i] = true;
            }
            _ => {}
        }
    }
    got
}

/// Waits for a piped client's exit and checks it ended as a finished script does: exit
/// 0, its last line shown, the goodbye, never slowed by the server (it paced itself to
/// the rate the welcome stated) and no error.
fn expect_clean_script_end(child: Child, lines: usize, nick: &str) {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{nick}: exit {:?}; stderr {stderr}", out.status);
    assert!(stdout.contains(&format!("<{nick}> {lines}\n")), "{stdout}");
    assert!(stdout.contains(&format!("Goodbye, {nick}!")), "{stdout}");
    assert!(!stdout.contains("sending faster than"), "{nick} was slowed: {stdout}");
    assert!(!stdout.contains("!!!"), "{stdout}");
}

/// The issue's script, run as a user would: `seq 1 100 | tchat join …` under the
/// default flood control (--rate 5 --burst 20), five times the burst. Every line reaches
/// the other participant, in order; the client paces itself, so the server never has
/// to slow it down; and it exits 0 once its /quit is answered (about 19 s).
#[test]
fn a_piped_script_beyond_the_burst_is_delivered_whole() {
    let server = Server::start(&[]);
    let mut bob = Peer::join(server.addr, "bob");
    let (child, _state) = pipe_script(&server, 100, "cron");
    let got = collect_scripts(&mut bob, &[("cron", 100)]);
    let expected: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
    assert_eq!(got[0], expected);
    expect_clean_script_end(child, 100, "cron");
    assert_eq!(server.console_count("Flood throttled"), 0);
}

/// Scripts of several lengths at once, from one line to 600 (six seconds at this rate,
/// and far past the old kick bound, given as `--flood-kick-after 1`, now ignored):
/// each arrives whole and in order, none is slowed by the server or cut, and each
/// client exits 0 when its input ends.
#[test]
fn piped_scripts_of_several_lengths_arrive_whole_and_exit_0() {
    let server = Server::start(&["--rate", "100", "--burst", "100", "--flood-kick-after", "1"]);
    let mut bob = Peer::join(server.addr, "bob");
    let scripts = [("one", 1), ("nine", 9), ("quarter", 250), ("long", 600)];
    let (children, _states): (Vec<Child>, Vec<StateDir>) =
        scripts.iter().map(|(nick, n)| pipe_script(&server, *n, nick)).unzip();
    let got = collect_scripts(&mut bob, &scripts);
    for ((nick, n), said) in scripts.iter().zip(&got) {
        let expected: Vec<String> = (1..=*n).map(|i| i.to_string()).collect();
        assert_eq!(said, &expected, "{nick}");
    }
    for ((nick, n), child) in scripts.iter().zip(children) {
        expect_clean_script_end(child, *n, nick);
    }
    assert_eq!(server.console_count("Flood throttled"), 0);
    assert_eq!(server.console_count("Flooder disconnected"), 0);
}

/// A kick while a long script is still being sent: the client shows why (the server's
/// last line survives the close) and exits non-zero, although its input was not over.
#[test]
fn a_kicked_client_shows_why_and_fails() {
    let socket = common::temp_path("kick-script.sock");
    let server = Server::start(&["--rate", "20", "--control-socket", socket.to_str().unwrap()]);
    let addr = server.addr.to_string();
    let mut flood =
        Client::start("kicked", &[&addr, "--fingerprint", &server.fingerprint, "--nick", "spam"]);
    // About 30 KB: fits the pipe, and takes two and a half minutes at this rate.
    let lines: String = (0..3000).map(|i| format!("spam {i}\n")).collect();
    flood.send(lines.trim_end());
    flood.expect("<spam> spam 25");
    let out = common::ctl(&socket, &["kick", "spam", "enough"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = flood.expect("you were kicked by ctl: enough");
    assert!(line.contains("!!! "), "{line}");
    common::expect_exit(&mut flood.child, TIMEOUT, "the client after the kick");
    let (status, out, stderr) = flood.finish();
    assert_eq!(status.code(), Some(1), "{out:#?}");
    assert_eq!(stderr.trim(), "tchat: the server closed the connection");
}

/// An operator's kick is not a lost connection: a client that would reconnect after
/// one (`--reconnect`) shows the kick and exits instead of coming back.
#[test]
fn a_client_kicked_by_an_operator_does_not_reconnect() {
    let socket = common::temp_path("kick-client.sock");
    let server = Server::start(&["--rate", "0", "--control-socket", socket.to_str().unwrap()]);
    let mut bob = Peer::join(server.addr, "bob");
    let addr = server.addr.to_string();
    let fp = server.fingerprint.clone();
    let mut cat = Client::start(
        "kick-reconnect",
        &[&addr, "--fingerprint", &fp, "--nick", "cat", "--reconnect"],
    );
    cat.expect("You are cat");
    bob.wait_for("cat's join", |e| matches!(e, EventKind::Join { nick, .. } if nick == "cat"));
    let out = common::ctl(&socket, &["kick", "cat", "enough"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    cat.expect("you were kicked by ctl: enough");
    common::expect_exit(&mut cat.child, TIMEOUT, "the client after an operator's kick");
    let (status, out, stderr) = cat.finish();
    assert_eq!(status.code(), Some(1), "{out:#?}");
    assert!(!out.iter().any(|l| l.contains("reconnecting")), "{out:#?}");
    assert_eq!(stderr.trim(), "tchat: the server closed the connection");
}

#[test]
fn quit_leaves_at_once_with_its_reason() {
    let server = Server::start(&["--rate", "0"]);
    let mut bob = Peer::join(server.addr, "bob");
    let addr = server.addr.to_string();
    let mut dave =
        Client::start("quit", &[&addr, "--fingerprint", &server.fingerprint, "--nick", "dave"]);
    dave.expect("You are dave");
    dave.send("/quit see you");
    // stdin stays open: the client leaves because of /quit, not end of input.
    let event = bob.wait_for("dave leaving", |e| matches!(e, EventKind::Leave { .. }));
    assert!(matches!(event, EventKind::Leave { reason, .. } if reason == "quit: see you"));
    common::expect_exit(&mut dave.child, TIMEOUT, "the client after /quit");
    let (status, _, stderr) = dave.finish();
    assert!(status.success(), "exit {status:?}; stderr {stderr}");
}

/// A server that vanished without closing (powered off, a NAT entry expired) must not
/// leave the client waiting forever: the client arms TCP keepalive and a TCP user
/// timeout on its socket.
#[test]
fn the_client_probes_a_silent_server_with_tcp_keepalive() {
    let server = Server::start(&[]);
    let addr = server.addr.to_string();
    let mut erin = Client::start(
        "keepalive",
        &[&addr, "--fingerprint", &server.fingerprint, "--nick", "erin"],
    );
    erin.expect("You are erin");
    let client_port = client_port_towards(server.addr.port());
    let left = keepalive_timer(client_port, server.addr.port())
        .expect("no keepalive timer on the client's socket in /proc/net/tcp");
    assert!(left > 0.0 && left <= 60.0, "keepalive fires in {left} s, not within 60 s");
    // And a server that vanishes while a line to it is in flight: TCP_USER_TIMEOUT.
    #[cfg(target_os = "linux")]
    {
        let socket = common::socket_of(erin.child.id(), client_port, server.addr.port());
        assert_eq!(socket.tcp_user_timeout().unwrap(), Some(Duration::from_secs(90)));
    }
    erin.send("/quit");
    let (status, _, stderr) = erin.finish();
    assert!(status.success(), "exit {status:?}; stderr {stderr}");
}

/// The local port of the one established connection to `server_port` that is not the
/// server's own end (the test's only client of that server).
fn client_port_towards(server_port: u16) -> u16 {
    let sockets = tcp_sockets();
    let client = sockets.iter().find(|s| s.remote_port == server_port && s.state == 1);
    client.expect("the client's connection in /proc/net/tcp").local_port
}

#[test]
fn a_refused_connection_is_one_line_and_a_failure() {
    // A port that was free a moment ago: nothing listens there now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let out = Command::new(BIN)
        .args(["join", "127.0.0.1", "--port", &port.to_string(), "--no-history"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    // The words a reconnect notice uses for the same failure (src/client/reason.rs), not
    // the OS's "Connection refused (os error 111)".
    assert_eq!(
        stderr,
        format!(
            "tchat: cannot connect to 127.0.0.1:{port}: connection refused: no server listens on \
             that port (not started, or another port?)\n"
        )
    );
}

/// Starts `tchat join ADDR ARGS` against `silent`, waits for its exit, and returns its
/// stderr and how long it took; fails unless it exits non-zero.
fn join_silent(silent: &Silent, name: &str, args: &[&str]) -> (String, Duration) {
    let started = Instant::now();
    let addr = silent.addr.to_string();
    let client = Client::start(name, &[&[addr.as_str(), "--no-history"], args].concat());
    let (status, out, stderr) = client.finish();
    assert!(!status.success(), "{out:?}\n{stderr}");
    (stderr, started.elapsed())
}

// A server that accepts and never answers (the TLS handshake, or the hello with
// --plain) is given up on at the set-up bound: tests/in_process.rs checks both to the
// millisecond, on a clock it holds, with the words the binary prints.

#[test]
fn garbage_instead_of_tls_is_said_to_be_no_tls() {
    let silent = Silent::start(b"SSH-2.0-OpenSSH_9.6\r\n");
    let (stderr, took) = join_silent(&silent, "garbage", &[]);
    assert_eq!(
        stderr,
        format!(
            "tchat: {} is an SSH server, not a tchat server: it said \"SSH-2.0-OpenSSH_9.6\" \
             (check the host and port)\n",
            silent.addr
        )
    );
    // Refused at once, not given up on after the bound.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Piped, a failed reconnection is one line per reason, the second saying since when.
/// (That an attempt reaching a silent server is given up on at the set-up bound and the
/// backoff goes on is tested on a paused clock in tests/in_process.rs.)
#[test]
fn a_failed_reconnection_is_one_line_and_the_backoff_goes_on() {
    let server = Server::start(&["--rate", "0"]);
    let proxy = common::proxy::Proxy::start(server.addr);
    let addr = proxy.addr.to_string();
    let mut ann = Client::start(
        "reconnect-down",
        &[&addr, "--fingerprint", &server.fingerprint, "--nick", "ann", "--reconnect"],
    );
    ann.expect("You are ann");
    proxy.set_down(true);
    proxy.cut();
    // How the cut reads (a close, a reset) is the OS's, as in the test below.
    ann.expect("Connection lost (");
    let again = ann.expect("(attempt 2;");
    assert!(again.contains("*** Connection lost at "), "{again}");
    assert!(again.contains("); reconnecting in "), "{again}");
    proxy.set_down(false);
    ann.expect("Reconnected as ann");
    let (status, _, stderr) = ann.finish();
    assert!(status.success(), "{stderr}");
}

#[test]
fn quitting_while_offline_says_how_many_typed_lines_were_not_sent() {
    let server = Server::start(&["--rate", "0"]);
    let proxy = common::proxy::Proxy::start(server.addr);
    let addr = proxy.addr.to_string();
    let mut bea = Client::start(
        "unsent",
        &[&addr, "--fingerprint", &server.fingerprint, "--nick", "bea", "--reconnect"],
    );
    bea.expect("You are bea");
    proxy.set_down(true);
    proxy.cut();
    bea.expect("Connection lost");
    bea.send("first");
    bea.send("second");
    bea.send("/quit");
    let (status, _, stderr) = bea.finish();
    assert!(!status.success());
    // How the cut reads (a close, a reset) is the OS's; the count is the client's.
    assert!(stderr.starts_with("tchat: ") && stderr.lines().count() == 1, "{stderr}");
    assert!(stderr.ends_with("; 2 lines typed while offline were not sent\n"), "{stderr}");
}

#[test]
fn a_malformed_address_is_one_line_and_a_failure() {
    let out =
        Command::new(BIN).args(["join", "host:notaport"]).stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("invalid server address 'host:notaport'"), "{stderr}");
}

#[test]
fn a_full_server_refusal_is_shown_and_fails() {
    let server = Server::start(&["--max-clients", "1", "--rate", "0"]);
    let _bob = Peer::join(server.addr, "bob");
    let addr = server.addr.to_string();
    let mut eve = Client::start("full", &[&addr, "--fingerprint", &server.fingerprint]);
    let line = eve.expect("!!! ");
    assert!(line.contains("full"), "{line}");
    // Ending the input right away asks to quit; a refused session still fails.
    let (status, _, stderr) = eve.finish();
    assert!(!status.success());
    assert_eq!(stderr, "tchat: the server refused the connection\n");
}

#[test]
fn a_server_shutdown_is_reported() {
    let mut server = Server::start(&["--rate", "0"]);
    let addr = server.addr.to_string();
    let mut frank = Client::start(
        "shutdown",
        &[&addr, "--fingerprint", &server.fingerprint, "--nick", "frank"],
    );
    frank.expect("You are frank");
    server.terminate();
    frank.expect("*** Server shutting down");
    // stdin is still open: the client ends because the server went away.
    common::expect_exit(&mut frank.child, TIMEOUT, "the client after the shutdown");
    let (status, _, stderr) = frank.finish();
    assert!(!status.success());
    assert_eq!(stderr.trim(), "tchat: the server closed the connection");
}

#[test]
fn escape_sequences_from_others_never_reach_the_output() {
    let server = Server::start(&["--rate", "0"]);
    let mut mallory = Peer::join(server.addr, "mallory");
    let addr = server.addr.to_string();
    let mut alice = Client::start(
        "escapes",
        &[&addr, "--fingerprint", &server.fingerprint, "--nick", "alice", "--color", "never"],
    );
    alice.expect("You are alice");
    mallory.send_bytes(b"\x1b]0;pwned\x07title \x1b[2Jclear \x9b31mdone\n");
    let line = alice.expect("<mallory> title");
    assert!(line.contains("<mallory> title clear "), "{line:?}");
    assert!(
        !line.contains('\u{1b}') && !line.contains('\u{7}') && !line.contains("pwned"),
        "{line:?}"
    );
    drop(alice.finish());
}

/// Line separators (U+2028, U+2029, NEL) in what others say or set as the topic reach
/// `tchat join` as spaces: its output has one line per event, never a raw separator.
#[test]
fn line_separators_from_others_never_split_the_output() {
    let server = Server::start(&["--rate", "0"]);
    let mut mallory = Peer::join(server.addr, "mallory");
    let addr = server.addr.to_string();
    let mut alice = Client::start(
        "separators",
        &[&addr, "--fingerprint", &server.fingerprint, "--nick", "alice", "--color", "never"],
    );
    alice.expect("You are alice");
    mallory.send("said\u{2028}[12:00] <admin> forged\u{2029}end\u{85}.");
    mallory.send("/topic new\u{2028}topic");
    let line = alice.expect("<mallory> said");
    assert!(line.ends_with("<mallory> said [12:00] <admin> forged end ."), "{line:?}");
    let topic = alice.expect("set the topic");
    assert!(topic.ends_with("mallory set the topic of #lobby: new topic"), "{topic:?}");
    let (_, out, _) = alice.finish();
    assert!(!out.iter().any(|l| l.contains(['\u{2028}', '\u{2029}', '\u{85}'])), "{out:?}");
}

/// Has `peer` say `lines` (public lines, `/me`, `/msg`) and waits until the server has
/// handled each: it fans a line out to everyone at once, so whatever is sent after this
/// reaches the others behind these lines.
fn say_all(peer: &mut Peer, lines: &[&str]) {
    for line in lines {
        peer.send(line);
        peer.wait_for("the echo of our own line", |e| match e {
            EventKind::Public { text, .. } | EventKind::Action { text, .. } => {
                line.ends_with(text.as_str())
            }
            EventKind::Private { text, .. } => line.ends_with(text.as_str()),
            _ => false,
        });
    }
}

#[test]
fn ignore_hides_a_nick_and_survives_a_client_restart() {
    let server = Server::start(&["--rate", "0"]);
    let mut bob = Peer::join(server.addr, "bob");
    let mut carol = Peer::join(server.addr, "carol");
    let state = StateDir::new("ignore");
    let addr = server.addr.to_string();
    let mut alice =
        Client::start_in(&state, &[&addr, "--fingerprint", &server.fingerprint, "--nick", "alice"]);
    alice.expect("You are alice");
    alice.send("/ignore BOB");
    alice.expect("ignoring BOB");
    say_all(&mut bob, &["SHUSH line", "/me SHUSH action", "/msg alice SHUSH secret"]);
    say_all(&mut carol, &["visible 1"]);
    alice.expect("<carol> visible 1");
    alice.send("/bell all");
    alice.expect("bell: all");
    let (status, out, _) = alice.finish();
    assert!(status.success());
    assert!(!out.iter().any(|l| l.contains("SHUSH")), "{out:#?}");
    assert!(!out.iter().any(|l| l.contains("unknown command")), "sent to the server: {out:#?}");

    let file = state.join("tchat/servers.json");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains(&format!("\"{addr}\"")) && saved.contains("BOB"), "{saved}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Started again: still ignored, the bell setting kept.
    let mut alice =
        Client::start_in(&state, &[&addr, "--fingerprint", &server.fingerprint, "--nick", "alice"]);
    alice.expect("You are alice");
    alice.send("/ignore");
    alice.expect("you ignore: BOB");
    alice.send("/bell");
    alice.expect("bell: all");
    say_all(&mut bob, &["SHUSH still"]);
    say_all(&mut carol, &["visible 2"]);
    alice.expect("<carol> visible 2");
    alice.send("/unignore bob");
    alice.expect("no longer ignoring bob");
    say_all(&mut bob, &["shown again"]);
    alice.expect("<bob> shown again");
    alice.send("/help");
    alice.expect("/ignore [nick]");
    // tchat join speaks TLS, and /whois says so.
    alice.send("/whois alice");
    let whois = alice.expect("alice: in #lobby, online since");
    assert!(whois.ends_with(", TLS"), "{whois}");
    let (status, out, _) = alice.finish();
    assert!(status.success());
    assert!(!out.iter().any(|l| l.contains("SHUSH")), "{out:#?}");
}

/// The lines `<bob> {prefix}N` among `lines`, as the numbers N in the order printed.
fn numbered(lines: &[String], prefix: &str) -> Vec<u32> {
    let marker = format!("<bob> {prefix}");
    lines.iter().filter_map(|l| l.split_once(&marker)?.1.parse().ok()).collect()
}

/// A test proxy cuts the client off while others talk: the client says so, comes back
/// by itself, and has every message exactly once, in order; the others saw it neither
/// leave nor join.
#[test]
fn a_cut_connection_is_resumed_with_every_message_once_in_order() {
    let server = Server::start(&["--rate", "0"]);
    let proxy = common::proxy::Proxy::start(server.addr);
    let mut bob = Peer::join(server.addr, "bob");
    let addr = proxy.addr.to_string();
    // Over TLS: every reconnection goes through the same TLS connect, pinned fingerprint.
    let fp = server.fingerprint.clone();
    let mut client =
        Client::start("cut", &[&addr, "--fingerprint", &fp, "--nick", "cat", "--reconnect"]);
    client.expect("You are cat");
    bob.wait_for("cat's join", |e| matches!(e, EventKind::Join { nick, .. } if nick == "cat"));
    for i in 0..5 {
        bob.send(&format!("m{i}"));
    }
    client.expect("<bob> m4");
    proxy.set_down(true);
    proxy.cut();
    client.expect("Connection lost");
    for i in 5..15 {
        bob.send(&format!("m{i}"));
    }
    proxy.set_down(false);
    client.expect("--- 10 messages while you were away ---");
    for i in 15..20 {
        bob.send(&format!("m{i}"));
    }
    client.expect("<bob> m19");
    bob.send("/list");
    bob.wait_for(
        "the list",
        |e| matches!(e, EventKind::Users { users, .. } if users.contains(&"cat".to_string())),
    );
    let (status, lines, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(numbered(&lines, "m"), (0..20).collect::<Vec<_>>(), "{lines:#?}");
    // The notices give a short reason: no link from rustls, no "connection lost" twice.
    let notices: Vec<_> = lines.iter().filter(|l| l.contains("Connection lost")).collect();
    assert!(
        notices[0].contains("Connection lost (the server closed the connection); reconnecting in"),
        "{notices:#?}"
    );
    for notice in &notices {
        let lower = notice.to_lowercase();
        assert_eq!(lower.matches("connection lost").count(), 1, "{notice}");
        assert!(!lower.contains("http") && !lower.contains("--plain"), "{notice}");
    }
    // Bob: cat's quit is the first thing he hears of cat since its join.
    let first = bob.wait_for("news of cat", |e| match e {
        EventKind::Join { nick, .. } | EventKind::Leave { nick, .. } => nick == "cat",
        _ => false,
    });
    assert!(matches!(&first, EventKind::Leave { reason, .. } if reason == "quit"), "{first:?}");
}

/// The server is stopped and started again on the same `--save` log while messages
/// flow: the client comes back, the history read back from the log fills the gap, and
/// ids keep increasing across the restart.
#[test]
fn a_server_restart_on_the_same_log_leaves_no_gap() {
    let log = common::temp_path("restart-client.jsonl");
    let save = log.to_str().unwrap();
    let mut first = Server::start(&["--rate", "0", "--save", save]);
    let proxy = common::proxy::Proxy::start(first.addr);
    let addr = proxy.addr.to_string();
    // Plain text: the restarted server has a state directory, and certificate, of its own.
    let mut client = Client::start("restart", &[&addr, "--plain", "--nick", "cat", "--reconnect"]);
    client.expect("You are cat");
    let mut bob = Peer::join(first.addr, "bob");
    for i in 0..3 {
        bob.send(&format!("a{i}"));
    }
    client.expect("<bob> a2");
    proxy.set_down(true);
    assert!(first.terminate().success());
    client.expect("Connection lost");
    let second = Server::start(&["--rate", "0", "--save", save]);
    proxy.point_to(second.addr);
    let mut bob = Peer::join(second.addr, "bob");
    for i in 0..5 {
        bob.send(&format!("b{i}"));
    }
    bob.wait_for("b4 back", |e| matches!(e, EventKind::Public { text, .. } if text == "b4"));
    proxy.set_down(false);
    client.expect("messages while you were away");
    client.expect("<bob> b4");
    bob.send("after");
    client.expect("<bob> after");
    let (status, lines, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(numbered(&lines, "a"), [0, 1, 2], "{lines:#?}");
    assert_eq!(numbered(&lines, "b"), [0, 1, 2, 3, 4], "{lines:#?}");
    drop(second);
    let ids: Vec<u64> = common::read_jsonl(&log)
        .iter()
        .filter(|r| r["msg"] == "Public message")
        .map(|r| r["meta"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 9, "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids went back: {ids:?}");
    let _ = std::fs::remove_file(&log);
}

/// The server restarts (the session is forgotten) while the client is in #dev and the
/// user types: the resume hello names #dev, so the client lands there again (no detour
/// through #lobby), and what was typed while offline reaches #dev.
#[test]
fn after_a_restart_the_client_rejoins_its_room_before_sending_what_was_typed() {
    let mut first = Server::start(&["--rate", "0"]);
    let proxy = common::proxy::Proxy::start(first.addr);
    let addr = proxy.addr.to_string();
    let mut client = Client::start("rejoin", &[&addr, "--plain", "--nick", "rob", "--reconnect"]);
    client.expect("You are rob");
    client.send("/join #dev");
    client.expect("You are in #dev");
    proxy.set_down(true);
    assert!(first.terminate().success());
    client.expect("Connection lost");
    client.send("typed while offline");
    // Said at once: the line is held, not sent.
    client.expect("Not connected: 1 line waiting, sent once reconnected.");
    let second = Server::start(&["--rate", "0"]);
    let mut bob = Peer::join(second.addr, "bob");
    bob.send("/join #dev");
    bob.wait_for("bob in #dev", |e| matches!(e, EventKind::Room { room, .. } if room == "#dev"));
    proxy.point_to(second.addr);
    proxy.set_down(false);
    let note = client.expect("Reconnected as rob");
    assert!(!note.contains("put you in #lobby"), "{note}");
    let heard = bob.wait_for("the offline line", |e| matches!(e, EventKind::Public { .. }));
    assert!(
        matches!(&heard, EventKind::Public { from, text, room } if from == "rob" && text == "typed while offline" && room == "#dev"),
        "{heard:?}"
    );
    client.expect("<rob> typed while offline");
    let (status, lines, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr} {lines:#?}");
}

/// The away block counts and shows only what others did: the user's own leave and join
/// (the server did not hold the session: `--resume-grace 0`) are no news, and a
/// reconnection that missed nothing shows no `--- 0 messages` marker.
#[test]
fn the_away_block_holds_only_what_others_did() {
    let server = Server::start(&["--rate", "0", "--resume-grace", "0"]);
    let proxy = common::proxy::Proxy::start(server.addr);
    let mut bob = Peer::join(server.addr, "bob");
    let addr = proxy.addr.to_string();
    let mut client = Client::start("away", &[&addr, "--plain", "--nick", "rob", "--reconnect"]);
    client.expect("You are rob");
    bob.wait_for("rob's join", |e| matches!(e, EventKind::Join { nick, .. } if nick == "rob"));
    proxy.set_down(true);
    proxy.cut();
    client.expect("Connection lost");
    bob.wait_for("rob's leave", |e| matches!(e, EventKind::Leave { nick, .. } if nick == "rob"));
    bob.send("while away");
    bob.wait_for("the echo", |e| matches!(e, EventKind::Public { .. }));
    proxy.set_down(false);
    client.expect("--- 1 message while you were away ---");
    client.expect("<bob> while away");
    bob.wait_for("rob's join", |e| matches!(e, EventKind::Join { nick, .. } if nick == "rob"));

    // Nothing missed but the own leave and join: no marker.
    let before = client.seen.len();
    proxy.cut();
    bob.wait_for("rob's leave", |e| matches!(e, EventKind::Leave { nick, .. } if nick == "rob"));
    bob.wait_for("rob's join", |e| matches!(e, EventKind::Join { nick, .. } if nick == "rob"));
    bob.send("live");
    client.expect("<bob> live");
    let (status, lines, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr}");
    let after = &lines[before..];
    assert!(after.iter().any(|l| l.contains("Reconnected as rob")), "{after:#?}");
    assert!(!after.iter().any(|l| l.contains("while you were away")), "{after:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("rob joined") || l.contains("rob left")),
        "{lines:#?}"
    );
}

/// A `--nick` that is taken: the line right under the welcome says so, before the room,
/// the message of the day and the replayed history (the server's reason comes after
/// them).
#[test]
fn a_taken_nick_is_said_right_under_the_welcome() {
    let server = Server::start(&["--replay", "5"]);
    let mut alice = Peer::join(server.addr, "alice");
    for i in 0..5 {
        alice.send(&format!("old line {i}"));
    }
    alice.wait_for(
        "the last line",
        |e| matches!(e, EventKind::Public { text, .. } if text == "old line 4"),
    );
    let addr = server.addr.to_string();
    let mut client = Client::start("taken", &[&addr, "--plain", "--nick", "alice"]);
    client.expect("already taken");
    client.send("/quit");
    let (status, lines, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr}");
    assert!(lines[0].contains("Welcome to"), "{lines:#?}");
    assert!(lines[1].contains("!!! You are guest") && lines[1].contains("not alice"), "{lines:#?}");
    // The replay is told apart from live lines by its bracketed time: `[HH:MM] <alice> …`.
    let replayed = lines.iter().find(|l| l.contains("<alice> old line 0")).expect("the replay");
    let (time, rest) = replayed.split_at(8);
    assert!(
        time.starts_with('[') && time.ends_with("] ") && time.as_bytes()[3] == b':',
        "{replayed}"
    );
    assert_eq!(rest, "<alice> old line 0");
}

/// A fingerprint of the right length with a mistyped last character is called a typo,
/// not the wrong length, before any connection is tried.
#[test]
fn a_mistyped_fingerprint_is_told_as_a_typo() {
    let good = tchat::fingerprint::Fingerprint::of(b"the server's certificate").to_string();
    // The last character must be one of A, Q, g, w (its low 4 bits are zero).
    let typo = format!("{}{}", &good[..good.len() - 1], 'z');
    let out = Command::new(BIN)
        .args(["join", "127.0.0.1:9", "--fingerprint", &typo, "--no-history"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("its last character, 'z', cannot end one (a typo?)"), "{stderr}");
    assert!(!stderr.contains("expected 43"), "{stderr}");
    assert!(!stderr.contains("cannot connect"), "{stderr}");
}

/// `--plain` against a server that takes TLS only: the server's refusal names the
/// clients to use, `tchat join` among them; a `tchat join` user is told to drop
/// `--plain` instead.
#[test]
fn plain_against_a_tls_only_server_says_to_drop_plain() {
    let server = Server::start(&["--plaintext", "deny"]);
    let addr = server.addr.to_string();
    let client = Client::start("plain-denied", &[addr.as_str(), "--plain", "--no-history"]);
    let (status, out, stderr) = client.finish();
    assert!(!status.success());
    assert!(out.iter().any(|l| l == "!!! this server only accepts TLS"), "{out:?}");
    assert!(
        !out.iter()
            .chain(stderr.lines().map(str::to_owned).collect::<Vec<_>>().iter())
            .any(|l| l.contains("use tchat join")),
        "{out:?} {stderr}"
    );
    assert!(
        stderr.ends_with(
            "tchat: the server refused the connection; it only accepts TLS: connect without \
             --plain\n"
        ),
        "{stderr}"
    );
}

/// A loopback port nothing listens on: it was free a moment ago.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Two single-process servers given as the addresses of one chat: the client takes the
/// first, and when that one shuts down (SIGTERM: its shutdown notice) it moves to the
/// second, named by a name it resolves, and says so. Single processes share no sessions,
/// so it comes back as a new session there; nodes on one backbone resume it.
#[test]
fn a_client_given_two_servers_moves_to_the_second_when_the_first_shuts_down() {
    let mut first = Server::start(&["--rate", "0"]);
    let second = Server::start(&["--rate", "0"]);
    let (a, port) = (first.addr.to_string(), second.addr.port());
    let b = format!("localhost:{port}");
    let mut client = Client::start("two", &[&a, &b, "--plain", "--nick", "cat", "--reconnect"]);
    client.expect("You are cat");
    let mut bob = Peer::join(second.addr, "bob");
    assert!(first.terminate().success());
    client.expect("Server shutting down");
    client.expect("Connection lost (the server shut down); reconnecting in");
    let note = client.expect("Reconnected");
    assert!(
        note.contains(&format!("Reconnected to localhost:{port} (127.0.0.1) as cat")),
        "{note}"
    );
    bob.wait_for(
        "cat on the second",
        |e| matches!(e, EventKind::Join { nick, .. } if nick == "cat"),
    );
    client.send("here now");
    bob.wait_for(
        "cat's line",
        |e| matches!(e, EventKind::Public { text, .. } if text == "here now"),
    );
    let (status, lines, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr} {lines:#?}");
}

/// A lost connection moves the client on to the next server even though its own would
/// still answer: after a loss the others come first (see src/client/servers.rs).
#[test]
fn a_lost_connection_moves_on_to_the_next_server() {
    let first = Server::start(&["--rate", "0"]);
    let second = Server::start(&["--rate", "0"]);
    let proxy = common::proxy::Proxy::start(first.addr);
    let (a, b) = (proxy.addr.to_string(), second.addr.to_string());
    let mut client =
        Client::start("moves-on", &[&a, &b, "--plain", "--nick", "eve", "--reconnect"]);
    client.expect("You are eve");
    proxy.cut();
    client.expect("Connection lost (the server closed the connection)");
    client.expect(&format!("Reconnected to {b} as eve"));
    client.send("/quit");
    let (status, lines, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr} {lines:#?}");
    drop(first);
}

/// The first address that answers is taken; when none does, one line names each.
#[test]
fn the_first_server_that_answers_is_taken_and_none_is_one_line_naming_each() {
    let server = Server::start(&["--rate", "0"]);
    let (dead, addr) = (format!("127.0.0.1:{}", dead_port()), server.addr.to_string());
    let mut client = Client::start("first-answer", &[&dead, &addr, "--plain", "--nick", "dee"]);
    client.expect("You are dee");
    client.send("/quit");
    let (status, _, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr}");

    let other = format!("127.0.0.1:{}", dead_port());
    let client = Client::start("none-answers", &[&dead, &other, "--plain"]);
    let (status, lines, stderr) = client.finish();
    assert!(!status.success(), "{lines:#?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("tchat: no server of the chat answered: "), "{stderr}");
    for addr in [&dead, &other] {
        assert!(
            stderr.contains(&format!("cannot connect to {addr}: connection refused")),
            "{stderr}"
        );
    }
}

/// A client with state `home` joins with `args` as `nick`, then quits, successfully.
fn joins_and_quits(home: &Path, args: &[&str], nick: &str) {
    let mut client = Client::start_in(home, &[args, &["--nick", nick]].concat());
    client.expect(&format!("You are {nick}"));
    client.send("/quit");
    let (status, lines, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr} {lines:#?}");
}

/// Trust on first use holds for the chat, not for one address: a client that trusts the
/// first server's certificate takes the same certificate from the second (and pins it
/// there), but refuses a server of "the same chat" that shows another one.
#[test]
fn the_servers_of_one_chat_share_the_trust_in_their_certificate() {
    let mut a = Server::start(&["--rate", "0"]);
    let mut b =
        Server::start_in(StateDir::copy_of(&a.state, "chat-b"), &["--rate", "0"], common::WAIT);
    let c = Server::start(&["--rate", "0"]);
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_ne!(a.fingerprint, c.fingerprint);
    let (a_addr, b_addr, c_addr) = (a.addr.to_string(), b.addr.to_string(), c.addr.to_string());
    let home = StateDir::new("chat-trust");
    joins_and_quits(&home, &[&a_addr, "--fingerprint", &a.fingerprint], "pin");

    // Only the first address is pinned; no --fingerprint from here on.
    let mut cat = Client::start_in(&home, &[&a_addr, &b_addr, "--nick", "cat", "--reconnect"]);
    cat.expect("You are cat");
    assert!(a.terminate().success());
    cat.expect(&format!("Reconnected to {b_addr} as cat"));
    cat.send("/quit");
    let (status, lines, stderr) = cat.finish();
    assert!(status.success(), "{status:?} {stderr} {lines:#?}");
    // Pinned at the second address now: joining it alone needs no fingerprint.
    joins_and_quits(&home, &[&b_addr], "solo");

    // A third server with its own certificate is no server of this chat.
    let mut dog = Client::start_in(&home, &[&b_addr, &c_addr, "--nick", "dog", "--reconnect"]);
    dog.expect("You are dog");
    assert!(b.terminate().success());
    common::expect_exit(&mut dog.child, TIMEOUT, "the client refusing the third server");
    let (status, lines, stderr) = dog.finish();
    assert!(!status.success(), "{lines:#?}");
    assert!(stderr.contains(&format!("refusing to connect to {c_addr}")), "{stderr}");
    assert!(
        stderr.contains(&format!("another address of this chat showed: {}", a.fingerprint)),
        "{stderr}"
    );
    assert!(stderr.contains(&c.fingerprint), "{stderr}");
}

/// A catch-up counts what it shows: lines from someone ignored are neither shown nor
/// counted; the comings and goings are one summary that ends in who is here now, so
/// someone who came and went is not left looking present.
#[test]
fn the_catch_up_counts_what_it_shows_and_ends_in_who_is_here() {
    let server = Server::start(&["--rate", "0", "--resume-grace", "0"]);
    let proxy = common::proxy::Proxy::start(server.addr);
    let mut bob = Peer::join(server.addr, "bob");
    let mut zed = Peer::join(server.addr, "zed");
    let addr = proxy.addr.to_string();
    let mut client = Client::start("catchup", &[&addr, "--plain", "--nick", "rob", "--reconnect"]);
    client.expect("You are rob");
    client.send("/ignore zed");
    client.expect("zed");
    bob.wait_for("rob's join", |e| matches!(e, EventKind::Join { nick, .. } if nick == "rob"));
    proxy.set_down(true);
    proxy.cut();
    client.expect("Connection lost");
    bob.wait_for("rob's leave", |e| matches!(e, EventKind::Leave { nick, .. } if nick == "rob"));
    zed.send("buy my stuff");
    let kim = Peer::join(server.addr, "kim");
    let _lea = Peer::join(server.addr, "lea");
    drop(kim);
    bob.wait_for("kim's leave", |e| matches!(e, EventKind::Leave { nick, .. } if nick == "kim"));
    bob.send("missed this");
    bob.wait_for(
        "the echo",
        |e| matches!(e, EventKind::Public { text, .. } if text == "missed this"),
    );
    proxy.set_down(false);
    let marker = client.expect("while you were away");
    assert_eq!(marker, "--- 1 message while you were away (and 3 joins, leaves or renames) ---");
    client.expect("<bob> missed this");
    let summary = client.expect("Here now:");
    assert!(
        summary.ends_with("kim came and went; lea joined. Here now: bob, lea, rob, zed."),
        "{summary}"
    );
    bob.send("live");
    client.expect("<bob> live");
    let (status, lines, stderr) = client.finish();
    assert!(status.success(), "{status:?} {stderr}");
    assert!(!lines.iter().any(|l| l.contains("buy my stuff")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("kim joined")), "{lines:#?}");
}

/// A fake server that welcomes `tchat join` and sends `events` (JSON lines), then
/// closes once it reads `/quit`.
fn fake_json_server(events: Vec<String>) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut lines = BufReader::new(stream).lines();
        let hello = lines.next().unwrap().unwrap();
        assert!(hello.starts_with("/hello json"), "{hello}");
        let welcome = r##"{"ts":"2026-03-01T14:58:00Z","type":"welcome","server":"fake","version":"1","nick":"tim","online":1,"users":["tim"],"room":"#lobby","last_id":0}"##;
        for line in std::iter::once(welcome.to_owned()).chain(events) {
            writer.write_all(format!("{line}\n").as_bytes()).unwrap();
        }
        for line in lines.map_while(Result::ok) {
            if line.starts_with("/quit") {
                break;
            }
        }
    });
    (addr, server)
}

/// Replayed lines from another day carry their date in the client's zone, and a live
/// line on a new day comes under a day-change line.
#[test]
fn the_client_dates_old_replays_and_marks_a_new_day() {
    let public = |ts: &str, text: &str, history: bool| {
        format!(
            r##"{{"id":1,"ts":"{ts}","type":"public","from":"ann","text":"{text}","room":"#lobby","history":{history}}}"##
        )
    };
    let events = vec![
        public("2026-02-24T10:15:00Z", "last week", true),
        // Midnight in Tokyo (UTC+9) is 15:00 UTC.
        public("2026-03-01T14:59:00Z", "before midnight", false),
        public("2026-03-01T15:01:00Z", "after midnight", false),
        // Stamped a little earlier (another clock): the day does not change back.
        public("2026-03-01T14:59:30Z", "late echo", false),
        // /whois in the same local time as the chat lines, not UTC.
        r##"{"ts":"2026-03-01T15:02:00Z","type":"whois","nick":"ann","room":"#lobby","since":"2026-03-01T14:00:00Z","idle_secs":5,"away":null,"oper":false,"tls":false}"##.to_owned(),
    ];
    let (addr, server) = fake_json_server(events);
    let state = StateDir::new("dated");
    let mut child = Command::new(BIN)
        .args(["join", &addr.to_string(), "--plain", "--no-history"])
        // A POSIX zone (UTC+9, no DST): needs no time zone database on the machine.
        .env("TZ", "JST-9")
        .env("XDG_STATE_HOME", &*state)
        .env("HOME", &*state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = out.next() {
        let done = line.contains("online since");
        seen.push(line);
        if done {
            break;
        }
    }
    drop(child.stdin.take());
    common::wait_exit(&mut child);
    server.join().unwrap();
    let shown: Vec<&str> = seen.iter().map(String::as_str).skip(1).collect();
    assert_eq!(
        shown,
        [
            "[2026-02-24 19:15] <ann> last week",
            "23:59 <ann> before midnight",
            "--- Day changed to Mon 2 Mar 2026 ---",
            "00:01 <ann> after midnight",
            "23:59 <ann> late echo",
            "00:02 *** ann: in #lobby, online since 2026-03-01 23:00:00 JST, idle 5s, plain TCP",
        ],
        "{seen:#?}"
    );
}

/// A server that does not sanitise (a fake one here) sends terminal controls in every
/// kind of name and text: escape sequences (OSC title, CSI, C1 CSI), bells, C1
/// controls, bidi overrides and isolates, and line separators. `tchat join` shows each
/// nick, room name, topic and message body without them, a separator as a space, and
/// its output holds none of them anywhere.
#[test]
fn hostile_names_topics_and_bodies_from_the_server_arrive_harmless() {
    // Dropped whole: nothing of them shows.
    let gone = r"\u001b]0;pwned\u0007\u001b[2J\u009b31m\u0007\u008d\u202e\u2066\u200f";
    // Line separators: a space each.
    let sep = r"\u2028\u2029\u0085";
    let ts = r#""ts":"2026-03-01T15:00:00Z""#;
    let events = vec![
        format!(
            r##"{{{ts},"type":"room","room":"#de{gone}v","topic":"pl{gone}ans{sep}x","users":["tim","m{gone}al"]}}"##
        ),
        format!(
            r##"{{"id":1,{ts},"type":"topic","room":"#de{gone}v","topic":"new{sep}to{gone}pic","by":"m{gone}al"}}"##
        ),
        format!(
            r##"{{"id":2,{ts},"type":"join","nick":"k{gone}im","online":3,"room":"#de{gone}v","here":3,"from_room":"#o{gone}ps"}}"##
        ),
        format!(
            r##"{{"id":3,{ts},"type":"public","from":"m{gone}al","text":"bo{gone}dy{sep}[12:00] <admin> forged","room":"#de{gone}v"}}"##
        ),
        format!(
            r##"{{"id":4,{ts},"type":"private","from":"k{gone}im","to":"tim","text":"pss{gone}t"}}"##
        ),
        format!(
            r##"{{{ts},"type":"rooms","rooms":[{{"room":"#de{gone}v","here":3,"topic":"t{gone}1"}},{{"room":"#o{gone}ps","here":1,"topic":""}}]}}"##
        ),
        format!(
            r##"{{{ts},"type":"whois","nick":"m{gone}al","room":"#de{gone}v","since":"2026-03-01T14:00:00Z","away":"lun{gone}ch","oper":false,"tls":true,"registered":true,"proven_by":"k{gone}ey"}}"##
        ),
        format!(r##"{{"id":5,{ts},"type":"public","from":"mal","text":"done","room":"#dev"}}"##),
    ];
    let (addr, server) = fake_json_server(events);
    let mut client = Client::start("hostile", &[&addr.to_string(), "--plain", "--no-history"]);
    client.expect("<mal> done");
    let (_, out, _) = client.finish();
    server.join().unwrap();
    let shown = |end: &str| {
        assert!(out.iter().any(|l| l.ends_with(end)), "no line ends with {end:?}: {out:#?}");
    };
    shown("*** You are in #dev (2 here): tim, mal");
    shown("*** Topic of #dev: plans   x");
    shown("*** mal set the topic of #dev: new   topic");
    shown("*** kim joined #dev (3 here)");
    shown("<mal> body   [12:00] <admin> forged");
    shown("*kim* psst");
    shown("***   #dev     3 here  t1");
    shown("***   #ops     1 here");
    shown("*** mal is away: lunch");
    shown("*** mal is registered and proved it by key");
    for line in &out {
        let bad = |c: char| {
            c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200f}' | '\u{202e}' | '\u{2066}')
        };
        assert!(!line.chars().any(bad) && !line.contains("pwned"), "{line:?}");
    }
}

/// `tchat join --no-replay` (a bot): joining the server, and `/join` into a room with
/// history, shows no replayed line, only what is said live; `/history` still answers.
/// A client without the option, on the same server, gets the replay.
#[test]
fn no_replay_shows_a_bot_only_live_lines() {
    let server = Server::start(&["--replay", "20", "--rate", "0"]);
    let mut talker = Peer::join(server.addr, "talker");
    let said = |peer: &mut Peer, line: &str| {
        peer.send(line);
        peer.wait_for(line, |e| matches!(e, EventKind::Public { text, .. } if text == line));
    };
    said(&mut talker, "old lobby line");
    talker.send("/join #dev");
    said(&mut talker, "old dev line");
    talker.send("/part");
    said(&mut talker, "another old lobby line");
    let addr = server.addr.to_string();
    let args = [addr.as_str(), "--fingerprint", &server.fingerprint];
    let mut reader = Client::start("with-replay", &[&args[..], &["--nick", "reader"]].concat());
    reader.expect("<talker> another old lobby line");

    let mut bot =
        Client::start("no-replay", &[&args[..], &["--nick", "bot", "--no-replay"]].concat());
    bot.expect("You are bot;");
    said(&mut talker, "live lobby line");
    bot.expect("<talker> live lobby line");
    bot.send("/join #dev");
    bot.expect("You are in #dev");
    talker.send("/join #dev");
    said(&mut talker, "live dev line");
    bot.expect("<talker> live dev line");
    assert!(!bot.seen.iter().any(|l| l.contains("old")), "replayed: {:#?}", bot.seen);
    bot.send("/history");
    bot.expect("<talker> old dev line");
    let (status, out, stderr) = bot.finish();
    assert!(status.success(), "exit {status:?}; stderr {stderr}");
    assert!(!out.iter().any(|l| l.contains("old lobby line")), "{out:#?}");
    let _ = reader.finish();
}
