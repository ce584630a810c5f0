//! Several `tchat serve` nodes sharing one chat through a NATS JetStream backbone: real
//! nats-server processes (tests/common/nats.rs) and real `tchat serve` child processes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::nats::{NatsServer, nats_server};
use common::{Client, Server, WAIT};
use serde_json::Value;

/// A node on the backbone at `url`, named `node`, with `extra` options.
fn node(url: &str, node: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--backbone", url, "--node", node];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Reads `client`'s JSON events until one of type `kind` satisfies `pred`.
fn event_where(client: &mut Client, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let event = client.expect_event(kind);
        if pred(&event) {
            return event;
        }
    }
}

/// The public line `text` as `client` (structured) receives it.
fn public(client: &mut Client, text: &str) -> Value {
    event_where(client, "public", |e| e["text"] == text)
}

/// A standalone nats-server for one test (`None`: skipped, see tests/common/nats.rs).
fn nats() -> Option<NatsServer> {
    nats_server()
}

#[test]
fn lines_actions_joins_and_leaves_cross_nodes_with_the_same_ids() {
    let Some(nats) = nats() else { return };
    let a = node(&nats.url, "a", &[]);
    let b = node(&nats.url, "b", &[]);
    let (mut carol, _) = b.json_client("carol");
    let mut bob = b.text_client("bob");
    let (mut alice, welcome) = a.json_client("alice");
    assert_eq!(welcome["nick"], "alice");
    for node in [&a, &b] {
        let console = node.console_text();
        assert!(console.contains("Backbone connected"), "{console}");
        assert!(!console.contains("Backbone reconnected"), "{console}");
    }

    let join = event_where(&mut carol, "join", |e| e["nick"] == "alice");
    alice.send("hello from a");
    let on_a = public(&mut alice, "hello from a");
    let on_b = public(&mut carol, "hello from a");
    assert_eq!(on_a["id"], on_b["id"], "one id for one line on both nodes");
    assert!(on_a["id"].as_u64().unwrap() > join["id"].as_u64().unwrap());
    bob.expect("<alice> hello from a");

    carol.send("/me waves from b");
    let action = event_where(&mut alice, "action", |e| e["text"] == "waves from b");
    assert_eq!(action["from"], "carol");
    assert!(action["id"].as_u64().unwrap() > on_a["id"].as_u64().unwrap());
    bob.expect("* carol waves from b");

    bob.send("text from b");
    let line = public(&mut alice, "text from b");
    assert_eq!(line["from"], "bob");
    // A text-mode sender's own line is already on its screen: not echoed back.
    carol.send("/list");
    carol.expect_event("users");
    bob.send("/quit bye");
    let leave = event_where(&mut alice, "leave", |e| e["nick"] == "bob");
    assert!(leave["reason"].as_str().unwrap().contains("bye"), "{leave}");
    let seen_by_bob = bob.read_to_close();
    assert!(!seen_by_bob.iter().any(|l| l.contains("<bob> text from b")), "{seen_by_bob:?}");
}

/// Both nodes' users send fast at the same time: every client on both nodes sees every
/// line once, in the same order, with the same strictly increasing ids.
#[test]
fn one_order_on_both_nodes_while_both_send_fast() {
    let Some(nats) = nats() else { return };
    let fast = ["--rate", "0"];
    let a = node(&nats.url, "a", &fast);
    let b = node(&nats.url, "b", &fast);
    let (mut watch_a, _) = a.json_client("watcha");
    let (mut watch_b, _) = b.json_client("watchb");
    let (alice, _) = a.json_client("alice");
    let (bob, _) = b.json_client("bob");
    const N: usize = 150;
    let (to_a, to_b) = (alice.send_half(), bob.send_half());
    let sender_a = std::thread::spawn(move || (0..N).for_each(|i| to_a.send(&format!("a{i}"))));
    let sender_b = std::thread::spawn(move || (0..N).for_each(|i| to_b.send(&format!("b{i}"))));
    sender_a.join().unwrap();
    sender_b.join().unwrap();
    let seen_a = publics(&mut watch_a, 2 * N);
    let seen_b = publics(&mut watch_b, 2 * N);
    assert_eq!(seen_a, seen_b, "both nodes see the same lines, ids and order");
    assert!(seen_a.windows(2).all(|w| w[0].0 < w[1].0), "ids strictly increase");
    for prefix in ["a", "b"] {
        let mine: Vec<&str> =
            seen_a.iter().map(|(_, t)| t.as_str()).filter(|t| t.starts_with(prefix)).collect();
        let sent: Vec<String> = (0..N).map(|i| format!("{prefix}{i}")).collect();
        assert_eq!(mine, sent, "each sender's lines arrive once, in the order sent");
    }
    drop((alice, bob));
}

