//! History and resume through the real server: ids, replay on join, `/history`, the
//! history reloaded from `--save` after a restart, and a structured client that loses
//! its connection and takes its session back.

mod common;

use common::proxy::Proxy;
use common::{Client, Server, temp_path};
use serde_json::Value;

/// Reads JSON events until one of type `kind`, returning the events before it too.
fn events_until(c: &mut Client, kind: &str) -> (Vec<Value>, Value) {
    let mut before = Vec::new();
    loop {
        let line = c.next_line().unwrap_or_else(|| panic!("closed before {kind}"));
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["type"] == kind {
            return (before, v);
        }
        before.push(v);
    }
}

/// A structured client through `addr` with a resume hello.
fn resume(addr: std::net::SocketAddr, nick: &str, token: &str, last_id: u64) -> (Client, Value) {
    let mut c = Client::connect(addr);
    c.send(&format!("/hello json {nick} resume {token} {last_id}"));
    let welcome = c.expect_event("welcome");
    (c, welcome)
}

/// The `public` events' texts among `events`.
fn texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "public")
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_joiner_sees_recent_public_events_marked_as_history_but_no_one_elses_private() {
    let server = Server::start(&["--replay", "3"]);
    let (mut alice, _) = server.json_client("alice");
    let mut bob = server.text_client("bob");
    alice.send("/msg bob secret");
    bob.expect("secret");
    for text in ["one", "two", "three", "four"] {
        alice.send(text);
    }
    bob.expect("four");
    let (mut jay, welcome) = server.json_client("jay");
    // After the welcome, the `room` event, then the replay.
    assert_eq!(jay.expect_event("room")["room"], "#lobby");
    let replayed: Vec<Value> =
        (0..3).map(|_| serde_json::from_str(&jay.next_line().unwrap()).unwrap()).collect();
    assert_eq!(texts(&replayed), ["two", "three", "four"]);
    let ids: Vec<u64> = replayed.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(replayed.iter().all(|e| e["history"] == true), "{replayed:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(welcome["last_id"].as_u64(), ids.last().copied(), "{welcome}");
    // Live events have ids and no history flag.
    alice.send("five");
    let live = jay.expect_event("public");
    assert!(live["id"].as_u64().unwrap() > ids[2] && live.get("history").is_none(), "{live}");

    // Text mode: the time in brackets; and /history asks for more, never the private.
    let mut tom = server.text_client("tom");
    // The last 3 events: four, jay's join, five.
    let line = tom.expect("<alice> four");
    assert!(line.starts_with('[') && line.as_bytes()[6] == b']', "{line}");
    tom.expect("<alice> five");
    tom.send("/history 50");
    let mut seen = Vec::new();
    while !seen.last().is_some_and(|l: &String| l.ends_with("<alice> five")) {
        seen.push(tom.next_line().unwrap());
    }
    assert!(seen.iter().any(|l| l.ends_with("<alice> one")), "{seen:?}");
    assert!(!seen.iter().any(|l| l.contains("secret")), "{seen:?}");
}

/// `/history` past the most the server sends (200) is capped and says so, as ergo's
/// CHATHISTORY serves its maximum; `/history 0` is refused with the range.
#[test]
fn history_beyond_the_maximum_is_capped_with_a_note_and_zero_is_refused() {
    let server = Server::start(&["--rate", "0"]);
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    for i in 0..205 {
        alice.send(&format!("line {i}"));
    }
    bob.expect("<alice> line 204");
    bob.send("/history 500");
    let lines = bob.sync();
    assert_eq!(
        lines[0], "*** /history sends at most 200 lines at once; here are up to the last 200",
        "{lines:?}"
    );
    let shown: Vec<&String> = lines.iter().filter(|l| l.contains("<alice> line ")).collect();
    assert_eq!(shown.len(), 200, "{lines:?}");
    assert!(shown[0].ends_with("<alice> line 5") && shown[199].ends_with("<alice> line 204"));
    bob.send("/history 0");
    assert_eq!(bob.next_line().unwrap(), "!!! usage: /history [n] (n is 1 to 200)");
    bob.send("/history 200");
    let lines = bob.sync();
    assert!(lines[0].ends_with("<alice> line 5"), "no note below the maximum: {lines:?}");
}

#[test]
fn ids_and_history_survive_a_restart_on_the_same_log() {
    let log = temp_path("restart.jsonl");
    let save = log.to_str().unwrap();
    let last_before = {
        let mut server = Server::start(&["--save", save]);
        let (mut a, _) = server.json_client("alice");
        a.send("before the restart");
        let ev = a.expect_event("public");
        assert!(server.terminate().success());
        ev["id"].as_u64().unwrap()
    };
    let mut server = Server::start(&["--save", save, "--replay", "5"]);
    server.wait_console("History loaded");
    let (mut b, welcome) = server.json_client("bob");
    assert_eq!(welcome["last_id"].as_u64(), Some(last_before), "{welcome}");
    let (history, live) = {
        b.send("after");
        events_until(&mut b, "public")
    };
    // The replay precedes: alice's join, her line (and her leave: shutdown is not one).
    let replayed: Vec<_> = history.iter().chain([&live]).filter(|e| e["history"] == true).collect();
    assert!(replayed.iter().any(|e| e["text"] == "before the restart"), "{history:?} {live}");
    let after = if live["history"] == true { b.expect_event("public") } else { live };
    assert_eq!(after["text"], "after");
    assert!(after["id"].as_u64().unwrap() > last_before, "{after}");
    let _ = std::fs::remove_file(&log);
}

/// A server restarted without `--save` numbers its events from 1 again, below the last
/// id a client saw from the old run: that client, resuming with its old token, still
/// gets what was said since the restart, and its next resume counts from the new ids.
#[test]
fn a_resume_across_a_restart_that_lost_the_ids_misses_nothing() {
    let mut old = Server::start(&[]);
    let (mut bob, welcome) = old.json_client("bob");
    let token = welcome["resume"].as_str().unwrap().to_owned();
    let mut last_old_id = 0;
    for i in 0..5 {
        bob.send(&format!("old {i}"));
        last_old_id = bob.expect_event("public")["id"].as_u64().unwrap();
    }
    assert!(old.terminate().success());

    let new = Server::start(&[]);
    let mut alice = new.text_client("alice");
    alice.send("said after the restart");
    alice.sync();
    // Ids 1 (alice's join) and 2 (her line) are below what bob saw from the old run.
    let (mut back, w) = resume(new.addr, "bob", &token, last_old_id);
    assert!(w["last_id"].as_u64().unwrap() < last_old_id, "{w}");
    let (_, resumed) = events_until(&mut back, "resumed");
    assert_eq!(resumed["resumed"], false, "a new run cannot resume the old session");
    let missed: Vec<Value> = (0..resumed["missed"].as_u64().unwrap())
        .map(|_| serde_json::from_str(&back.next_line().unwrap()).unwrap())
        .collect();
    assert_eq!(texts(&missed), ["said after the restart"], "{resumed} {missed:?}");
}

/// After a restart the server no longer holds the session: the resume hello's room puts
/// the client back in its room before the catch-up, which is then that room's lines
/// (from the `--save` log and since the restart), not the default room's.
#[test]
fn a_resume_after_a_restart_goes_back_to_its_room_and_catches_up_there() {
    let log = temp_path("restart-room.jsonl");
    let save = log.to_str().unwrap();
    let mut old = Server::start(&["--save", save]);
    let (mut bob, welcome) = old.json_client("bob");
    let token = welcome["resume"].as_str().unwrap().to_owned();
    bob.send("/join #dev");
    bob.expect_event("room");
    bob.send("in dev");
    let last_id = bob.expect_event("public")["id"].as_u64().unwrap();
    let mut carol = old.text_client("carol");
    carol.send("/join #dev");
    carol.expect("You are in #dev");
    carol.send("before the restart");
    carol.sync();
    assert!(old.terminate().success());

    let new = Server::start(&["--save", save]);
    let mut carol = new.text_client("carol");
    carol.send("/join #dev");
    carol.expect("You are in #dev");
    carol.send("after the restart");
    carol.sync();
    let (mut back, w) = {
        let mut c = Client::connect(new.addr);
        c.send(&format!("/hello json bob resume {token} {last_id} #dev"));
        let w = c.expect_event("welcome");
        (c, w)
    };
    assert_eq!(w["room"], "#dev", "{w}");
    let (_, resumed) = events_until(&mut back, "resumed");
    let missed: Vec<Value> = (0..resumed["missed"].as_u64().unwrap())
        .map(|_| serde_json::from_str(&back.next_line().unwrap()).unwrap())
        .collect();
    assert_eq!(texts(&missed), ["before the restart", "after the restart"], "{resumed} {missed:?}");
    let _ = std::fs::remove_file(&log);
}

#[test]
fn a_lost_structured_client_resumes_with_exactly_what_it_missed_and_nobody_notices() {
    let mut server = Server::start(&[]);
    let proxy = Proxy::start(server.addr);
    let mut alice = server.text_client("alice");
    let (mut jay, welcome) = {
        let mut c = Client::connect(proxy.addr);
        c.send("/hello json jay");
        let w = c.expect_event("welcome");
        (c, w)
    };
    let token = welcome["resume"].as_str().expect("a structured welcome has a token").to_owned();
    assert_eq!(token.len(), 40);
    alice.expect("jay joined");
    alice.send("seen");
    let last_id = jay.expect_event("public")["id"].as_u64().unwrap();

    proxy.cut();
    assert_eq!(jay.read_to_close().len(), 0);
    server.wait_console("Held for resume");
    for i in 0..5 {
        alice.send(&format!("missed {i}"));
    }
    alice.send("/msg jay private while away");
    alice.send("/list");
    assert_eq!(alice.expect("online:"), "*** 2 online: alice, jay", "jay still online");

    // A wrong token does not take the nick.
    let wrong = format!("{}{}", &token[..8], "0".repeat(32));
    let (mut thief, w) = resume(server.addr, "jay", &wrong, 0);
    assert_ne!(w["nick"], "jay", "{w}");
    assert_eq!(thief.expect_event("error")["code"], "nick_taken");
    thief.send("/quit");
    alice.expect("left: quit");

    let (mut back, w) = resume(proxy.addr, "jay", &token, last_id);
    assert_eq!(w["nick"], "jay");
    assert_ne!(w["resume"].as_str(), Some(token.as_str()), "a token serves one connection");
    let (_, resumed) = events_until(&mut back, "resumed");
    // Five lines, the private message, and the thief coming and going.
    assert_eq!((resumed["missed"].as_u64(), resumed["resumed"].as_bool()), (Some(8), Some(true)));
    let missed: Vec<Value> =
        (0..8).map(|_| serde_json::from_str(&back.next_line().unwrap()).unwrap()).collect();
    assert_eq!(texts(&missed), ["missed 0", "missed 1", "missed 2", "missed 3", "missed 4"]);
    assert_eq!(
        (missed[5]["type"].as_str(), missed[5]["text"].as_str()),
        (Some("private"), Some("private while away"))
    );
    assert_eq!(
        (missed[6]["type"].as_str(), missed[7]["type"].as_str()),
        (Some("join"), Some("leave"))
    );
    assert!(missed.iter().all(|e| e["history"] == true));
    let ids: Vec<u64> = missed.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids[0] == last_id + 1 && ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    alice.send("live again");
    assert_eq!(back.expect_event("public")["text"], "live again");
    // Alice saw the thief come and go, and nothing of jay.
    alice.sync();
    assert_eq!(
        alice.seen.iter().filter(|l| l.contains("jay joined")).count(),
        1,
        "{:?}",
        alice.seen
    );
    assert!(!alice.seen.iter().any(|l| l.contains("jay left")), "{:?}", alice.seen);
    // The old token is spent.
    let (_c, w) = resume(server.addr, "jay", &token, 0);
    assert_ne!(w["nick"], "jay");
    // No token, not even its secret half, reaches the console (or the log it mirrors).
    let console = server.console_text();
    for t in [&token[..], w["resume"].as_str().unwrap()] {
        assert!(!console.contains(&t[8..]), "a resume token on the console:\n{console}");
    }
}

#[test]
fn a_resume_takes_over_a_connection_the_server_still_thinks_open() {
    let server = Server::start(&[]);
    let mut alice = server.text_client("alice");
    let (mut old, welcome) = server.json_client("jay");
    let token = welcome["resume"].as_str().unwrap().to_owned();
    alice.expect("jay joined");
    alice.send("one");
    let last_id = old.expect_event("public")["id"].as_u64().unwrap();
    alice.send("two");
    // Delivered, but not seen by the client (say, lost in flight).
    assert_eq!(old.expect_event("public")["text"], "two");
    let (mut new, w) = resume(server.addr, "jay", &token, last_id);
    assert_eq!(w["nick"], "jay");
    let (_, resumed) = events_until(&mut new, "resumed");
    assert_eq!((resumed["missed"].as_u64(), resumed["resumed"].as_bool()), (Some(1), Some(true)));
    assert_eq!(new.expect_event("public")["text"], "two");
    // The old connection is closed, with nothing more on it.
    let rest = old.read_to_close();
    assert!(rest.iter().all(|l| !l.contains("\"welcome\"")), "{rest:?}");
    alice.send("three");
    assert_eq!(new.expect_event("public")["text"], "three");
    alice.sync();
    let news: Vec<_> =
        alice.seen.iter().filter(|l| l.contains("jay joined") || l.contains("jay left")).collect();
    assert_eq!(news, ["*** jay joined (2 online)"], "{:?}", alice.seen);
    assert_eq!(alice.seen.last().unwrap(), "*** 2 online: alice, jay");
}

/// History is per room: a joiner gets its room's recent events, and a move with `/join`
/// gets the new room's; a session resumed in a room gets back to that room and what was
/// said there.
#[test]
fn history_replay_and_resume_follow_rooms() {
    let server = Server::start(&["--replay", "5"]);
    let mut alice = server.text_client("alice");
    let (mut bob, welcome) = server.json_client("bob");
    let token = welcome["resume"].as_str().unwrap().to_owned();
    bob.send("/join #dev");
    bob.expect_event("room");
    bob.send("dev line");
    let last_id = bob.expect_event("public")["id"].as_u64().unwrap();
    alice.send("lobby line");
    let mut tom = server.text_client("tom");
    tom.expect("<alice> lobby line");
    tom.send("/join #dev");
    tom.expect("<bob> dev line");
    assert!(!tom.sync().iter().any(|l| l.contains("lobby line")), "{:?}", tom.seen);
    // Bob drops; tom talks in #dev, alice in #lobby; bob resumes into #dev.
    bob.stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(bob);
    tom.send("while bob was away");
    alice.send("not for #dev");
    alice.sync();
    let (mut back, w) = resume(server.addr, "bob", &token, last_id);
    assert_eq!((w["nick"].as_str(), w["room"].as_str()), (Some("bob"), Some("#dev")), "{w}");
    let (_, resumed) = events_until(&mut back, "resumed");
    assert_eq!(resumed["resumed"], true, "{resumed}");
    let missed: Vec<Value> = (0..resumed["missed"].as_u64().unwrap())
        .map(|_| serde_json::from_str(&back.next_line().unwrap()).unwrap())
        .collect();
    assert_eq!(texts(&missed), ["while bob was away"], "{missed:?}");
}

/// A line of about 1000 bytes, numbered: forty of them are far more than the half of a
/// 16 KiB `--send-queue` that the server sends again at once.
fn big_line(i: usize) -> String {
    format!("big {i:02} {}", "x".repeat(1000))
}

/// Alice says forty big lines; `reader` (already in the room) reads each as it comes,
/// so that only what is sent again at once can overflow its send queue.
fn say_big_lines(alice: &mut Client, reader: &mut Client) {
    for i in 0..40 {
        alice.send(&big_line(i));
        reader.expect(&format!("big {i:02} "));
    }
}

/// The numbers of the big lines among `lines`, in the order they came.
fn big_numbers<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
    lines.into_iter().filter_map(|l| l.split_once("big ")?.1.get(..2)?.parse().ok()).collect()
}

