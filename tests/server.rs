//! `tchat serve` through the real binary and raw TCP clients on 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Client, Server, WAIT, keepalive_timer, read_jsonl, temp_path, wait_exit};

#[test]
fn version_and_help_work() {
    let out = Command::new(env!("CARGO_BIN_EXE_tchat")).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("tchat {}", env!("CARGO_PKG_VERSION"))
    );
    for args in [&["help"][..], &["serve", "--help"], &["join", "--help"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_tchat")).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8(out.stdout).unwrap().contains("Usage: tchat"), "{args:?}");
    }
}

#[test]
fn port_zero_prints_the_real_address_and_bad_host_is_a_clear_error() {
    let server = Server::start(&[]);
    assert_eq!(server.addr.ip().to_string(), "127.0.0.1");
    assert_ne!(server.addr.port(), 0);
    // The port is taken now: a second server on it fails with a one-line error.
    let out = Command::new(env!("CARGO_BIN_EXE_tchat"))
        .args(["serve", "--host", "127.0.0.1", "--port", &server.addr.port().to_string()])
        .env("XDG_STATE_HOME", &*server.state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("tchat: cannot listen on 127.0.0.1:"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn ipv6_loopback_works() {
    if std::net::TcpListener::bind("[::1]:0").is_err()
        && !common::skip_outside_ci("no IPv6 loopback on this machine")
    {
        return;
    }
    let state = common::state_dir::StateDir::new("ipv6");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tchat"))
        .args(["serve", "--host", "::1", "--port", "0"])
        .env("XDG_STATE_HOME", &*state)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let addr = line.split_whitespace().find_map(|w| w.strip_prefix("addr=")).unwrap();
    assert!(addr.starts_with("[::1]:"), "{line}");
    let mut c = Client::connect(addr.parse().unwrap());
    c.expect("Welcome to tchat");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn text_welcome_names_server_version_count_and_help() {
    let server = Server::start(&[]);
    let _a = server.text_client("alice");
    let mut b = server.connect();
    // A silent nc user is welcomed under a guest name once the hello window passes.
    let welcome = b.expect("Welcome");
    assert!(welcome.contains(&format!("tchat {}", env!("CARGO_PKG_VERSION"))), "{welcome}");
    assert!(welcome.contains("You are guest"), "{welcome}");
    assert!(welcome.contains("2 online"), "{welcome}");
    assert!(welcome.contains("/help"), "{welcome}");
}

#[test]
fn a_hello_after_the_window_still_switches_to_structured_mode() {
    let server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let mut late = server.connect();
    late.expect("You are guest");
    a.expect("joined");
    late.send("/hello json latecomer");
    let welcome = late.expect_event("welcome");
    assert!(welcome["nick"].as_str().unwrap().starts_with("guest"), "{welcome}");
    assert_eq!(late.expect_event("nick")["new"], "latecomer");
    assert!(a.expect("known as").ends_with("is now known as latecomer"));
    late.send("/hello json again");
    assert_eq!(late.expect_event("error")["code"], "usage");
}

#[test]
fn public_messages_reach_everyone_else() {
    let server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let mut b = server.text_client("bob");
    let (mut j, _) = server.json_client("carol");
    a.expect("bob joined");
    a.send("hello everyone");
    assert_eq!(b.expect("hello"), "<alice> hello everyone");
    let ev = j.expect_event("public");
    assert_eq!((ev["from"].as_str(), ev["text"].as_str()), (Some("alice"), Some("hello everyone")));
    // Text mode does not echo your own line back; structured mode confirms it.
    assert!(!a.sync().iter().any(|l| l.contains("hello everyone")), "{:?}", a.seen);
    j.send("from json");
    assert_eq!(j.expect_event("public")["text"], "from json");
    assert_eq!(a.expect("from json"), "<carol> from json");
    // `//` sends a literal slash line.
    a.send("//shrug");
    assert_eq!(b.expect("shrug"), "<alice> /shrug");
}

#[test]
fn private_messages_reach_only_their_target() {
    let server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let mut b = server.text_client("bob");
    let mut c = server.text_client("carol");
    a.send("/msg BOB psst, secret");
    assert_eq!(a.expect("psst"), "-> *bob* psst, secret");
    assert_eq!(b.expect("psst"), "*alice* psst, secret");
    // alice's message was handled before carol's /list: had carol been sent it, it
    // would arrive before the list.
    assert!(!c.sync().iter().any(|l| l.contains("psst")), "{:?}", c.seen);
    a.send("/msg nobody hi");
    assert!(a.expect("!!!").contains("no such user: nobody"));
    a.send("/msg bob");
    assert_eq!(a.expect("!!!"), "!!! usage: /msg <user> <text>");
}

#[test]
fn me_list_help_and_errors() {
    let server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let mut b = server.text_client("Bob");
    b.send("/me waves");
    assert_eq!(a.expect("waves"), "* Bob waves");
    // Unlike a public line, your own action comes back in text mode too.
    assert_eq!(b.expect("waves"), "* Bob waves");
    a.send("/list");
    assert_eq!(a.expect("online:"), "*** 2 online: alice, Bob");
    a.send("/help");
    a.expect("*** Commands:");
    for cmd in
        ["/nick <name>", "/list", "/msg <user> <text>", "/me <action>", "/quit [reason]", "/help"]
    {
        a.expect(cmd);
    }
    a.send("/frobnicate");
    assert!(a.expect("!!!").contains("unknown command /frobnicate"));
    a.send("/me");
    assert_eq!(a.expect("!!!"), "!!! usage: /me <action>");
    // Nothing of the above was broadcast.
    assert!(
        !b.sync().iter().any(|l| l.contains("frobnicate") || l.starts_with("<alice>")),
        "{:?}",
        b.seen
    );
}

#[test]
fn nick_changes_are_announced_and_rules_enforced() {
    let server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let mut b = server.text_client("bob");
    a.send("/nick alicia");
    assert_eq!(b.expect("known as"), "*** alice is now known as alicia");
    assert_eq!(a.expect("known as"), "*** alice is now known as alicia");
    b.send("/nick ALICIA");
    assert_eq!(b.expect("!!!"), "!!! the nick ALICIA is already taken: alicia is online");
    b.send("/nick two words");
    assert!(b.expect("!!!").contains("spaces"));
    b.send("/nick 1234");
    assert!(b.expect("!!!").contains("only digits"));
    b.send("/nick server");
    assert!(b.expect("!!!").contains("reserved"));
    b.send(&format!("/nick {}", "x".repeat(33)));
    assert!(b.expect("!!!").contains("at most 32"));
    // The old nick is free again.
    let mut c = server.text_client("alice");
    c.send("/list");
    assert_eq!(c.expect("online:"), "*** 3 online: alice, alicia, bob");
    // A taken nick at connect time leaves you a guest, with the reason.
    let (mut d, welcome) = server.json_client("Bob");
    assert!(welcome["nick"].as_str().unwrap().starts_with("guest"), "{welcome}");
    assert_eq!(d.expect_event("error")["code"], "nick_taken");
}

#[test]
fn a_nick_names_one_person_in_every_script() {
    let server = Server::start(&[]);
    let mut alice = server.text_client("alice");
    let _sigma = server.text_client("σασ");
    let mut b = server.text_client("bob");
    // U+3164 HANGUL FILLER: everyone would see a blank name.
    b.send("/nick \u{3164}");
    let err = b.expect("!!!");
    assert!(err.contains("invisible") && err.contains("U+3164"), "{err}");
    // A Cyrillic а (U+0430) in front of "lice".
    b.send("/nick \u{430}lice");
    assert_eq!(b.expect("!!!"), "!!! the nick \u{430}lice looks like alice, who is online");
    // A Cyrillic ѕ (U+0455): `server` is reserved, and so is what looks like it.
    b.send("/nick \u{455}erver");
    assert_eq!(b.expect("!!!"), "!!! invalid nick: it looks like the reserved name server");
    // Full case folding: ΣΑΣ is σασ.
    b.send("/nick ΣΑΣ");
    let err = b.expect("!!!");
    assert_eq!(err, "!!! the nick ΣΑΣ is already taken: σασ is online");
    // Fullwidth letters: named as what they were compared as, ALICE.
    b.send("/nick \u{ff21}\u{ff2c}\u{ff29}\u{ff23}\u{ff25}");
    assert_eq!(b.expect("!!!"), "!!! the nick ALICE is already taken: alice is online");
    b.send("/nick \u{ff41}lice");
    assert_eq!(b.expect("!!!"), "!!! the nick alice is already taken");
    b.send("/list");
    assert_eq!(b.expect("online:"), "*** 3 online: alice, bob, σασ");
    // Nobody was renamed meanwhile.
    let seen = alice.sync();
    assert!(!seen.iter().any(|l| l.contains("known as")), "{seen:?}");
}

#[test]
fn a_nick_typed_decomposed_is_the_composed_nick() {
    let server = Server::start(&[]);
    // e + COMBINING ACUTE ACCENT is accepted, and shown composed (NFC/NFKC).
    let mut cafe = server.connect();
    cafe.send("/nick cafe\u{301}");
    cafe.expect("You are caf\u{e9};");
    let mut b = server.text_client("bob");
    b.send("/msg cafe\u{301} hi");
    assert_eq!(cafe.expect("hi"), "*bob* hi");
    assert_eq!(b.expect("hi"), "-> *caf\u{e9}* hi");
    // And the other way round: typed composed, reached decomposed and in capitals.
    b.send("/nick zo\u{eb}");
    b.expect("known as zo\u{eb}");
    cafe.send("/msg ZOE\u{308} salut");
    assert_eq!(b.expect("salut"), "*caf\u{e9}* salut");
    // The same person cannot join twice under the other spelling.
    let (mut twin, welcome) = server.json_client("CAF\u{c9}");
    assert!(welcome["nick"].as_str().unwrap().starts_with("guest"), "{welcome}");
    assert_eq!(twin.expect_event("error")["code"], "nick_taken");
}

#[test]
fn a_line_with_nothing_visible_is_not_sent() {
    let server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let (mut b, _) = server.json_client("bob");
    a.expect("bob joined");
    for blank in ["\u{200b}", "\u{3164}", "\u{feff}", "\u{2800}", " \u{200b} \u{2060}\u{3164}"] {
        for line in [blank.to_owned(), format!("/me {blank}"), format!("/msg alice {blank}")] {
            b.send(&line);
            let err = b.expect_event("error");
            assert_eq!(err["code"], "empty", "{line:?}");
            assert!(err["message"].as_str().unwrap().contains("nothing visible"), "{err}");
        }
    }
    // Nothing reached alice: her next line is the answer to her own /list.
    let seen = a.sync();
    assert_eq!(seen.len(), 1, "{seen:?}");
    // A quit reason made of nothing visible is no reason.
    b.send("/quit \u{3164}");
    assert_eq!(a.expect("left"), "*** bob left: quit (1 online)");
}

#[test]
fn quit_says_goodbye_announces_the_reason_and_frees_the_nick() {
    let server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let mut b = server.text_client("bob");
    b.send("/quit gone fishing");
    // Sent after the /quit, so it may arrive after the server stopped reading: it must
    // not turn the goodbye into a reset.
    b.send("one more thing");
    let rest = b.read_to_clean_close();
    assert!(rest.iter().any(|l| l.contains("Goodbye, bob!")), "{rest:?}");
    assert_eq!(a.expect("left"), "*** bob left: quit: gone fishing (1 online)");
    server.text_client("bob");
}

#[test]
fn vanished_clients_are_cleaned_up_at_once() {
    let mut server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let b = server.text_client("bob");
    b.stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(b);
    assert_eq!(a.expect("left"), "*** bob left: connection lost (1 online)");
    let gone = server.wait_console("Disconnected");
    assert!(gone.contains(" nick=bob "), "{gone}");
    let _bob_again = server.text_client("bob");
    a.send("/list");
    assert_eq!(a.expect("online:"), "*** 2 online: alice, bob");
}

/// A peer that vanishes without a FIN or RST (powered off, its NAT entry expired)
/// cannot be staged on loopback. What notices one is the kernel's keepalive probing, so
/// check that the server arms it on its side of every connection, with tchat's idle
/// time (60 s) rather than Linux's default of two hours, and that TCP_USER_TIMEOUT is
/// 90 s for a peer that vanishes while a line to it is in flight.
#[test]
fn the_server_probes_silent_connections_with_tcp_keepalive() {
    let server = Server::start(&[]);
    let mut alice = server.text_client("alice");
    alice.send("/list");
    alice.expect("online:");
    let client_port = alice.stream.local_addr().unwrap().port();
    let left = keepalive_timer(server.addr.port(), client_port)
        .expect("no keepalive timer on the server's socket in /proc/net/tcp");
    assert!(left > 0.0 && left <= 60.0, "keepalive fires in {left} s, not within 60 s");
    // Keepalive does not run while data is unacknowledged: the user timeout covers that.
    #[cfg(target_os = "linux")]
    {
        let socket = common::socket_of(server.child.id(), server.addr.port(), client_port);
        assert_eq!(socket.tcp_user_timeout().unwrap(), Some(Duration::from_secs(90)));
    }
}

#[test]
fn structured_mode_carries_every_event() {
    let server = Server::start(&[]);
    let mut t = server.text_client("tom");
    let (mut j, welcome) = server.json_client("jay");
    assert_eq!(welcome["nick"], "jay");
    assert_eq!(welcome["online"], 2);
    assert_eq!(welcome["users"], serde_json::json!(["jay", "tom"]));
    assert_eq!(welcome["version"], env!("CARGO_PKG_VERSION"));
    t.expect("jay joined");

    let mut u = server.text_client("ula");
    let ev = j.expect_event("join");
    assert_eq!((ev["nick"].as_str(), ev["online"].as_u64()), (Some("ula"), Some(3)));
    u.send("/me dances");
    let ev = j.expect_event("action");
    assert_eq!((ev["from"].as_str(), ev["text"].as_str()), (Some("ula"), Some("dances")));
    u.send("/msg jay hi");
    let ev = j.expect_event("private");
    assert_eq!((ev["from"].as_str(), ev["to"].as_str()), (Some("ula"), Some("jay")));
    j.send("/msg ula back");
    let ev = j.expect_event("private");
    assert_eq!(
        (ev["from"].as_str(), ev["to"].as_str(), ev["text"].as_str()),
        (Some("jay"), Some("ula"), Some("back"))
    );
    u.send("/nick ulla");
    let ev = j.expect_event("nick");
    assert_eq!((ev["old"].as_str(), ev["new"].as_str()), (Some("ula"), Some("ulla")));
    j.send("/list");
    assert_eq!(j.expect_event("users")["users"], serde_json::json!(["jay", "tom", "ulla"]));
    j.send("/help");
    let help = j.expect_event("help");
    assert!(
        help["commands"].as_array().unwrap().iter().any(|c| c["usage"] == "/msg <user> <text>")
    );
    j.send("/bogus");
    assert_eq!(j.expect_event("error")["code"], "unknown_command");
    j.send("/hello json again");
    assert_eq!(j.expect_event("error")["code"], "usage");
    drop(u);
    let ev = j.expect_event("leave");
    assert_eq!(
        (ev["nick"].as_str(), ev["reason"].as_str()),
        (Some("ulla"), Some("connection lost"))
    );
    j.send("/quit");
    assert_eq!(j.expect_event("info")["message"], "Goodbye, jay!");
    assert_eq!(j.read_to_close(), Vec::<String>::new());
}

#[test]
fn long_lines_are_refused_and_the_connection_stays_usable() {
    let server = Server::start(&["--max-line", "100"]);
    let mut a = server.text_client("alice");
    let mut b = server.text_client("bob");
    a.send(&"x".repeat(101));
    assert_eq!(a.expect("!!!"), "!!! line too long (limit 100 bytes); it was not sent");
    assert_eq!(b.next_line_after_sync(), None);
    // A huge line without a newline is not buffered: 60 KB arrive in pieces and the
    // server answers once, then carries on (past 64 KiB it would be excess flood).
    for _ in 0..60 {
        a.send_raw(&[b'y'; 1000]);
    }
    a.send_raw(b"\nafter\n");
    a.expect("line too long");
    assert_eq!(b.expect("after"), "<alice> after");
    a.send(&"z".repeat(100));
    b.expect(&"z".repeat(100));
}

#[test]
fn invalid_utf8_and_terminal_escapes_never_reach_anyone() {
    let mut server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let (mut b, _) = server.json_client("bob");
    // (0xFF would start a telnet command, which is removed rather than replaced.)
    a.send_raw(b"bad \xfe\x80 bytes\n");
    assert_eq!(b.expect_event("public")["text"], "bad \u{fffd}\u{fffd} bytes");
    a.send_raw("\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m \x08\x07bell\u{9b}31mok\n".as_bytes());
    let text = b.expect_event("public")["text"].as_str().unwrap().to_owned();
    assert_eq!(text, "red bellok");
    a.send_raw("/me \u{1b}[5mblinks\u{202e}\n".as_bytes());
    assert_eq!(b.expect_event("action")["text"], "blinks");
    a.send_raw(b"/nick ev\x1b[1mil\n");
    // The escape is stripped before the nick rules see it.
    assert_eq!(b.expect_event("nick")["new"], "evil");
    let console = server.wait_console("Public message from=alice");
    assert!(!console.contains('\u{1b}'));
    assert!(!server.console_text().lines().any(|l| l.chars().any(|c| c.is_control())));
}

/// A raw client (nc, a script writing to a socket) that pipes several hundred lines at
/// once stays behind its rate for seconds: it is slowed, told once, and never kicked,
/// even with the old kick bound given (`--flood-kick-after 1`, now ignored). Every line
/// arrives, in order, over several reads, and its `/quit` after them is answered.
#[test]
fn a_raw_client_piping_hundreds_of_lines_is_slowed_never_kicked() {
    let server = Server::start(&["--rate", "150", "--burst", "100", "--flood-kick-after", "1"]);
    let mut a = server.text_client("alice");
    let mut p = server.text_client("pipe");
    // 18 KB: more than one 8 KiB read, and over five seconds at 150 lines per second.
    let mut piped: String = (1..=900).map(|i| format!("line {i:>4} of the pipe\n")).collect();
    piped.push_str("/quit done\n");
    p.send_raw(piped.as_bytes());
    let mut got = Vec::new();
    let left = loop {
        let line = a.next_line().expect("alice stays connected");
        if line.starts_with("<pipe> ") {
            got.push(line);
        } else if line.starts_with("*** pipe left") {
            break line;
        }
    };
    let expected: Vec<_> = (1..=900).map(|i| format!("<pipe> line {i:>4} of the pipe")).collect();
    assert_eq!(got, expected);
    assert_eq!(left, "*** pipe left: quit: done (1 online)");
    let told = p.read_to_clean_close();
    // Told, once per episode (a stall of the server's own long enough to refill the
    // burst would start another).
    assert!(told.iter().any(|l| l.contains("sending faster than 150")), "{told:?}");
    assert!(!told.iter().any(|l| l.starts_with("!!!")), "{told:?}");
    assert_eq!(server.console_count("Flooder disconnected"), 0);
    server.wait_console_nth("Option ignored option=--flood-kick-after", 1);
}

/// What does keep the server reading is bytes that form no line: a line without end is
/// read and thrown away as fast as it comes. Past 16 `--max-line`s of it (at least
/// 64 KiB) the sender is disconnected for excess flood, and reads why: the server closes
/// in order although the flooder's input is still unread.
#[test]
fn a_line_without_end_is_excess_flood_and_the_flooder_reads_why() {
    let server = Server::start(&["--max-line", "5000"]);
    let mut a = server.text_client("alice");
    let mut f = server.text_client("flood");
    // 100 KB without a line end: past the 80,000-byte bound (16 lines of 5000).
    f.send_raw(&[b'x'; 100 * 1000]);
    let lines = f.read_to_clean_close();
    let long = lines.iter().position(|l| l.contains("line too long")).expect("told too long");
    let kick = lines.iter().position(|l| l.contains("excess flood")).expect("kicked");
    assert!(long < kick, "{lines:?}");
    assert!(lines[kick].starts_with("!!! disconnected for excess flood: "), "{lines:?}");
    assert!(lines[kick].ends_with("bytes without a line end (a line ends within 5000 bytes)"));
    assert_eq!(a.expect("left"), "*** flood left: excess flood (1 online)");
    let logged = server.wait_console_nth("Flooder disconnected", 1);
    let bytes: usize = common::console_field(&logged, "bytes").parse().unwrap();
    assert!(bytes > 80_000 && bytes <= 100_000, "{logged}");
    // A client within the limit is not affected.
    let mut b = server.text_client("bob");
    b.send("calm");
    a.expect("<bob> calm");
}

#[test]
fn slow_readers_are_dropped_without_stalling_others() {
    let mut server =
        Server::start(&["--rate", "0", "--send-queue", "65536", "--max-line", "20000"]);
    let mut a = server.text_client("alice");
    let mut fast = server.text_client("fast");
    // A small receive window, so the kernel buffers in between fill up quickly.
    let mut slow = server.connect_with_rcvbuf(4096);
    slow.send("/nick slow");
    slow.expect("You are slow;");
    fast.expect("slow joined");
    // The fast client reads all the time, on its own thread, and reports progress so
    // the sender never gets more than a few lines ahead of it.
    let received = Arc::new(AtomicUsize::new(0));
    let reader = {
        let received = received.clone();
        std::thread::spawn(move || {
            let mut saw_slow_leave = false;
            loop {
                let line = fast.next_line().expect("the fast client stays connected");
                saw_slow_leave |= line.starts_with("*** slow left: too slow");
                if line.starts_with("<alice> ") {
                    received.fetch_add(1, Ordering::Relaxed);
                }
                if line == "<alice> still here" {
                    return saw_slow_leave;
                }
            }
        })
    };
    // Big lines, so the kernel's socket buffers (which grow to megabytes on loopback)
    // fill within a bounded number of lines.
    let line = "m".repeat(16_000);
    let mut sent = 0;
    while sent < 2_000 {
        sent += 1;
        a.send(&format!("{sent} {line}"));
        let deadline = Instant::now() + common::WAIT;
        while received.load(Ordering::Relaxed) + 2 < sent {
            assert!(Instant::now() < deadline, "the fast client fell behind");
            std::thread::sleep(Duration::from_millis(1));
        }
        if sent % 50 == 0 && server.console_text().contains("Slow client dropped") {
            break;
        }
    }
    let drop_line = server.wait_console("Slow client dropped");
    assert!(drop_line.contains("nick=slow"), "{drop_line}");
    a.send("still here");
    assert!(reader.join().unwrap(), "the others saw the slow client leave");
    // Every line reached the client that kept reading.
    assert_eq!(received.load(Ordering::Relaxed), sent + 1);
    drop(slow);
}

#[test]
fn connection_limits_refuse_with_a_message() {
    // Loopback is exempt from --max-per-ip unless the exempt list leaves it out.
    let server =
        Server::start(&["--max-clients", "3", "--max-per-ip", "2", "--max-per-ip-exempt", "none"]);
    let _a = server.text_client("a1");
    let _b = server.text_client("b2");
    let mut c = server.connect();
    assert_eq!(c.read_to_close(), ["!!! too many connections from your address (limit 2)"]);

    let server = Server::start(&["--max-clients", "2", "--max-per-ip", "0"]);
    let mut a = server.text_client("a1");
    let _b = server.text_client("b2");
    let mut c = server.connect();
    assert_eq!(c.read_to_close(), ["!!! server full (2 clients); try again later"]);
    a.send("/list");
    assert_eq!(a.expect("online:"), "*** 2 online: a1, b2");
}

/// A client that spoke before reading (as `tchat join` does, with its hello) must still
/// get the refusal and then an orderly close: a server that closes with unread input
/// sends a reset, which a client's system may act on before the line is read.
#[test]
fn a_refused_client_that_already_spoke_gets_its_line_and_a_clean_close() {
    let server = Server::start(&["--max-clients", "1"]);
    let _a = server.text_client("a1");
    for _ in 0..10 {
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(common::WAIT)).unwrap();
        s.write_all(b"/hello json\n").unwrap();
        let mut got = Vec::new();
        let end = s.read_to_end(&mut got);
        assert_eq!(String::from_utf8_lossy(&got), "!!! server full (1 client); try again later\n");
        end.expect("the connection ended with an error, not a clean close");
    }
}

#[test]
fn sigterm_tells_clients_flushes_the_log_and_exits_zero() {
    let log = temp_path("shutdown.jsonl");
    let mut server = Server::start(&["--save", log.to_str().unwrap()]);
    let mut a = server.text_client("alice");
    let (mut j, _) = server.json_client("jay");
    a.send("last words");
    j.expect_event("public");
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        a.read_to_close()
            .iter()
            .any(|l| l == "*** Server shutting down: stopped by the server's administrator"),
        "{:?}",
        a.seen
    );
    assert!(j.read_to_close().iter().any(|l| l.contains("\"type\":\"shutdown\"")), "{:?}", j.seen);
    let events = read_jsonl(&log);
    let msgs: Vec<&str> = events.iter().map(|e| e["msg"].as_str().unwrap()).collect();
    assert_eq!(msgs.first(), Some(&"Listening"));
    assert_eq!(msgs.last(), Some(&"Server stopped"), "{msgs:?}");
    assert!(msgs.contains(&"Shutting down"));
    std::fs::remove_file(&log).unwrap();
}

/// Closing the terminal a server was started from sends it SIGHUP: it stops as on
/// SIGTERM, telling its clients, instead of vanishing.
#[test]
fn closing_the_servers_terminal_stops_it_as_gracefully_as_sigterm() {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let state = common::state_dir::StateDir::new("hangup");
    let pty = native_pty_system()
        .openpty(PtySize { rows: 24, cols: 200, pixel_width: 0, pixel_height: 0 })
        .expect("opening a pty");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_tchat"));
    cmd.args(["serve", "--host", "127.0.0.1", "--port", "0", "--color", "never"]);
    cmd.env("XDG_STATE_HOME", &*state);
    let mut child = pty.slave.spawn_command(cmd).expect("spawning tchat serve on a pty");
    drop(pty.slave);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut reader = std::io::BufReader::new(pty.master.try_clone_reader().unwrap());
    // Reads up to the Listening line, then drops its copy of the terminal's descriptor,
    // so that dropping the master below really closes the terminal.
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) > 0 {
            if line.contains("Listening") {
                let _ = tx.send(line);
                return;
            }
            line.clear();
        }
    });
    let listening = rx.recv_timeout(WAIT).expect("the Listening line on the pty");
    let addr = common::console_field(&listening, "addr");
    let mut a = Client::connect_as(addr.trim().parse().unwrap(), "alice", WAIT);
    // The terminal goes away: the kernel hangs up its session.
    drop(pty.master);
    let seen = a.read_to_close();
    assert!(seen.iter().any(|l| l.starts_with("*** Server shutting down")), "{seen:?}");
    let exited = common::poll_exit(WAIT, || child.try_wait().unwrap());
    assert!(exited.is_some(), "the server did not stop after its terminal hung up");
}