/// A burst from many senders on both nodes, far more lines than the stream keeps of a
/// room (`--history 20`): every recipient on both nodes gets every line, once, with the
/// same ids everywhere. A node that fell behind the stream by more than it keeps lost
/// whole runs of lines without a word to anyone (the mirror skipped what the stream had
/// dropped meanwhile).
#[test]
fn a_burst_from_many_senders_reaches_every_recipient_on_both_nodes() {
    let Some(nats) = nats() else { return };
    const PER_NODE: usize = 12;
    const LINES: usize = 200;
    let opts = ["--rate", "0", "--max-per-ip", "0", "--history", "20"];
    let nodes = [node(&nats.url, "a", &opts), node(&nats.url, "b", &opts)];
    let mut clients = Vec::new();
    for (n, server) in nodes.iter().enumerate() {
        for i in 0..PER_NODE {
            clients.push(server.json_client(&format!("s{n}x{i}")).0);
        }
    }
    let nicks: Vec<String> =
        (0..2).flat_map(|n| (0..PER_NODE).map(move |i| format!("s{n}x{i}"))).collect();
    for client in &mut clients {
        wait_listed(client, &nicks.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let total = nicks.len() * LINES;
    let halves: Vec<_> = clients.iter().map(Client::send_half).collect();
    let readers: Vec<_> =
        clients.into_iter().map(|c| std::thread::spawn(move || read_publics(c, total))).collect();
    let senders: Vec<_> = halves
        .into_iter()
        .zip(&nicks)
        .map(|(half, nick)| {
            let nick = nick.clone();
            std::thread::spawn(move || (0..LINES).for_each(|i| half.send(&format!("{nick} {i}"))))
        })
        .collect();
    senders.into_iter().for_each(|s| s.join().unwrap());
    let sent: std::collections::BTreeSet<String> =
        nicks.iter().flat_map(|n| (0..LINES).map(move |i| format!("{n} {i}"))).collect();
    let mut first: Option<Vec<(u64, String)>> = None;
    for (reader, nick) in readers.into_iter().zip(&nicks) {
        let (publics, others) = reader.join().unwrap();
        let got: std::collections::BTreeSet<&String> = publics.iter().map(|(_, t)| t).collect();
        let missing = sent.iter().filter(|t| !got.contains(t)).count();
        assert_eq!(
            (missing, publics.len()),
            (0, total),
            "{nick} missed {missing} of {total} lines; other lines: {others:?}"
        );
        match &first {
            None => first = Some(publics),
            Some(first) => assert_eq!(first, &publics, "{nick}: same ids, same order"),
        }
    }
}

/// Reads `client`'s structured events until `total` public lines came or none came for
/// a while; returns the public lines as (id, text) and every other line but joins.
fn read_publics(mut client: Client, total: usize) -> (Vec<(u64, String)>, Vec<String>) {
    let (mut publics, mut others) = (Vec::new(), Vec::new());
    while publics.len() < total {
        let Some(Some(line)) = client.line_within(Duration::from_secs(10)) else { break };
        let event: Value = serde_json::from_str(&line).unwrap();
        match event["type"].as_str() {
            Some("public") => publics
                .push((event["id"].as_u64().unwrap(), event["text"].as_str().unwrap().to_owned())),
            Some("join" | "all_users") => {}
            _ => others.push(line),
        }
    }
    (publics, others)
}

/// The next `n` public lines `client` gets, as (id, text).
fn publics(client: &mut Client, n: usize) -> Vec<(u64, String)> {
    (0..n)
        .map(|_| {
            let e = client.expect_event("public");
            (e["id"].as_u64().unwrap(), e["text"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// A node that stops and starts again takes the history back from the stream: a
/// joining client gets the replay, `/history` works, and new ids continue above the old
/// ones (never reused).
#[test]
fn history_replays_across_nodes_and_ids_survive_a_node_restart() {
    let Some(nats) = nats() else { return };
    let replay = ["--replay", "5"];
    let mut a = node(&nats.url, "a", &replay);
    let (mut alice, _) = a.json_client("alice");
    for i in 0..3 {
        alice.send(&format!("before {i}"));
    }
    let last = public(&mut alice, "before 2")["id"].as_u64().unwrap();

    // A second node, started after the lines were said, replays them to a newcomer.
    let b = node(&nats.url, "b", &replay);
    let (mut bo, welcome) = b.json_client("bo");
    assert_eq!(welcome["last_id"].as_u64(), Some(last), "{welcome}");
    for i in 0..3 {
        let e = public(&mut bo, &format!("before {i}"));
        assert_eq!(e["history"], true, "{e}");
    }
    bo.send("/history 2");
    let again = public(&mut bo, "before 1");
    assert_eq!(again["history"], true);
    public(&mut bo, "before 2");

    // Node a goes away and comes back as a new process: ids continue.
    drop(alice);
    a.terminate();
    drop(a);
    let a = node(&nats.url, "a", &replay);
    let (mut ana, _) = a.json_client("ana");
    public(&mut ana, "before 2");
    ana.send("after restart");
    let after = public(&mut ana, "after restart")["id"].as_u64().unwrap();
    assert!(after > last, "id {after} after a restart, not above {last}");
    assert_eq!(public(&mut bo, "after restart")["id"].as_u64(), Some(after));
}

/// A private message between two members of one node goes through the stream too: it
/// has an id in the common order, reaches the target and confirms to the sender.
#[test]
fn private_messages_take_their_id_from_the_stream() {
    let Some(nats) = nats() else { return };
    let a = node(&nats.url, "a", &[]);
    let b = node(&nats.url, "b", &[]);
    let (mut watcher, _) = b.json_client("watcher");
    let (mut alice, _) = a.json_client("alice");
    let (mut amy, _) = a.json_client("amy");
    alice.send("/msg amy psst");
    let got = amy.expect_event("private");
    let confirmed = alice.expect_event("private");
    assert_eq!((got["from"].as_str(), got["text"].as_str()), (Some("alice"), Some("psst")));
    assert_eq!(got["id"], confirmed["id"]);
    alice.send("public after");
    let next = public(&mut watcher, "public after");
    assert!(next["id"].as_u64() > got["id"].as_u64(), "{next} after {got}");
}

/// With no backbone to reach, a node says so and exits non-zero without ever
/// listening for clients: it never runs as a chat of its own.
#[test]
fn a_node_without_a_reachable_backbone_does_not_serve() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("nats://127.0.0.1:{port}");
    let (status, stdout, stderr) = serve_once(&["--backbone", &url]);
    assert!(!status.success());
    assert!(stderr.contains("cannot reach the backbone") && stderr.contains(&url), "{stderr}");
    assert!(!stdout.contains("Listening"), "{stdout}");
}

/// A secret in a backbone URL would show in `ps`: refused, pointing at the file option,
/// without repeating the secret.
#[test]
fn a_secret_in_the_backbone_url_is_refused() {
    let (status, _, stderr) = serve_once(&["--backbone", "nats://tchat:hunter2@127.0.0.1:1"]);
    assert!(!status.success());
    assert!(stderr.contains("--backbone-auth"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// A nats-server older than the floor is refused at start with its version named. The
/// old server is played by a socket that speaks the start of the NATS protocol as 2.9.10
/// does (its INFO line, then PONG to the client's PING).
#[test]
fn a_too_old_nats_server_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("nats://{}", listener.local_addr().unwrap());
    let old = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let info = r#"INFO {"server_id":"OLD","server_name":"old","version":"2.9.10","proto":1,"host":"127.0.0.1","port":4222,"headers":true,"max_payload":1048576,"jetstream":true}"#;
        stream.write_all(format!("{info}\r\n").as_bytes()).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if line.starts_with("PING") {
                let _ = (&stream).write_all(b"PONG\r\n");
            }
            line.clear();
        }
    });
    let (status, stdout, stderr) = serve_once(&["--backbone", &url]);
    assert!(!status.success());
    assert!(stderr.contains("2.9.10") && stderr.contains("2.10.23"), "{stderr}");
    assert!(!stdout.contains("Listening"), "{stdout}");
    old.join().unwrap();
}

/// Runs `tchat serve` on a free port with `extra`, expecting it to exit by itself;
/// returns its status, console and standard error.
fn serve_once(extra: &[&str]) -> (std::process::ExitStatus, String, String) {
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let state = common::state_dir::StateDir::new(&format!("backbone-once{n}"));
    let mut child = common::serve_command(&state, extra).spawn().unwrap();
    let status = common::wait_exit_within(&mut child, WAIT + Duration::from_secs(5));
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status, stdout, stderr)
}

/// Sends `/list all` until the answer names every nick of `nicks`; returns it.
fn wait_listed(client: &mut Client, nicks: &[&str]) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        client.send("/list all");
        let all = client.expect_event("all_users");
        let listed: Vec<&str> =
            all["users"].as_array().unwrap().iter().map(|u| u["nick"].as_str().unwrap()).collect();
        if nicks.iter().all(|n| listed.contains(n)) {
            return all;
        }
        assert!(std::time::Instant::now() < deadline, "never listed {nicks:?}: {all}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A nick held on one node is refused on the other, and so is its look-alike; once let
/// go it can be taken there.
#[test]
fn a_nick_held_on_one_node_is_refused_on_the_other() {
    let Some(nats) = nats() else { return };
    let a = node(&nats.url, "a", &[]);
    let b = node(&nats.url, "b", &[]);
    let (mut alice, _) = a.json_client("alice");
    let (mut other, welcome) = b.json_client("Alice");
    assert_ne!(welcome["nick"], "Alice", "{welcome}");
    let error = other.expect_event("error");
    assert_eq!(error["code"], "nick_taken", "{error}");
    assert!(error["message"].as_str().unwrap().contains("alice"), "{error}");
    // Cyrillic а: another nick, the same look.
    let (mut lookalike, welcome) = b.json_client("\u{430}lice");
    assert!(welcome["nick"].as_str().unwrap().starts_with("guest"), "{welcome}");
    assert_eq!(lookalike.expect_event("error")["code"], "nick_taken");
    other.send("/nick ALICE");
    assert_eq!(other.expect_event("error")["code"], "nick_taken");
    // Guests of both nodes are distinct nicks too.
    let guest_b = welcome["nick"].as_str().unwrap().to_owned();
    alice.send("/quit");
    alice.read_to_close();
    // Let go across nodes: the other node can give it now.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        other.send("/nick alice");
        let answer = loop {
            let line = other.next_line().expect("still connected");
            let event: Value = serde_json::from_str(&line).unwrap();
            if event["type"] == "nick" || event["type"] == "error" {
                break event;
            }
        };
        if answer["type"] == "nick" {
            assert_eq!(answer["new"], "alice");
            break;
        }
        assert_eq!(answer["code"], "nick_taken", "{answer}");
        assert!(std::time::Instant::now() < deadline, "alice never freed across nodes");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop((lookalike, guest_b));
}

/// Two connections claim one nick (or a nick and its look-alike) at the same moment on
/// two nodes: exactly one gets it, round after round.
#[test]
fn a_simultaneous_claim_gives_the_nick_to_exactly_one() {
    let Some(nats) = nats() else { return };
    let a = node(&nats.url, "a", &[]);
    let b = node(&nats.url, "b", &[]);
    for round in 0..20 {
        // Every other round, one nick against its look-alike written wholly in Cyrillic
        // (`рое`: Cyrillic р, о, е), which is a valid nick of its own.
        let (nick, rival) = match round % 2 {
            0 => (format!("racer{round}"), format!("racer{round}")),
            _ => (format!("poe{round}"), format!("\u{440}\u{43e}\u{435}{round}")),
        };
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let claim = |addr: std::net::SocketAddr, wanted: String| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                barrier.wait();
                c.send(&format!("/hello json {wanted}"));
                let welcome = c.expect_event("welcome");
                (welcome["nick"].as_str().unwrap() == wanted, c)
            })
        };
        let on_a = claim(a.addr, nick.clone());
        let on_b = claim(b.addr, rival.clone());
        let (won_a, ca) = on_a.join().unwrap();
        let (won_b, cb) = on_b.join().unwrap();
        assert!(
            won_a ^ won_b,
            "round {round}: {nick} won on a: {won_a}, {rival} won on b: {won_b}"
        );
        drop((ca, cb));
    }
}

/// Many clients registering on one node at once wait for their nick claims side by
/// side, in their connections' tasks: every one is welcomed under its nick, and the
/// node's threads stay few. (Claims that each blocked a thread took one of tokio's 512
/// blocking threads apiece; with all of them waiting on NATS no worker was left to read
/// its answers, and a node stalled for good at a few thousand clients.) The nicks are
/// claimed across nodes all the same: the other node refuses each.
#[test]
fn many_clients_registering_at_once_wait_for_their_claims_without_a_thread_each() {
    const CLIENTS: usize = 300;
    let Some(nats) = nats() else { return };
    // Joins unannounced past 10 users: the clients are read one after the other.
    let a = node(&nats.url, "a", &["--announce-limit", "10"]);
    let b = node(&nats.url, "b", &[]);
    // All connected and their first lines sent before any answer is read; every third
    // says nothing and is welcomed under a guest nick once the hello window ends.
    let streams: Vec<std::net::TcpStream> = (0..CLIENTS)
        .map(|i| {
            let mut stream = std::net::TcpStream::connect(a.addr).unwrap();
            let first = match i % 3 {
                0 => format!("/nick many{i}\n"),
                1 => format!("/hello json many{i}\n"),
                _ => String::new(),
            };
            stream.write_all(first.as_bytes()).unwrap();
            stream
        })
        .collect();
    let mut clients = Vec::new();
    for (i, stream) in streams.into_iter().enumerate() {
        let mut client = Client::from_stream(stream);
        match i % 3 {
            0 => drop(client.expect(&format!("You are many{i};"))),
            1 => assert_eq!(client.expect_event("welcome")["nick"], format!("many{i}")),
            _ => drop(client.expect("You are guest")),
        }
        clients.push(client);
    }
    let threads = threads_of(a.child.id());
    assert!(threads < 64, "node a runs {threads} threads for {CLIENTS} clients");
    let mut rival = b.connect();
    rival.send("/hello json many1");
    let welcome = rival.expect_event("welcome");
    assert_ne!(welcome["nick"], "many1", "{welcome}");
    let mut rival = b.connect();
    rival.send("/nick many3");
    rival.expect("the nick many3 is already taken");
}

/// With NATS frozen (SIGSTOP), account changes and operator commands that wait for its
/// buckets stall nothing and hold no thread. `list` is answered while three users'
/// `/unregister` wait on the accounts bucket (when those blocked, the second and third
/// held tokio's two workers on the accounts' lock and nothing else ran until the first
/// gave up); 200 `ban`s given at once through the control socket, each waiting on the
/// moderation bucket, leave the node at a handful of threads (each took one of tokio's
/// blocking threads when they blocked). Each then gets a clear error within the bound:
/// the nicks stay registered, the bans hold on this node only, and say so. Once NATS is
/// back both work again.
#[test]
fn account_changes_and_bans_waiting_for_nats_stall_nothing_and_hold_no_thread() {
    let Some(nats) = nats() else { return };
    let dir = common::state_dir::StateDir::new("backbone-waits");
    let socket = dir.join("a.sock");
    let a = node(&nats.url, "a", &["--control-socket", socket.to_str().unwrap()]);
    let mut users: Vec<Client> = (0..3)
        .map(|i| {
            let mut user = a.text_client(&format!("owner{i}"));
            user.send(&format!("/register password-{i}"));
            user.expect("is registered to your password");
            user
        })
        .collect();
    users.iter_mut().for_each(|user| drop(user.sync()));
    nats.stop_signal(libc::SIGSTOP);
    wait_frozen(nats.pid().unwrap());
    for user in &mut users {
        user.send("/unregister");
    }
    a.wait_console_nth("/unregister", users.len());
    let ctl = |line: &str| {
        let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(format!("{line}\n").as_bytes()).unwrap();
        stream
    };
    let answer = |mut stream: std::os::unix::net::UnixStream| {
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer)
            .unwrap_or_else(|e| panic!("no answer from the control socket: {e}"));
        answer
    };
    let listed = answer(ctl("list"));
    assert!(listed.starts_with("ok\n3 online"), "{listed}");
    for user in &mut users {
        assert_eq!(user.line_within(Duration::ZERO), None, "answered before list");
    }
    bans_wait_without_threads(&a, &ctl, &answer);
    for user in &mut users {
        user.expect("the server could not save this");
    }
    nats.stop_signal(libc::SIGCONT);
    users[0].send("/unregister");
    users[0].expect("owner0 is no longer registered");
    assert_eq!(answer(ctl("ban spammer0")).trim_end(), "ok\nbanned spammer0");
}

/// Waits until every thread of process `pid` is stopped (SIGSTOP reaches each thread
/// in its own time; a thread still running could answer a request sent after the
/// signal).
fn wait_frozen(pid: u32) {
    let stopped = || {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        tasks.flatten().all(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with(['T', 't']))
        })
    };
    let deadline = std::time::Instant::now() + WAIT;
    while !stopped() {
        assert!(std::time::Instant::now() < deadline, "nats-server {pid} never stopped");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// 200 `ban`s given at once through node `a`'s control socket (`ctl` sends a line,
/// `answer` reads its answer) while NATS is frozen: each is answered once the bucket
/// gave up, held on this node only and saying so, and the node ran a handful of threads
/// meanwhile.
fn bans_wait_without_threads(
    a: &Server,
    ctl: &dyn Fn(&str) -> std::os::unix::net::UnixStream,
    answer: &dyn Fn(std::os::unix::net::UnixStream) -> String,
) {
    const BANS: usize = 200;
    let bans: Vec<_> = (0..BANS).map(|i| ctl(&format!("ban spammer{i}"))).collect();
    let mut most = 0;
    for (i, ban) in bans.into_iter().enumerate() {
        most = most.max(threads_of(a.child.id()));
        let answer = answer(ban);
        let banned = format!("ok\nbanned spammer{i} (on this node only: the backbone did not");
        assert!(answer.starts_with(&banned), "{answer}");
    }
    assert!(most < 64, "node a ran {most} threads while {BANS} bans waited for NATS");
}

/// The threads of process `pid` (Linux's /proc; 0 elsewhere).
fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// On a backbone, a first line that registers its sender as a guest (anything but a
/// hello or `/nick`) waits for the guest nick's claim, then is acted on; the lines that
/// came with it follow in order, a `/nick` among them waiting for its own claim.
#[test]
fn lines_that_wait_for_a_claim_are_acted_on_in_order() {
    let Some(nats) = nats() else { return };
    let a = node(&nats.url, "a", &[]);
    let b = node(&nats.url, "b", &[]);
    let (mut watcher, _) = b.json_client("watcher");
    let mut guest = a.connect();
    guest.send_raw(b"first words\nsecond words\n/nick late\nthird words\n/bogus\nfourth\n");
    let first = public(&mut watcher, "first words");
    let from = first["from"].as_str().unwrap().to_owned();
    assert!(from.starts_with("guest"), "{first}");
    assert_eq!(public(&mut watcher, "second words")["from"], from.as_str());
    assert_eq!(public(&mut watcher, "third words")["from"], "late");
    assert_eq!(public(&mut watcher, "fourth")["from"], "late");
    guest.expect("Welcome");
    // The rename comes back from the stream, the error at once: in either order, and
    // news from the other node (the watcher's join) may come between them.
    let renamed = format!("{from} is now known as late");
    let wanted = [renamed.as_str(), "unknown command /bogus"];
    let mut answers = Vec::new();
    while !wanted.iter().all(|w| answers.iter().any(|l: &String| l.contains(w))) {
        assert!(answers.len() < 10, "{answers:?}");
        answers.push(guest.next_line().unwrap_or_default());
    }
    // The nick is held across nodes, and the guest nick let go.
    let mut rival = b.connect();
    rival.send("/nick late");
    rival.expect("the nick late is already taken");
    let mut other = b.connect();
    other.send(&format!("/nick {from}"));
    other.expect(&format!("You are {from};"));
}

/// Who is on the other node shows in `/list`, `/list all`, `/whois` and `/rooms`;
/// `/msg` and `/reply` reach across; `/away` shows; a room's topic follows.
#[test]
fn presence_messages_and_rooms_across_nodes() {
    let Some(nats) = nats() else { return };
    let a = node(&nats.url, "a", &[]);
    let b = node(&nats.url, "b", &[]);
    let (mut alice, _) = a.json_client("alice");
    let (mut bob, _) = b.json_client("bob");
    wait_listed(&mut bob, &["alice", "bob"]);
    let all = wait_listed(&mut alice, &["alice", "bob"]);
    assert!(all["users"].as_array().unwrap().iter().all(|u| u["room"] == "#lobby"), "{all}");
    alice.send("/list");
    let here = alice.expect_event("users");
    assert_eq!(here["online"], 2, "{here}");
    assert!(here["users"].as_array().unwrap().iter().any(|u| u == "bob"), "{here}");
    alice.send("/whois bob");
    let whois = alice.expect_event("whois");
    assert_eq!((whois["nick"].as_str(), whois["room"].as_str()), (Some("bob"), Some("#lobby")));

    alice.send("/msg bob psst from a");
    let got = bob.expect_event("private");
    assert_eq!((got["from"].as_str(), got["text"].as_str()), (Some("alice"), Some("psst from a")));
    assert_eq!(alice.expect_event("private")["id"], got["id"], "the sender's copy");
    bob.send("/reply and back");
    let back = alice.expect_event("private");
    assert_eq!((back["from"].as_str(), back["text"].as_str()), (Some("bob"), Some("and back")));

    bob.send("/away lunch");
    bob.send("/join #dev");
    bob.expect_event("room");
    bob.send("/topic release day");
    event_where(&mut bob, "topic", |e| e["topic"] == "release day");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        alice.send("/rooms");
        let rooms = alice.expect_event("rooms");
        let dev = rooms["rooms"].as_array().unwrap().iter().find(|r| r["room"] == "#dev").cloned();
        if dev.as_ref().is_some_and(|d| d["here"] == 1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "#dev never counted on a: {rooms}");
        std::thread::sleep(Duration::from_millis(50));
    }
    alice.send("/join #dev");
    let room = alice.expect_event("room");
    assert_eq!(room["topic"], "release day", "{room}");
    assert!(room["users"].as_array().unwrap().iter().any(|u| u == "bob"), "{room}");
    alice.send("/list");
    let dev = alice.expect_event("users");
    assert_eq!(dev["away"], serde_json::json!(["bob"]), "{dev}");
    alice.send("in dev");
    assert_eq!(public(&mut bob, "in dev")["room"], "#dev");
}