/// Whether `numbers` are the newest of the forty big lines, at least one, in order.
fn are_the_newest(numbers: &[usize]) -> bool {
    !numbers.is_empty() && numbers.iter().rev().zip((0..40).rev()).all(|(n, want)| *n == want)
}

#[test]
fn a_history_larger_than_the_send_queue_gives_the_newest_lines_and_keeps_the_asker() {
    let server = Server::start(&["--send-queue", "16384", "--rate", "0", "--replay", "0"]);
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    say_big_lines(&mut alice, &mut bob);
    bob.send("/history 40");
    // Before the fix the whole 40 KiB went into bob's 16 KiB queue and bob was dropped.
    let lines = bob.sync();
    let shown = big_numbers(lines.iter().map(String::as_str));
    assert!(are_the_newest(&shown) && shown.len() < 40, "{shown:?}");
    let note =
        format!("*** {} earlier lines not shown (too large to send at once)", 40 - shown.len());
    assert_eq!(lines.iter().position(|l| *l == note), Some(0), "{lines:?}");
}

#[test]
fn a_resume_whose_catch_up_exceeds_the_send_queue_gets_the_newest_and_the_missing_count() {
    let mut server = Server::start(&["--send-queue", "16384", "--rate", "0"]);
    let proxy = Proxy::start(server.addr);
    let mut alice = server.text_client("alice");
    let mut tom = server.text_client("tom");
    let mut jay = Client::connect(proxy.addr);
    jay.send("/hello json jay");
    let token = jay.expect_event("welcome")["resume"].as_str().unwrap().to_owned();
    alice.send("seen");
    let last_id = jay.expect_event("public")["id"].as_u64().unwrap();
    proxy.cut();
    assert_eq!(jay.read_to_close().len(), 0);
    server.wait_console("Held for resume");
    say_big_lines(&mut alice, &mut tom);

    let (mut back, w) = resume(proxy.addr, "jay", &token, last_id);
    assert_eq!(w["nick"], "jay");
    // Before the fix the catch-up overflowed the queue: no `resumed`, a too_slow error.
    let (_, resumed) = events_until(&mut back, "resumed");
    let missed = resumed["missed"].as_u64().unwrap() as usize;
    assert_eq!(resumed["unavailable"].as_u64(), Some(40 - missed as u64), "{resumed}");
    let events: Vec<Value> =
        (0..missed).map(|_| serde_json::from_str(&back.next_line().unwrap()).unwrap()).collect();
    assert!(events.iter().all(|e| e["history"] == true), "{events:?}");
    let caught = big_numbers(events.iter().map(|e| e["text"].as_str().unwrap()));
    assert!(are_the_newest(&caught) && caught.len() == missed && missed < 40, "{caught:?}");
    alice.send("live again");
    assert_eq!(back.expect_event("public")["text"], "live again");
}