/// SIGHUP without a terminal (a service) is the reload signal: the server reloads its
/// certificate and keeps serving.
#[test]
fn a_hangup_without_a_terminal_reloads_and_keeps_serving() {
    let mut server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let line = server.wait_console("TLS certificate reloaded");
    assert!(line.contains(&server.fingerprint) && line.contains("trigger=signal"), "{line}");
    let mut b = server.text_client("bob");
    b.send("still up");
    a.expect("<bob> still up");
}

#[test]
fn save_file_is_seed_schema_json_lines_and_appends_across_restarts() {
    let log = temp_path("session.jsonl");
    for round in 0..2 {
        let mut server = Server::start(&["--save", log.to_str().unwrap()]);
        let mut a = server.text_client("MrLaction");
        let mut b = server.text_client("bob");
        a.send("Hello everyone");
        b.expect("Hello everyone");
        a.send("/msg bob quiet");
        b.expect("quiet");
        server.wait_console("Private message");
        assert!(server.terminate().success());
        let events = read_jsonl(&log);
        let listening = events.iter().filter(|e| e["msg"] == "Listening").count();
        assert_eq!(listening, round + 1, "the file is appended to, not truncated");
        for e in &events {
            let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys.len(), 4, "{e}");
            for k in ["ts", "level", "msg", "meta"] {
                assert!(keys.contains(&k), "{e}");
            }
            assert!(e["ts"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok(), "{e}");
            assert!(is_whole_seconds_utc(e["ts"].as_str().unwrap()), "{e}");
            assert!(["INFO", "WARN", "ERROR"].contains(&e["level"].as_str().unwrap()), "{e}");
        }
        let public = events.iter().rev().find(|e| e["msg"] == "Public message").unwrap();
        let id = public["meta"]["id"].as_u64().expect("a public message has an id");
        assert_eq!(
            public["meta"],
            serde_json::json!({"from": "MrLaction", "len": 14, "preview": "Hello everyone", "text": "Hello everyone", "room": "#lobby", "id": id, "kind": "public"})
        );
        let private = events.iter().rev().find(|e| e["msg"] == "Private message").unwrap();
        assert_eq!(
            (private["meta"]["to"].as_str(), private["meta"]["text"].as_str()),
            (Some("bob"), Some("quiet"))
        );
        assert!(events.iter().any(|e| e["msg"] == "Nick set" && e["meta"]["new"] == "MrLaction"));
    }
    std::fs::remove_file(&log).unwrap();
}