/// The events `client` gets until the public line `text`, which a sender says to mark
/// the end of what the test looks at.
fn events_until(client: &mut Client, text: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let line = client.next_line().expect("still connected");
        let event: Value = serde_json::from_str(&line).unwrap();
        if event["type"] == "public" && event["text"] == text {
            return seen;
        }
        seen.push(event);
    }
}

/// Leaves and joins of `nick` among `events`.
fn comings_and_goings<'a>(events: &'a [Value], nick: &str) -> Vec<&'a Value> {
    let kinds = ["join", "leave", "part"];
    events
        .iter()
        .filter(|e| kinds.contains(&e["type"].as_str().unwrap()) && e["nick"] == nick)
        .collect()
}

/// Resumes `nick`'s session on `server` with its token and the last id it saw; returns
/// the client, its welcome and the `resumed` event.
fn resume_on(server: &Server, nick: &str, token: &str, last_id: u64) -> (Client, Value, Value) {
    let mut c = server.connect();
    c.send(&format!("/hello json {nick} resume {token} {last_id} #lobby"));
    let welcome = c.expect_event("welcome");
    let resumed = c.expect_event("resumed");
    (c, welcome, resumed)
}

/// A `/nick` claimed on node a while its session resumes on node b (a rolling restart,
/// a client that changed networks): node a's requests to NATS are held (a congested
/// link) from before the `/nick` until node a has seen the session taken over, so the
/// claim is made for a session node a no longer has. Node a lets it go (it left the
/// nick held by nobody, and panicked renaming a member that was gone): another user
/// takes the nick, and the session goes on under its old nick on node b.
#[test]
fn a_nick_claimed_while_its_session_resumes_on_another_node_is_let_go() {
    use base64::Engine;
    let Some(nats) = nats() else { return };
    let link = HeldLink::start(&nats.url);
    let grace = ["--resume-grace", "30"];
    let mut a = node(&link.url(), "a", &grace);
    let b = node(&nats.url, "b", &grace);
    let (mut alice, welcome) = a.json_client("alice");
    let token = welcome["resume"].as_str().unwrap().to_owned();
    alice.send("before the move");
    let last_id = public(&mut alice, "before the move")["id"].as_u64().unwrap();

    link.hold(true);
    alice.send("/nick robin");
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("robin");
    link.wait_held(format!("k.{key}").as_bytes());
    let (mut moved, welcome, _) = resume_on(&b, "alice", &token, last_id);
    assert_eq!(welcome["nick"], "alice", "{welcome}");
    a.wait_console("Resumed elsewhere");
    link.hold(false);
    // Made for a session node a no longer has, and let go.
    a.wait_console("robin");

    let mut carol = b.text_client("carol");
    let answer = nick_answer(&mut carol, "robin");
    assert!(answer.contains("carol is now known as robin"), "{answer}");
    moved.send("after the move");
    assert_eq!(public(&mut moved, "after the move")["from"], "alice");
}

/// A TCP proxy between one node and nats-server that holds what the node sends while
/// held (its requests wait, as on a congested link) and lets what NATS sends through:
/// a request of the node's is kept in flight while the rest of the chat goes on.
struct HeldLink {
    addr: std::net::SocketAddr,
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// What the node sent and the proxy holds, per connection (a node has two: its
    /// leases have their own).
    pending: std::sync::Arc<std::sync::Mutex<Vec<Held>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HeldLink {
    fn start(upstream: &str) -> HeldLink {
        let upstream = upstream.trim_start_matches("nats://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let link = HeldLink {
            addr: listener.local_addr().unwrap(),
            held: Default::default(),
            pending: Default::default(),
            stop: Default::default(),
        };
        let (held, pending, stop) = (link.held.clone(), link.pending.clone(), link.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((node, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                node.set_nonblocking(false).unwrap();
                let nats = std::net::TcpStream::connect(&upstream).unwrap();
                let (to_node, from_nats) = (node.try_clone().unwrap(), nats.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut &from_nats, &mut &to_node);
                });
                let mine = Held::default();
                pending.lock().unwrap().push(mine.clone());
                let (held, stop) = (held.clone(), stop.clone());
                std::thread::spawn(move || forward_unless_held(node, nats, held, mine, stop));
            }
        });
        link
    }

    fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    fn hold(&self, held: bool) {
        self.held.store(held, std::sync::atomic::Ordering::Relaxed);
    }

    /// Waits until what the proxy holds contains `needle`.
    fn wait_held(&self, needle: &[u8]) {
        let deadline = std::time::Instant::now() + WAIT;
        let holds = |held: &Held| held.lock().unwrap().windows(needle.len()).any(|w| w == needle);
        while !self.pending.lock().unwrap().iter().any(holds) {
            assert!(std::time::Instant::now() < deadline, "the node never sent it");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for HeldLink {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What one connection's node sent that the proxy holds.
type Held = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

/// Copies what `node` sends to `nats`, keeping it in `pending` while `held`.
fn forward_unless_held(
    mut node: std::net::TcpStream,
    mut nats: std::net::TcpStream,
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pending: Held,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::io::Read;
    node.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match node.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => pending.lock().unwrap().extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if !held.load(std::sync::atomic::Ordering::Relaxed) {
            let out = std::mem::take(&mut *pending.lock().unwrap());
            if nats.write_all(&out).is_err() {
                break;
            }
        }
    }
    let _ = nats.shutdown(std::net::Shutdown::Both);
    let _ = node.shutdown(std::net::Shutdown::Both);
}

/// Rolling restart: node a stops (SIGTERM); its structured user resumes on node b with
/// its token and last id: same nick, exactly the lines it missed, and nobody sees it
/// leave or join. Its text-mode user is seen leaving once.
#[test]
fn a_rolling_restart_moves_structured_users_unseen_and_text_users_leave_once() {
    let Some(nats) = nats() else { return };
    let grace = ["--resume-grace", "30"];
    let mut a = node(&nats.url, "a", &grace);
    let b = node(&nats.url, "b", &grace);
    let (mut bob, _) = b.json_client("bob");
    let (mut alice, welcome) = a.json_client("alice");
    let token = welcome["resume"].as_str().unwrap().to_owned();
    let mut carol = a.text_client("carol");
    wait_listed(&mut bob, &["alice", "bob", "carol"]);
    alice.send("before the restart");
    let last_id = public(&mut alice, "before the restart")["id"].as_u64().unwrap();
    carol.send("/list");
    carol.expect("bob");

    assert!(a.terminate().success());
    alice.expect_event("shutdown");
    for i in 0..3 {
        bob.send(&format!("while away {i}"));
    }
    let (mut alice, welcome, resumed) = resume_on(&b, "alice", &token, last_id);
    assert_eq!(welcome["nick"], "alice", "{welcome}");
    assert_eq!(resumed["resumed"], true, "{resumed}");
    // What the stream held when alice resumed comes again (history), the rest live:
    // together every line said while she was away, once each, in order.
    let missed = resumed["missed"].as_u64().unwrap() as usize;
    bob.send("after the resume");
    let said = events_until(&mut alice, "after the resume");
    assert!(said[..missed].iter().all(|e| e["history"] == true), "{said:?}");
    assert!(said[missed..].iter().all(|e| e["history"].is_null()), "{said:?}");
    let ids: Vec<u64> = said.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids[0] > last_id && ids.windows(2).all(|w| w[0] < w[1]), "{said:?}");
    let texts: Vec<&str> = said
        .iter()
        .filter(|e| e["type"] == "public")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["while away 0", "while away 1", "while away 2"], "{said:?}");

    let seen = events_until(&mut bob, "after the resume");
    assert!(comings_and_goings(&seen, "alice").is_empty(), "bob saw alice come or go: {seen:?}");
    let carol_left: Vec<_> = seen.iter().filter(|e| e["type"] == "leave").collect();
    assert_eq!(carol_left.len(), 1, "{seen:?}");
    assert_eq!(carol_left[0]["nick"], "carol");
    // The nick is still alice's: nobody else may take it.
    let (mut other, welcome) = b.json_client("alice");
    assert_ne!(welcome["nick"], "alice");
    assert_eq!(other.expect_event("error")["code"], "nick_taken");
}