/// `n` lines said by `c` (text mode, so not echoed), then a round trip: all delivered.
fn flood(c: &mut Client, n: usize) {
    for i in 0..n {
        c.send(&format!("flood {i}"));
    }
    c.sync();
}

/// A text client in `room`, its move done.
fn text_client_in(server: &Server, nick: &str, room: &str) -> Client {
    let mut c = server.text_client(nick);
    c.send(&format!("/join {room}"));
    c.sync();
    c
}

/// History is kept per room: a busy room pushes out its own oldest events, not a quiet
/// room's, and a room that closed (everyone left) still has its history when reopened.
#[test]
fn a_busy_room_does_not_push_a_quiet_rooms_lines_out_of_its_replay() {
    let server = Server::start(&["--history", "5", "--replay", "5"]);
    let mut alice = text_client_in(&server, "alice", "#b");
    alice.send("quiet one");
    alice.send("quiet two");
    alice.send("/part");
    alice.expect("You are in #lobby");
    let mut carol = text_client_in(&server, "carol", "#a");
    flood(&mut carol, 20);
    let mut tom = server.text_client("tom");
    tom.send("/join #b");
    tom.expect("<alice> quiet one");
    tom.expect("<alice> quiet two");
    assert!(!tom.sync().iter().any(|l| l.contains("flood")), "{:?}", tom.seen);
    // #a's own replay is its latest five.
    tom.send("/join #a");
    tom.expect("<carol> flood 15");
    let rest = tom.sync();
    assert!(rest.iter().any(|l| l.contains("<carol> flood 19")), "{rest:?}");
    assert!(!tom.seen.iter().any(|l| l.contains("flood 14")), "{:?}", tom.seen);
}