/// `2025-09-26T23:00:05Z`: RFC 3339 UTC in whole seconds, the original design's form.
fn is_whole_seconds_utc(ts: &str) -> bool {
    let shape = "dddd-dd-ddTdd:dd:ddZ";
    ts.len() == shape.len()
        && ts
            .chars()
            .zip(shape.chars())
            .all(|(c, s)| if s == 'd' { c.is_ascii_digit() } else { c == s })
}

/// The jq query the operator's manual shows for the log's times: public messages of the last hour,
/// with their local time.
const MANUAL_JQ_TIME_QUERY: &str = r#"select(.msg == "Public message" and (.ts | fromdateiso8601) > now - 3600) | "\(.ts | fromdateiso8601 | strflocaltime("%H:%M:%S")) <\(.meta.from)> \(.meta.text)""#;

/// jq, the tool the design names for the log, reads its times: `fromdateiso8601` takes
/// whole seconds only. The query the operator's manual shows works on a real log, and the structured
/// events use the same form.
#[test]
fn the_logs_times_work_with_jq_as_the_manual_shows() {
    let manual =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operator-manual.md"))
            .unwrap();
    assert!(
        manual.contains(MANUAL_JQ_TIME_QUERY),
        "docs/operator-manual.md no longer shows the tested jq query"
    );
    let log = temp_path("jq.jsonl");
    let before = jiff::Timestamp::now().as_second();
    let mut server = Server::start(&["--save", log.to_str().unwrap()]);
    let mut a = server.text_client("MrLaction");
    let (mut j, welcome) = server.json_client("jay");
    assert!(is_whole_seconds_utc(welcome["ts"].as_str().unwrap()), "{welcome}");
    a.send("Hello everyone");
    let public = j.expect_event("public");
    assert!(is_whole_seconds_utc(public["ts"].as_str().unwrap()), "{public}");
    assert!(server.terminate().success());
    let after = jiff::Timestamp::now().as_second();
    if !common::have_tool("jq", "jq") {
        return;
    }
    let out = Command::new("jq").args([".ts | fromdateiso8601"]).arg(&log).output().unwrap();
    assert!(out.status.success(), "jq failed: {}", String::from_utf8_lossy(&out.stderr));
    let seconds: Vec<i64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(seconds.len(), read_jsonl(&log).len());
    assert!(
        seconds.iter().all(|s| (before..=after).contains(s)),
        "{seconds:?} not in {before}..={after}"
    );
    assert!(seconds.is_sorted(), "{seconds:?}");
    let out = Command::new("jq").args(["-r", MANUAL_JQ_TIME_QUERY]).arg(&log).output().unwrap();
    assert!(out.status.success(), "jq failed: {}", String::from_utf8_lossy(&out.stderr));
    let lines = String::from_utf8(out.stdout).unwrap();
    let line = lines.trim_end();
    assert!(line.ends_with(" <MrLaction> Hello everyone") && lines.lines().count() == 1, "{lines}");
    assert!(is_hh_mm_ss(&line[..8]), "{line}");
    std::fs::remove_file(&log).unwrap();
}

