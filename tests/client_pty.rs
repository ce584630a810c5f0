//! The interactive client in a real pseudo-terminal (portable-pty), with the screen
//! modelled by vt100: completion, history, printing above the prompt, no escape
//! sequence from the network reaching the terminal, the trust question for an unknown
//! certificate and the password prompt.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use common::Server;
use common::closer::{Closer, Stage};
use common::peer::{BIN, Peer};
use common::pty::{ROWS, Term};
use common::state_dir::StateDir;
use tchat::protocol::EventKind;

/// `tchat join` on a terminal as `nick`, trusting `server` by its fingerprint, with
/// `extra` arguments; returns once its prompt (in the default room) is shown.
fn join_as(server: &Server, state: &StateDir, nick: &str, extra: &[&str]) -> Term {
    let mut args = vec!["--fingerprint", &server.fingerprint, "--nick", nick];
    args.extend_from_slice(extra);
    let term = Term::start(server.addr, state, &args);
    term.wait_input(&format!("[{nick} #lobby] "));
    term
}

#[test]
fn tab_completes_nicks_and_commands_from_the_live_list() {
    let server = Server::start(&["--rate", "0"]);
    let mut bob = Peer::join(server.addr, "bobby_tables");
    let state = StateDir::new("complete");
    let mut term = join_as(&server, &state, "alice", &[]);

    // A nick at the start of the line is completed and addressed.
    term.keys("bob\t");
    term.wait_input("[alice #lobby] bobby_tables: ");
    term.keys("\x15"); // Ctrl-U: clear the line

    // A command at the start of the line.
    term.keys("/ms\t");
    term.wait_input("[alice #lobby] /msg ");
    // The nick argument of /msg, then send it.
    term.keys("bob\t");
    term.wait_input("[alice #lobby] /msg bobby_tables ");
    term.keys("done\r");
    bob.wait_for(
        "the private message",
        |e| matches!(e, EventKind::Private { from, text, .. } if from == "alice" && text == "done"),
    );

    // Someone joins: completion knows them at once.
    let _carol = Peer::join(server.addr, "carol");
    term.wait_text("carol joined");
    term.keys("ca\t");
    term.wait_input("[alice #lobby] carol: ");
    term.keys("\x15");

    // A rename is followed too, and the prompt shows our own new nick.
    term.keys("/nick alicia\r");
    term.wait_input("[alicia #lobby] ");
    bob.send("/nick robert");
    term.wait_text("bobby_tables is now known as robert");
    term.keys("ro\t");
    term.wait_input("[alicia #lobby] robert: ");
    term.keys("\x15");

    // Ctrl-D on the empty line leaves cleanly.
    term.keys("\x04");
    let status = term.wait_exit();
    assert!(status.success(), "{status:?}");
    term.wait_text("Goodbye");
}

#[test]
fn the_prompt_shows_the_room_and_tab_completes_rooms_after_join() {
    let server = Server::start(&["--rate", "0"]);
    let mut bob = Peer::join(server.addr, "bobby");
    let _carol = Peer::join(server.addr, "carol");
    bob.send("/join #dev");
    bob.wait_for("the room event", |e| matches!(e, EventKind::Room { room, .. } if room == "#dev"));
    let state = StateDir::new("rooms");
    let mut term = join_as(&server, &state, "alice", &[]);

    // The rooms are learned from /rooms and rendered one a line.
    term.keys("/rooms\r");
    term.wait_text("2 rooms:");
    term.wait_text("#dev       1 here");
    term.keys("/join #d\t");
    term.wait_input("[alice #lobby] /join #dev ");
    term.keys("\r");
    term.wait_input("[alice #dev] ");
    term.wait_text("You are in #dev (2 here): alice, bobby");
    bob.wait_for("alice's join", |e| matches!(e, EventKind::Join { nick, .. } if nick == "alice"));

    // Nicks of the room come first, then everyone else known.
    term.keys("\t");
    term.wait_input("[alice #dev] bobby: ");
    term.keys("\t");
    term.wait_input("[alice #dev] carol: ");
    term.keys("\x15");

    // A topic is shown, and /part goes back with the prompt following.
    bob.send("/topic release plans");
    term.wait_text("bobby set the topic of #dev: release plans");
    term.keys("/part\r");
    term.wait_input("[alice #lobby] ");
    term.keys("/join #\t");
    term.wait_input("[alice #lobby] /join #dev ");
    term.keys("\x15\x04");
    assert!(term.wait_exit().success());
}