/// A node killed with SIGKILL: its structured user resumes on another node at once, its
/// text-mode user is seen leaving once, within the lease (4 s) and a sweep, and the
/// text user's nick is free again.
#[test]
fn a_crashed_nodes_users_leave_once_and_structured_ones_resume_at_once() {
    let Some(nats) = nats() else { return };
    let grace = ["--resume-grace", "30"];
    let mut a = node(&nats.url, "a", &grace);
    let b = node(&nats.url, "b", &grace);
    let c = node(&nats.url, "c", &grace);
    let (mut bob, _) = b.json_client("bob");
    let (mut cy, _) = c.json_client("cy");
    let (mut alice, welcome) = a.json_client("alice");
    let token = welcome["resume"].as_str().unwrap().to_owned();
    let _carol = a.text_client("carol");
    wait_listed(&mut bob, &["alice", "carol", "cy"]);
    wait_listed(&mut cy, &["alice", "bob", "carol"]);
    alice.send("before the crash");
    let last_id = public(&mut alice, "before the crash")["id"].as_u64().unwrap();

    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed = std::time::Instant::now();
    let (_alice, welcome, resumed) = resume_on(&b, "alice", &token, last_id);
    assert_eq!(welcome["nick"], "alice");
    assert_eq!(resumed["resumed"], true);
    assert!(killed.elapsed() < Duration::from_secs(3), "the resume waited {:?}", killed.elapsed());

    let leave = event_where(&mut bob, "leave", |e| e["nick"] == "carol");
    let after = killed.elapsed();
    assert!(after < Duration::from_secs(8), "carol seen leaving after {after:?}");
    assert!(leave["reason"].as_str().unwrap().contains("connection lost"), "{leave}");
    bob.send("sentinel");
    let seen_b = events_until(&mut bob, "sentinel");
    let seen_c = events_until(&mut cy, "sentinel");
    assert!(comings_and_goings(&seen_b, "alice").is_empty(), "{seen_b:?}");
    let leaves = |seen: &[Value]| {
        seen.iter().filter(|e| e["type"] == "leave" && e["nick"] == "carol").count()
    };
    assert_eq!(leaves(&seen_c), 1, "carol leaves once for every node: {seen_c:?}");
    assert_eq!(leaves(&seen_b), 0, "bob saw it already, once: {seen_b:?}");
    assert!(comings_and_goings(&seen_c, "alice").is_empty(), "{seen_c:?}");
    let (_carol_again, welcome) = c.json_client("carol");
    assert_eq!(welcome["nick"], "carol", "the crashed node's nick is free: {welcome}");
}

/// The leaves a sweep announces for a dead node's users keep `--announce-limit`, as
/// their own node's would have: with more users online than the limit, a crash frees
/// their nicks without a leave line for each (a node with tens of thousands of users
/// announces none of them itself when they go).
#[test]
fn swept_leaves_keep_the_announce_limit() {
    let Some(nats) = nats() else { return };
    let limit = ["--announce-limit", "2"];
    let mut a = node(&nats.url, "a", &limit);
    let b = node(&nats.url, "b", &limit);
    let (mut bob, _) = b.json_client("bob");
    let gone = ["carol", "dave", "erin"];
    let _users: Vec<_> = gone.iter().map(|n| a.text_client(n)).collect();
    wait_listed(&mut bob, &["bob", "carol", "dave", "erin"]);

    a.child.kill().unwrap();
    a.child.wait().unwrap();
    b.wait_console_nth("Left with its node", gone.len());
    bob.send("sentinel");
    let seen = events_until(&mut bob, "sentinel");
    // 4 online, limit 2: the first two of the three go unannounced, and the last, with 2
    // online as it left, is announced, as a leave on its own node would have been.
    let leaves: Vec<&Value> = seen.iter().filter(|e| e["type"] == "leave").collect();
    assert_eq!(leaves.len(), 1, "{leaves:?}");
    assert_eq!(leaves[0]["online"], 1, "{leaves:?}");
    let (_carol, welcome) = b.json_client("carol");
    assert_eq!(welcome["nick"], "carol", "the nick is free: {welcome}");
}

/// Production shape: a 3-server NATS cluster, each node given every server and a
/// 3-replica stream. The chat goes on when the NATS server one node is connected to is
/// killed: the node moves to another server, and nothing said is lost or doubled.
#[test]
fn nodes_on_a_three_server_nats_cluster_survive_the_loss_of_one_server() {
    let Some(mut cluster) = common::nats::nats_cluster(3) else { return };
    let urls = cluster.urls.join(",");
    let extra = ["--backbone-replicas", "3"];
    // Node a prefers the first server, node b the second (each tries its list in order).
    let a = node(&urls, "a", &extra);
    let reversed: Vec<String> = cluster.urls.iter().rev().cloned().collect();
    let b = node(&reversed.join(","), "b", &extra);
    let (mut alice, _) = a.json_client("alice");
    let (mut bob, _) = b.json_client("bob");
    wait_listed(&mut alice, &["alice", "bob"]);
    alice.send("before");
    let before = public(&mut bob, "before")["id"].as_u64().unwrap();

    cluster.servers[0].kill();
    // Lines said while the cluster recovers are delivered or refused, never lost
    // silently: retry each until it is seen.
    let mut said = Vec::new();
    for i in 0..3 {
        let text = format!("after {i}");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            alice.send(&text);
            let answer = loop {
                let e: Value = serde_json::from_str(&alice.next_line().unwrap()).unwrap();
                if (e["type"] == "public" && e["text"] == text) || e["type"] == "error" {
                    break e;
                }
            };
            if answer["type"] == "public" {
                said.push(answer["id"].as_u64().unwrap());
                break;
            }
            assert_eq!(answer["code"], "not_sent", "{answer}");
            assert!(std::time::Instant::now() < deadline, "never delivered after the loss");
        }
    }
    let seen: Vec<u64> =
        (0..3).map(|i| public(&mut bob, &format!("after {i}"))["id"].as_u64().unwrap()).collect();
    assert_eq!(seen, said, "bob sees each line once, with alice's ids");
    assert!(seen[0] > before && seen.windows(2).all(|w| w[0] < w[1]));
}

/// nats-server stopped and started again while nodes run: a line said meanwhile is
/// delivered once when NATS is back, and its sender is not told it was lost (its
/// publish is retried with its message id, past the 3 s ack timeout); nick changes are
/// refused with a clear error meanwhile; afterwards the nodes carry on without a
/// restart, nobody swept.
#[test]
fn nats_stopped_and_started_again_loses_nothing_silently() {
    let Some(mut nats) = nats() else { return };
    let a = node(&nats.url, "a", &[]);
    let b = node(&nats.url, "b", &[]);
    let (mut alice, _) = a.json_client("alice");
    let (mut bob, _) = b.json_client("bob");
    wait_listed(&mut alice, &["alice", "bob"]);
    wait_listed(&mut bob, &["alice", "bob"]);
    alice.send("before");
    public(&mut bob, "before");

    nats.kill();
    alice.send("/nick alicia");
    let refused = alice.expect_event("error");
    assert_eq!(refused["code"], "unavailable", "{refused}");
    alice.send("during");
    // The outage outlasts the ack timeout (3 s): what is tested is the line's fate
    // after that long, so this wait is the outage itself.
    std::thread::sleep(Duration::from_secs(5));
    nats.restart();
    alice.send("after");
    let mut mine = events_until(&mut alice, "after");
    if !mine.iter().any(|e| e["type"] == "public" && e["text"] == "during") {
        mine.extend(events_until(&mut alice, "during"));
        mine.push(serde_json::json!({"type": "public", "text": "during"}));
    }
    let errors: Vec<_> = mine.iter().filter(|e| e["type"] == "error").collect();
    assert!(errors.is_empty(), "the line was delivered, its sender told otherwise: {errors:?}");
    let said_during = |events: &[Value]| {
        events.iter().filter(|e| e["type"] == "public" && e["text"] == "during").count()
    };
    let mut seen = events_until(&mut bob, "after");
    let mut during = said_during(&seen);
    if during == 0 {
        seen.extend(events_until(&mut bob, "during"));
        during = 1 + said_during(&seen);
    }
    assert_eq!(during, 1, "the line said during the outage, once: {seen:?}");
    assert!(comings_and_goings(&seen, "alice").is_empty(), "nobody swept: {seen:?}");
    // Claims work again.
    alice.send("/nick alicia");
    event_where(&mut alice, "nick", |e| e["new"] == "alicia");
    // The operator reads one outage: lost once, back once, not each failed attempt to
    // reconnect (about ten a second).
    for node in [&a, &b] {
        let console = node.console_text();
        assert_eq!(node.console_count("Backbone lost"), 1, "{console}");
        assert_eq!(node.console_count("Backbone reconnected"), 1, "{console}");
        assert!(node.console_count("Backbone event") <= 1, "{console}");
    }
    // Beyond the lease, still nobody swept.
    std::thread::sleep(Duration::from_secs(5));
    bob.send("later");
    let later = events_until(&mut bob, "later");
    let left: Vec<_> = later.iter().filter(|e| e["type"] == "leave").collect();
    assert!(left.is_empty(), "{later:?}");
    assert_eq!(said_during(&later), 0, "the line said during the outage, twice: {later:?}");
}

