//! Rooms through the real binary and raw TCP clients on 127.0.0.1.

mod common;

use common::{Client, Server, read_jsonl, temp_path};

/// Sends `/join ROOM` and waits for the answer naming the room.
fn join(c: &mut Client, room: &str) -> String {
    c.send(&format!("/join {room}"));
    c.expect("*** You are in #")
}

/// Lines received up to a round trip, without the round trip's own `/list` answer.
fn received(c: &mut Client) -> Vec<String> {
    c.sync().into_iter().filter(|l| !l.contains(" online: ")).collect()
}

#[test]
fn two_rooms_do_not_hear_each_other_and_moves_are_announced_in_both() {
    let server = Server::start(&[]);
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    let mut carol = server.text_client("carol");
    alice.expect("carol joined");

    assert_eq!(join(&mut bob, "#dev"), "*** You are in #dev (1 here): bob");
    assert_eq!(alice.expect("left #lobby"), "*** bob left #lobby for #dev (2 here)");
    // #Dev is #dev: carol lands in bob's room, under the name it was created with.
    assert_eq!(join(&mut carol, "#Dev"), "*** You are in #dev (2 here): bob, carol");
    assert_eq!(bob.expect("carol joined"), "*** carol joined #dev (2 here)");
    assert_eq!(alice.expect("carol left"), "*** carol left #lobby for #dev (1 here)");

    bob.send("only for dev");
    carol.send("/me nods");
    alice.send("only for the lobby");
    assert_eq!(carol.expect("only for dev"), "<bob> only for dev");
    assert_eq!(bob.expect("nods"), "* carol nods");
    let lobby = received(&mut alice);
    assert!(!lobby.iter().any(|l| l.contains("dev") || l.contains("nods")), "{lobby:?}");
    for c in [&mut bob, &mut carol] {
        let dev = received(c);
        assert!(!dev.iter().any(|l| l.contains("the lobby")), "{dev:?}");
    }

    // Nick changes and leaving the server are announced in the room they happen in.
    carol.send("/nick caroline");
    assert_eq!(bob.expect("known as"), "*** carol is now known as caroline");
    carol.send("/quit bye");
    assert_eq!(bob.expect("left:"), "*** caroline left: quit: bye (2 online)");
    let lobby = received(&mut alice);
    assert!(!lobby.iter().any(|l| l.contains("carol")), "{lobby:?}");

    // /part goes back to the default room.
    bob.send("/part");
    assert_eq!(bob.expect("You are in"), "*** You are in #lobby (2 here): alice, bob");
    assert_eq!(alice.expect("joined"), "*** bob joined #lobby (2 here)");
    bob.send("/part");
    assert_eq!(bob.expect("!!!"), "!!! you are already in #lobby");
}

#[test]
fn private_messages_cross_rooms() {
    let server = Server::start(&[]);
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    join(&mut bob, "#dev");
    alice.send("/msg bob across the hall");
    assert_eq!(bob.expect("across"), "*alice* across the hall");
    assert_eq!(alice.expect("across"), "-> *bob* across the hall");
    bob.send("/msg ALICE back");
    assert_eq!(alice.expect("back"), "*bob* back");
}

#[test]
fn list_list_all_rooms_and_topic() {
    let server = Server::start(&[]);
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    let mut carol = server.text_client("carol");
    join(&mut bob, "#dev");
    join(&mut carol, "#dev");

    // With everyone in one room, /list reads as before rooms.
    bob.send("/list");
    assert_eq!(bob.expect("online:"), "*** 2 in #dev, 3 online: bob, carol");
    alice.send("/who");
    assert_eq!(alice.expect("online:"), "*** 1 in #lobby, 3 online: alice");
    alice.send("/list all");
    assert_eq!(alice.expect("online:"), "*** 3 online: #dev: bob, carol; #lobby: alice");

    bob.send("/topic");
    assert_eq!(bob.expect("topic"), "*** #dev has no topic; set one with /topic <text>");
    bob.send("/topic Rust and  more");
    assert_eq!(carol.expect("topic"), "*** bob set the topic of #dev: Rust and  more");
    carol.send("/topic");
    assert_eq!(carol.expect("Topic of"), "*** Topic of #dev: Rust and  more");
    // A topic with nothing visible is refused like any invisible line.
    carol.send("/topic \u{200b}");
    carol.expect("!!! nothing visible to send");
    carol.send("/topic");
    assert_eq!(carol.expect("Topic of"), "*** Topic of #dev: Rust and  more");

    alice.send("/rooms");
    assert_eq!(alice.expect("rooms:"), "*** 2 rooms:");
    assert_eq!(alice.next_line().unwrap(), "***   #dev       2 here  Rust and  more");
    assert_eq!(alice.next_line().unwrap(), "***   #lobby     1 here");

    // The topic is shown on joining.
    assert_eq!(join(&mut alice, "#DEV"), "*** You are in #dev (3 here): alice, bob, carol");
    assert_eq!(alice.next_line().unwrap(), "*** Topic of #dev: Rust and  more");
}

