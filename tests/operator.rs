//! Moderation through the real binary: `tchat ctl` over the control socket (kick, ban
//! by nick, address and network, bans with a duration, mute, shutdown, reload), bans kept
//! across a restart, and `/oper` in chat.

mod common;

use std::path::{Path, PathBuf};

use common::{Client, Server, ctl, temp_path};

/// A server with a control socket (and `extra` options); returns it with the socket.
fn server_with_ctl(extra: &[&str]) -> (Server, PathBuf) {
    let socket = temp_path("control.sock");
    let mut args = vec!["--control-socket", socket.to_str().unwrap()];
    args.extend_from_slice(extra);
    (Server::start(&args), socket)
}

fn ok(socket: &Path, args: &[&str]) -> String {
    let out = ctl(socket, args);
    assert_eq!(out.code, 0, "tchat ctl {args:?} failed: {}{}", out.stdout, out.stderr);
    out.stdout
}

#[test]
fn ctl_kicks_a_user_with_a_reason_everyone_sees() {
    let (server, socket) = server_with_ctl(&[]);
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    alice.expect("bob joined");
    assert_eq!(ok(&socket, &["kick", "bob", "spamming", "links"]), "kicked bob\n");
    bob.expect("!!! you were kicked by ctl: spamming links");
    bob.read_to_close();
    alice.expect("*** bob left: kicked by ctl: spamming links");
    // In another room: its members see the leave.
    let mut carol = server.text_client("carol");
    carol.send("/join #dev");
    carol.expect("You are in #dev");
    let mut dave = server.text_client("dave");
    dave.send("/join #dev");
    carol.expect("dave joined #dev");
    assert_eq!(ok(&socket, &["kick", "dave"]), "kicked dave\n");
    dave.expect("!!! you were kicked by ctl");
    carol.expect("*** dave left: kicked by ctl (");
    let out = ctl(&socket, &["kick", "bob"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no such user: bob"), "{}", out.stderr);
    let logged = server.wait_console_nth("Operator command by=", 1);
    assert!(logged.contains("by=ctl"), "{logged}");
}

#[test]
fn ctl_bans_an_address_and_a_network_until_unbanned() {
    let (server, socket) = server_with_ctl(&[]);
    let mut alice = server.text_client("alice");
    let answer = ok(&socket, &["ban", "127.0.0.1", "too", "loud"]);
    assert!(answer.starts_with("banned 127.0.0.1; disconnected alice"), "{answer}");
    alice.expect("!!! you were banned by ctl: too loud");
    let mut refused = server.connect();
    assert_eq!(refused.next_line().unwrap(), "!!! you are banned from this server: too loud");
    assert_eq!(refused.next_line(), None, "a refused connection is closed");
    assert_eq!(ok(&socket, &["unban", "127.0.0.1"]), "unbanned 127.0.0.1\n");
    let mut alice = server.text_client("alice");

    let out = ctl(&socket, &["ban", "127.0.0.0/8"]);
    assert_eq!(out.code, 1, "a /8 without --wide: {}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("wider than /16 for IPv4 or /48 for IPv6; add --wide"),
        "{}",
        out.stderr
    );
    alice.sync();
    let answer = ok(&socket, &["ban", "127.0.0.0/8", "--wide"]);
    assert_eq!(answer, "banned 127.0.0.0/8; disconnected alice\n");
    alice.expect("!!! you were banned by ctl");
    alice.read_to_close();
    let mut refused = server.connect();
    assert_eq!(refused.next_line().unwrap(), "!!! you are banned from this server");
    let bans = ok(&socket, &["bans"]);
    assert!(bans.starts_with("127.0.0.0/8 permanent, by ctl"), "{bans}");
    let out = ctl(&socket, &["unban", "127.0.0.1"]);
    assert_eq!((out.code, out.stderr.as_str()), (1, "tchat ctl: 127.0.0.1 is not banned\n"));
    ok(&socket, &["unban", "127.0.0.7/8"]);
    server.text_client("bob");
}

/// `ctl ban` with a duration: the answer, the user and a refused connection are told
/// for how long and until when. That it lapses at its end, across a restart too, is
/// tested on a paused clock in tests/in_process.rs.
#[test]
fn a_ban_with_a_duration_says_for_how_long_and_until_when() {
    let (server, socket) = server_with_ctl(&[]);
    let mut alice = server.text_client("alice");
    let answer = ok(&socket, &["ban", "127.0.0.1", "2s", "cool", "off"]);
    assert_eq!(answer, "banned 127.0.0.1 for 2s; disconnected alice\n");
    // Told for how long, not only by whom.
    assert_eq!(alice.expect("!!!"), "!!! you were banned by ctl for 2s: cool off");
    let mut refused = server.connect();
    let line = refused.next_line().unwrap();
    assert!(line.starts_with("!!! you are banned from this server until 20"), "{line}");
    assert!(line.ends_with(" UTC: cool off"), "{line}");
    let bans = ok(&socket, &["bans"]);
    assert!(bans.starts_with("127.0.0.1 until 20") && bans.contains("by ctl"), "{bans}");
}

/// A second word that looks like a number but is no duration is refused: taken as the
/// reason, it would make a permanent ban of what was meant to be a short one.
#[test]
fn a_ban_with_a_mistyped_duration_is_refused_not_made_permanent() {
    let (server, socket) = server_with_ctl(&[]);
    let tries: [&[&str]; 3] = [
        &["ban", "someone3", "10", "minutes"],
        &["ban", "someone", "0s"],
        &["ban", "someone2", "-5m"],
    ];
    for args in tries {
        let out = ctl(&socket, args);
        assert_eq!(out.code, 1, "tchat ctl {args:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(&format!("not a duration: {}", args[2])), "{}", out.stderr);
        assert!(out.stderr.contains("90s, 10m, 2h, 7d"), "{}", out.stderr);
    }
    assert_eq!(ok(&socket, &["bans"]), "no bans\n");
    server.text_client("someone3");
}

#[test]
fn a_nick_ban_survives_a_restart() {
    let bans = temp_path("bans.jsonl");
    let bans_arg = bans.to_str().unwrap().to_owned();
    {
        let (mut server, socket) = server_with_ctl(&["--bans", &bans_arg]);
        let mut mallory = server.text_client("Mallory");
        ok(&socket, &["ban", "mallory", "trolling"]);
        mallory.expect("!!! you were banned by ctl: trolling");
        assert!(server.terminate().success());
    }
    let saved = common::read_jsonl(&bans);
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(
        (saved[0]["kind"].as_str(), saved[0]["target"].as_str()),
        (Some("nick"), Some("mallory"))
    );
    assert_eq!(saved[0]["by"], "ctl");

    let server = Server::start(&["--bans", &bans_arg]);
    let mut again = server.connect();
    again.send("/nick MALLORY");
    assert_eq!(again.next_line().unwrap(), "!!! you are banned from this server: trolling");
    assert_eq!(again.next_line(), None);
    // Logged for what it is, not as a shutdown.
    let gone = server.wait_console_nth("Disconnected", 1);
    assert!(gone.contains(r#"reason="banned nick""#), "{gone}");
    let mut other = server.text_client("alice");
    other.send("/nick mallory");
    other.expect("!!! you are banned from this server: trolling");
    other.sync();
    let _ = std::fs::remove_file(&bans);
}

/// The mode bits of `path`, in octal as `ls` and `chmod` write them.
fn mode(path: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    format!("{:o}", mode & 0o777)
}

/// The `--save` log (private messages' text) and the bans file (addresses) are created
/// 0600 whatever the umask; a bans file that exists keeps the mode the admin gave it.
#[test]
fn the_files_the_server_creates_are_private() {
    // The usual umask, which would leave a plainly created file 0644: the server must
    // not depend on the admin's. Process-wide, and harmless to the other tests.
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(0o022) };
    let save = temp_path("private.jsonl");
    let bans = temp_path("private-bans.jsonl");
    let (server, socket) =
        server_with_ctl(&["--save", save.to_str().unwrap(), "--bans", bans.to_str().unwrap()]);
    ok(&socket, &["ban", "mallory"]);
    assert_eq!(mode(&save), "600", "the --save log");
    assert_eq!(mode(&bans), "600", "the bans file");
    let state = server.state.join("tchat");
    assert_eq!(mode(&state), "700", "the state directory");
    for file in ["tls-cert.pem", "tls-key.pem"] {
        assert_eq!(mode(&state.join(file)), "600", "{file}");
    }
    drop(server);

    let _ = std::fs::remove_file(&save);
    std::fs::write(&bans, "").unwrap();
    std::fs::set_permissions(&bans, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let (_server, socket) = server_with_ctl(&["--bans", bans.to_str().unwrap()]);
    ok(&socket, &["ban", "mallory"]);
    assert_eq!(mode(&bans), "640", "an existing bans file keeps its mode");
    assert_eq!(common::read_jsonl(&bans).len(), 1);
    let _ = std::fs::remove_file(&bans);
}

/// The bans file as the operator's manual documents it, written by hand, loads; the server writes
/// the same form back.
#[test]
fn a_hand_written_bans_file_in_the_documented_form_loads() {
    let bans = temp_path("hand-bans.jsonl");
    let net = r#"{"kind":"net","target":"127.0.0.0/8","until":null,"reason":"by hand","by":"console","at":"2026-01-01T00:00:00Z"}"#;
    let addr = r#"{"kind":"addr","target":"198.51.100.7","until":null,"reason":null,"by":"ctl","at":"2026-01-01T00:00:00Z"}"#;
    std::fs::write(&bans, format!("{net}\n{addr}\n")).unwrap();
    let (server, socket) = server_with_ctl(&["--bans", bans.to_str().unwrap()]);
    let mut refused = server.connect();
    assert_eq!(refused.next_line().unwrap(), "!!! you are banned from this server: by hand");
    let listed = ok(&socket, &["bans"]);
    assert!(
        listed.starts_with("127.0.0.0/8 permanent, by console: by hand\n198.51.100.7"),
        "{listed}"
    );
    ok(&socket, &["ban", "203.0.113.0/24", "1h"]);
    let saved = common::read_jsonl(&bans);
    let targets: Vec<(&str, &str)> = saved
        .iter()
        .map(|b| (b["kind"].as_str().unwrap(), b["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        targets,
        [("net", "127.0.0.0/8"), ("addr", "198.51.100.7"), ("net", "203.0.113.0/24")]
    );
    let _ = std::fs::remove_file(&bans);
}

#[test]
fn a_muted_user_is_told_until_when_and_nobody_hears_them() {
    let (server, socket) = server_with_ctl(&[]);
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    assert_eq!(ok(&socket, &["mute", "bob", "10m"]), "muted bob for 10m 0s\n");
    bob.expect("*** you have been muted by ctl until 20");
    bob.send("can you hear me");
    let refused = bob.expect("!!!");
    assert!(refused.starts_with("!!! you are muted until 20"), "{refused}");
    bob.send("/msg alice psst");
    bob.expect("!!! you are muted until");
    assert_eq!(ok(&socket, &["unmute", "bob"]), "unmuted bob\n");
    bob.expect("you may speak again");
    bob.send("back again");
    let heard = alice.expect("<bob>");
    assert_eq!(heard, "<bob> back again", "alice heard a muted line");
}

#[test]
fn ctl_says_lists_and_shuts_down_with_a_reason() {
    let (mut server, socket) = server_with_ctl(&[]);
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    bob.send("/join #dev");
    bob.expect("You are in #dev");
    assert_eq!(ok(&socket, &["say", "maintenance", "at", "noon"]), "notice sent\n");
    alice.expect("-tchat- maintenance at noon");
    bob.expect("-tchat- maintenance at noon");
    assert_eq!(ok(&socket, &["list"]), "2 online: alice in #lobby, bob in #dev\n");
    let whois = ok(&socket, &["whois", "alice"]);
    assert!(whois.contains("alice connects from 127.0.0.1:"), "{whois}");
    assert!(ok(&socket, &["help"]).contains("/shutdown [reason]"));
    let out = ctl(&socket, &["frobnicate"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("unknown command /frobnicate"), "{}", out.stderr);
    assert_eq!(ok(&socket, &["shutdown", "back", "soon"]), "shutting down\n");
    alice.expect("*** Server shutting down: back soon");
    assert!(common::wait_exit(&mut server.child).success());
    assert!(!socket.exists(), "the control socket is removed on exit");
}

#[test]
fn the_control_socket_is_for_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_server, socket) = server_with_ctl(&[]);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = ctl(&temp_path("absent.sock"), &["list"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("cannot reach the server"), "{}", out.stderr);
}

#[test]
fn a_second_server_does_not_take_over_a_live_control_socket() {
    let (_server, socket) = server_with_ctl(&[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tchat"))
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--control-socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another server is using it"));
    assert_eq!(ok(&socket, &["list"]), "nobody online\n");
}

#[test]
fn reload_rereads_the_motd_and_bans_files() {
    let motd = temp_path("motd.txt");
    std::fs::write(&motd, "first motd\nline two\n").unwrap();
    let (server, socket) = server_with_ctl(&["--motd", motd.to_str().unwrap()]);
    let mut alice = server.text_client("alice");
    alice.expect("*** MOTD: first motd");
    alice.expect("*** MOTD: line two");
    std::fs::write(&motd, "second motd\n").unwrap();
    assert_eq!(ok(&socket, &["reload"]), "reloaded message of the day\n");
    let mut bob = server.text_client("bob");
    bob.expect("*** MOTD: second motd");
    alice.send("/motd");
    alice.expect("*** MOTD: second motd");
    let _ = std::fs::remove_file(&motd);
}

/// SIGHUP is the service reload: the MOTD and bans files are read again (as with
/// `tchat ctl reload`), and everyone stays connected.
#[cfg(unix)]
#[test]
fn sighup_rereads_the_motd_and_bans_files_and_keeps_everyone_connected() {
    let motd = temp_path("hup-motd.txt");
    let bans = temp_path("hup-bans.jsonl");
    std::fs::write(&motd, "before the hangup\n").unwrap();
    std::fs::write(&bans, "").unwrap();
    let mut server =
        Server::start(&["--motd", motd.to_str().unwrap(), "--bans", bans.to_str().unwrap()]);
    let mut alice = server.text_client("alice");
    alice.expect("*** MOTD: before the hangup");
    std::fs::write(&motd, "after the hangup\n").unwrap();
    let ban = r#"{"kind":"nick","target":"mallory","until":null,"reason":"spam","by":"ctl","at":"2026-01-01T00:00:00Z"}"#;
    std::fs::write(&bans, format!("{ban}\n")).unwrap();
    let pid = libc::pid_t::try_from(server.child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid, which it still is (not yet waited for).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let line = server.wait_console("Reloaded");
    assert!(line.contains("reloaded message of the day and bans"), "{line}");
    let mut bob = server.text_client("bob");
    bob.expect("*** MOTD: after the hangup");
    let mut mallory = server.connect();
    mallory.send("/nick mallory");
    assert_eq!(mallory.next_line().unwrap(), "!!! you are banned from this server: spam");
    // The first client never noticed.
    bob.send("still here");
    alice.expect("<bob> still here");
    alice.send("/motd");
    alice.expect("*** MOTD: after the hangup");
    assert!(!alice.seen.iter().any(|l| l.contains("shutting down")), "{:?}", alice.seen);
    let _ = std::fs::remove_file(&motd);
    let _ = std::fs::remove_file(&bans);
}

/// A server whose operator password (in a file, returned for removal) is `s3cret-Pa55`.
fn oper_server() -> (Server, std::path::PathBuf) {
    let password = temp_path("oper-password");
    std::fs::write(&password, "s3cret-Pa55\n").unwrap();
    let server = Server::start(&["--oper-password-file", password.to_str().unwrap()]);
    (server, password)
}

#[test]
fn oper_with_the_right_password_may_moderate_and_the_password_is_never_logged() {
    let (server, password) = oper_server();
    let mut alice = server.text_client("alice");
    let mut carol = server.text_client("carol");
    alice.send("/kick carol");
    alice.expect("!!! /kick is for operators (see /oper)");
    alice.send("/oper wrong-guess");
    alice.expect("!!! wrong operator password");
    alice.send("/oper s3cret-Pa55");
    alice.expect("*** you are now an operator");
    alice.send("/help");
    alice.expect("(operator) disconnect a user");
    alice.send("/whois carol");
    alice.expect("carol connects from 127.0.0.1:");
    alice.send("/kick carol enough");
    alice.expect("*** kicked carol");
    carol.expect("!!! you were kicked by alice: enough");
    alice.send("/shutdown");
    alice.expect("!!! unknown command /shutdown");
    alice.sync();
    let refused = server.wait_console_nth("Operator login refused", 1);
    assert!(refused.contains("nick=alice") && refused.contains("peer=127.0.0.1:"), "{refused}");
    let kick = server.wait_console_nth("Operator command by=", 1);
    assert!(kick.contains("by=alice") && kick.contains("command=/kick"), "{kick}");
    let console = server.console_text();
    assert!(!console.contains("s3cret") && !console.contains("wrong-guess"), "{console}");
    let _ = std::fs::remove_file(&password);
}

/// An operator's `/ban` that covers their own nick or address is refused: it would
/// disconnect them (and everyone else on 127.0.0.1). A ban of someone else still works.
#[test]
fn an_operator_cannot_ban_themselves_in_chat() {
    let (server, password) = oper_server();
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    alice.send("/oper s3cret-Pa55");
    alice.expect("*** you are now an operator");
    alice.send("/ban 127.0.0.1 1m test");
    assert_eq!(
        alice.expect("!!!"),
        "!!! not banning 127.0.0.1: it covers your address 127.0.0.1 and would disconnect \
         you; the server's console or tchat ctl can"
    );
    alice.send("/ban 127.0.0.0/16");
    assert!(
        alice.expect("!!!").starts_with("!!! not banning 127.0.0.0/16: it covers your address")
    );
    alice.send("/ban ALICE spam");
    assert!(alice.expect("!!!").starts_with("!!! not banning ALICE: it covers your nick alice"));
    alice.send("/bans");
    alice.expect("*** no bans");
    alice.send("/ban bob 1m test");
    alice.expect("*** banned bob for 1m");
    assert_eq!(bob.expect("!!!"), "!!! you were banned by alice for 1m 0s: test");
    alice.sync();
    let _ = std::fs::remove_file(&password);
}

/// A chat operator's ban of a network wider than an IPv4 /16 or an IPv6 /48 (everyone,
/// all of IPv6, a /8, a /32 of IPv6) is refused and nothing is banned or saved; a
/// narrower network still is. `tchat ctl` makes the wide one only with `--wide`.
#[test]
fn wide_network_bans_are_refused_in_chat_and_need_wide_from_ctl() {
    let password = temp_path("oper-password");
    std::fs::write(&password, "s3cret-Pa55\n").unwrap();
    let bans = temp_path("bans.jsonl");
    let (server, socket) = server_with_ctl(&[
        "--oper-password-file",
        password.to_str().unwrap(),
        "--bans",
        bans.to_str().unwrap(),
    ]);
    let mut alice = server.text_client("alice");
    alice.send("/oper s3cret-Pa55");
    alice.expect("*** you are now an operator");
    for target in ["0.0.0.0/0", "::/0", "10.0.0.0/8", "2001:db8::/32", "198.18.0.0/15"] {
        alice.send(&format!("/ban {target} 1h oops"));
        assert_eq!(
            alice.expect("!!!"),
            format!(
                "!!! not banning {target}: operators in chat may not ban a network wider \
                 than /16 for IPv4 or /48 for IPv6; the server's console or tchat ctl can, \
                 with --wide"
            )
        );
    }
    alice.send("/ban 0.0.0.0/0 --wide");
    assert!(alice.expect("!!!").starts_with("!!! not banning 0.0.0.0/0: operators in chat"));
    alice.send("/bans");
    alice.expect("*** no bans");
    alice.send("/ban 198.51.100.0/24 1h spam");
    alice.expect("*** banned 198.51.100.0/24 for 1h");
    alice.send("/ban 2001:db8::/48");
    alice.expect("*** banned 2001:db8::/48");

    for args in [&["ban", "10.0.0.0/8"][..], &["ban", "::/0", "1h", "spam"]] {
        let out = ctl(&socket, args);
        assert_eq!(out.code, 1, "tchat ctl {args:?}: {}{}", out.stdout, out.stderr);
        let want = format!("tchat ctl: not banning {}: it is a network wider than /16", args[1]);
        assert!(out.stderr.starts_with(&want), "{}", out.stderr);
        assert!(out.stderr.contains("add --wide to confirm"), "{}", out.stderr);
    }
    assert_eq!(
        ok(&socket, &["ban", "10.0.0.0/8", "--wide", "1h", "spam"]),
        "banned 10.0.0.0/8 for 1h 0m\n"
    );
    assert_eq!(ok(&socket, &["ban", "::/0", "1h", "--wide"]), "banned ::/0 for 1h 0m\n");
    let list = ok(&socket, &["bans"]);
    let targets: Vec<_> = list.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(targets, ["198.51.100.0/24", "2001:db8::/48", "10.0.0.0/8", "::/0"], "{list}");
    let saved = std::fs::read_to_string(&bans).unwrap();
    assert!(!saved.contains("0.0.0.0/0") && saved.contains("\"::/0\""), "{saved}");
    alice.sync();
    let _ = std::fs::remove_file(&password);
}

#[test]
fn without_a_password_file_nobody_becomes_operator() {
    let server = Server::start(&[]);
    let mut alice = server.text_client("alice");
    alice.send("/oper anything");
    alice.expect("!!! this server has no operators in chat");
    let refused = server.wait_console_nth("Operator login refused", 1);
    assert!(refused.contains("nick=alice") && refused.contains("peer=127.0.0.1:"), "{refused}");
    assert!(!refused.contains("anything"), "{refused}");
}

/// Reads JSON events until one of type `kind`.
fn event_of(c: &mut Client, kind: &str) -> serde_json::Value {
    loop {
        let line = c.next_line().unwrap_or_else(|| panic!("closed before {kind}: {:?}", c.seen));
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["type"] == kind {
            return v;
        }
    }
}

/// A kick is not a lost connection: a structured client that is kicked leaves at once,
/// and one that is kicked or banned while held for a resume leaves then; either way its
/// token brings nothing back.
/// A structured client `jay` whose connection is then cut, held for resume (the `nth`
/// hold of the test); returns its resume token.
fn held_jay(server: &Server, alice: &mut Client, nth: usize) -> String {
    let (jay, welcome) = server.json_client("jay");
    let token = welcome["resume"].as_str().unwrap().to_owned();
    alice.expect("jay joined");
    jay.stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(jay);
    server.wait_console_nth("Held for resume", nth);
    token
}

#[test]
fn a_kicked_or_banned_user_is_never_held_for_resume() {
    let (server, socket) = server_with_ctl(&[]);
    let mut alice = server.text_client("alice");

    // Kicked while connected: the leave comes at once, and the token resumes nothing.
    let (mut jay, welcome) = server.json_client("jay");
    let token = welcome["resume"].as_str().unwrap().to_owned();
    alice.expect("jay joined");
    assert_eq!(ok(&socket, &["kick", "jay", "flooding"]), "kicked jay\n");
    assert_eq!(event_of(&mut jay, "error")["code"], "kicked");
    jay.read_to_close();
    alice.expect("*** jay left: kicked by ctl: flooding");
    let mut back = server.connect();
    back.send(&format!("/hello json jay resume {token} 0"));
    assert_eq!(event_of(&mut back, "resumed")["resumed"], false, "{:?}", back.seen);
    alice.expect("jay joined");
    back.send("/quit");
    alice.expect("jay left: quit");

    // Kicked while held: the wait ends with the kick.
    let token = held_jay(&server, &mut alice, 1);
    assert_eq!(ok(&socket, &["kick", "jay", "gone", "for", "good"]), "kicked jay\n");
    alice.expect("*** jay left: kicked by ctl: gone for good");
    let mut back = server.connect();
    back.send(&format!("/hello json jay resume {token} 0"));
    assert_eq!(event_of(&mut back, "resumed")["resumed"], false, "{:?}", back.seen);
    back.send("/quit");
    alice.expect("jay left: quit");

    // Banned while held: the same, and the nick is refused from then on.
    let token = held_jay(&server, &mut alice, 2);
    ok(&socket, &["ban", "jay", "spam"]);
    alice.expect("*** jay left: banned by ctl: spam");
    let mut back = server.connect();
    back.send(&format!("/hello json jay resume {token} 0"));
    // Refused before the hello is taken, so in text.
    assert_eq!(back.next_line().unwrap(), "!!! you are banned from this server: spam");
    assert!(back.read_to_close().is_empty(), "{:?}", back.seen);
    alice.sync();
    let banned = alice.seen.iter().rposition(|l| l.contains("jay left: banned")).unwrap();
    assert!(!alice.seen[banned..].iter().any(|l| l.contains("jay joined")), "{:?}", alice.seen);
}

/// A resume is the same person coming back: a mute (and an away message) stays with
/// the session, and the one who wrote last can still be answered with `/reply`.
#[test]
fn a_resumed_session_keeps_its_mute_away_and_reply_target() {
    let (server, socket) = server_with_ctl(&[]);
    let mut alice = server.text_client("alice");
    let (mut jay, welcome) = server.json_client("jay");
    let token = welcome["resume"].as_str().unwrap().to_owned();
    alice.expect("jay joined");
    jay.send("/away lunch");
    event_of(&mut jay, "info");
    alice.send("/msg jay ping");
    alice.expect("jay is away: lunch");
    ok(&socket, &["mute", "jay"]);
    event_of(&mut jay, "info");
    jay.stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(jay);
    server.wait_console_nth("Held for resume", 1);
    let mut back = server.connect();
    back.send(&format!("/hello json jay resume {token} 0"));
    assert_eq!(event_of(&mut back, "resumed")["resumed"], true, "{:?}", back.seen);
    back.send("still here?");
    let refused = event_of(&mut back, "error");
    assert_eq!(refused["code"], "muted", "{refused}");
    back.send("/whois jay");
    assert_eq!(event_of(&mut back, "whois")["away"], "lunch");
    ok(&socket, &["unmute", "jay"]);
    back.send("/reply pong");
    alice.expect("*jay* pong");
}

/// A line of the bans file as the operator's manual documents it, by `console` at a fixed time.
fn ban_line(kind: &str, target: &str, until: &str, reason: &str) -> String {
    format!(
        r#"{{"kind":"{kind}","target":"{target}","until":{until},"reason":{reason},"by":"console","at":"2026-01-01T00:00:00Z"}}"#
    )
}

/// Bans written into the file by hand take effect on who is online at `tchat ctl
/// reload` and SIGHUP, as an operator's `ban` does: the banned are told and closed,
/// a held session ends, everyone else sees the leave with the reason, and a ban that
/// covers nobody online, or has lapsed, leaves the others connected. A ban taken out
/// of the file lets its nick back in.
#[cfg(unix)]
#[test]
fn a_reloaded_ban_disconnects_who_it_covers_and_nobody_else() {
    let bans = temp_path("reload-bans.jsonl");
    std::fs::write(&bans, "").unwrap();
    let (mut server, socket) = server_with_ctl(&["--bans", bans.to_str().unwrap()]);
    let mut alice = server.text_client("alice");
    let mut mallory = server.text_client("mallory");
    alice.expect("mallory joined");
    held_jay(&server, &mut alice, 1);
    let elsewhere = ban_line("addr", "198.51.100.7", "null", r#""elsewhere""#);
    let lapsed = ban_line("nick", "alice", r#""2020-01-01T00:00:00Z""#, r#""lapsed""#);
    let mallory_ban = ban_line("nick", "mallory", "null", r#""spam""#);
    let jay_ban = ban_line("nick", "jay", "null", "null");
    let file = [elsewhere.as_str(), &lapsed, &mallory_ban, &jay_ban].join("\n");
    std::fs::write(&bans, file + "\n").unwrap();
    assert_eq!(ok(&socket, &["reload"]), "reloaded bans; disconnected mallory, jay\n");
    mallory.expect("!!! you were banned by console: spam");
    mallory.read_to_close();
    // The two leaves, in the order the two tasks end.
    let leaves =
        [alice.expect(" left: banned by console"), alice.expect(" left: banned by console")];
    for leave in
        ["*** mallory left: banned by console: spam (", "*** jay left: banned by console ("]
    {
        assert!(leaves.iter().any(|l| l.starts_with(leave)), "{leaves:?}");
    }
    let logged = server.wait_console_nth("Operator command by=", 1);
    assert!(logged.contains("disconnected mallory, jay"), "{logged}");
    let mut refused = server.connect();
    refused.send("/nick mallory");
    assert_eq!(refused.next_line().unwrap(), "!!! you are banned from this server: spam");
    // alice, under a lapsed ban only, is still there and hears the others.
    let mut bob = server.text_client("bob");
    bob.send("still here");
    alice.expect("<bob> still here");

    // An address ban on SIGHUP: everyone here connects from 127.0.0.1, so the leave
    // the others would see is checked in the log. bob, under two bans, is told once.
    let whole_host = ban_line("addr", "127.0.0.1", "null", r#""whole host""#);
    let bob_ban = ban_line("nick", "bob", "null", r#""and by nick""#);
    std::fs::write(&bans, format!("{mallory_ban}\n{whole_host}\n{bob_ban}\n")).unwrap();
    let pid = libc::pid_t::try_from(server.child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid, which it still is (not yet waited for).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    for client in [&mut alice, &mut bob] {
        client.expect("!!! you were banned by console: whole host");
        client.read_to_close();
        assert_eq!(client.seen.iter().filter(|l| l.starts_with("!!! you were")).count(), 1);
    }
    let reloaded = server.wait_console("Reloaded");
    assert!(reloaded.contains("reloaded bans; disconnected "), "{reloaded}");
    let (_, nicks) = reloaded.split_once("disconnected ").unwrap();
    let mut nicks: Vec<&str> = nicks.trim_end_matches('"').split(", ").collect();
    nicks.sort_unstable();
    assert_eq!(nicks, ["alice", "bob"], "{reloaded}");
    for nick in ["alice", "bob"] {
        let left = server.wait_console_nth(&format!(" nick={nick} online="), 1);
        assert!(left.contains("Disconnected id="), "{left}");
        assert!(left.contains("banned by console: whole host"), "{left}");
    }

    // Taken out of the file, a ban no longer refuses anyone.
    std::fs::write(&bans, format!("{jay_ban}\n")).unwrap();
    assert_eq!(ok(&socket, &["reload"]), "reloaded bans\n");
    server.text_client("mallory");
    let _ = std::fs::remove_file(&bans);
}

/// A nick ban is of the nick as nick ownership has it: every case and width of it and
/// its look-alikes are refused, and an unban or a second ban given with any of them is
/// of that one ban.
#[test]
fn a_nick_ban_is_of_every_form_of_the_nick_as_ownership_has_it() {
    let (server, socket) = server_with_ctl(&[]);
    assert_eq!(ok(&socket, &["ban", "AIice", "look-alikes"]), "banned AIice\n");
    // Its look-alike, and every case and width of it (a look-alike of a look-alike,
    // `ALICE`, is not: nick ownership draws the same line).
    for nick in ["alice", "\u{ff41}lice", "AIICE", "\u{ff21}Iice"] {
        let mut c = server.connect();
        c.send(&format!("/nick {nick}"));
        let first = c.next_line().unwrap_or_default();
        assert!(first.starts_with("!!! you are banned"), "{nick} let in: {first}");
    }
    // A second ban of another form replaces the first: one ban listed.
    ok(&socket, &["ban", "Alice", "1h"]);
    let bans = ok(&socket, &["bans"]);
    assert_eq!(bans.lines().filter(|l| l.to_lowercase().contains("ice ")).count(), 1, "{bans}");
    assert_eq!(ok(&socket, &["unban", "alice"]), "unbanned alice\n");
    let mut alice = server.text_client("ALICE");
    alice.send("/nick AIice");
    alice.sync();
    assert!(!alice.seen.iter().any(|l| l.contains("banned")), "{:?}", alice.seen);
}