/// A line said while NATS is away for longer than `--backbone-persist` (2 s here) is
/// dropped: its sender is told so, and it never shows once NATS is back, on either
/// node. (The NATS client used to keep it and send it on reconnecting, so it showed
/// after its sender had been told it was not delivered.)
#[test]
fn a_line_given_up_on_while_nats_is_away_never_shows_once_it_is_back() {
    let Some(mut nats) = nats() else { return };
    let persist = ["--backbone-persist", "2"];
    let a = node(&nats.url, "a", &persist);
    let b = node(&nats.url, "b", &persist);
    let (mut alice, _) = a.json_client("alice");
    let (mut bob, _) = b.json_client("bob");
    wait_listed(&mut alice, &["alice", "bob"]);
    wait_listed(&mut bob, &["alice", "bob"]);

    nats.kill();
    a.wait_console_nth("Backbone lost", 1);
    alice.send("said into the outage");
    let error = alice.expect_event("error");
    assert_eq!(error["code"], "not_sent", "{error}");
    assert!(error["message"].as_str().unwrap().contains("dropped"), "{error}");
    nats.restart();
    a.wait_console_nth("Backbone reconnected", 1);
    b.wait_console_nth("Backbone reconnected", 1);
    alice.send("after the outage");
    for client in [&mut alice, &mut bob] {
        let seen = events_until(client, "after the outage");
        let dropped = seen.iter().filter(|e| e["text"] == "said into the outage");
        assert_eq!(dropped.count(), 0, "a line its sender was told was dropped: {seen:?}");
    }
}

/// A kick, a mute and a ban given with `tchat ctl` on one node take effect for users of
/// the other node; `ctl list` shows who is on which node.
#[test]
fn moderation_on_one_node_reaches_users_of_the_other() {
    let Some(nats) = nats() else { return };
    let socket = common::temp_path("backbone-ctl.sock");
    let socket_arg = socket.to_str().unwrap();
    let a = node(&nats.url, "a", &["--control-socket", socket_arg]);
    let b = node(&nats.url, "b", &[]);
    let (mut bob, _) = b.json_client("bob");
    let mut carol = b.text_client("carol");
    let (mut dave, _) = b.json_client("dave");
    let (mut eve, _) = b.json_client("eve");
    let (mut ann, _) = a.json_client("ann");
    wait_listed(&mut ann, &["bob", "carol", "dave", "eve"]);

    let list = common::ctl(&socket, &["list"]);
    assert!(list.stdout.contains("bob in #lobby on b"), "{}{}", list.stdout, list.stderr);
    assert!(list.stdout.contains("ann in #lobby on a"), "{}{}", list.stdout, list.stderr);

    let kicked = common::ctl(&socket, &["kick", "carol", "enough"]);
    assert_eq!(kicked.code, 0, "{}{}", kicked.stdout, kicked.stderr);
    let last = carol.read_to_close();
    assert!(last.iter().any(|l| l.contains("kicked by ctl: enough")), "{last:?}");
    let leave = event_where(&mut bob, "leave", |e| e["nick"] == "carol");
    assert!(leave["reason"].as_str().unwrap().contains("kicked"), "{leave}");

    assert_eq!(common::ctl(&socket, &["mute", "dave", "10m"]).code, 0);
    let told = event_where(&mut dave, "info", |e| e["message"].as_str().unwrap().contains("muted"));
    assert!(told["message"].as_str().unwrap().contains("muted by ctl"), "{told}");
    dave.send("can I speak");
    assert_eq!(dave.expect_event("error")["code"], "muted");

    let banned = common::ctl(&socket, &["ban", "eve"]);
    assert_eq!(banned.code, 0, "{}{}", banned.stdout, banned.stderr);
    let last = eve.read_to_close();
    assert!(last.iter().any(|l| l.contains("banned by ctl")), "{last:?}");
    // Node b keeps the ban for the nick: eve cannot come back there either.
    let mut again = b.connect();
    again.send("/hello json eve");
    let refused = again.read_to_close();
    assert!(refused.iter().any(|l| l.contains("banned")), "{refused:?}");
}

/// Fencing: a node stopped (SIGSTOP) past its lease is declared dead and its users are
/// seen leaving; when it runs again it does not keep them as a chat of its own: their
/// connections end (no second leave), and their clients can take their nicks afresh.
#[test]
fn a_node_declared_dead_hands_its_users_over_when_it_comes_back() {
    let Some(nats) = nats() else { return };
    let grace = ["--resume-grace", "1"];
    let a = node(&nats.url, "a", &grace);
    let b = node(&nats.url, "b", &grace);
    let (mut bob, _) = b.json_client("bob");
    let mut carol = a.text_client("carol");
    let (mut alice, _) = a.json_client("alice");
    wait_listed(&mut bob, &["alice", "carol"]);
    let pid = a.child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let mut gone: Vec<String> =
        (0..2).map(|_| bob.expect_event("leave")["nick"].as_str().unwrap().to_owned()).collect();
    gone.sort();
    assert_eq!(gone, ["alice", "carol"]);
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    // Node a lets them go rather than keep a stale view.
    carol.read_to_close();
    alice.read_to_close();
    let (_again, welcome) = b.json_client("alice");
    assert_eq!(welcome["nick"], "alice", "{welcome}");
    bob.send("sentinel");
    let seen = events_until(&mut bob, "sentinel");
    let left = seen.iter().filter(|e| e["type"] == "leave").count();
    assert_eq!(left, 0, "no second leave: {seen:?}");
}

/// A busy node is not a dead one: node a's NATS connection is held up for longer than
/// the lease (as a flood of nick claims backs it up: nothing lost, everything late),
/// yet node b never declares it dead, because a's heartbeats travel on a connection of
/// their own; a's user is never swept, and a and its user carry on once it flows again.
#[test]
fn a_node_whose_backbone_connection_is_backed_up_is_not_declared_dead() {
    let Some(nats) = nats() else { return };
    let upstream = nats.url.trim_start_matches("nats://").parse().unwrap();
    let proxy = common::proxy::Proxy::start(upstream);
    let through_proxy = format!("nats://{}", proxy.addr);
    let a = node(&through_proxy, "a", &[]);
    let b = node(&nats.url, "b", &[]);
    let (mut bob, _) = b.json_client("bob");
    let mut carol = a.text_client("carol");
    wait_listed(&mut bob, &["carol"]);
    // Node a's first connection is its main one: the stream and the claims.
    proxy.hold(0, true);
    // Past the lease (4 s) and a sweep (0.5 s), with room to spare.
    std::thread::sleep(Duration::from_secs(6));
    proxy.hold(0, false);
    carol.send("still here");
    let seen = events_until(&mut bob, "still here");
    let left: Vec<_> = seen.iter().filter(|e| e["type"] == "leave").collect();
    assert!(left.is_empty(), "carol was swept: {left:?}");
    assert_eq!(b.console_count("Backbone node dead"), 0, "{}", b.console_text());
    assert_eq!(a.console_count("Backbone fenced"), 0, "{}", a.console_text());
}

/// A nats-server that wants a user and password, started for one test on a free
/// loopback port with its own store; killed on drop. `None` when nats-server is
/// missing (the standalone harness said so already).
struct AuthNats {
    child: std::process::Child,
    url: String,
    _store: common::state_dir::StateDir,
}

impl Drop for AuthNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn auth_nats(user: &str, password: &str) -> Option<AuthNats> {
    configured_nats(
        "nats-auth",
        &format!("authorization {{ user: {user:?}, password: {password:?} }}\n"),
    )
}

/// A nats-server with JetStream on a free loopback port, its config `extra` (TLS,
/// users) added to the listen and store lines; `None` when nats-server is missing.
fn configured_nats(name: &str, extra: &str) -> Option<AuthNats> {
    drop(nats()?);
    let store = common::state_dir::StateDir::new(name);
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = store.join("nats.conf");
    let store_dir = serde_json::to_string(&store.join("js").to_string_lossy()).unwrap();
    let text =
        format!("listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {store_dir} }}\n{extra}");
    std::fs::write(&config, text).unwrap();
    let child = Command::new("nats-server")
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Ready once it answers with its INFO line (sent in clear before any TLS; JetStream
    // is up by then on one server).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let mut info = String::new();
            stream.set_read_timeout(Some(WAIT)).unwrap();
            if BufReader::new(stream).read_line(&mut info).is_ok() && info.starts_with("INFO") {
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "nats-server {name} never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(AuthNats { child, url: format!("nats://127.0.0.1:{port}"), _store: store })
}

/// The documented example: a user and password for NATS in a --backbone-auth file.
/// Without it, or with a wrong one, the node does not serve; with it, it does; the
/// password is never on the console, the error or the command line.
#[test]
fn a_backbone_with_a_password_takes_it_from_a_file_and_never_shows_it() {
    let Some(nats) = auth_nats("tchat", "correct-horse-battery") else { return };
    let dir = common::state_dir::StateDir::new("backbone-auth");
    let good = dir.join("good.auth");
    std::fs::write(&good, "# for NATS\nuser tchat\npassword correct-horse-battery\n").unwrap();
    let bad = dir.join("bad.auth");
    std::fs::write(&bad, "user tchat\npassword wrong-horse\n").unwrap();

    let (status, _, stderr) = serve_once(&["--backbone", &nats.url]);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("cannot reach the backbone"), "{stderr}");
    let (status, stdout, stderr) =
        serve_once(&["--backbone", &nats.url, "--backbone-auth", bad.to_str().unwrap()]);
    assert!(!status.success(), "{stderr}");
    assert!(!(stdout + &stderr).contains("wrong-horse"));

    let auth = ["--backbone-auth", good.to_str().unwrap()];
    chat_over(&nats.url, &auth, "correct-horse-battery", &dir);
}

/// A token for NATS in a --backbone-auth file, against nats-server's
/// `authorization { token }`: without it, or with a wrong one, the node does not serve
/// and says NATS refused it; with it two nodes chat; the token is on no console, error,
/// `--save` log or command line.
#[test]
fn a_backbone_with_a_token_takes_it_from_a_file_and_never_shows_it() {
    let token = "s3cret-token-of-the-backbone";
    let config = format!("authorization {{ token: {token:?} }}\n");
    let Some(nats) = configured_nats("nats-token", &config) else { return };
    let dir = common::state_dir::StateDir::new("backbone-token");
    let good = dir.join("node.auth");
    std::fs::write(&good, format!("# the backbone's token\ntoken {token}\n")).unwrap();
    let wrong_token = "wrong-token-of-a-stranger";
    let bad = dir.join("stranger.auth");
    std::fs::write(&bad, format!("token {wrong_token}\n")).unwrap();

    for extra in [&[][..], &["--backbone-auth", bad.to_str().unwrap()]] {
        let (status, stdout, stderr) = serve_once(&[&["--backbone", &nats.url], extra].concat());
        assert!(!status.success(), "{stdout}{stderr}");
        assert!(stderr.contains("cannot reach the backbone"), "{stderr}");
        assert!(stderr.to_lowercase().contains("authorization"), "{stderr}");
        assert!(!stdout.contains("Listening"), "{stdout}");
        let shown = stdout + &stderr;
        assert!(!shown.contains(token) && !shown.contains(wrong_token), "{shown}");
    }
    chat_over(&nats.url, &["--backbone-auth", good.to_str().unwrap()], token, &dir);
}

/// Two nodes on `url` with `extra` options chat; `secret` is on neither console, nor
/// `--save` log, nor command line (`/proc/PID/cmdline`).
fn chat_over(url: &str, extra: &[&str], secret: &str, dir: &std::path::Path) {
    let save = dir.join("a-log.jsonl");
    let mut a = node(url, "a", &[extra, &["--save", save.to_str().unwrap()]].concat());
    let b = node(url, "b", extra);
    let (mut bob, _) = b.json_client("bob");
    let (mut alice, _) = a.json_client("alice");
    alice.send("over a guarded backbone");
    public(&mut bob, "over a guarded backbone");
    for node in [&a, &b] {
        assert!(!node.console_text().contains(secret), "{}", node.console_text());
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", node.child.id())).unwrap();
        assert!(!String::from_utf8_lossy(&cmdline).contains(secret));
    }
    public(&mut alice, "over a guarded backbone");
    a.terminate();
    let log = std::fs::read_to_string(&save).unwrap();
    assert!(log.contains("over a guarded backbone") && !log.contains(secret), "{log}");
}

/// A CA and a certificate it signed for 127.0.0.1, written as PEM to `dir`
/// (`ca.pem`, `server.pem`, `server-key.pem`); returns the CA's path.
fn tls_files(dir: &std::path::Path) -> std::path::PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "tchat test NATS CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".into()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server-key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    dir.join("ca.pem")
}