#[test]
fn a_room_disappears_with_its_last_member_and_its_topic() {
    let server = Server::start(&[]);
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    join(&mut bob, "#tmp");
    bob.send("/topic temporary");
    bob.expect("set the topic");
    alice.send("/rooms");
    alice.expect("*** 2 rooms:");
    bob.send("/join #other");
    bob.expect("You are in #other");
    alice.send("/rooms");
    assert_eq!(alice.expect("rooms:"), "*** 2 rooms:");
    assert!(alice.next_line().unwrap().starts_with("***   #lobby"));
    assert!(alice.next_line().unwrap().starts_with("***   #other"));
    bob.send("/quit");
    // The second: #tmp closed when bob left it for #other.
    server.wait_console_nth("Room closed", 2);
    alice.send("/rooms");
    assert_eq!(alice.expect("room:"), "*** 1 room:");
    // Made anew, it has no topic.
    join(&mut alice, "#tmp");
    alice.send("/topic");
    alice.expect("#tmp has no topic");
}

#[test]
fn room_names_follow_the_rules_and_errors_name_them() {
    let server = Server::start(&[]);
    let mut a = server.text_client("alice");
    for (line, error) in [
        ("/join dev", "!!! invalid room name: a room name starts with '#' (as in #dev)"),
        ("/join #", "!!! invalid room name: a room name needs at least one character after '#'"),
        (
            "/join #dev@home",
            "!!! invalid room name: a room name cannot contain '@' (use letters, digits and _ - [ ] { } | ^ \\ `)",
        ),
        ("/join #dev ops", "!!! usage: /join <#room>"),
        ("/join #lobby", "!!! you are already in #lobby"),
    ] {
        a.send(line);
        assert_eq!(a.expect("!!!"), error, "{line}");
    }
    let long = format!("/join #{}", "x".repeat(33));
    a.send(&long);
    assert!(a.expect("!!!").contains("at most 32 characters"));
}

#[test]
fn a_room_name_that_looks_like_an_existing_one_is_refused() {
    let server = Server::start(&[]);
    let mut a = server.text_client("alice");
    let mut b = server.text_client("bob");
    join(&mut a, "#coco");
    // All Cyrillic: one script, so only the skeleton tells it from #coco.
    b.send("/join #\u{0441}\u{043e}\u{0441}\u{043e}");
    assert_eq!(
        b.expect("!!!"),
        "!!! that room name looks like #coco; join #coco or pick another name"
    );
    // Latin with a Cyrillic o: refused by the mixed-script rule, named.
    b.send("/join #c\u{043e}co");
    assert!(b.expect("!!!").contains("cannot mix"));
    // Full-width letters normalise (RFC 8266) to the same room.
    assert_eq!(join(&mut b, "#\u{ff23}OCO"), "*** You are in #coco (2 here): alice, bob");
}

#[test]
fn max_rooms_counts_the_default_room() {
    let server = Server::start(&["--max-rooms", "2"]);
    let mut a = server.text_client("alice");
    let mut b = server.text_client("bob");
    join(&mut a, "#one");
    b.send("/join #two");
    assert_eq!(b.expect("!!!"), "!!! too many rooms (limit 2); join one of those in /rooms");
    // An existing room can still be joined.
    assert_eq!(join(&mut b, "#ONE"), "*** You are in #one (2 here): alice, bob");
}

#[test]
fn creating_rooms_costs_flood_control_more_than_a_line() {
    // A burst of 11 lines would take the /nick and ten /join lines, but each room made
    // costs 5: the third creation is held (fakelag), and the sender is told.
    let server = Server::start(&["--rate", "2", "--burst", "11"]);
    let mut a = server.text_client("alice");
    join(&mut a, "#a");
    join(&mut a, "#b");
    a.send("/join #c");
    assert!(a.expect("***").contains("sending faster than 2 lines per second"));
    a.expect("You are in #c");
    // Joining an existing room costs a line, like any other: it is the creation that
    // is charged.
    let mut b = server.text_client("bob");
    for _ in 0..2 {
        join(&mut b, "#c");
        join(&mut b, "#lobby");
    }
    assert!(!b.seen.iter().any(|l| l.contains("sending faster")), "{:?}", b.seen);
}