/// A session held in a quiet room while another room floods gets back its room's lines,
/// and is told exactly how many of its room's it can no longer get (not the other room's).
#[test]
fn a_resume_in_a_quiet_room_after_a_flood_elsewhere_gets_its_rooms_lines() {
    let mut server = Server::start(&["--history", "5"]);
    let proxy = Proxy::start(server.addr);
    let mut alice = text_client_in(&server, "alice", "#b");
    let mut carol = text_client_in(&server, "carol", "#a");
    let mut jay = Client::connect(proxy.addr);
    jay.send("/hello json jay");
    let token = jay.expect_event("welcome")["resume"].as_str().unwrap().to_owned();
    jay.send("/join #b");
    // The welcome's `room` event (#lobby) first, then the move's.
    while jay.expect_event("room")["room"] != "#b" {}
    alice.send("seen");
    let last_id = jay.expect_event("public")["id"].as_u64().unwrap();
    proxy.cut();
    server.wait_console("Held for resume");
    // #b: 8 lines, of which it keeps the last 5; #a floods in between.
    for i in 0..4 {
        alice.send(&format!("missed {i}"));
    }
    alice.sync();
    flood(&mut carol, 20);
    for i in 4..8 {
        alice.send(&format!("missed {i}"));
    }
    alice.sync();
    let (mut back, w) = resume(proxy.addr, "jay", &token, last_id);
    assert_eq!(w["room"], "#b", "{w}");
    let (_, resumed) = events_until(&mut back, "resumed");
    assert_eq!(resumed["resumed"], true, "{resumed}");
    let counts = (resumed["missed"].as_u64(), resumed["unavailable"].as_u64());
    assert_eq!(counts, (Some(5), Some(3)), "{resumed}");
    let missed: Vec<Value> =
        (0..5).map(|_| serde_json::from_str(&back.next_line().unwrap()).unwrap()).collect();
    let want: Vec<String> = (3..8).map(|i| format!("missed {i}")).collect();
    assert_eq!(texts(&missed), want, "{missed:?}");
}

