//! The server and the client's connection set-up run in this process, on a runtime whose
//! clock the test holds, as mini-redis's `tests/server.rs` runs its server: the hub
//! (admission, nick claims, rooms, resume, moderation) through real loopback sockets, and
//! every timer (the hello window, the quiet join, the resume grace, the password bound,
//! the client's set-up bound) checked to the millisecond without waiting for it.
//!
//! Time is frozen ([`Frozen`]): tokio's paused clock would otherwise jump to the next
//! timer whenever the runtime waits for the network, firing a server's timer before a
//! reply that is on its way. Frozen, it moves only when a test calls [`pass`], so a test
//! says exactly when each timer is due. A real-time [`Watchdog`] bounds each test, since
//! no timeout inside a frozen runtime can.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use serde_json::Value;
use tchat::cli::{Cli, Command};
use tchat::event_log::{Console, EventLog, LogWriter};
use tchat::server::{self, Config, HELLO_WINDOW, QUIET_JOIN};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod common;

/// Real time a test may take before the watchdog ends the process.
const REAL_LIMIT: Duration = Duration::from_secs(30);

/// Ends the process if a test outlives [`REAL_LIMIT`] of real time: a frozen runtime
/// cannot time itself out.
struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    fn start(test: &'static str) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if rx.recv_timeout(REAL_LIMIT) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                eprintln!("{test}: still running after {REAL_LIMIT:?} of real time");
                std::process::abort();
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

/// Holds tokio's paused clock still: a blocking task in flight keeps the current-thread
/// runtime from advancing it on its own (tokio's `test-util` rule), so only [`pass`]
/// moves it.
struct Frozen(Option<std::sync::mpsc::Sender<()>>);

fn freeze() -> Frozen {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    tokio::task::spawn_blocking(move || {
        let _ = rx.recv();
    });
    Frozen(Some(tx))
}

impl Drop for Frozen {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

/// Moves the frozen clock on by `d` and lets the timers that came due run.
async fn pass(d: Duration) {
    settle().await;
    tokio::time::advance(d).await;
    settle().await;
}

/// Lets every task that can make progress without time passing do so: each yield lets
/// the runtime poll the network once.
async fn settle() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
}

/// A server run by [`server::run`] in this runtime, its console kept in memory.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    writer: Option<LogWriter>,
    console: SharedBuf,
}

/// The console's bytes, shared with the log's writer thread.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The config `tchat serve ARGS` would run with (on 127.0.0.1, port 0, no control
/// socket).
fn config(args: &[&str]) -> Config {
    let argv = ["tchat", "serve", "--host", "127.0.0.1", "--port", "0"].iter().chain(args);
    let Command::Serve(serve) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!("a serve command line")
    };
    let mut config = Config::from(&serve);
    config.control_socket = None;
    config.control_socket_required = false;
    config
}

impl Running {
    async fn start(args: &[&str]) -> Running {
        Running::with(config(args)).await
    }

    async fn with(config: Config) -> Running {
        let console = SharedBuf::default();
        let out = Console { out: Box::new(console.clone()), color: false };
        let (log, writer) = EventLog::start(out, None).unwrap();
        let listener = server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, config, log, stopped));
        Running { addr, stop: Some(stop), task, writer: Some(writer), console }
    }

    /// A new connection, accepted by the server before this returns: a connection's
    /// timers start when the server accepts it.
    async fn connect(&self) -> Line {
        let line = Line::connect(self.addr).await;
        settle().await;
        line
    }

    /// A text client that took `nick` with its first line.
    async fn text_client(&self, nick: &str) -> Line {
        let mut c = self.connect().await;
        c.send(&format!("/nick {nick}")).await;
        c.expect("Welcome").await;
        c
    }

    /// A structured client that said hello as `nick`; its welcome event.
    async fn json_client(&self, nick: &str) -> (Line, Value) {
        let mut c = self.connect().await;
        c.send(&format!("/hello json {nick}")).await;
        let welcome = c.event("welcome").await;
        (c, welcome)
    }

    /// Stops the server as the binary does on SIGTERM and returns its console. Time
    /// passes meanwhile: the server lingers on connections that do not close.
    async fn stop(mut self) -> String {
        let _ = self.stop.take().unwrap().send(());
        while !self.task.is_finished() {
            pass(Duration::from_millis(100)).await;
        }
        (&mut self.task).await.unwrap().unwrap();
        self.writer.take().unwrap().finish();
        String::from_utf8_lossy(&self.console.0.lock().unwrap()).into_owned()
    }
}

/// A client reading whole lines.
struct Line {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Line {
    async fn connect(addr: SocketAddr) -> Line {
        let (read, writer) = TcpStream::connect(addr).await.unwrap().into_split();
        Line { reader: BufReader::new(read), writer }
    }

    async fn send(&mut self, line: &str) {
        self.writer.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }

    /// The next line; `None` at the end of the stream.
    async fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
        }
    }

    /// Reads until a line contains `needle`; returns it.
    async fn expect(&mut self, needle: &str) -> String {
        let mut seen = Vec::new();
        while let Some(line) = self.line().await {
            if line.contains(needle) {
                return line;
            }
            seen.push(line);
        }
        panic!("the connection ended before {needle:?}; it said {seen:#?}");
    }

    /// Reads structured events until one of type `kind`; returns it.
    async fn event(&mut self, kind: &str) -> Value {
        let line = self.expect(&format!("\"type\":\"{kind}\"")).await;
        serde_json::from_str(&line).unwrap()
    }

    /// Asks for `/list` and returns every line up to its answer: what the server sent
    /// before it, since a connection's lines arrive in order.
    async fn sync(&mut self) -> Vec<String> {
        self.send("/list").await;
        let mut seen = Vec::new();
        while let Some(line) = self.line().await {
            // `*** 2 online: …` or `*** 1 in #dev, 2 online: …`.
            let count = line.strip_prefix("*** ").and_then(|l| l.split(' ').next());
            let done = count.is_some_and(|n| n.parse::<u32>().is_ok()) && line.contains(" online");
            seen.push(line);
            if done {
                return seen;
            }
        }
        panic!("the connection ended before the /list answer: {seen:#?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_welcomed_at_the_hello_window_and_announced_at_the_quiet_join() {
    let _watchdog = Watchdog::start("quiet join");
    let _frozen = freeze();
    let server = Running::start(&[]).await;
    let mut alice = server.text_client("alice").await;
    let mut silent = server.connect().await;
    // Just before the window closes nothing is sent; at its end, the welcome.
    pass(HELLO_WINDOW - Duration::from_millis(1)).await;
    alice.sync().await;
    pass(Duration::from_millis(1)).await;
    let welcome = silent.expect("Welcome").await;
    let guest = welcome.split("You are ").nth(1).unwrap().split(';').next().unwrap().to_owned();
    // The others hear of it only at the quiet-join bound, counted from the connect.
    pass(QUIET_JOIN - HELLO_WINDOW - Duration::from_millis(1)).await;
    let before = alice.sync().await;
    assert_eq!(before, ["*** 1 online: alice"], "announced before {QUIET_JOIN:?}");
    pass(Duration::from_millis(1)).await;
    assert_eq!(alice.expect("joined").await, format!("*** {guest} joined (2 online)"));
    drop(silent);
    assert_eq!(alice.expect("left").await, format!("*** {guest} left: connection lost (1 online)"));
    let console = server.stop().await;
    let joined = console.lines().find(|l| l.contains(" Joined ")).expect("a Joined event");
    assert!(joined.contains(&format!("nick={guest}")), "{joined}");
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_speaks_is_announced_at_once_and_one_that_leaves_silent_never() {
    let _watchdog = Watchdog::start("speaks or leaves");
    let _frozen = freeze();
    let server = Running::start(&[]).await;
    let mut alice = server.text_client("alice").await;
    // A port scan: connects and closes at once.
    drop(server.connect().await);
    // A health check: connects, is welcomed, leaves before the bound; nobody hears of it.
    let mut check = server.connect().await;
    pass(HELLO_WINDOW).await;
    check.expect("Welcome").await;
    drop(check);
    pass(QUIET_JOIN).await;
    assert_eq!(alice.sync().await, ["*** 1 online: alice"]);
    // One that says something is announced before what it said, with no time passing.
    let mut talker = server.connect().await;
    pass(HELLO_WINDOW).await;
    let welcome = talker.expect("Welcome").await;
    let guest = welcome.split("You are ").nth(1).unwrap().split(';').next().unwrap().to_owned();
    talker.send("hi").await;
    assert_eq!(alice.line().await.unwrap(), format!("*** {guest} joined (2 online)"));
    assert_eq!(alice.line().await.unwrap(), format!("<{guest}> hi"));
    let console = server.stop().await;
    let unheard = console.lines().filter(|l| l.contains("announced=false")).count();
    assert_eq!(unheard, 2, "{console}");
}

/// A structured client's lost connection keeps its nick for exactly the grace: a resume
/// just before it ends is silent, and after it the leave is announced and a resume
/// only catches up on what was said.
#[tokio::test(start_paused = true)]
async fn a_lost_session_is_held_for_the_grace_then_announced() {
    let _watchdog = Watchdog::start("resume grace");
    let _frozen = freeze();
    let grace = Duration::from_secs(60);
    let server = Running::start(&["--resume-grace", "60", "--history", "3"]).await;
    let mut alice = server.text_client("alice").await;

    let (jay, welcome) = server.json_client("jay").await;
    alice.expect("jay joined").await;
    drop(jay);
    pass(grace - Duration::from_millis(1)).await;
    alice.send("while away").await;
    let (mut back, welcome) =
        resume(&server, "jay", welcome["resume"].as_str().unwrap(), welcome_last(&welcome)).await;
    assert_eq!(welcome["nick"], "jay");
    let resumed = back.event("resumed").await;
    // Missed: its own join (after the welcome's last id) and the line.
    assert_eq!((resumed["resumed"].as_bool(), resumed["missed"].as_u64()), (Some(true), Some(2)));
    assert_eq!(back.event("public").await["text"], "while away");
    // Nobody saw jay go or come back.
    let seen = alice.sync().await;
    assert_eq!(seen, ["*** 2 online: alice, jay"]);

    // Lost again; this time the grace runs out.
    drop(back);
    pass(grace - Duration::from_millis(1)).await;
    assert_eq!(alice.sync().await, ["*** 2 online: alice, jay"]);
    pass(Duration::from_millis(1)).await;
    assert_eq!(alice.expect("jay left").await, "*** jay left: connection lost (1 online)");
    for i in 0..4 {
        alice.send(&format!("later {i}")).await;
    }
    alice.sync().await;
    // Ids so far: joins 1 and 2, "while away" 3, the leave 4, these 5 to 8; kept: the
    // last 3 (6 to 8). After id 3, ids 4 and 5 are no longer kept.
    let (mut late, welcome) = resume(&server, "jay", welcome["resume"].as_str().unwrap(), 3).await;
    assert_eq!(welcome["nick"], "jay");
    let resumed = late.event("resumed").await;
    assert_eq!(resumed["resumed"], false);
    assert_eq!((resumed["missed"].as_u64(), resumed["unavailable"].as_u64()), (Some(3), Some(2)));
    assert!(alice.expect("joined").await.contains("jay joined"));
    server.stop().await;
}

/// The id to resume from after a welcome with nothing seen since.
fn welcome_last(welcome: &Value) -> u64 {
    welcome["last_id"].as_u64().unwrap()
}

/// Connects and resumes `nick` with `token` from `last_id`; the new welcome.
async fn resume(server: &Running, nick: &str, token: &str, last_id: u64) -> (Line, Value) {
    let mut c = server.connect().await;
    c.send(&format!("/hello json {nick} resume {token} {last_id}")).await;
    let welcome = c.event("welcome").await;
    (c, welcome)
}

/// With a server password, a connection that has not given it by the bound is closed,
/// and not a moment before.
#[tokio::test(start_paused = true)]
async fn a_connection_without_the_password_is_closed_at_the_bound() {
    let _watchdog = Watchdog::start("password bound");
    let _frozen = freeze();
    let file = common::temp_path("in-process-password");
    std::fs::write(&file, "sesame\n").unwrap();
    let mut config = config(&["--password-timeout", "5"]);
    let password = tchat::auth::Password::read_file(&file).unwrap();
    config.access =
        Arc::new(tchat::server::Access { password: Some(password), ..Default::default() });
    let server = Running::with(config).await;
    let mut waiting = server.connect().await;
    pass(HELLO_WINDOW).await;
    assert_eq!(
        waiting.line().await.unwrap(),
        "*** this server needs a password: type /pass PASSWORD"
    );
    // A client that gives it in time is welcomed, whatever the others do.
    let mut right = server.connect().await;
    right.send("/pass sesame").await;
    right.send("/nick alice").await;
    right.expect("Welcome").await;
    pass(Duration::from_secs(5) - HELLO_WINDOW - Duration::from_millis(1)).await;
    assert_eq!(right.sync().await, ["*** 1 online: alice"]);
    pass(Duration::from_millis(1)).await;
    assert_eq!(waiting.line().await.unwrap(), "!!! no password given within 5 s; closing");
    assert_eq!(waiting.line().await, None);
    let console = server.stop().await;
    assert!(console.contains("Password not given"), "{console}");
    assert!(!console.contains("sesame"), "the password reached the console:\n{console}");
    let _ = std::fs::remove_file(file);
}

/// Admission and nick claims: a full server refuses with one line (after the hello
/// window, while a session there could be resumed by its owner); a taken nick or a
/// look-alike of one gives a guest name and says why; a free one is taken.
#[tokio::test(start_paused = true)]
async fn admission_and_nick_claims() {
    let _watchdog = Watchdog::start("admission");
    let _frozen = freeze();
    let server = Running::start(&["--max-clients", "2"]).await;
    let mut alice = server.text_client("alice").await;
    let (mut bob, welcome) = server.json_client("Alice").await;
    assert!(welcome["nick"].as_str().unwrap().starts_with("guest"), "{welcome}");
    let error = bob.event("error").await;
    assert_eq!(error["code"], "nick_taken");
    bob.send("/nick аlice").await; // Cyrillic а: looks like alice.
    let error = bob.event("error").await;
    assert!(error["message"].as_str().unwrap().contains("looks like alice"), "{error}");
    bob.send("/nick bob").await;
    assert_eq!(bob.event("nick").await["new"], "bob");
    assert!(alice.expect("is now known as bob").await.ends_with("is now known as bob"));
    // Let in on probation (bob's session could be resumed by its owner): refused once
    // the hello window passes without a token.
    let mut third = server.connect().await;
    pass(HELLO_WINDOW).await;
    let refusal = third.line().await.unwrap();
    assert_eq!(refusal, "!!! server full (2 clients); try again later");
    assert_eq!(third.line().await, None);
    server.stop().await;
}

/// Rooms: public lines reach the sender's room only; moves are announced in both rooms;
/// an emptied room closes.
#[tokio::test(start_paused = true)]
async fn rooms_keep_their_lines_apart() {
    let _watchdog = Watchdog::start("rooms");
    let _frozen = freeze();
    let server = Running::start(&[]).await;
    let mut alice = server.text_client("alice").await;
    let mut bob = server.text_client("bob").await;
    alice.expect("bob joined").await;
    bob.send("/join #dev").await;
    assert_eq!(alice.expect("left").await, "*** bob left #lobby for #dev (1 here)");
    bob.expect("You are in #dev").await;
    alice.send("lobby only").await;
    bob.send("dev only").await;
    assert_eq!(bob.sync().await.last().unwrap(), "*** 1 in #dev, 2 online: bob");
    let seen = alice.sync().await;
    assert!(seen.iter().all(|l| !l.contains("dev only")), "{seen:?}");
    bob.send("/rooms").await;
    bob.expect("2 rooms").await;
    bob.send("/part").await;
    assert_eq!(alice.expect("joined").await, "*** bob joined #lobby (2 here)");
    bob.send("/rooms").await;
    bob.expect("1 room").await;
    server.stop().await;
}

/// Moderation in chat: an operator's kick ends the user's session with the reason, and
/// everyone sees the leave; a non-operator's attempt is refused.
#[tokio::test(start_paused = true)]
async fn an_operator_kicks_and_a_user_cannot() {
    let _watchdog = Watchdog::start("moderation");
    let _frozen = freeze();
    let file = common::temp_path("in-process-oper");
    std::fs::write(&file, "letmein\n").unwrap();
    let server = Running::start(&["--oper-password-file", file.to_str().unwrap()]).await;
    let mut alice = server.text_client("alice").await;
    let mut bob = server.text_client("bob").await;
    alice.expect("bob joined").await;
    bob.send("/kick alice").await;
    bob.expect("!!! ").await;
    alice.send("/oper letmein").await;
    alice.expect("operator").await;
    alice.send("/kick bob enough").await;
    assert_eq!(bob.expect("!!!").await, "!!! you were kicked by alice: enough");
    assert_eq!(bob.line().await, None);
    assert_eq!(alice.expect("bob left").await, "*** bob left: kicked by alice: enough (1 online)");
    let console = server.stop().await;
    assert!(console.contains("Operator command refused"), "{console}");
    assert!(!console.contains("letmein"), "the password reached the console:\n{console}");
    let _ = std::fs::remove_file(file);
}

/// `tchat join`'s set-up bound, against a listener that accepts and never answers: the
/// hello (plain) and the TLS handshake are each given up on after exactly
/// [`SETUP_TIMEOUT`](tchat::client::connect::SETUP_TIMEOUT), with the words the binary
/// prints.
#[tokio::test(start_paused = true)]
async fn a_silent_server_is_given_up_on_at_the_set_up_bound() {
    use tchat::client::connect::{self, SETUP_TIMEOUT};
    use tchat::client::servers::Endpoint;
    let _watchdog = Watchdog::start("set-up bound");
    // The kernel completes the connections; nobody ever accepts or answers them.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let fingerprint = "SHA256:LVRVMwad7zNAFJuMJvlLUbelXJtNSenhbjoQcFRwUrI";
    for (extra, said) in [
        ("--plain", "did not answer the hello within 10 s (not a tchat server?)"),
        (
            "--fingerprint",
            "accepted the connection but did not answer the TLS handshake within 10 s (not a \
             tchat server? an older one without TLS needs --plain)",
        ),
    ] {
        // An identity of its own, not the user's (TLS presents one).
        let identity = common::temp_path("in-process-identity.pem");
        let identity = identity.to_str().unwrap();
        let mut argv = vec!["tchat", "join", &addr, "--no-history", "--identity", identity, extra];
        if extra == "--fingerprint" {
            argv.push(fingerprint);
        }
        let Command::Join(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!("a join command line")
        };
        let target = tchat::client::target::Target::parse(&addr, 5555).unwrap();
        let endpoint = Endpoint { target, addr: silent.local_addr().unwrap() };
        let _frozen = freeze();
        let opening = tokio::spawn(async move {
            let hello = ["/hello json alice".to_owned()];
            connect::open(&endpoint, &args, (&hello, false), &mut None, None).await.err()
        });
        pass(SETUP_TIMEOUT - Duration::from_millis(1)).await;
        assert!(!opening.is_finished(), "{extra}: given up on before {SETUP_TIMEOUT:?}");
        pass(Duration::from_millis(1)).await;
        let e = opening.await.unwrap().expect("a silent server opened a session");
        assert_eq!(e.to_string(), format!("{addr} {said}"));
        let _ = std::fs::remove_file(identity);
    }
}

/// The operator password file and the server of [`oper_tests`]: `args` besides.
async fn oper_server(name: &str, args: &[&str]) -> (Running, std::path::PathBuf) {
    let file = common::temp_path(name);
    std::fs::write(&file, "letmein\n").unwrap();
    let mut argv = vec!["--oper-password-file", file.to_str().unwrap()];
    argv.extend_from_slice(args);
    (Running::start(&argv).await, file)
}

/// A mute with a duration holds for exactly that long on the server's clock.
#[tokio::test(start_paused = true)]
async fn a_mute_with_a_duration_lapses_on_time() {
    let _watchdog = Watchdog::start("mute lapses");
    let _frozen = freeze();
    let (server, file) = oper_server("in-process-mute", &[]).await;
    let mut alice = server.text_client("alice").await;
    let mut carol = server.text_client("carol").await;
    alice.send("/oper letmein").await;
    alice.expect("operator").await;
    alice.send("/mute carol 2s").await;
    assert_eq!(alice.expect("muted").await, "*** muted carol for 2s");
    assert!(carol.expect("muted by alice until ").await.ends_with(" UTC"));
    pass(Duration::from_secs(2) - Duration::from_millis(1)).await;
    carol.send("still here?").await;
    let refused = carol.expect("!!!").await;
    assert!(refused.starts_with("!!! you are muted until "), "{refused}");
    pass(Duration::from_millis(1)).await;
    carol.send("back").await;
    assert_eq!(alice.expect("<carol>").await, "<carol> back");
    server.stop().await;
    let _ = std::fs::remove_file(file);
}

/// A ban with a duration holds for exactly that long; kept in the bans file as wall
/// time, it holds across a restart for what was left of it, and no longer.
#[tokio::test(start_paused = true)]
async fn a_ban_with_a_duration_lapses_on_time_across_a_restart() {
    let _watchdog = Watchdog::start("ban lapses");
    let _frozen = freeze();
    let bans = common::temp_path("in-process-bans.jsonl");
    let _ = std::fs::remove_file(&bans);
    let args = ["--bans", bans.to_str().unwrap()];
    let (server, file) = oper_server("in-process-ban", &args).await;
    let mut alice = server.text_client("alice").await;
    let mut bob = server.text_client("bob").await;
    alice.send("/oper letmein").await;
    alice.expect("operator").await;
    let until = tchat::server::clock::now() + Duration::from_secs(2);
    alice.send("/ban bob 2s spam").await;
    assert_eq!(bob.expect("!!!").await, "!!! you were banned by alice for 2s: spam");
    assert_eq!(bob.line().await, None);
    let refusal = banned_nick(&server, "bob").await.expect("bob is banned");
    assert!(refusal.starts_with("!!! you are banned from this server until "), "{refusal}");
    assert!(refusal.ends_with(" UTC: spam"), "{refusal}");
    pass(Duration::from_secs(1)).await;
    // Closed first: the server would linger on it as it stops, and time pass meanwhile.
    drop(alice);
    server.stop().await;
    let saved = common::read_jsonl(&bans);
    assert_eq!((saved.len(), saved[0]["target"].as_str()), (1, Some("bob")), "{saved:?}");

    let left = until.duration_since(tchat::server::clock::now());
    assert!(left.is_positive() && left < jiff::SignedDuration::from_secs(1), "{left:?}");
    let left = left.unsigned_abs();
    let server = Running::start(&args).await;
    assert!(banned_nick(&server, "bob").await.is_some(), "the restart lifted the ban");
    pass(left - Duration::from_millis(1)).await;
    assert!(banned_nick(&server, "bob").await.is_some(), "lifted {left:?} early");
    pass(Duration::from_millis(2)).await;
    assert_eq!(banned_nick(&server, "bob").await, None);
    server.stop().await;
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(bans);
}

/// Connects as `nick`: the refusal if the nick is banned, `None` if welcomed.
async fn banned_nick(server: &Running, nick: &str) -> Option<String> {
    let mut c = server.connect().await;
    c.send(&format!("/nick {nick}")).await;
    let first = c.line().await.unwrap();
    if first.contains("Welcome") {
        return None;
    }
    assert_eq!(c.line().await, None, "a refused connection is closed");
    Some(first)
}

/// After the free misses, a wrong `/oper` makes the address wait 1 s, doubling, on
/// every connection from it; meanwhile the right password is refused unchecked, and
/// once the wait is over it is let in.
#[tokio::test(start_paused = true)]
async fn wrong_oper_passwords_make_the_address_wait_and_the_wait_doubles() {
    let _watchdog = Watchdog::start("oper backoff");
    let _frozen = freeze();
    let (server, file) = oper_server("in-process-oper-backoff", &[]).await;
    let mut alice = server.text_client("alice").await;
    let mut bob = server.text_client("bob").await;
    alice.expect("bob joined").await;
    let throttled = "!!! too many wrong operator passwords from your address; wait and try again";
    let oper = async |c: &mut Line, password: &str| {
        c.send(&format!("/oper {password}")).await;
        c.expect(" ").await
    };
    for wait in [Duration::from_secs(1), Duration::from_secs(2)] {
        for i in 0..3 {
            assert_eq!(oper(&mut alice, &format!("typo{i}")).await, "!!! wrong operator password");
            if wait > Duration::from_secs(1) {
                // Past the free misses, every wrong one makes the address wait.
                break;
            }
        }
        assert_eq!(oper(&mut bob, "letmein").await, throttled, "another connection");
        pass(wait - Duration::from_millis(1)).await;
        assert_eq!(oper(&mut alice, "letmein").await, throttled, "{wait:?}");
        pass(Duration::from_millis(1)).await;
    }
    assert!(oper(&mut bob, "letmein").await.starts_with("*** you are now an operator"));
    let console = server.stop().await;
    assert_eq!(console.matches("reason=\"too soon\"").count(), 4, "{console}");
    assert!(!console.contains("letmein"), "the password reached the console:\n{console}");
    let _ = std::fs::remove_file(file);
}

/// After the free misses, a wrong server password makes the address wait 1 s, then
/// 2 s; a connection meanwhile is refused without its password being checked.
#[tokio::test(start_paused = true)]
async fn wrong_server_passwords_make_the_address_wait_and_the_wait_doubles() {
    let _watchdog = Watchdog::start("password backoff");
    let _frozen = freeze();
    let mut config = config(&[]);
    let password = tchat::auth::Password::new("sesame").unwrap();
    config.access =
        Arc::new(tchat::server::Access { password: Some(password), ..Default::default() });
    let server = Running::with(config).await;
    let attempt = async |password: &str| {
        let mut c = server.connect().await;
        c.send(&format!("/pass {password}")).await;
        c.send("/nick alice").await;
        let answer = c.expect(" ").await;
        if answer.starts_with("!!!") {
            assert_eq!(c.line().await, None, "a refused connection is closed");
        }
        answer
    };
    let throttled = "!!! too many wrong passwords from your address; wait and try again";
    // Two free misses (a person retyping); each wrong one after them sets a wait.
    for guess in ["guess0", "guess1"] {
        assert_eq!(attempt(guess).await, "!!! wrong password");
    }
    for wait in [Duration::from_secs(1), Duration::from_secs(2)] {
        assert_eq!(attempt("guess2").await, "!!! wrong password");
        assert_eq!(attempt("sesame").await, throttled);
        pass(wait - Duration::from_millis(1)).await;
        assert_eq!(attempt("sesame").await, throttled, "{wait:?}");
        pass(Duration::from_millis(1)).await;
    }
    assert!(attempt("sesame").await.contains("Welcome"));
    let console = server.stop().await;
    assert_eq!(console.matches("Password attempt too soon").count(), 4, "{console}");
    assert!(!console.contains("sesame"), "the password reached the console:\n{console}");
}

/// `/identify` is slowed as the server password is: after the free misses the address
/// waits 1 s, and the right password is refused unchecked until then.
#[tokio::test(start_paused = true)]
async fn wrong_identify_passwords_make_the_address_wait() {
    let _watchdog = Watchdog::start("identify backoff");
    let _frozen = freeze();
    // Flood control off: it paces password commands too (five lines' worth each), and
    // would hold these until time passed.
    let server = Running::start(&["--rate", "0"]).await;
    let mut erin = server.text_client("erin").await;
    erin.send("/register hunter2").await;
    erin.expect("erin is registered to your password").await;
    erin.send("/quit").await;
    while erin.line().await.is_some() {}
    let mut other = server.text_client("other").await;
    let mut identify = async |password: &str| {
        other.send(&format!("/identify erin {password}")).await;
        other.expect("!!!").await
    };
    let wrong = identify("hunter3").await;
    assert!(wrong.contains("wrong password for erin"), "{wrong}");
    identify("hunter3").await;
    let wrong = identify("hunter3").await;
    assert!(wrong.contains("wrong password for erin"), "{wrong}");
    let throttled = "!!! too many wrong passwords from your address; wait and try again";
    assert_eq!(identify("hunter2").await, throttled);
    pass(Duration::from_secs(1) - Duration::from_millis(1)).await;
    assert_eq!(identify("hunter2").await, throttled);
    pass(Duration::from_millis(1)).await;
    other.send("/identify erin hunter2").await;
    other.expect("you are identified as erin").await;
    let console = server.stop().await;
    assert!(!console.contains("hunter"), "a password reached the console:\n{console}");
}

/// A relay between clients and a server that can be pointed elsewhere and whose live
/// connections it can cut: a network path that breaks, in this runtime.
struct Relay {
    addr: SocketAddr,
    to: Arc<Mutex<SocketAddr>>,
    live: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start(to: SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (to, live) = (Arc::new(Mutex::new(to)), Arc::new(Mutex::new(Vec::new())));
        let (target, conns) = (to.clone(), live.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = *target.lock().unwrap();
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns.lock().unwrap().push(relay.abort_handle());
            }
        });
        Relay { addr, to, live }
    }

    fn point_to(&self, addr: SocketAddr) {
        *self.to.lock().unwrap() = addr;
    }

    /// Closes every connection relayed so far, both ends.
    fn cut(&self) {
        self.live.lock().unwrap().drain(..).for_each(|c| c.abort());
    }

    /// Connections relayed since the last cut.
    fn relayed(&self) -> usize {
        self.live.lock().unwrap().len()
    }
}