#[test]
fn up_recalls_history_which_persists_across_runs() {
    let server = Server::start(&["--rate", "0"]);
    let state = StateDir::new("history");
    let mut term = join_as(&server, &state, "hist", &[]);
    // Typed after the welcome: lines arriving while Enter is pressed can still leave the
    // raw input beside its echo when they come in two bursts (see `ui::spawn_printer`).
    term.wait_text("You are in #lobby");
    term.keys("first line\r");
    term.wait_text("<hist> first line");
    term.wait_input("[hist #lobby] ");
    // The sent line is shown once, as the server's timestamped echo; the raw input line
    // was erased.
    let screen = term.screen();
    assert_eq!(screen.matches("first line").count(), 1, "{screen}");
    term.keys("second line\r");
    term.wait_text("<hist> second line");
    term.wait_input("[hist #lobby] ");
    term.keys("\x1b[A");
    term.wait_input("[hist #lobby] second line");
    term.keys("\x1b[A");
    term.wait_input("[hist #lobby] first line");
    // Ctrl-C with text on the line only clears it; on the empty line it leaves.
    term.keys("\x03");
    term.wait_input("[hist #lobby] ");
    term.keys("\x03");
    assert!(term.wait_exit().success());

    let file = state.join("tchat").join("history");
    let saved = std::fs::read_to_string(&file).expect("the history file exists");
    assert!(saved.contains("first line") && saved.contains("second line"), "{saved}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A new session starts with the old history.
    let mut again = join_as(&server, &state, "hist2", &[]);
    again.keys("\x1b[A");
    again.wait_input("[hist2 #lobby] second line");
    again.keys("\x15\x04");
    assert!(again.wait_exit().success());

    // --no-history neither reads nor writes the file.
    let mut none = join_as(&server, &state, "hist3", &["--no-history"]);
    none.keys("not kept\r");
    none.wait_text("<hist3> not kept");
    none.wait_input("[hist3 #lobby] ");
    none.keys("\x1b[A\x1b[A");
    none.wait_input("[hist3 #lobby] not kept");
    none.keys("\x15\x04");
    assert!(none.wait_exit().success());
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(!saved.contains("not kept"), "{saved}");
}

/// A password typed at the prompt (`/pass`, `/oper`, in any case; a registered nick's
/// `/register`, `/identify`, `/password`) is sent but never written to the history
/// file, nor offered by Up.
#[test]
fn password_lines_never_reach_the_history() {
    let server = Server::start(&["--rate", "0"]);
    let state = StateDir::new("history-secret");
    let mut term = join_as(&server, &state, "sec", &[]);
    term.keys("kept line\r");
    term.wait_text("<sec> kept line");
    term.wait_input("[sec #lobby] ");
    for (line, answer) in [
        ("/pass hunter2pass", "password"),
        ("/PASS hunter3pass", "password"),
        ("/oper operpass", "no operators in chat"),
        ("/register regpass", "and to your password"),
        ("/identify sec regpass", "you are identified as sec"),
        ("/password newpass", "sec's password is set"),
    ] {
        let before = term.count(answer);
        term.keys(&format!("{line}\r"));
        term.wait(&format!("the answer to {line:?}"), |t| t.count(answer) > before);
        term.wait_input("[sec #lobby] ");
    }
    term.keys("\x1b[A");
    term.wait_input("[sec #lobby] kept line");
    term.keys("\x15\x04");
    assert!(term.wait_exit().success());
    let saved = std::fs::read_to_string(state.join("tchat").join("history")).unwrap();
    assert!(saved.contains("kept line"), "{saved}");
    assert!(!saved.contains("pass") && !saved.contains("oper"), "{saved}");
}

#[test]
fn incoming_messages_print_above_the_line_being_typed() {
    let server = Server::start(&["--rate", "0"]);
    let mut bob = Peer::join(server.addr, "bob");
    let state = StateDir::new("above");
    let mut term = join_as(&server, &state, "alice", &[]);
    term.keys("half typed");
    term.wait_input("[alice #lobby] half typed");

    bob.send("interrupting you, alice");
    term.wait_text("<bob> interrupting you, alice");
    // The typed text and the cursor are intact below the new message.
    term.wait_input("[alice #lobby] half typed");
    let screen = term.screen();
    let message = screen.find("<bob> interrupting").unwrap();
    let prompt = screen.rfind("[alice #lobby] half typed").unwrap();
    assert!(message < prompt, "message not above the prompt:\n{screen}");
    // A mention rings the bell.
    term.wait("the bell", |t| t.seen.lock().unwrap().raw.contains(&0x07));

    // Escape sequences from another client (title, clear screen) never reach the pty.
    bob.send_bytes(b"\x1b]0;pwned\x07title \x1b[2Jclear \x1b[31mred\n");
    term.wait_text("<bob> title clear red");
    term.wait_input("[alice #lobby] half typed");

    // Finishing the line sends all of it.
    term.keys(" and done\r");
    bob.wait_for(
        "the whole line",
        |e| matches!(e, EventKind::Public { text, .. } if text == "half typed and done"),
    );
    term.keys("\x04");
    assert!(term.wait_exit().success());
    let raw = term.seen.lock().unwrap().raw.clone();
    assert!(!contains(&raw, b"\x1b]"), "an OSC reached the terminal");
    assert!(!contains(&raw, b"\x1b[2J"), "a clear-screen reached the terminal");
    assert!(!contains(&raw, b"pwned"));
}

/// `/clear` clears the screen and draws the prompt at the top, and what the screen
/// showed stays in the terminal's scrollback; keys typed right after it are kept on the
/// new prompt, and lines that arrive later print above it as usual.
#[test]
fn clear_empties_the_screen_into_the_scrollback_and_keeps_typing() {
    let server = Server::start(&["--rate", "0"]);
    let mut dan = Peer::join(server.addr, "dan");
    let state = StateDir::new("clear");
    let mut term = join_as(&server, &state, "cleo", &[]);
    dan.send("said before the clear");
    term.wait_text("<dan> said before the clear");
    term.keys("/CLEAR\rtyped ahead");
    term.wait("a clear screen", |t| {
        !t.flat().contains("before the clear") && !t.flat().contains("dan joined")
    });
    term.wait_input("[cleo #lobby] typed ahead");
    assert_eq!(term.cursor_row().0, "[cleo #lobby] typed ahead");
    assert_eq!(term.screen().trim(), "[cleo #lobby] typed ahead", "{}", term.screen());
    let kept = term.scrollback_and_screen();
    assert!(kept.contains("<dan> said before the clear"), "not in the scrollback:\n{kept}");
    let raw = term.seen.lock().unwrap().raw.clone();
    assert!(!contains(&raw, b"\x1b[3J"), "the scrollback was erased");

    dan.send("said after the clear");
    term.wait_text("<dan> said after the clear");
    term.wait_input("[cleo #lobby] typed ahead");
    let screen = term.screen();
    assert!(screen.find("after the clear") < screen.find("typed ahead"), "{screen}");
    assert!(!term.flat().contains("unknown command"), "{screen}");
    term.keys("\x03");
    term.wait_input("[cleo #lobby] ");
    term.keys("\x04");
    assert!(term.wait_exit().success());
}

/// The issue's paste: 40 lines arrive at the terminal at once, twice the default burst.
/// All of them reach the other participant, in order; the client sends them at the rate
/// the server's welcome stated, so the server never has to slow it down (no notice), and
/// nothing is reported dropped.
#[test]
fn a_pasted_block_of_forty_lines_arrives_whole() {
    let server = Server::start(&[]); // the defaults: --rate 5 --burst 20
    let mut bob = Peer::join(server.addr, "bob");
    let state = StateDir::new("paste");
    let mut term = join_as(&server, &state, "alice", &[]);
    // As a terminal pastes into an application that turned bracketed paste on (rustyline
    // does): the block between markers, its line ends as Enter sends them.
    let lines: Vec<String> = (1..=40).map(|i| format!("pasted line {i}")).collect();
    term.keys(&format!("\x1b[200~{}\x1b[201~", lines.join("\r")));
    term.wait_text("pasted line 40");
    term.keys("\r");
    let mut got = Vec::new();
    while got.len() < 40 {
        if let EventKind::Public { from, text, .. } = bob.next_event() {
            assert_eq!(from, "alice");
            got.push(text);
        }
    }
    let expected: Vec<String> = (1..=40).map(|i| format!("pasted line {i}")).collect();
    assert_eq!(got, expected);
    term.wait_text("<alice> pasted line 40");
    let screen = term.screen();
    assert!(!screen.contains("sending faster than"), "{screen}");
    assert!(!screen.contains("!!!"), "{screen}");
    term.keys("\x04");
    assert!(term.wait_exit().success());
}

/// Lines typed ahead, or pasted by a terminal without bracketed paste: each Enter
/// arrives while the previous line is still being sent, and none may be lost between
/// two `readline` calls.
#[test]
fn forty_lines_typed_ahead_all_arrive() {
    let server = Server::start(&[]);
    let mut bob = Peer::join(server.addr, "bob");
    let state = StateDir::new("typeahead");
    let mut term = join_as(&server, &state, "alice", &[]);
    let lines: Vec<String> = (1..=40).map(|i| format!("typed line {i}")).collect();
    term.keys(&format!("{}\r", lines.join("\r")));
    let mut got = Vec::new();
    while got.len() < 40 {
        if let EventKind::Public { from, text, .. } = bob.next_event() {
            assert_eq!(from, "alice");
            got.push(text);
        }
    }
    assert_eq!(got, lines);
    term.wait_text("<alice> typed line 40");
    term.keys("\x04");
    assert!(term.wait_exit().success());
}

/// A fake server that sends escape sequences inside JSON events, bypassing the real
/// server's sanitiser: the client must strip them on its own.
#[test]
fn the_client_strips_escapes_even_when_the_server_does_not() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut hello = String::new();
        reader.read_line(&mut hello).unwrap();
        assert_eq!(hello.trim_end(), "/hello json eve");
        let mut out = stream;
        let ts = "\"ts\":\"2026-11-25T19:00:00Z\"";
        let evil = r#"\u001b]0;pwned\u0007\u001b[2J\u001b[31m\u009b2J"#;
        let lines = [
            format!(
                r#"{{{ts},"type":"welcome","server":"fake{evil}","version":"0","nick":"eve","online":2,"users":["eve","m{evil}x"]}}"#
            ),
            format!(r#"{{{ts},"type":"public","from":"m{evil}x","text":"a{evil}b"}}"#),
            format!(r#"{{{ts},"type":"action","from":"m{evil}x","text":"c{evil}d"}}"#),
            format!(r#"{{{ts},"type":"info","message":"e{evil}f"}}"#),
            // A room name: in the prompt and in /join's completion.
            format!(
                r##"{{{ts},"type":"room","room":"#d{evil}ev","topic":"t{evil}t","users":["eve"]}}"##
            ),
            format!(
                r##"{{{ts},"type":"rooms","rooms":[{{"room":"#o{evil}ps","here":1,"topic":""}}]}}"##
            ),
            "!!! raw \u{1b}]0;pwned\u{7}refusal\u{1b}[2J".to_owned(),
            format!(r#"{{{ts},"type":"public","from":"mx","text":"marker"}}"#),
        ];
        for line in lines {
            out.write_all(format!("{line}\n").as_bytes()).unwrap();
        }
        // Wait for the client's /quit, then close.
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if line.starts_with("/quit") {
                break;
            }
            line.clear();
        }
    });
    let state = StateDir::new("fake");
    let mut term = Term::start(addr, &state, &["--plain", "--nick", "eve"]);
    term.wait_text("<mx> marker");
    let screen = term.screen();
    for text in
        ["<mx> ab", "* mx cd", "*** ef", "!!! raw refusal", "Welcome to fake", "of #dev: tt"]
    {
        assert!(screen.contains(text), "{text:?} missing:\n{screen}");
    }
    // The nick list and the rooms were cleaned too: the prompt shows the clean room,
    // completion offers the clean nick and room. (The line being edited keeps the
    // prompt's width from before the room came; an empty Enter starts one in full.)
    term.keys("\r");
    term.wait_input("[eve #dev] ");
    term.keys("m\t");
    term.wait_input("[eve #dev] mx: ");
    term.keys("\x15/join #o\t");
    term.wait_input("[eve #dev] /join #ops ");
    term.keys("\x15\x04");
    term.wait_exit();
    fake.join().unwrap();
    let raw = term.seen.lock().unwrap().raw.clone();
    assert!(!contains(&raw, b"\x1b]"), "an OSC reached the terminal");
    assert!(!contains(&raw, b"\x1b[2J"), "a clear-screen reached the terminal");
    assert!(!contains(&raw, "\u{9b}".as_bytes()), "a C1 CSI reached the terminal");
    assert!(!contains(&raw, b"pwned"));
}

#[test]
fn a_dropped_connection_is_reported_and_the_terminal_restored() {
    let mut server = Server::start(&["--rate", "0"]);
    let state = StateDir::new("drop");
    // --no-reconnect: the behaviour from before reconnecting, exit on a lost server.
    let mut term = join_as(&server, &state, "gina", &["--no-reconnect"]);
    term.keys("unsent");
    term.wait_input("[gina #lobby] unsent");
    // The editor has the terminal in raw mode while it waits for keys.
    assert_eq!(term.local_flags() & libc::ICANON, 0);
    server.terminate();
    term.wait_text("Server shutting down");
    let status = term.wait_exit();
    assert!(!status.success());
    term.wait_text("tchat: the server closed the connection");
    let flags = term.local_flags();
    assert_ne!(flags & libc::ICANON, 0, "canonical mode not restored");
    assert_ne!(flags & libc::ECHO, 0, "echo not restored");
}

/// A Wi-Fi drop: the connection is cut while the user types, others talk meanwhile; the
/// client says so on one line, comes back on its own, marks what it missed, and the
/// line being typed is still there. Bob sees no leave and no join.
#[test]
fn a_lost_connection_is_resumed_with_a_marker_and_the_typed_line_kept() {
    let server = Server::start(&["--rate", "0"]);
    let proxy = common::proxy::Proxy::start(server.addr);
    let mut bob = Peer::join(server.addr, "bob");
    let state = StateDir::new("resume");
    let mut term =
        Term::start(proxy.addr, &state, &["--fingerprint", &server.fingerprint, "--nick", "ivy"]);
    term.wait_input("[ivy #lobby] ");
    bob.wait_for("ivy's join", |e| matches!(e, EventKind::Join { nick, .. } if nick == "ivy"));
    bob.send("before");
    term.wait_text("<bob> before");
    term.keys("half a thought");
    term.wait_input("[ivy #lobby] half a thought");

    proxy.set_down(true);
    proxy.cut();
    term.wait_text("Connection lost");
    term.wait_text("reconnecting in");
    for i in 1..=3 {
        bob.send(&format!("while away {i}"));
    }
    proxy.set_down(false);
    term.wait_text("--- 3 messages while you were away ---");
    term.wait_text("<bob> while away 3");
    term.wait_input("[ivy #lobby] half a thought");
    bob.send("live");
    term.wait_text("<bob> live");
    assert_eq!(term.count("<bob> while away 2"), 1, "{}", term.screen());
    assert!(!term.seen.lock().unwrap().raw.contains(&0x07), "replayed events rang the bell");
    // Bob saw nothing of it: his own lines came back, and no leave or join.
    bob.send("sync");
    loop {
        match bob.next_event() {
            EventKind::Public { text, .. } if text == "sync" => break,
            e @ (EventKind::Join { .. } | EventKind::Leave { .. }) => panic!("bob saw {e:?}"),
            _ => {}
        }
    }
    term.keys("\r");
    term.wait_text("<ivy> half a thought");
}

/// A server stopped for several attempts: one notice, rewritten in place at each attempt
/// with the time, then the reconnected line under it; the line being typed stays.
#[test]
fn a_server_down_for_several_attempts_shows_one_notice_then_the_reconnected_line() {
    let mut first = Server::start(&["--rate", "0"]);
    let proxy = common::proxy::Proxy::start(first.addr);
    let state = StateDir::new("one-notice");
    let mut term =
        Term::start(proxy.addr, &state, &["--fingerprint", &first.fingerprint, "--nick", "ivy"]);
    term.wait_input("[ivy #lobby] ");
    term.keys("typed while it was down");
    term.wait_input("[ivy #lobby] typed while it was down");
    assert!(first.terminate().success());
    proxy.cut();
    // Attempts 1 and 2 failed: the notice says attempt 3, once.
    term.wait_text("(attempt 3;");
    assert_eq!(term.count("Connection lost"), 1, "{}", term.screen());
    let screen = term.screen();
    let notice = screen.lines().find(|l| l.contains("Connection lost")).unwrap();
    // `HH:MM *** Connection lost at HH:MM (REASON); reconnecting in …` (the reason of
    // the last failure, which is the OS's: closed or reset).
    let (time, rest) = notice.split_at(5);
    assert!(is_clock(time), "{notice}");
    let lost = rest.strip_prefix(" *** Connection lost at ").expect(notice);
    assert!(is_clock(&lost[..5]) && lost[5..].starts_with(" ("), "{notice}");

    // Back, with the same certificate.
    let second =
        Server::start_in(StateDir::copy_of(&first.state, "one-notice-2"), &[], common::WAIT);
    proxy.point_to(second.addr);
    term.wait_text("Reconnected as ivy");
    term.wait_input("[ivy #lobby] typed while it was down");
    let screen = term.screen();
    assert_eq!(term.count("Connection lost"), 1, "{screen}");
    let rows: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    // Right under the notice (and its second row): the reconnection, with its time.
    let lost = rows.iter().position(|l| l.contains("Connection lost")).unwrap();
    let back = rows.iter().position(|l| l.contains("*** Reconnected as ivy")).unwrap();
    assert!(back > lost && rows[lost + 1..back].iter().all(|l| !l.contains("***")), "{screen}");
    assert!(is_clock(&rows[back][..5]), "{screen}");
    term.keys("\r");
    term.wait_text("<ivy> typed while it was down");
}

/// Nick colors: the palette's 256-color stand-ins, its 24-bit colors when COLORTERM
/// says the terminal takes them, and no color at all (nor bold, nor dim) with NO_COLOR.
#[test]
fn nick_colors_follow_colorterm_and_no_color_turns_every_color_off() {
    let server = Server::start(&["--rate", "0"]);
    let mut al = Peer::join(server.addr, "al");
    let state = StateDir::new("colors");
    let (r, g, b) = tchat::client::palette::nick_color("al").rgb;
    let xterm = tchat::client::palette::nick_color("al").xterm;
    let runs: [(&[&str], &str, Option<String>); 3] = [
        (&["-u", "COLORTERM"], "eve", Some(format!("\x1b[22;38;5;{xterm}mal\x1b[0m"))),
        (&["COLORTERM=truecolor"], "fay", Some(format!("\x1b[22;38;2;{r};{g};{b}mal\x1b[0m"))),
        (&["COLORTERM=truecolor", "NO_COLOR=1"], "gus", None),
    ];
    for (env, nick, want) in runs {
        let join = [BIN, "join", &server.addr.to_string(), "--fingerprint", &server.fingerprint];
        let args: Vec<String> =
            env.iter().chain(&join).chain(&["--nick", nick]).map(|a| a.to_string()).collect();
        let mut term = Term::spawn_program("env", &args, &state, ROWS, 100);
        term.wait_input(&format!("[{nick} #lobby] "));
        al.send(&format!("hi {nick}"));
        term.wait_text(&format!("<al> hi {nick}"));
        let raw = String::from_utf8_lossy(&term.seen.lock().unwrap().raw).into_owned();
        match want {
            Some(want) => assert!(raw.contains(&want), "{nick}: no {want:?} in {raw:?}"),
            None => assert!(sgr_free(&raw), "{nick}: colors despite NO_COLOR: {raw:?}"),
        }
        term.keys("\x04");
        assert!(term.wait_exit().success());
    }
}

/// Whether `raw` holds no SGR sequence (`ESC [ … m`): no color, bold or dim.
fn sgr_free(raw: &str) -> bool {
    raw.split("\x1b[").skip(1).all(|seq| {
        let end = seq.find(|c: char| !(c.is_ascii_digit() || c == ';'));
        end.is_none_or(|end| !seq[end..].starts_with('m'))
    })
}

/// `/help` fits an 80×24 screen (a grouped overview, nothing scrolled off) and on a
/// narrow one; rows break at spaces only, so every word reads whole; `/help COMMAND`
/// gives the usage, aliases and description, wrapped the same way.
#[test]
fn help_fits_the_screen_and_breaks_rows_between_words() {
    use tchat::client::help;
    let server = Server::start(&[]);
    let state = StateDir::new("help-fits");
    let entries = tchat::protocol::help_entries_for(false, 1);
    for (cols, nick) in [(80, "hal"), (44, "ida")] {
        let args = ["--fingerprint", &server.fingerprint, "--nick", nick];
        let mut term = Term::start_sized(server.addr, &state, &args, 24, cols);
        let prompt = format!("[{nick} #lobby] ");
        term.wait_input(&prompt);
        term.keys("/help\r");
        term.wait_text("/help COMMAND says");
        term.wait_input(&prompt);
        let rows = help_rows(&term, "*** Talk:");
        let most = if cols >= 80 { 19 } else { 23 };
        assert!(rows.len() <= most, "{} rows at {cols}:\n{}", rows.len(), term.screen());
        // The words in order, none cut: the overview's own.
        let (groups, more) = help::overview(&entries, true);
        let mut want: Vec<String> = Vec::new();
        for (group, names) in groups {
            want.extend(format!("{group}:").split(' ').map(str::to_owned));
            want.extend(names);
        }
        want.extend(more.split(' ').map(str::to_owned));
        assert_eq!(words(&rows), want, "at {cols} columns:\n{}", term.screen());

        term.keys("/help msg\r");
        term.wait_text("*** /msg <user> <text>");
        term.wait_input(&prompt);
        let rows = help_rows(&term, "*** /msg <user>");
        let entry = &help::topic("msg").unwrap()[0];
        let text = format!("{} {}", entry.usage, entry.description);
        assert!(text.contains("(also /query, /tell)"));
        let want: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        assert_eq!(words(&rows), want, "at {cols} columns:\n{}", term.screen());
        term.keys("\x04");
        assert!(term.wait_exit().success());
    }
}

/// The rows of the last `/help` answer on screen, from the one holding `first` to the
/// row before the prompt; each must fit the screen (the vt100 model cuts nothing, so
/// a row as wide as the screen would be one the terminal wrapped).
fn help_rows(term: &Term, first: &str) -> Vec<String> {
    let screen = term.screen();
    let rows: Vec<&str> = screen.lines().collect();
    let start = rows.iter().rposition(|r| r.contains(first)).expect(first);
    let end = rows.iter().rposition(|r| r.starts_with('[')).expect("the prompt");
    rows[start..end].iter().map(|r| r.to_string()).collect()
}

/// The words of help rows, without their time and `***`.
fn words(rows: &[String]) -> Vec<String> {
    let text: Vec<&str> = rows.iter().flat_map(|r| r.split_whitespace()).collect();
    text.into_iter()
        .filter(|w| *w != "***" && !(w.len() == 5 && w.as_bytes()[2] == b':'))
        .map(str::to_owned)
        .collect()
}

/// Whether `text` reads `HH:MM`.
fn is_clock(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 5 && b[2] == b':' && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn sigterm_leaves_cleanly_and_restores_the_terminal() {
    let server = Server::start(&["--rate", "0"]);
    let mut bob = Peer::join(server.addr, "bob");
    let state = StateDir::new("sigterm");
    let mut term = join_as(&server, &state, "hank", &["--no-bell"]);
    term.keys("typing");
    term.wait_input("[hank #lobby] typing");
    // --no-bell: a mention is shown but does not ring.
    bob.send("hey hank");
    term.wait_text("<bob> hey hank");
    term.wait_input("[hank #lobby] typing");
    assert!(!term.seen.lock().unwrap().raw.contains(&0x07), "the bell rang");
    assert_eq!(term.local_flags() & libc::ICANON, 0);
    let pid = term.child.process_id().expect("a pid") as libc::pid_t;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let event = bob.wait_for("hank leaving", |e| matches!(e, EventKind::Leave { .. }));
    assert!(matches!(event, EventKind::Leave { nick, .. } if nick == "hank"));
    assert!(term.wait_exit().success());
    let flags = term.local_flags();
    assert_ne!(flags & libc::ICANON, 0, "canonical mode not restored");
    assert_ne!(flags & libc::ECHO, 0, "echo not restored");
}

/// A line of `n` characters in distinct words that start with `tag`, so that any part of
/// a stale copy of it is found again on the screen.
fn long_line(tag: char, n: usize) -> String {
    let mut line = String::new();
    let mut word = 0;
    while line.len() < n {
        line.push_str(&format!("{tag}{word:03} "));
        word += 1;
    }
    line.truncate(n);
    line.trim_end().to_owned()
}

/// Waits for the echo of `line` and the fresh prompt, then checks that the line, and each
/// word of it, is on the screen exactly once.
fn assert_shown_once(term: &Term, echo: &str, prompt: &str, line: &str) {
    term.wait_text(echo);
    term.wait_input(prompt);
    let screen = term.screen();
    assert_eq!(term.count(line), 1, "{screen}");
    for word in line.split(' ') {
        assert_eq!(term.count(word), 1, "{word:?} is not shown once:\n{screen}");
    }
    assert_eq!(term.count(prompt.trim_end()), 1, "a stale prompt:\n{screen}");
}

#[test]
fn a_line_sent_under_a_wide_nick_shows_once() {
    let server = Server::start(&["--rate", "0"]);
    let state = StateDir::new("widenick");
    // 32 wide characters: the prompt takes 74 columns but only 42 characters.
    let nick = "名".repeat(32);
    let mut term = Term::start_sized(
        server.addr,
        &state,
        &["--fingerprint", &server.fingerprint, "--nick", &nick],
        ROWS,
        80,
    );
    let prompt = format!("[{nick} #lobby] ");
    term.wait_input(&prompt);
    // 74 + 20 columns: two rows, though 42 + 20 characters would fit on one.
    let line = "wq1 wq2 wq3 wq4 wq50";
    term.keys(line);
    term.wait_typed(&format!("{prompt}{line}"));
    term.keys("\r");
    assert_shown_once(&term, &format!("<{nick}> {line}"), &prompt, line);
    term.keys("\x04");
    assert!(term.wait_exit().success());
}

#[test]
fn a_line_wider_than_the_terminal_shows_once() {
    let server = Server::start(&["--rate", "0"]);
    let state = StateDir::new("wrapped");
    let mut term = Term::start_sized(
        server.addr,
        &state,
        &["--fingerprint", &server.fingerprint, "--nick", "alice"],
        ROWS,
        80,
    );
    term.wait_input("[alice #lobby] ");
    for (tag, n) in [('a', 150), ('b', 230)] {
        // 15 + 150 columns take three rows of 80; 15 + 230 take four.
        let line = long_line(tag, n);
        term.keys(&line);
        term.wait_typed(&format!("[alice #lobby] {line}"));
        term.keys("\r");
        assert_shown_once(&term, &format!("<alice> {line}"), "[alice #lobby] ", &line);
    }
    term.keys("\x04");
    assert!(term.wait_exit().success());
}

#[test]
fn resizing_while_a_wrapped_line_is_typed_leaves_no_stale_copy() {
    let server = Server::start(&["--rate", "0"]);
    let mut bob = Peer::join(server.addr, "bob");
    let state = StateDir::new("resize");
    let mut term = Term::start_sized(
        server.addr,
        &state,
        &["--fingerprint", &server.fingerprint, "--nick", "alice"],
        ROWS,
        80,
    );
    term.wait_input("[alice #lobby] ");
    let line = long_line('r', 150);
    term.keys(&line);
    term.wait_typed(&format!("[alice #lobby] {line}"));
    for (rows, cols) in [(ROWS, 60), (ROWS, 100), (20, 45)] {
        term.resize(rows, cols);
        // The line is redrawn at the new width, once, with nothing stale above it.
        term.wait_typed(&format!("[alice #lobby] {line}"));
        let screen = term.screen();
        assert_eq!(term.count("[alice #lobby]"), 1, "after resizing to {cols} columns:\n{screen}");
        assert_eq!(term.count("r000"), 1, "after resizing to {cols} columns:\n{screen}");
    }
    // Messages still print above the line, and sending it shows it once.
    bob.send("still here");
    term.wait_text("<bob> still here");
    term.wait_typed(&format!("[alice #lobby] {line}"));
    term.keys("\r");
    assert_shown_once(&term, &format!("<alice> {line}"), "[alice #lobby] ", &line);
    term.keys("\x04");
    assert!(term.wait_exit().success());
}

#[test]
fn an_unknown_certificate_is_shown_trusted_on_yes_then_joined_silently() {
    let server = Server::start(&[]);
    let mut bob = Peer::join(server.addr, "bob");
    let state = StateDir::new("trust-ask");
    let mut term = Term::start(server.addr, &state, &["--nick", "alice"]);
    term.wait_text("Trust it and connect (yes/no)?");
    assert!(term.flat().contains(&format!("Its fingerprint is {}.", server.fingerprint)));
    // An unclear answer is asked again, not taken as no.
    term.keys("maybe\r");
    term.wait_text("Please type yes or no:");
    term.keys("y\r");
    term.wait_input("[alice #lobby] ");
    bob.wait_for("alice's join", |e| matches!(e, EventKind::Join { nick, .. } if nick == "alice"));
    let known = std::fs::read_to_string(state.join("tchat/known_hosts")).unwrap();
    assert_eq!(known, format!("{} {}\n", server.addr, server.fingerprint));
    term.keys("\x04");
    assert!(term.wait_exit().success());

    // Pinned: the second run asks nothing.
    let mut again = Term::start(server.addr, &state, &["--nick", "alice2"]);
    again.wait_input("[alice2 #lobby] ");
    let screen = again.screen();
    assert!(!screen.contains("Trust it") && !screen.contains("fingerprint"), "{screen}");
    again.keys("\x04");
    assert!(again.wait_exit().success());
}

/// Three unclear answers to the trust question count as no: the client does not
/// connect, and says why.
#[test]
fn unclear_answers_to_the_trust_question_end_as_no() {
    let server = Server::start(&[]);
    let state = StateDir::new("trust-unclear");
    let mut term = Term::start(server.addr, &state, &["--nick", "alice"]);
    term.wait_text("Trust it and connect (yes/no)?");
    for n in 1..=2 {
        term.keys("maybe\r");
        term.wait(&format!("question {n} again"), |t| t.count("Please type yes or no:") == n);
    }
    term.keys("perhaps\r");
    let status = term.wait_exit();
    assert!(!status.success(), "{status:?}");
    term.wait_text("was not trusted");
    assert_eq!(term.count("Please type yes or no:"), 2, "{}", term.screen());
    assert!(!state.join("tchat/known_hosts").exists());
}

#[test]
fn the_password_prompt_does_not_echo_and_joins() {
    let secret = "pty-s3cret-word";
    let state = StateDir::new("password-ask");
    let file = state.join("password");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let mut server = Server::start(&["--password-file", file.to_str().unwrap()]);
    let mut term = Term::start(
        server.addr,
        &state,
        &["--fingerprint", &server.fingerprint, "--nick", "carol"],
    );
    term.wait_text(&format!("Password for {}:", server.addr));
    term.keys(&format!("{secret}\r"));
    term.wait_input("[carol #lobby] ");
    server.wait_console("new=carol");
    // Neither on the screen nor anywhere in what the terminal received.
    let raw = String::from_utf8_lossy(&term.seen.lock().unwrap().raw).into_owned();
    assert!(!raw.contains(secret), "the password was echoed:\n{}", term.screen());
    assert!(!server.console_text().contains(secret));
    term.keys("\x04");
    assert!(term.wait_exit().success());
}

/// A wrong password typed at the prompt is asked for again, three tries in all as ssh
/// gives, and the server lets the three through at once (its waits begin after them):
/// two wrong then the right one joins; three wrong end the run with the refusal.
#[test]
fn a_wrong_typed_password_is_asked_again_three_tries_in_all() {
    let secret = "pty-third-time";
    let state = StateDir::new("password-tries");
    let file = state.join("password");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let mut server = Server::start(&["--password-file", file.to_str().unwrap()]);
    let fingerprint = server.fingerprint.clone();
    let args = ["--fingerprint", fingerprint.as_str(), "--nick", "tess"];
    let mut term = Term::start(server.addr, &state, &args);
    let prompt = format!("Password for {}:", server.addr);
    for (n, wrong) in [(1, "first-typo"), (2, "second-typo")] {
        term.wait(&format!("prompt {n}"), |t| t.count(&prompt) == n);
        term.keys(&format!("{wrong}\r"));
        term.wait(&format!("try again {n}"), |t| t.count("Wrong password, try again.") == n);
    }
    term.wait("prompt 3", |t| t.count(&prompt) == 3);
    term.keys(&format!("{secret}\r"));
    term.wait_input("[tess #lobby] ");
    server.wait_console("new=tess");
    assert!(!server.console_text().contains("too soon"), "{}", server.console_text());
    term.keys("\x04");
    assert!(term.wait_exit().success());

    // Three wrong ones (the address's count was cleared by the right one): the end.
    let mut term = Term::start(server.addr, &state, &args);
    for n in 1..=3 {
        term.wait(&format!("prompt {n}"), |t| t.count(&prompt) == n);
        term.keys(&format!("wrong-{n}\r"));
    }
    let status = term.wait_exit();
    assert!(!status.success(), "{status:?}");
    term.wait_text("!!! wrong password");
    term.wait_text("tchat: the server refused the connection");
    assert_eq!(term.count(&prompt), 3, "{}", term.screen());
    assert_eq!(term.count("Wrong password, try again."), 2, "{}", term.screen());
    for typed in ["first-typo", "second-typo", "wrong-1", "wrong-3", secret] {
        let raw = String::from_utf8_lossy(&term.seen.lock().unwrap().raw).into_owned();
        assert!(!raw.contains(typed), "{typed} was echoed:\n{}", term.screen());
        assert!(!server.console_text().contains(typed), "{typed} reached the console");
    }
    assert!(!server.console_text().contains("too soon"), "{}", server.console_text());
}

/// From `--password-file` a wrong password ends the run at once: nothing to retype.
#[test]
fn a_wrong_password_from_a_file_ends_at_once() {
    let state = StateDir::new("password-file-wrong");
    let (file, given) = (state.join("password"), state.join("given"));
    std::fs::write(&file, "right-one\n").unwrap();
    std::fs::write(&given, "wrong-one\n").unwrap();
    let server = Server::start(&["--password-file", file.to_str().unwrap()]);
    let given = given.to_str().unwrap();
    let args = ["--fingerprint", server.fingerprint.as_str(), "--password-file", given];
    let mut term = Term::start(server.addr, &state, &args);
    let status = term.wait_exit();
    assert!(!status.success(), "{status:?}");
    term.wait_text("check --password-file");
    assert_eq!(term.count("Password for"), 0, "{}", term.screen());
    assert_eq!(term.count("try again"), 0, "{}", term.screen());
}

/// The password typed at the prompt is kept for the run (in memory): a cut connection
/// comes back without asking again. A server that then refuses it (restarted with
/// another password) ends the client at once, instead of a loop of attempts.
#[test]
fn a_typed_password_is_given_again_on_reconnect_and_a_refusal_ends_the_client() {
    let secret = "pty-kept-word";
    let state = StateDir::new("password-kept");
    let (file, other) = (state.join("password"), state.join("other"));
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    std::fs::write(&other, "another-word\n").unwrap();
    let mut server = Server::start(&["--password-file", file.to_str().unwrap()]);
    let proxy = common::proxy::Proxy::start(server.addr);
    let mut term = Term::start(proxy.addr, &state, &["--plain", "--nick", "kim"]);
    term.wait_text("Password for");
    term.keys(&format!("{secret}\r"));
    term.wait_input("[kim #lobby] ");

    proxy.cut();
    term.wait_text("Connection lost");
    term.wait_text("Reconnected as kim");
    term.wait_input("[kim #lobby] ");
    assert_eq!(term.count("Password for"), 1, "{}", term.screen());

    proxy.set_down(true);
    proxy.cut();
    assert!(server.terminate().success());
    let second = Server::start(&["--password-file", other.to_str().unwrap()]);
    proxy.point_to(second.addr);
    proxy.set_down(false);
    term.wait_text("wrong password");
    let status = term.wait_exit();
    assert!(!status.success(), "{status:?}");
    term.wait_text("tchat: the server refused the connection");
    let raw = String::from_utf8_lossy(&term.seen.lock().unwrap().raw).into_owned();
    assert!(!raw.contains(secret), "the password was shown:\n{}", term.screen());
}

/// `tchat join` on a terminal against `closer`, which ends every connection before a
/// welcome: the client must give up after that one connection with one line saying
/// what happened, and exit 1, instead of reconnecting as for a lost session. Returns
/// the screen.
fn gives_up_before_a_welcome(closer: &Closer, name: &str, args: &[&str]) -> String {
    let state = StateDir::new(name);
    let mut term = Term::start(closer.addr, &state, args);
    let status = term.wait_exit();
    let screen = term.flat();
    assert_eq!(status.exit_code(), 1, "{screen}");
    assert!(!screen.contains("reconnecting"), "{screen}");
    assert_eq!(closer.accepted(), 1, "{screen}");
    screen
}

#[test]
fn a_server_that_closes_after_the_tls_handshake_is_a_failure_to_connect() {
    let certs = StateDir::new("closer-certs");
    let closer = Closer::start(Stage::Tls(certs.to_path_buf()));
    let fp = closer.fingerprint.clone().unwrap();
    let screen = gives_up_before_a_welcome(&closer, "closer-tls", &["--fingerprint", &fp]);
    let said = format!(
        "tchat: {} completed the TLS handshake but closed the connection before any welcome",
        closer.addr
    );
    assert!(screen.contains(&said), "{screen}");
}

#[test]
fn a_plain_server_that_closes_at_once_or_after_a_banner_is_a_failure_to_connect() {
    let closer = Closer::start(Stage::Accept);
    let screen = gives_up_before_a_welcome(&closer, "closer-accept", &["--plain"]);
    let said = format!(
        "{} accepted the connection but closed the connection before any welcome: not a \
         tchat server",
        closer.addr
    );
    assert!(screen.contains(&said), "{screen}");

    let closer = Closer::start(Stage::Banner("HTTP/1.0 400 Bad Request"));
    let screen = gives_up_before_a_welcome(&closer, "closer-banner", &["--plain"]);
    assert!(
        screen.contains("it is a web server (it said \"HTTP/1.0 400 Bad Request\")"),
        "{screen}"
    );
}

#[test]
fn a_tls_client_names_what_answered_instead_of_tls() {
    let closer = Closer::start(Stage::Banner("SSH-2.0-dropbear_2022.83"));
    let screen = gives_up_before_a_welcome(&closer, "closer-ssh", &[]);
    let said = format!("{} is an SSH server, not a tchat server", closer.addr);
    assert!(screen.contains(&said), "{screen}");
    assert!(!screen.contains("older server"), "{screen}");
    let closer = Closer::start(Stage::Accept);
    let screen = gives_up_before_a_welcome(&closer, "closer-tls-accept", &[]);
    assert!(screen.contains("the server closed the connection during the handshake"), "{screen}");
}

/// A chat on two servers sharing one certificate, on a terminal: the trust question is
/// answered once, at the first address; when that server stops, the client moves to the
/// second, trusts it for the same certificate and pins it there too, and the line being
/// typed is kept.
#[test]
fn a_chat_on_two_servers_is_trusted_once_and_followed_when_one_stops() {
    let mut first = Server::start(&["--rate", "0"]);
    let state = StateDir::copy_of(&first.state, "second-server");
    let second = Server::start_in(state, &["--rate", "0"], common::WAIT);
    let home = StateDir::new("two-servers");
    let other = second.addr.to_string();
    let mut term = Term::start(first.addr, &home, &[&other, "--nick", "ivy"]);
    term.wait_text("Trust it and connect (yes/no)?");
    term.keys("yes\r");
    term.wait_input("[ivy #lobby] ");
    term.keys("half a thought");
    term.wait_input("[ivy #lobby] half a thought");
    assert!(first.terminate().success());
    term.wait_text(&format!("Reconnected to {other} as ivy"));
    term.wait_input("[ivy #lobby] half a thought");
    assert_eq!(term.count("Trust it"), 1, "{}", term.screen());
    let known = std::fs::read_to_string(home.join("tchat/known_hosts")).unwrap();
    let fp = &first.fingerprint;
    assert_eq!(known, format!("{} {fp}\n{other} {fp}\n", first.addr));
    let mut bob = Peer::join(second.addr, "bob");
    term.keys("\r");
    term.wait_text("<ivy> half a thought");
    bob.wait_for(
        "ivy's line",
        |e| matches!(e, EventKind::Public { text, .. } if text == "half a thought"),
    );
    term.keys("\x04");
    assert!(term.wait_exit().success());
}

/// The prompt follows the nick the server gives at once, while a line is being typed:
/// a reconnection that cannot get the nick back (someone took it meanwhile) shows the
/// guest nick without waiting for Enter, and when the nick frees up the client takes
/// it back and the prompt follows again; the typed text stays.
#[test]
fn the_prompt_follows_a_nick_taken_during_an_outage_and_taken_back() {
    let server = Server::start(&["--rate", "0", "--resume-grace", "0"]);
    let proxy = common::proxy::Proxy::start(server.addr);
    let state = StateDir::new("prompt-follows");
    let args = ["--plain", "--nick", "maria"];
    let mut term = Term::start(proxy.addr, &state, &args);
    term.wait_input("[maria #lobby] ");
    let mut watcher = Peer::join(server.addr, "watcher");
    proxy.set_down(true);
    proxy.cut();
    watcher.wait_for(
        "maria's leave",
        |e| matches!(e, EventKind::Leave { nick, .. } if nick == "maria"),
    );
    let mut thief = server.text_client("maria");
    term.keys("half typed");
    proxy.set_down(false);
    term.wait_text("not maria");
    // Without a key pressed: the guest nick, in the columns the old prompt had.
    term.wait("the guest nick in the prompt", |t| {
        let (row, _) = t.cursor_row();
        row.starts_with("[guest") && row.ends_with("] half typed") && !row.contains("maria")
    });
    thief.send("/quit");
    term.wait_text("You are now known as maria");
    term.wait("maria back in the prompt", |t| {
        t.cursor_row().0.starts_with("[maria #lobby]") && t.cursor_row().0.ends_with("] half typed")
    });
    // Enter sends the line as typed, and the next prompt is whole.
    term.keys("\r");
    watcher.wait_for(
        "the line",
        |e| matches!(e, EventKind::Public { text, .. } if text == "half typed"),
    );
    term.wait_input("[maria #lobby] ");
    term.keys("\x04");
    assert!(term.wait_exit().success());
}

/// A rolling restart on a NATS backbone, on a terminal: `tchat join A B` is on node A
/// when A stops (SIGTERM); the client moves to node B and resumes there with its token
/// and last id: the same nick, each line said meanwhile shown once, the line being typed
/// kept, and a user of B sees it neither leave nor join.
#[test]
fn an_interactive_client_given_two_nodes_resumes_on_the_second_when_the_first_stops() {
    let Some(nats) = common::nats::nats_server() else { return };
    let args =
        |node: &'static str| ["--backbone", &nats.url, "--node", node, "--resume-grace", "30"];
    let mut a = Server::start(&args("a"));
    // One certificate for both nodes, as docs/backbone.md says to do.
    let b = Server::start_in(StateDir::copy_of(&a.state, "node-b"), &args("b"), common::WAIT);
    let mut bob = Peer::join(b.addr, "bob");
    let home = StateDir::new("backbone-join");
    let other = b.addr.to_string();
    let mut term =
        Term::start(a.addr, &home, &[&other, "--fingerprint", &a.fingerprint, "--nick", "ivy"]);
    term.wait_input("[ivy #lobby] ");
    bob.wait_for("ivy's join", |e| matches!(e, EventKind::Join { nick, .. } if nick == "ivy"));
    term.keys("half a thought");
    term.wait_input("[ivy #lobby] half a thought");

    assert!(a.terminate().success());
    for i in 1..=3 {
        bob.send(&format!("while away {i}"));
    }
    term.wait_text(&format!("Reconnected to {other} as ivy"));
    term.wait_text("<bob> while away 3");
    term.wait_input("[ivy #lobby] half a thought");
    bob.send("live");
    term.wait_text("<bob> live");
    for i in 1..=3 {
        assert_eq!(term.count(&format!("<bob> while away {i}")), 1, "{}", term.screen());
    }
    term.keys("\r");
    term.wait_text("<ivy> half a thought");
    // Bob saw ivy neither leave nor join: the next thing he hears of her is her line.
    loop {
        match bob.next_event() {
            EventKind::Public { from, text, .. } if from == "ivy" => {
                assert_eq!(text, "half a thought");
                break;
            }
            e @ (EventKind::Join { .. } | EventKind::Leave { .. }) => panic!("bob saw {e:?}"),
            _ => {}
        }
    }
    term.keys("\x04");
    assert!(term.wait_exit().success());
}