/// After a restart on the same `--save` log, each room's history comes back, however
/// much more another room said.
#[test]
fn a_restart_gives_back_each_rooms_history() {
    let log = temp_path("rooms-restart.jsonl");
    let save = log.to_str().unwrap();
    {
        let mut server = Server::start(&["--save", save, "--history", "5"]);
        let mut alice = text_client_in(&server, "alice", "#b");
        alice.send("before the restart in #b");
        let mut carol = text_client_in(&server, "carol", "#a");
        flood(&mut carol, 20);
        alice.sync();
        assert!(server.terminate().success());
    }
    let mut server = Server::start(&["--save", save, "--history", "5", "--replay", "5"]);
    server.wait_console("History loaded");
    let mut tom = server.text_client("tom");
    tom.send("/join #b");
    tom.expect("<alice> before the restart in #b");
    assert!(!tom.sync().iter().any(|l| l.contains("flood")), "{:?}", tom.seen);
    tom.send("/join #a");
    tom.expect("<carol> flood 19");
    let _ = std::fs::remove_file(&log);
}

/// `/help` names the default `/history` count this server really uses (its `--replay`),
/// and `/history` without a count sends that many.
#[test]
fn help_names_the_history_default_the_server_uses() {
    let server = Server::start(&["--replay", "7", "--rate", "0"]);
    let mut alice = server.text_client("alice");
    for n in 1..=9 {
        alice.send(&format!("line {n}"));
    }
    alice.send("/help");
    let line = alice.expect("/history [n]");
    assert!(line.contains("(default 7, at most 200)"), "{line}");
    assert!(!line.contains("20,"), "{line}");
    // Private messages are private from the others, not from the server: /help says so.
    let msg = alice.seen.iter().find(|l| l.contains("/msg <user> <text>")).cloned();
    assert!(
        msg.as_deref().is_some_and(|l| l.contains("the server sees it and may log it")),
        "{msg:?}"
    );
    alice.send("/history");
    // The seven newest: lines 3 to 9, and not line 2.
    alice.expect("line 3");
    alice.expect("line 9");
    assert!(!alice.seen.iter().any(|l| l.ends_with("<alice> line 2")), "{:?}", alice.seen);
}