/// `d` rounded up to a whole millisecond: tokio ends a sleep on the next millisecond
/// of its clock, so a test that waits out a jittered sleep passes this much.
fn whole_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64)
}

/// `tchat join --reconnect`'s core: a lost connection is retried after the backoff; an
/// attempt that reaches a server that never answers is given up on after exactly
/// [`SETUP_TIMEOUT`](tchat::client::connect::SETUP_TIMEOUT) and the backoff goes on,
/// longer; the next attempt that reaches the server resumes the session.
#[tokio::test(start_paused = true)]
async fn a_reconnection_to_a_silent_server_is_given_up_at_the_bound_and_the_backoff_goes_on() {
    use tchat::client::connect::{self, SETUP_TIMEOUT};
    use tchat::client::core::{Core, CoreEvent};
    use tchat::client::servers::Servers;
    let _watchdog = Watchdog::start("silent reconnection");
    let _frozen = freeze();
    let server = Running::start(&[]).await;
    let relay = Relay::start(server.addr).await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = relay.addr.to_string();
    let identity = common::temp_path("in-process-reconnect-identity.pem");
    let argv = ["tchat", "join", &addr, "--plain", "--no-history", "--reconnect", "--nick", "ann"];
    let argv = argv.into_iter().chain(["--identity", identity.to_str().unwrap()]);
    let Command::Join(args) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!("a join command line")
    };
    let servers = Servers::parse([addr.as_str()], 5555).unwrap();
    let hello = ["/hello json ann".to_owned()];
    let open = async |at: &_| connect::open(at, &args, (&hello, false), &mut None, None).await;
    let first = servers.open_any(None, open).await.unwrap();
    let core = Core { servers, args: args.clone(), reconnect: true, password: None };
    let (events, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let (input, mut typed) = tokio::sync::mpsc::unbounded_channel();
    // The binary runs the core on a thread of its own; here it runs on this one.
    let local = tokio::task::LocalSet::new();
    let run = local.spawn_local(async move {
        let emit = move |e: CoreEvent| drop(events.send(e));
        core.run(first, &mut typed, std::future::pending(), emit).await
    });
    // What the UI is told, the events from the server aside.
    let mut told = move || {
        std::iter::from_fn(|| seen.try_recv().ok())
            .find(|e| matches!(e, CoreEvent::Welcomed { .. } | CoreEvent::Lost { .. }))
    };
    local
        .run_until(async move {
            settle().await;
            assert!(matches!(told(), Some(CoreEvent::Welcomed { again: false, .. })));

            relay.point_to(silent.local_addr().unwrap());
            relay.cut();
            settle().await;
            let Some(CoreEvent::Lost { attempt: 1, retry_in, .. }) = told() else {
                panic!("no Lost event after the cut")
            };
            // The attempt comes after the backoff, and reaches the silent server.
            pass(whole_ms(retry_in) - Duration::from_millis(1)).await;
            assert_eq!(relay.relayed(), 0, "attempted before the backoff ended");
            pass(Duration::from_millis(1)).await;
            assert_eq!(relay.relayed(), 1, "not attempted once the backoff ended");
            // Given up on after the set-up bound, not a moment before.
            pass(SETUP_TIMEOUT - Duration::from_millis(1)).await;
            assert_eq!(told(), None, "given up on before {SETUP_TIMEOUT:?}");
            pass(Duration::from_millis(1)).await;
            let Some(CoreEvent::Lost { attempt: 2, retry_in: longer, reason }) = told() else {
                panic!("the silent server was not given up on at {SETUP_TIMEOUT:?}")
            };
            assert_eq!(reason, "no answer to the hello within 10 s");
            assert!(longer > retry_in && longer >= Duration::from_millis(1600), "{longer:?}");

            relay.point_to(server.addr);
            pass(whole_ms(longer)).await;
            let Some(CoreEvent::Welcomed { again: true, .. }) = told() else {
                panic!("not reconnected after the backoff")
            };
            input.send(tchat::client::Input::Quit).unwrap();
            pass(Duration::from_millis(100)).await;
            assert!(run.await.unwrap().is_ok());
            server.stop().await;
        })
        .await;
    let _ = std::fs::remove_file(identity);
}