fn is_hh_mm_ss(s: &str) -> bool {
    s.len() == 8
        && s.chars()
            .enumerate()
            .all(|(i, c)| if i % 3 == 2 { c == ':' } else { c.is_ascii_digit() })
}

/// logrotate's default: the file is renamed and a new one expected at the old path.
/// The server must notice and write there, not go on filling the rotated file.
#[test]
fn a_rotated_save_file_is_reopened_at_its_path() {
    let log = temp_path("rotate.jsonl");
    let rotated = temp_path("rotate.jsonl.1");
    let mut server = Server::start(&["--rate", "0", "--save", log.to_str().unwrap()]);
    let mut a = server.text_client("alice");
    let mut b = server.text_client("bob");
    a.send("before rotation");
    b.expect("before rotation");
    server.wait_console("Public message");
    std::fs::rename(&log, &rotated).unwrap();
    // Events in the second after the rename may still go to the old file: keep talking
    // until one reaches the new file.
    let deadline = Instant::now() + common::WAIT;
    let mut k = 0;
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("after rotation")) {
        assert!(Instant::now() < deadline, "nothing was written at the path after rotation");
        k += 1;
        a.send(&format!("after rotation {k}"));
        b.expect(&format!("after rotation {k}"));
        std::thread::sleep(Duration::from_millis(100));
    }
    server.wait_console("Log file reopened");
    assert!(server.terminate().success());

    let old = read_jsonl(&rotated);
    assert!(old.iter().any(|e| e["meta"]["text"] == "before rotation"));
    let new = read_jsonl(&log);
    assert_eq!(new[0]["msg"], "Log file reopened (it was moved or deleted)", "{}", new[0]);
    assert!(new.iter().any(|e| e["msg"] == "Server stopped"));
    // Every message is in exactly one of the two files.
    let texts = |events: &[serde_json::Value]| -> Vec<String> {
        let messages = events.iter().filter(|e| e["msg"] == "Public message");
        messages.map(|e| e["meta"]["text"].as_str().unwrap().to_owned()).collect()
    };
    let mut all = texts(&old);
    all.extend(texts(&new));
    let sent: Vec<String> = std::iter::once("before rotation".to_owned())
        .chain((1..=k).map(|i| format!("after rotation {i}")))
        .collect();
    assert_eq!(all, sent);
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(&rotated).unwrap();
}