#[test]
fn structured_clients_get_the_room_of_every_room_event() {
    let mut server = Server::start(&[]);
    let mut t = server.text_client("tom");
    let (mut j, welcome) = server.json_client("jay");
    assert_eq!(welcome["room"], "#lobby");
    let room = j.expect_event("room");
    assert_eq!(
        room,
        serde_json::json!({"ts": room["ts"], "type": "room", "room": "#lobby", "topic": "", "users": ["jay", "tom"]})
    );

    t.send("hi");
    assert_eq!(j.expect_event("public")["room"], "#lobby");
    t.send("/join #dev");
    let part = j.expect_event("part");
    assert_eq!(
        (&part["nick"], &part["room"], &part["to"], &part["here"]),
        (&"tom".into(), &"#lobby".into(), &"#dev".into(), &1.into())
    );
    j.send("/join #DEV");
    let room = j.expect_event("room");
    assert_eq!(
        (&room["room"], &room["users"]),
        (&"#dev".into(), &serde_json::json!(["jay", "tom"]))
    );
    let join = t.expect("joined #");
    assert_eq!(join, "*** jay joined #dev (2 here)");
    t.send("/me waves");
    assert_eq!(j.expect_event("action")["room"], "#dev");
    t.send("/topic plans");
    let topic = j.expect_event("topic");
    assert_eq!(
        (&topic["room"], &topic["topic"], &topic["by"]),
        (&"#dev".into(), &"plans".into(), &"tom".into())
    );
    t.send("/nick thomas");
    assert_eq!(j.expect_event("nick")["room"], "#dev");

    j.send("/list");
    let users = j.expect_event("users");
    assert_eq!((&users["room"], &users["online"]), (&"#dev".into(), &2.into()));
    j.send("/list all");
    let all = j.expect_event("all_users");
    assert_eq!(
        all["users"],
        serde_json::json!([{"nick": "jay", "room": "#dev"}, {"nick": "thomas", "room": "#dev"}])
    );
    j.send("/rooms");
    let rooms = j.expect_event("rooms");
    assert_eq!(
        rooms["rooms"],
        serde_json::json!([{"room": "#dev", "here": 2, "topic": "plans"}, {"room": "#lobby", "here": 0, "topic": ""}])
    );
    j.send("/topic");
    assert!(j.expect_event("topic").get("by").is_none());

    let (mut k, _) = server.json_client("kim");
    k.expect_event("room");
    j.send("/part");
    assert_eq!(j.expect_event("room")["users"], serde_json::json!(["jay", "kim"]));
    let join = k.expect_event("join");
    assert_eq!(
        (&join["room"], &join["from_room"], &join["here"]),
        (&"#lobby".into(), &"#dev".into(), &2.into())
    );
    t.send("/quit");
    t.read_to_close();
    server.wait_console("Room closed");
    k.send("/join #dev");
    let room = k.expect_event("room");
    assert_eq!((&room["users"], &room["topic"]), (&serde_json::json!(["kim"]), &"".into()));
    j.send("/join #bad name");
    assert_eq!(j.expect_event("error")["code"], "usage");
    j.send("/join nohash");
    assert_eq!(j.expect_event("error")["code"], "bad_room");
}

#[test]
fn the_log_records_the_room_of_room_events() {
    let log = temp_path("rooms.jsonl");
    let mut server = Server::start(&["--save", log.to_str().unwrap(), "--default-room", "#Hall"]);
    let mut a = server.text_client("alice");
    let welcome = a.seen.iter().find(|l| l.contains("Welcome")).unwrap().clone();
    assert!(welcome.contains("you are in #Hall"), "{welcome}");
    join(&mut a, "#dev");
    a.send("hello dev");
    a.send("/me waves");
    a.send("/topic plans");
    a.expect("set the topic");
    a.send("/nick al");
    a.expect("known as");
    a.send("/quit");
    a.read_to_close();
    server.wait_console("Disconnected");
    assert!(server.terminate().success());
    let events = read_jsonl(&log);
    let find = |msg: &str| {
        events.iter().find(|e| e["msg"] == msg).unwrap_or_else(|| panic!("no {msg}")).clone()
    };
    assert_eq!(find("Nick set")["meta"]["room"], "#Hall");
    assert_eq!(find("Room created")["meta"]["room"], "#dev");
    let joined = find("Room joined");
    assert_eq!(
        (&joined["meta"]["room"], &joined["meta"]["from"]),
        (&"#dev".into(), &"#Hall".into())
    );
    for msg in ["Public message", "Action", "Topic set", "Nick changed", "Disconnected"] {
        assert_eq!(find(msg)["meta"]["room"], "#dev", "{msg}");
    }
    assert_eq!(find("Room closed")["meta"]["room"], "#dev");
}