/// Everything queued for `c` (structured or not) has arrived once this returns; the
/// lines read on the way.
fn sync(c: &mut common::Client, json: bool) -> Vec<String> {
    if !json {
        return c.sync();
    }
    let start = c.seen.len();
    c.send("/list");
    c.expect("\"type\":\"users\"");
    c.seen[start..].to_vec()
}

/// Going back to a room replays only what was said there since the member left it (the
/// rest it saw), and a room's current topic is shown once on joining, not again as a
/// replayed "set the topic" line; in text mode and in structured mode alike.
#[test]
fn going_back_to_a_room_replays_only_what_was_not_shown() {
    let server = Server::start(&["--replay", "10", "--rate", "0"]);
    let mut carol = server.text_client("carol");
    carol.send("/join #ops");
    carol.expect("You are in #ops");
    carol.send("/topic deploy friday");
    carol.expect("set the topic");
    carol.send("/part");
    carol.expect("You are in #lobby");
    let mut dan = server.text_client("dan");
    let (mut erin, _) = server.json_client("erin");
    carol.send("said before the trip");
    dan.expect("said before the trip");
    erin.expect("said before the trip");

    for (who, json) in [(&mut dan, false), (&mut erin, true)] {
        who.send("/join #ops");
        who.expect(if json { "\"type\":\"room\"" } else { "You are in #ops" });
        let joined = sync(who, json);
        let topics = joined.iter().filter(|l| l.contains("deploy friday")).count();
        assert_eq!(topics, 1, "the topic once, json {json}: {joined:?}");
        who.send("/part");
        who.expect(if json { "\"type\":\"room\"" } else { "You are in #lobby" });
        let back = sync(who, json);
        assert!(!back.iter().any(|l| l.contains("said before the trip")), "json {json}: {back:?}");
    }
    // What was said while away is replayed, once.
    dan.send("/join #ops");
    dan.expect("You are in #ops");
    carol.send("said while dan was out");
    erin.expect("said while dan was out");
    dan.send("/part");
    dan.expect("You are in #lobby");
    let back = dan.sync();
    let replayed = back.iter().filter(|l| l.contains("said while dan was out")).count();
    assert_eq!(replayed, 1, "{back:?}");
    assert!(!back.iter().any(|l| l.contains("said before the trip")), "{back:?}");
}