#[test]
fn unopenable_save_file_is_a_clear_startup_error() {
    let state = common::state_dir::StateDir::new("unopenable-save");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tchat"))
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--save",
            "/nonexistent-dir/log.jsonl",
        ])
        .env("XDG_STATE_HOME", &*state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child);
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(
        err.trim(),
        "tchat: cannot open log file /nonexistent-dir/log.jsonl: No such file or directory (os error 2)"
    );
}

trait SyncExt {
    fn next_line_after_sync(&mut self) -> Option<String>;
}

impl SyncExt for Client {
    /// The first non-/list line that arrives before a round trip completes, if any.
    fn next_line_after_sync(&mut self) -> Option<String> {
        self.sync().into_iter().find(|l| !l.contains(" online: "))
    }
}

#[test]
fn console_is_plain_when_piped_and_colored_on_request() {
    let plain = Server::start(&[]);
    assert!(!plain.console_text().contains('\u{1b}'), "{}", plain.console_text());
    let colored = Server::start(&["--color", "always"]);
    assert!(colored.console_text().contains("\u{1b}["), "{}", colored.console_text());
}

/// Deterministic pseudo-random bytes (xorshift), biased towards the bytes that matter:
/// newlines, ESC, `/`, C1 controls and invalid UTF-8.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 16 {
                0 => b'\n',
                1 => 0x1b,
                2 => b'/',
                3 => 0x9b,
                4 => 0xff,
                5 => b'[',
                _ => (x >> 8) as u8,
            }
        })
        .collect()
}