/// TLS to NATS: a nats-server that takes TLS clients only, its certificate signed by a
/// CA made here. With `tls://` and `--backbone-ca` two nodes chat (and with `nats://`
/// and the CA, which asks for TLS too); without the CA the node refuses the server's
/// certificate and does not serve.
#[test]
fn a_backbone_over_tls_checks_the_servers_certificate_against_the_ca() {
    let dir = common::state_dir::StateDir::new("backbone-tls");
    let ca = tls_files(&dir);
    let tls = format!(
        "tls {{ cert_file: {}, key_file: {} }}\n",
        serde_json::to_string(&dir.join("server.pem").to_string_lossy()).unwrap(),
        serde_json::to_string(&dir.join("server-key.pem").to_string_lossy()).unwrap()
    );
    let Some(nats) = configured_nats("nats-tls", &tls) else { return };
    let tls_url = nats.url.replace("nats://", "tls://");

    let (status, stdout, stderr) = serve_once(&["--backbone", &tls_url]);
    assert!(!status.success(), "served without knowing the CA: {stdout}{stderr}");
    assert!(stderr.contains("cannot reach the backbone"), "{stderr}");
    assert!(!stdout.contains("Listening"), "{stdout}");

    let ca_arg = ["--backbone-ca", ca.to_str().unwrap()];
    let a = node(&tls_url, "a", &ca_arg);
    let b = node(&nats.url, "b", &ca_arg);
    let (mut bob, _) = b.json_client("bob");
    let (mut alice, _) = a.json_client("alice");
    alice.send("over TLS");
    public(&mut bob, "over TLS");
    bob.send("and back");
    public(&mut alice, "and back");
}

/// An NKey user: nats-server knows only the public key; the node has the seed in its
/// --backbone-auth file. With it two nodes chat; with another user's seed the node does
/// not serve; the seed is on no console, log or command line.
#[test]
fn a_backbone_with_an_nkey_user_takes_the_seed_from_a_file_and_never_shows_it() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let users = format!("authorization {{ users: [ {{ nkey: {:?} }} ] }}\n", user.public_key());
    let Some(nats) = configured_nats("nats-nkey", &users) else { return };
    let dir = common::state_dir::StateDir::new("backbone-nkey");
    let good = dir.join("node.nkey");
    std::fs::write(&good, format!("# the node's NATS user\nnkey {seed}\n")).unwrap();
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let bad = dir.join("stranger.nkey");
    std::fs::write(&bad, format!("nkey {stranger}\n")).unwrap();

    let (status, stdout, stderr) =
        serve_once(&["--backbone", &nats.url, "--backbone-auth", bad.to_str().unwrap()]);
    assert!(!status.success(), "{stdout}{stderr}");
    assert!(!(stdout + &stderr).contains(&stranger));
    chat_over(&nats.url, &["--backbone-auth", good.to_str().unwrap()], &seed, &dir);
}