/// A save log with a line from days ago and one from now, as a server reloads it.
pub fn log_with_an_old_line(name: &str) -> (std::path::PathBuf, jiff::Timestamp) {
    let log = temp_path(name);
    let old: jiff::Timestamp = "2026-01-20T22:30:00Z".parse().unwrap();
    let now = jiff::Timestamp::now();
    let record = |ts: jiff::Timestamp, id: u64, text: &str| {
        let ts = ts.strftime("%Y-%m-%dT%H:%M:%SZ");
        let meta = serde_json::json!({"id": id, "from": "olga", "text": text, "room": "#lobby"});
        format!(
            "{}\n",
            serde_json::json!({"ts": ts.to_string(), "level": "INFO", "msg": "Public message", "meta": meta})
        )
    };
    let text = record(old, 1, "from another day") + &record(now, 2, "from today");
    std::fs::write(&log, text).unwrap();
    (log, old)
}

/// In text mode too, a replayed line from another day carries its date (the server's
/// local time), one from today only its time.
#[test]
fn text_mode_dates_replayed_lines_from_other_days() {
    let (log, old) = log_with_an_old_line("dated.jsonl");
    let mut server = Server::start(&["--save", log.to_str().unwrap(), "--replay", "5"]);
    server.wait_console("History loaded");
    let mut nc = server.text_client("nico");
    let tz = jiff::tz::TimeZone::system();
    let dated = old.to_zoned_datetime(tz.clone()).strftime("[%Y-%m-%d %H:%M] ").to_string();
    assert_eq!(nc.expect("from another day"), format!("{dated}<olga> from another day"));
    let today = nc.expect("from today");
    assert!(today.starts_with('[') && today.find(']') == Some(6), "{today}");
    let _ = std::fs::remove_file(log);
}