#[test]
fn random_garbage_never_takes_the_server_down() {
    // The watcher reads only at the end: a send queue that holds all the garbage's lines
    // (about 1 MiB) keeps it from being dropped as a slow reader on a loaded machine.
    let args =
        ["--rate", "0", "--max-line", "512", "--max-per-ip", "0", "--send-queue", "16777216"];
    let mut server = Server::start(&args);
    let mut watcher = server.text_client("watcher");
    let senders: Vec<_> = (0..4u64)
        .map(|seed| {
            let mut c = server.connect();
            // Read everything the server says so nobody is dropped for being slow.
            let mut rx = c.stream.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut sink = [0u8; 16 * 1024];
                while matches!(std::io::Read::read(&mut rx, &mut sink), Ok(n) if n > 0) {}
            });
            std::thread::spawn(move || {
                for chunk in garbage(seed + 1, 256 * 1024).chunks(4096) {
                    if std::io::Write::write_all(&mut c.stream, chunk).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    // Still serving, and everything that reached the watcher is clean text.
    let mut late = server.text_client("late");
    late.send("/list");
    assert!(late.expect("online:").contains("late"));
    let seen = watcher.sync();
    assert!(seen.iter().all(|l| !l.chars().any(|c| c.is_control())), "{seen:?}");
    assert!(server.child.try_wait().unwrap().is_none(), "the server exited");
    // A panic in one connection's task would not stop the server, and its message goes
    // to stderr: stop the server, then read all of its stderr.
    assert!(server.terminate().success());
    let stderr = server.stderr_after_exit();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Line separators other than CR and LF (VT, FF, NEL, U+2028, U+2029) in a line, a
/// topic or an action become spaces before anyone sees them: nc users, structured
/// clients, the console and the `--save` file get one line each, never a raw separator
/// that a reader splitting on Unicode line breaks would take for a new line. In a nick or
/// a room name one is refused, naming it.
#[test]
fn line_separators_never_split_a_line_and_are_refused_in_names() {
    let log = common::temp_path("separators.jsonl");
    let mut server = Server::start(&["--save", log.to_str().unwrap()]);
    let mut a = server.text_client("alice");
    let mut b = server.text_client("bob");
    let (mut j, _) = server.json_client("jay");
    let separated = "one\u{2028}two\u{2029}three\u{85}four\u{b}five\u{c}six";
    a.send(separated);
    assert_eq!(b.expect("<alice>"), "<alice> one two three four five six");
    assert_eq!(j.expect_event("public")["text"], "one two three four five six");
    a.send("/topic plan\u{2028}{\"ts\":\"forged\"}");
    assert_eq!(b.expect("topic"), "*** alice set the topic of #lobby: plan {\"ts\":\"forged\"}");
    a.send("/me waves\u{2029}back");
    assert_eq!(b.expect("waves"), "* alice waves back");
    for (line, error) in [
        ("/nick ev\u{2028}il", "!!! invalid nick: a nick cannot contain a line separator (U+2028)"),
        ("/nick evil\u{2029}", "!!! invalid nick: a nick cannot contain a line separator (U+2029)"),
        ("/nick e\u{85}vil", "!!! invalid nick: a nick cannot contain a line separator (U+0085)"),
        (
            "/join #de\u{2028}v",
            "!!! invalid room name: a room name cannot contain a line separator (U+2028)",
        ),
        (
            "/join #dev\u{2029}",
            "!!! invalid room name: a room name cannot contain a line separator (U+2029)",
        ),
    ] {
        a.send(line);
        assert_eq!(a.expect("!!!"), error, "{line:?}");
    }
    // Nothing renamed, no room made; every raw byte anyone got is separator-free.
    assert!(a.sync().iter().any(|l| l.contains("alice")));
    for seen in [&a.seen, &b.seen, &j.seen] {
        assert!(
            !seen.iter().any(|l| l.contains(['\u{2028}', '\u{2029}', '\u{85}', '\u{b}', '\u{c}']))
        );
    }
    server.wait_console_nth("Topic set", 1);
    server.terminate();
    let file = std::fs::read_to_string(&log).unwrap();
    let console = server.console_text();
    for (name, text) in [("--save", &file), ("console", &console)] {
        assert!(!text.contains(['\u{2028}', '\u{2029}', '\u{85}', '\u{b}', '\u{c}']), "{name}");
        assert!(text.contains("one two three four five six"), "{name}: {text}");
    }
    assert_eq!(server.console_count("Room created"), 0);
    assert!(!console.contains("new=evil"), "{console}");
}