/// Sends `/nick NICK` from `client` (text mode) until the answer is not that the nick is
/// taken (its holder on another node may still be letting it go); returns the answer.
fn nick_answer(client: &mut Client, nick: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        client.send(&format!("/nick {nick}"));
        let line = loop {
            let line = client.next_line().expect("still connected");
            if line.starts_with("!!! ") || line.contains(" is now known as ") {
                break line;
            }
        };
        if !line.contains("already taken") && !line.contains("who is online") {
            return line;
        }
        assert!(std::time::Instant::now() < deadline, "{nick} never let go: {line}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Registered nicks belong to the chat, not to a node: a nick registered on node a is
/// refused to an impostor on node b (and its look-alike too), its password proves it
/// there, operator rights given on a reach its holder on b, `/unregister` on b frees it
/// on a; an account of a node's file from before the backbone is brought over, and a
/// node started later knows them all. No password or hash on any console or log.
#[test]
fn registered_nicks_hold_on_every_node() {
    use tchat::server::accounts::{Account, hash_password};
    let Some(nats) = nats() else { return };
    let dir = common::state_dir::StateDir::new("backbone-accounts");
    let old_file = dir.join("a.jsonl");
    let olga = Account::new("olga", None, Some(hash_password("olgas-pw").unwrap()));
    std::fs::write(&old_file, serde_json::to_string(&olga).unwrap() + "\n").unwrap();
    let socket = common::temp_path("backbone-accounts.sock");
    let save = dir.join("b-log.jsonl");
    let a = node(
        &nats.url,
        "a",
        &["--accounts", old_file.to_str().unwrap(), "--control-socket", socket.to_str().unwrap()],
    );
    let b_file = dir.join("b.jsonl");
    let b = node(
        &nats.url,
        "b",
        &["--accounts", b_file.to_str().unwrap(), "--save", save.to_str().unwrap()],
    );
    let mut erin = a.text_client("erin");
    erin.send("/register hunter2-pw");
    erin.expect("erin is registered to your password");
    erin.send("/quit");
    erin.read_to_close();

    let mut impostor = b.connect();
    let refused = nick_answer(&mut impostor, "erin");
    assert!(refused.contains("the nick erin is registered"), "{refused}");
    for variant in ["ERIN", "\u{435}rin"] {
        let refused = nick_answer(&mut impostor, variant);
        assert!(refused.contains("registered"), "{variant}: {refused}");
    }
    let refused = nick_answer(&mut impostor, "Olga");
    assert!(refused.contains("registered"), "the file's account brought over: {refused}");
    impostor.send("/identify erin wrong-pw");
    impostor.expect("wrong password for erin");
    // The owner, on b, proves it with the password given on a.
    let mut owner = b.connect();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        owner.send("/identify erin hunter2-pw");
        let line = owner.next_line().expect("an answer to /identify");
        if line.contains("you are identified as erin") {
            break;
        }
        assert!(line.contains("too many wrong passwords") || line.starts_with("*"), "{line}");
        assert!(std::time::Instant::now() < deadline, "never identified: {line}");
        std::thread::sleep(Duration::from_millis(200));
    }
    owner.expect("is now known as erin");

    // Operator rights given on a reach the holder on b at once.
    let answer = common::ctl(&socket, &["op", "erin"]);
    assert_eq!(answer.code, 0, "{}{}", answer.stdout, answer.stderr);
    owner.expect("you are now an operator");
    owner.send("/kick nobody");
    owner.expect("no such user: nobody");

    // A node started later knows every registration.
    let c = node(&nats.url, "c", &[]);
    let mut late = c.connect();
    assert!(nick_answer(&mut late, "olga").contains("registered"));

    // Unregistered on b: free on a and c.
    owner.send("/unregister");
    owner.expect("no longer registered");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let listed = common::ctl(&socket, &["accounts"]).stdout;
        if !listed.contains("erin") {
            assert!(listed.contains("olga"), "{listed}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "erin still registered on a: {listed}");
        std::thread::sleep(Duration::from_millis(50));
    }
    owner.send("/quit");
    owner.read_to_close();
    let taken = nick_answer(&mut late, "erin");
    assert!(taken.contains("is now known as erin"), "{taken}");

    for node in [&a, &b, &c] {
        let console = node.console_text();
        for secret in ["hunter2-pw", "olgas-pw", "$argon2"] {
            assert!(!console.contains(secret), "{secret} on a console:\n{console}");
        }
    }
    let mut b = b;
    b.terminate();
    let log = std::fs::read_to_string(&save).unwrap();
    assert!(!log.contains("hunter2-pw") && !log.contains("$argon2"), "{log}");
}

/// Sends `command` until the answer of type `kind` satisfies `pred` (another node's
/// change reaches this one within moments); returns it.
fn ask_until(
    client: &mut Client,
    command: &str,
    kind: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        client.send(command);
        let answer = client.expect_event(kind);
        if pred(&answer) {
            return answer;
        }
        assert!(std::time::Instant::now() < deadline, "{command} never answered so: {answer}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Counts and details over every node: a join's and a leave's `online` and `here`
/// count the users of all nodes, `/whois` of a user of another node leaves out the idle
/// time it cannot know and shows operators, `/rooms` gives the topic of a room open on
/// another node only, and `--max-rooms` holds over the whole chat.
#[test]
fn counts_and_details_hold_over_every_node() {
    let Some(nats) = nats() else { return };
    let socket = common::temp_path("backbone-counts.sock");
    let rooms = ["--max-rooms", "3"];
    let a = node(&nats.url, "a", &rooms);
    let b = node(
        &nats.url,
        "b",
        &[&rooms[..], &["--control-socket", socket.to_str().unwrap()]].concat(),
    );
    let (mut alice, _) = a.json_client("alice");
    let (mut bob, _) = b.json_client("bob");
    wait_listed(&mut bob, &["alice", "bob"]);
    wait_listed(&mut alice, &["alice", "bob"]);

    let (mut carol, _) = a.json_client("carol");
    let join = event_where(&mut bob, "join", |e| e["nick"] == "carol");
    assert_eq!((join["online"].as_u64(), join["here"].as_u64()), (Some(3), Some(3)), "{join}");
    bob.send("/join #dev");
    bob.expect_event("room");
    let (mut dave, _) = a.json_client("dave");
    wait_listed(&mut bob, &["dave"]);
    dave.send("/join #dev");
    let moved = event_where(&mut bob, "join", |e| e["nick"] == "dave" && e["room"] == "#dev");
    assert_eq!((moved["online"].as_u64(), moved["here"].as_u64()), (Some(4), Some(2)), "{moved}");
    carol.send("/quit");
    carol.read_to_close();
    let left = event_where(&mut alice, "leave", |e| e["nick"] == "carol");
    assert_eq!((left["online"].as_u64(), left["here"].as_u64()), (Some(3), Some(1)), "{left}");

    // /whois of bob, on b, from a: no idle time (a cannot know it); operator shown.
    let whois = ask_until(&mut alice, "/whois bob", "whois", |_| true);
    assert!(whois.get("idle_secs").is_none(), "{whois}");
    let made = common::ctl(&socket, &["op", "bob"]);
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    ask_until(&mut alice, "/whois bob", "whois", |w| w["oper"] == true);
    let mut text = a.text_client("tess");
    text.send("/whois bob");
    let line = text.expect("*** bob: ");
    assert!(line.contains("online since") && !line.contains("idle"), "{line}");
    alice.send("/whois dave");
    assert!(alice.expect_event("whois")["idle_secs"].is_u64(), "idle known on its node");

    // A room open on b only: its topic in a's /rooms.
    bob.send("/join #ops");
    bob.expect_event("room");
    bob.send("/topic deploys only");
    event_where(&mut bob, "topic", |e| e["topic"] == "deploys only");
    // The count comes with the claims' replica, the topic with the stream: each reaches
    // a on its own path, so wait for both (a CI run asked between the two).
    let listed = ask_until(&mut alice, "/rooms", "rooms", |r| {
        r["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room"] == "#ops" && r["here"] == 1 && r["topic"] == "deploys only")
    });
    let ops = listed["rooms"].as_array().unwrap().iter().find(|r| r["room"] == "#ops").unwrap();
    assert_eq!(ops["topic"], "deploys only", "{listed}");
    // #lobby, #dev and #ops are open over the two nodes: a fourth is refused on a,
    // where only two are open.
    alice.send("/join #four");
    let refused = alice.expect_event("error");
    assert_eq!(refused["code"], "too_many_rooms", "{refused}");
    alice.send("/join #ops");
    assert_eq!(alice.expect_event("room")["topic"], "deploys only");
}

/// Every node that vanishes is named once in the others' logs, users or not: one
/// killed (kill -9) with nobody on it is declared dead within its lease (4 s) and a
/// sweep (0.5 s); one stopped (SIGTERM) is logged as stopped; neither twice.
#[test]
fn every_node_that_vanishes_is_declared_once() {
    let Some(nats) = nats() else { return };
    let a = node(&nats.url, "a", &[]);
    let mut empty = node(&nats.url, "empty", &[]);
    let mut leaving = node(&nats.url, "leaving", &[]);
    // a learns of each node by its heartbeats, one a second: a node counts as alive once
    // a saw it renew its lease (not only read it from the bucket), so give it two.
    let (mut ann, _) = a.json_client("ann");
    let (_who, _) = leaving.json_client("who");
    wait_listed(&mut ann, &["ann", "who"]);
    std::thread::sleep(Duration::from_secs(2));
    let pid = empty.child.id() as libc::pid_t;
    let killed = std::time::Instant::now();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let dead = a.wait_console_nth("Backbone node dead", 1);
    let took = killed.elapsed();
    assert!(dead.contains("empty"), "{dead}");
    assert!(took < Duration::from_secs(6), "declared dead after {took:?}");
    let _ = empty.child.wait();
    leaving.terminate();
    let stopped = a.wait_console_nth("Backbone node stopped", 1);
    assert!(stopped.contains("leaving"), "{stopped}");
    // Past another lease and more sweeps: still once each.
    std::thread::sleep(Duration::from_secs(5));
    let console = a.console_text();
    assert_eq!(a.console_count("Backbone node dead"), 1, "{console}");
    assert_eq!(a.console_count("Backbone node stopped"), 1, "{console}");
}

/// Bans and mutes outlive the stream's limits: on a stream made to keep only 30
/// messages, a ban and a mute given on node a, then 40 lines, still reach a node
/// started afterwards (the banned nick refused there, the muted one silenced). And a
/// line said on a backbone node is logged by `--save` with the id everyone saw.
#[test]
fn bans_and_mutes_reach_a_node_started_after_the_stream_dropped_them() {
    let Some(nats) = nats() else { return };
    let socket = common::temp_path("backbone-kept.sock");
    let dir = common::state_dir::StateDir::new("backbone-kept");
    let save = dir.join("a-log.jsonl");
    let mut a = node(
        &nats.url,
        "a",
        &["--control-socket", socket.to_str().unwrap(), "--save", save.to_str().unwrap()],
    );
    let (mut ann, _) = a.json_client("ann");
    let mut dave = a.text_client("dave");
    for args in [&["ban", "eve"][..], &["mute", "dave", "1h"], &["ban", "mallory", "1h"]] {
        let out = common::ctl(&socket, args);
        assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
    }
    assert_eq!(common::ctl(&socket, &["unban", "mallory"]).code, 0);
    dave.expect("muted");
    dave.send("/quit");
    dave.read_to_close();
    let mut said = Vec::new();
    for i in 0..40 {
        ann.send(&format!("filler {i}"));
        said.push(public(&mut ann, &format!("filler {i}"))["id"].as_u64().unwrap());
    }
    // The stream drops all but its last few events (as its limits would, after long
    // enough): nothing of the bans and mutes is left in it.
    let mut wire = common::nats::NatsWire::connect(&nats.url).unwrap();
    let purge = br#"{"keep": 5}"#;
    let purged = wire.request("$JS.API.STREAM.PURGE.TCHAT_EV", purge, WAIT).unwrap();
    assert!(purged["purged"].as_u64().is_some_and(|n| n >= 35), "{purged}");

    let c = node(&nats.url, "c", &[]);
    let mut eve = c.connect();
    eve.send("/hello json eve");
    let refused = eve.read_to_close();
    assert!(refused.iter().any(|l| l.contains("banned")), "eve let in: {refused:?}");
    // dave's nick is let go on a within moments of his /quit.
    let deadline = std::time::Instant::now() + WAIT;
    let mut dave = loop {
        let (dave, welcome) = c.json_client("dave");
        if welcome["nick"] == "dave" {
            break dave;
        }
        assert!(std::time::Instant::now() < deadline, "dave never free: {welcome}");
        std::thread::sleep(Duration::from_millis(50));
    };
    dave.send("may I");
    assert_eq!(dave.expect_event("error")["code"], "muted");
    let (_mallory, welcome) = c.json_client("mallory");
    assert_eq!(welcome["nick"], "mallory", "unbanned: {welcome}");

    // SIGTERM: the log is written whole before the process ends.
    a.terminate();
    let log = std::fs::read_to_string(&save).unwrap();
    let logged: Vec<u64> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["msg"] == "Public message")
        .map(|r| r["meta"]["id"].as_u64().expect("a public line logged without its id"))
        .collect();
    assert_eq!(logged, said, "--save keeps each line with the id the clients saw");
}

/// Asks the JetStream API behind `wire` about stream `name`; panics on an error.
fn stream_info(wire: &mut common::nats::NatsWire, name: &str) -> Value {
    let info = wire.request(&format!("$JS.API.STREAM.INFO.{name}"), b"", WAIT);
    let info = info.unwrap_or_else(|| panic!("no answer about {name}"));
    assert!(info.get("error").is_none(), "{name}: {info}");
    info
}

/// Makes stream `config["name"]` as an earlier node (or an older tchat) would have.
fn make_stream(wire: &mut common::nats::NatsWire, config: &Value) {
    let name = config["name"].as_str().unwrap();
    let subject = format!("$JS.API.STREAM.CREATE.{name}");
    let made = wire.request(&subject, config.to_string().as_bytes(), WAIT);
    assert!(made.as_ref().is_some_and(|m| m.get("error").is_none()), "{made:?}");
}

/// The stream and a bucket made with other limits than a node's (by an older tchat,
/// or with a smaller --history) are brought to the node's own when it starts, and it
/// logs what changed; the chat then works on them.
#[test]
fn a_stream_and_a_bucket_made_with_other_limits_take_the_nodes_own() {
    let Some(nats) = nats() else { return };
    let mut wire = common::nats::NatsWire::connect(&nats.url).unwrap();
    make_stream(
        &mut wire,
        &serde_json::json!({"name": "TCHAT_EV", "subjects": ["tchat.ev.>"], "storage": "file",
            "max_msgs": 30, "max_msgs_per_subject": 30, "discard": "old",
            "allow_direct": true, "duplicate_window": 60_000_000_000u64}),
    );
    // The node leases' bucket as it would be with no age limit.
    make_stream(
        &mut wire,
        &serde_json::json!({"name": "KV_tchat_nodes", "subjects": ["$KV.tchat_nodes.>"],
            "storage": "memory", "max_msgs_per_subject": 1, "discard": "new",
            "allow_rollup_hdrs": true, "deny_delete": true, "allow_direct": true}),
    );

    let a = node(&nats.url, "a", &["--history", "50", "--max-rooms", "10"]);
    let logged = a.wait_console_nth("Backbone stream updated", 1);
    assert!(logged.contains("TCHAT_EV") && logged.contains("max_msgs 30 -> 4646"), "{logged}");
    let logged = a.wait_console_nth("Backbone stream updated", 2);
    assert!(
        logged.contains("KV_tchat_nodes") && logged.contains("max_age 0s -> 3600s"),
        "{logged}"
    );
    let config = &stream_info(&mut wire, "TCHAT_EV")["config"];
    assert_eq!(config["max_msgs_per_subject"], 50 + 4096, "{config}");
    assert_eq!(config["max_msgs"], 50 * 11 + 4096, "{config}");
    assert_eq!(config["duplicate_window"], 120_000_000_000u64, "{config}");
    let config = &stream_info(&mut wire, "KV_tchat_nodes")["config"];
    assert_eq!(config["max_age"], 3_600_000_000_000u64, "{config}");
    let (mut ann, _) = a.json_client("ann");
    ann.send("on the stream as it is now");
    public(&mut ann, "on the stream as it is now");

    // A node started later with another --history brings the stream to its own; one
    // with the same settings changes nothing.
    let b = node(&nats.url, "b", &["--history", "60", "--max-rooms", "10"]);
    let config = &stream_info(&mut wire, "TCHAT_EV")["config"];
    assert_eq!(config["max_msgs_per_subject"], 60 + 4096, "{config}");
    let c = node(&nats.url, "c", &["--history", "60", "--max-rooms", "10"]);
    let (mut cid, _) = c.json_client("cid");
    cid.send("hello from c");
    public(&mut ann, "hello from c");
    assert_eq!(c.console_count("Backbone stream updated"), 0, "{}", c.console_text());
    drop(b);
}

/// A stream NATS cannot change into the node's (its storage) stops the node at start,
/// naming the stream, what differs and what to do; it never serves on other settings.
#[test]
fn a_stream_nats_cannot_change_is_refused_with_what_differs() {
    let Some(nats) = nats() else { return };
    let mut wire = common::nats::NatsWire::connect(&nats.url).unwrap();
    make_stream(
        &mut wire,
        &serde_json::json!({"name": "TCHAT_EV", "subjects": ["tchat.ev.>"],
            "storage": "memory", "max_msgs": 30, "discard": "old"}),
    );
    let (status, stdout, stderr) = serve_once(&["--backbone", &nats.url, "--node", "a"]);
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("TCHAT_EV") && stderr.contains("storage Memory -> File"), "{stderr}");
    assert!(stderr.contains("start this node with the settings the stream has"), "{stderr}");
    assert!(!stdout.contains("Listening"), "{stdout}");
    let config = &stream_info(&mut wire, "TCHAT_EV")["config"];
    assert_eq!(config["storage"], "memory", "left as it was: {config}");
}

/// Connects a json client to `server` until one is admitted under `nick`; panics after
/// [`WAIT`] of refusals (a ban not yet lifted on that node).
fn admitted(server: &Server, nick: &str) -> Client {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut c = server.connect();
        c.send(&format!("/hello json {nick}"));
        let first = c.next_line().unwrap_or_default();
        if first.contains(r#""type":"welcome""#) {
            return c;
        }
        assert!(std::time::Instant::now() < deadline, "{nick} never admitted: {first}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `nick` is refused as banned on `server`.
fn refused_as_banned(server: &Server, nick: &str) -> bool {
    let mut c = server.connect();
    c.send(&format!("/hello json {nick}"));
    c.read_to_close().iter().any(|l| l.contains("banned"))
}

/// A nick ban given on one node with one form of a nick and lifted on another with
/// another form (case, width, look-alike) is one ban everywhere: refused on both nodes,
/// then let in on both and on a node started after. Every case of a nick is one entry
/// of the moderation bucket.
#[test]
fn a_nick_ban_is_one_across_nodes_whatever_form_of_the_nick_gives_it() {
    let Some(nats) = nats() else { return };
    let (sock_a, sock_b) =
        (common::temp_path("bb-case-a.sock"), common::temp_path("bb-case-b.sock"));
    let a = node(&nats.url, "a", &["--control-socket", sock_a.to_str().unwrap()]);
    let b = node(&nats.url, "b", &["--control-socket", sock_b.to_str().unwrap()]);
    let ok = |socket: &std::path::Path, args: &[&str]| {
        let out = common::ctl(socket, args);
        assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
    };
    let reached = |server: &Server, nick: &str| {
        let deadline = std::time::Instant::now() + WAIT;
        while !refused_as_banned(server, nick) {
            assert!(std::time::Instant::now() < deadline, "the ban of {nick} never came");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    ok(&sock_a, &["ban", "AIice"]);
    reached(&b, "alice");
    assert!(refused_as_banned(&a, "\u{ff21}Iice"), "fullwidth let in on a");
    ok(&sock_b, &["unban", "alice"]);
    drop(admitted(&a, "alice"));
    drop(admitted(&b, "AIice"));

    ok(&sock_a, &["ban", "Bob"]);
    reached(&b, "bob");
    ok(&sock_b, &["unban", "BOB"]);
    drop(admitted(&a, "bob"));
    // AIice's ban, alice's unban and one entry for Bob and BOB.
    let mut wire = common::nats::NatsWire::connect(&nats.url).unwrap();
    let info = stream_info(&mut wire, "KV_tchat_moderation");
    assert_eq!(info["state"]["messages"], 3, "{info}");

    let c = node(&nats.url, "c", &[]);
    drop(admitted(&c, "Alice"));
    drop(admitted(&c, "BOB"));
}

/// The next error or public line `client` (structured) receives.
fn error_or_public(client: &mut Client) -> Value {
    loop {
        let line = client.next_line().expect("still connected");
        let event: Value = serde_json::from_str(&line).unwrap();
        if event["type"] == "error" || event["type"] == "public" {
            return event;
        }
    }
}

/// A mute holds for the muted user's address on every node, as in a single process,
/// whichever node gave it: a newcomer from that address on a third node (every test
/// client comes from 127.0.0.1) is muted, and the unmute lifts it there too.
#[test]
fn a_mute_holds_for_the_address_on_every_node() {
    let Some(nats) = nats() else { return };
    let socket = common::temp_path("bb-mute-addr.sock");
    let a = node(&nats.url, "a", &["--control-socket", socket.to_str().unwrap()]);
    let b = node(&nats.url, "b", &[]);
    let c = node(&nats.url, "c", &[]);
    let (mut dave, _) = b.json_client("dave");
    let (mut ann, _) = a.json_client("ann");
    wait_listed(&mut ann, &["dave"]);
    let muted = common::ctl(&socket, &["mute", "dave", "10m"]);
    assert_eq!(muted.code, 0, "{}{}", muted.stdout, muted.stderr);
    event_where(&mut dave, "info", |e| e["message"].as_str().unwrap().contains("muted"));

    // Newcomers from dave's address are muted, on a third node and on the giver.
    for (server, name) in [(&c, "zed"), (&a, "yan")] {
        let deadline = std::time::Instant::now() + WAIT;
        let mut n = 0;
        loop {
            n += 1;
            let (mut newcomer, _) = server.json_client(&format!("{name}{n}"));
            newcomer.send("hello?");
            let answer = error_or_public(&mut newcomer);
            if answer["code"] == "muted" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{name} never muted: {answer}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    assert_eq!(common::ctl(&socket, &["unmute", "dave"]).code, 0);
    let deadline = std::time::Instant::now() + WAIT;
    let mut n = 0;
    loop {
        n += 1;
        let (mut newcomer, _) = c.json_client(&format!("xena{n}"));
        newcomer.send("free now?");
        let answer = error_or_public(&mut newcomer);
        if answer["type"] == "public" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still muted on c: {answer}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A NATS JWT (`header.claims.signature`, base64url without padding) of `claims`, its
/// issuer `iss` and subject `sub` filled in, signed by the issuer's key as nsc signs it.
fn nats_jwt(issuer: &nkeys::KeyPair, sub: &str, mut claims: Value) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let iat = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    claims["iss"] = issuer.public_key().into();
    claims["sub"] = sub.into();
    claims["iat"] = iat.as_secs().into();
    claims["jti"] = format!("tchat-test-{}-{}", sub, iat.as_nanos()).into();
    let header = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A user's credentials file as `nsc` writes it: the user's JWT and its NKey seed.
fn creds_file(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
}

/// nats-server in operator mode (decentralised JWT authentication, as `nsc` sets it
/// up): an operator, the system account JetStream needs, one account with JetStream,
/// and its user `user`, whose JWT is returned; the accounts' JWTs preloaded in a
/// memory resolver.
fn operator_nats(user: &nkeys::KeyPair) -> Option<(AuthNats, String)> {
    let operator = nkeys::KeyPair::new_operator();
    let system = nkeys::KeyPair::new_account();
    let account = nkeys::KeyPair::new_account();
    let op_jwt = nats_jwt(
        &operator,
        &operator.public_key(),
        serde_json::json!({"name": "tchat-test", "nats": {"type": "operator", "version": 2}}),
    );
    let unlimited = serde_json::json!({"subs": -1, "data": -1, "payload": -1, "imports": -1,
        "exports": -1, "wildcards": true, "conn": -1, "leaf": -1, "mem_storage": -1,
        "disk_storage": -1, "streams": -1, "consumer": -1});
    let acc_jwt = nats_jwt(
        &operator,
        &account.public_key(),
        serde_json::json!({"name": "chat", "nats": {"limits": unlimited,
            "default_permissions": {"pub": {}, "sub": {}}, "type": "account", "version": 2}}),
    );
    let user_jwt = nats_jwt(
        &account,
        &user.public_key(),
        serde_json::json!({"name": "node", "nats": {"pub": {}, "sub": {}, "subs": -1,
            "data": -1, "payload": -1, "type": "user", "version": 2}}),
    );
    let sys_jwt = nats_jwt(
        &operator,
        &system.public_key(),
        serde_json::json!({"name": "SYS", "nats": {"type": "account", "version": 2}}),
    );
    let config = format!(
        "operator: {op_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
         resolver_preload: {{ {sys}: {sys_jwt}, {acc}: {acc_jwt} }}\n",
        sys = system.public_key(),
        acc = account.public_key()
    );
    Some((configured_nats("nats-operator", &config)?, user_jwt))
}

/// A NATS credentials file (`.creds`: a user JWT and its seed, as `nsc` writes it) in
/// --backbone-auth, against nats-server in operator mode: two nodes chat; a file with
/// the JWT but another key's seed, or a user the account never signed, is refused; the
/// seed is on no console, log or command line.
#[test]
fn a_backbone_with_a_creds_file_authenticates_by_its_jwt_and_never_shows_the_seed() {
    let user = nkeys::KeyPair::new_user();
    let Some((nats, jwt)) = operator_nats(&user) else { return };
    let dir = common::state_dir::StateDir::new("backbone-creds");
    let seed = user.seed().unwrap();
    let good = dir.join("node.creds");
    std::fs::write(&good, creds_file(&jwt, &seed)).unwrap();
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let bad = dir.join("stranger.creds");
    std::fs::write(&bad, creds_file(&jwt, &stranger)).unwrap();
    let forger = nkeys::KeyPair::new_account();
    let forged = nats_jwt(
        &forger,
        &user.public_key(),
        serde_json::json!({"name": "node",
        "nats": {"pub": {}, "sub": {}, "type": "user", "version": 2}}),
    );
    let unsigned = dir.join("forged.creds");
    std::fs::write(&unsigned, creds_file(&forged, &seed)).unwrap();

    for wrong in [&bad, &unsigned] {
        let (status, stdout, stderr) =
            serve_once(&["--backbone", &nats.url, "--backbone-auth", wrong.to_str().unwrap()]);
        assert!(!status.success(), "{}: {stdout}{stderr}", wrong.display());
        assert!(stderr.contains("cannot reach the backbone"), "{stderr}");
        assert!(!(stdout + &stderr).contains(&stranger));
    }
    chat_over(&nats.url, &["--backbone-auth", good.to_str().unwrap()], &seed, &dir);
}

/// A node whose last flush takes its whole bound (its main NATS connection backed up as
/// it stops: its leaves and claim releases wait) is still seen stopping, never dead: its
/// heartbeat beats until its lease is deleted. Node b then sweeps the claims it could
/// not let go, and each of its text users is seen leaving once.
#[test]
fn a_node_slow_to_stop_is_seen_stopped_not_dead_and_its_users_leave_once() {
    let Some(nats) = nats() else { return };
    let upstream = nats.url.trim_start_matches("nats://").parse().unwrap();
    let proxy = common::proxy::Proxy::start(upstream);
    let mut a = node(&format!("nats://{}", proxy.addr), "a", &[]);
    let b = node(&nats.url, "b", &[]);
    let (mut bob, _) = b.json_client("bob");
    let nicks: Vec<String> = (0..8).map(|i| format!("text{i}")).collect();
    let _texts: Vec<_> = nicks.iter().map(|nick| a.text_client(nick)).collect();
    let listed: Vec<&str> = nicks.iter().map(String::as_str).collect();
    wait_listed(&mut bob, &listed);
    // Node a's first connection is its main one: the stream and the claims.
    proxy.hold(0, true);
    let stopping = std::time::Instant::now();
    assert!(a.terminate().success());
    let took = stopping.elapsed();
    // Node b sweeps the claims a could not let go, one after another.
    let mut left: Vec<String> = Vec::new();
    while left.len() < nicks.len() {
        let leave = bob.expect_event("leave");
        left.push(leave["nick"].as_str().unwrap().to_owned());
    }
    left.sort();
    assert_eq!(left, nicks, "each text user leaves once");
    bob.send("sentinel");
    let seen = events_until(&mut bob, "sentinel");
    let again: Vec<_> = seen.iter().filter(|e| e["type"] == "leave").collect();
    assert!(again.is_empty(), "seen leaving twice: {again:?}");
    assert_eq!(b.console_count("Backbone node dead"), 0, "a took {took:?}: {}", b.console_text());
    assert_eq!(b.console_count("Backbone node stopped"), 1, "{}", b.console_text());
}