/// A TLS handshake that stalls after the first bytes of a ClientHello is dropped after
/// exactly [`HANDSHAKE_TIMEOUT`](tchat::server::HANDSHAKE_TIMEOUT), and the
/// others chat meanwhile.
#[tokio::test(start_paused = true)]
async fn a_stalled_tls_handshake_is_dropped_at_the_bound_and_others_chat_meanwhile() {
    use tchat::server::HANDSHAKE_TIMEOUT;
    use tchat::server::access::Tls;
    use tchat::server::tls::{CertSource, Certs};
    let _watchdog = Watchdog::start("stalled handshake");
    let _frozen = freeze();
    let dir = common::temp_path("in-process-certs");
    let certs = Certs::open(CertSource::Generated(dir.clone())).unwrap();
    let mut config = config(&[]);
    let tls = Some(Arc::new(Tls::new(certs)));
    config.access = Arc::new(tchat::server::Access { tls, ..Default::default() });
    let server = Running::with(config).await;
    let mut stalled = server.connect().await;
    // The start of a ClientHello, and then nothing.
    stalled.writer.write_all(&[0x16, 0x03, 0x01, 0x00, 0xff, 0x01]).await.unwrap();
    let mut alice = server.text_client("alice").await;
    let mut bob = server.text_client("bob").await;
    pass(HANDSHAKE_TIMEOUT - Duration::from_millis(1)).await;
    alice.send("still here").await;
    assert_eq!(bob.expect("<alice>").await, "<alice> still here");
    let mut byte = [0u8; 1];
    let open = stalled.reader.get_ref().try_read(&mut byte);
    assert!(open.is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock), "closed early");
    pass(Duration::from_millis(1)).await;
    assert_eq!(stalled.line().await, None);
    let console = server.stop().await;
    let failed = console.lines().find(|l| l.contains("TLS handshake failed")).expect("logged");
    assert!(failed.contains("timed out"), "{failed}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `count` lines `<nick> …` among `lines`.
fn said_by(lines: &[String], nick: &str) -> usize {
    lines.iter().filter(|l| l.starts_with(&format!("<{nick}> "))).count()
}

/// Flood control (the defaults: 5 lines a second, a burst of 20): a paste of twice the
/// burst in one write is slowed, not cut: the burst at once, then the rate, every line
/// in order; the sender is told once; a calm sender meanwhile is served at once, not
/// queued behind the backlog.
#[tokio::test(start_paused = true)]
async fn a_paste_beyond_the_burst_is_paced_at_the_rate_and_a_calm_sender_is_not_held() {
    let _watchdog = Watchdog::start("flood control");
    let _frozen = freeze();
    let server = Running::start(&[]).await;
    let mut alice = server.text_client("alice").await;
    let mut bob = server.text_client("bob").await;
    let mut paste = server.text_client("paste").await;
    alice.expect("paste joined").await;
    bob.expect("paste joined").await;
    let lines: String = (1..=40).map(|i| format!("line {i}\n")).collect();
    paste.writer.write_all(lines.as_bytes()).await.unwrap();
    settle().await;
    let mut heard = alice.sync().await;
    let burst = said_by(&heard, "paste");
    // The burst, less the line that took the nick.
    assert!((18..=20).contains(&burst), "{heard:?}");
    bob.send("calm").await;
    let calm = alice.sync().await;
    assert_eq!(said_by(&calm, "bob"), 1, "bob's line waited: {calm:?}");
    assert_eq!(said_by(&calm, "paste"), 0, "{calm:?}");
    heard.extend(calm);
    // Then five a second: none early, none lost.
    let mut at = burst;
    while at < 40 {
        pass(Duration::from_secs(1)).await;
        let more = alice.sync().await;
        let n = said_by(&more, "paste");
        assert!((4..=6).contains(&n) || at + n == 40, "{n} lines in a second: {more:?}");
        at += n;
        heard.extend(more);
    }
    let pasted: Vec<_> = heard.iter().filter(|l| l.starts_with("<paste> ")).cloned().collect();
    let expected: Vec<_> = (1..=40).map(|i| format!("<paste> line {i}")).collect();
    assert_eq!(pasted, expected);
    let told = paste.sync().await;
    let notices: Vec<_> = told.iter().filter(|l| l.contains("sending faster than 5")).collect();
    assert_eq!(notices.len(), 1, "{told:?}");
    assert!(notices[0].starts_with("*** ") && notices[0].contains("none is lost"), "{told:?}");
    assert!(!told.iter().any(|l| l.starts_with("!!!")), "{told:?}");
    let console = server.stop().await;
    assert_eq!(console.matches("Flood throttled").count(), 1, "{console}");
}