#[test]
fn a_bad_default_room_is_refused_at_startup() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tchat"))
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--default-room", "lobby"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("a room name starts with '#'"), "{err}");
}

/// Five connections each send 20 `/join`s of new rooms, each with a line said in it, in
/// one packet, on a server of 10 rooms. Each creation is paid for before the next line
/// is taken, and a new room pushes out the closed room worth least: the strangers' own
/// one-line rooms, never `#project`, closed with its conversation and topic, which are
/// replayed whole to whoever joins it again.
#[test]
fn a_burst_of_room_creations_leaves_a_closed_rooms_history_alone() {
    let server =
        Server::start(&["--max-rooms", "10", "--rate", "20", "--burst", "20", "--replay", "20"]);
    let mut alice = server.text_client("alice");
    join(&mut alice, "#project");
    alice.send("/topic ship the release on friday");
    alice.expect("set the topic");
    for line in ["the build is green", "tagging v2 tonight", "docs are in"] {
        alice.send(line);
    }
    alice.sync();
    alice.send("/part");
    alice.expect("You are in #lobby");
    let mut strangers: Vec<Client> =
        (0..5).map(|c| server.text_client(&format!("stranger{c}"))).collect();
    for (c, s) in strangers.iter_mut().enumerate() {
        let burst: String = (0..20).map(|i| format!("/join #s{c}x{i}\nspam {i}\n")).collect();
        s.send_raw(burst.as_bytes());
    }
    // Well past the cap: rings have been pushed out.
    server.wait_console_nth("Room created", 30);
    let mut bob = server.text_client("bob");
    bob.send("/join #project");
    bob.expect("You are in #project");
    let seen = bob.sync().join("\n");
    for line in ["the build is green", "tagging v2 tonight", "docs are in"] {
        assert!(seen.contains(&format!("<alice> {line}")), "{line:?} lost:\n{seen}");
    }
    assert!(seen.contains("set the topic of #project: ship the release on friday"), "{seen}");
    // The strangers were slowed, not cut, and had no room refused by the cap.
    for s in &mut strangers {
        let told = s.sync();
        assert!(!told.iter().any(|l| l.starts_with("!!!")), "{told:?}");
    }
}

/// A room's cost is charged before the next line of the same packet is looked at: three
/// `/join`s of new rooms in one write at a burst of 10 make two rooms at once (five
/// lines' worth each), and the third only when a token is due, two seconds later at
/// this rate. When the cost was charged after the whole packet, all three came at once.
#[test]
fn room_creation_is_charged_before_the_next_line_of_the_same_packet() {
    let server = Server::start(&["--rate", "0.5", "--burst", "10"]);
    let (mut j, _) = server.json_client("jo");
    assert_eq!(j.expect_event("room")["room"], "#lobby");
    j.send_raw(b"/join #one\n/join #two\n/join #three\n");
    let mut at = Vec::new();
    while at.len() < 3 {
        let room = j.expect_event("room");
        at.push((room["room"].as_str().unwrap().to_owned(), std::time::Instant::now()));
    }
    let rooms: Vec<&str> = at.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(rooms, ["#one", "#two", "#three"]);
    // Two seconds on the server; the first room's event may have been read late.
    let third_after = at[2].1.duration_since(at[0].1);
    assert!(third_after >= std::time::Duration::from_secs(1), "{third_after:?}");
}

/// An address creates at most 10 rooms at once, whatever its connections: the 11th is
/// refused saying when the next is due, on another connection from the same address
/// too, while joining a room that exists still works. (Loopback is exempt by default,
/// as from --max-per-ip; this server exempts nothing.)
#[test]
fn an_address_has_a_budget_of_rooms() {
    let server = Server::start(&["--rate", "0", "--max-per-ip-exempt", "none"]);
    let mut a = server.text_client("alice");
    let burst: String = (0..11).map(|i| format!("/join #r{i}\n")).collect();
    a.send_raw(burst.as_bytes());
    let refused = a.expect("!!!");
    assert_eq!(
        refused,
        "!!! your address has made 10 rooms lately; you may make another in 6 min (join one \
         of those in /rooms meanwhile)"
    );
    assert!(a.seen.iter().any(|l| l.starts_with("*** You are in #r9")), "{:?}", a.seen);
    let mut b = server.text_client("bob");
    b.send("/join #other");
    assert!(b.expect("!!!").starts_with("!!! your address has made 10 rooms lately"));
    assert_eq!(join(&mut b, "#r9"), "*** You are in #r9 (2 here): alice, bob");
    server.wait_console_nth("Room refused", 2);
    assert_eq!(server.console_count("Room created"), 10);
}
