//! The `--save` file through the real server: when the console stalls, every event in
//! the file, the console's skips counted, SIGTERM obeyed at once; with
//! `--private-text omit`, no private message's text in the file or on the console.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Server, WAIT, parse_jsonl, temp_path, wait_exit};

/// `tchat serve --save FILE` whose console (stdout) is a pipe read only up to the
/// `Listening` line and never again: a pager nobody scrolls. Killed when dropped.
struct StalledServer {
    child: Child,
    addr: std::net::SocketAddr,
    /// Kept open and unread.
    _stdout: BufReader<std::process::ChildStdout>,
    _state: common::state_dir::StateDir,
}

impl StalledServer {
    fn start(save: &std::path::Path) -> StalledServer {
        let state = common::state_dir::StateDir::new("stalled-console");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tchat"))
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--rate", "0"])
            .args(["--replay", "0", "--save"])
            .arg(save)
            .env("XDG_STATE_HOME", &*state)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("RUNTIME_DIRECTORY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "server exited before listening");
            if line.contains("Listening") {
                break common::console_field(&line, "addr").parse().unwrap();
            }
        };
        StalledServer { child, addr, _stdout: stdout, _state: state }
    }
}

impl Drop for StalledServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The texts of the public messages in the file, per sender.
fn messages_by_sender(path: &std::path::Path) -> Vec<(String, Vec<u64>)> {
    let records = parse_jsonl(&std::fs::read_to_string(path).unwrap());
    let mut by: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for r in records.iter().filter(|r| r["msg"] == "Public message") {
        let from = r["meta"]["from"].as_str().unwrap().to_owned();
        let n = r["meta"]["text"].as_str().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
        by.entry(from).or_default().push(n);
    }
    by.into_iter().collect()
}

fn count_in_file(path: &std::path::Path, needle: &str) -> usize {
    std::fs::read_to_string(path).unwrap_or_default().matches(needle).count()
}

/// Five writers, each in a room of its own, send `lines` lines each numbered from
/// `from`.
fn send_from(writers: &mut [Client], from: usize, lines: usize) {
    std::thread::scope(|s| {
        for w in writers.iter_mut() {
            s.spawn(move || {
                let mut batch = String::new();
                for i in from..from + lines {
                    batch.push_str(&format!("line of a busy writer {i}\n"));
                    if batch.len() > 16 * 1024 {
                        w.send_raw(batch.as_bytes());
                        batch.clear();
                    }
                }
                w.send_raw(batch.as_bytes());
            });
        }
    });
}

#[test]
fn a_stalled_console_loses_the_file_nothing_and_sigterm_stops_at_once() {
    let save = temp_path("stalled-console.jsonl");
    let mut server = StalledServer::start(&save);
    let addr = server.addr;
    let mut writers: Vec<Client> = (0..5)
        .map(|i| {
            let mut c = Client::connect_as(addr, &format!("writer{i}"), WAIT);
            c.send(&format!("/join #busy{i}"));
            c.expect("#busy");
            c.spawn_drain();
            c
        })
        .collect();
    // 5 × 16,000 events: more than the pipe and the console's queue hold together.
    send_from(&mut writers, 0, 16_000);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_in_file(&save, "\"Public message\"") < 80_000 {
        assert!(Instant::now() < deadline, "the file never got every message");
        std::thread::sleep(Duration::from_millis(50));
    }
    for (from, ns) in messages_by_sender(&save) {
        assert_eq!(ns, (0..16_000).collect::<Vec<u64>>(), "{from}'s lines in the file");
    }
    // Meanwhile more lines come, and SIGTERM: the server stops at once, the console
    // still stalled, and the file holds what was handled without a hole.
    std::thread::scope(|s| {
        s.spawn(|| send_from(&mut writers, 16_000, 4_000));
        std::thread::sleep(Duration::from_millis(200));
        let asked = Instant::now();
        let kill = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status();
        assert!(kill.unwrap().success());
        let status = wait_exit(&mut server.child);
        assert!(asked.elapsed() < Duration::from_secs(10), "{:?} to stop", asked.elapsed());
        assert!(status.success(), "{status:?}");
    });
    let text = std::fs::read_to_string(&save).unwrap();
    let records = parse_jsonl(&text);
    let is_skip_report =
        |r: &&serde_json::Value| r["msg"].as_str().unwrap().starts_with("Console skipped events");
    let last = records.iter().rev().find(|r| !is_skip_report(r)).unwrap();
    assert_eq!(last["msg"], "Server stopped", "flushed whole, to the end");
    for (from, ns) in messages_by_sender(&save) {
        let expected: Vec<u64> = (0..ns.len() as u64).collect();
        assert_eq!(ns, expected, "{from}'s lines in the file have no hole");
    }
    let skipped: u64 =
        records.iter().filter(is_skip_report).map(|r| r["meta"]["count"].as_u64().unwrap()).sum();
    assert!(skipped > 0, "the console's skips are counted in the file");
    let _ = std::fs::remove_file(&save);
}

/// A client that gives the server `password` and then says `hello` as its first line.
fn with_password(server: &Server, password: &str, hello: &str) -> Client {
    let mut c = server.connect();
    c.send(&format!("/pass {password}"));
    c.send(hello);
    c
}

/// One run of `tchat serve --save FILE --password-file … EXTRA`: ann (text mode) sends
/// bob (structured) a `/msg`, bob answers with `/reply`, and ann says a public line.
/// Returns the console and what the run appended to the file, once the server stopped,
/// and bob's resume token.
fn private_exchange(
    save: &std::path::Path,
    password: &std::path::Path,
    extra: &[&str],
) -> (String, String, String) {
    let before = std::fs::read_to_string(save).unwrap_or_default().len();
    let mut args = vec!["--save", save.to_str().unwrap(), "--password-file"];
    args.push(password.to_str().unwrap());
    args.extend_from_slice(extra);
    let mut server = Server::start(&args);
    let pw = std::fs::read_to_string(password).unwrap();
    let mut ann = with_password(&server, pw.trim(), "/nick ann");
    ann.expect("You are ann;");
    let mut bob = with_password(&server, pw.trim(), "/hello json bob");
    let token = bob.expect_event("welcome")["resume"].as_str().unwrap().to_owned();
    ann.send("/msg bob the vault code is 4711");
    assert_eq!(bob.expect_event("private")["text"], "the vault code is 4711");
    bob.send("/reply noted, burning it");
    ann.expect("*bob* noted, burning it");
    ann.send("public words for everyone");
    bob.expect_event("public");
    server.wait_console_nth("Private message", 2);
    server.wait_console("Public message");
    assert!(server.terminate().success());
    let file = std::fs::read_to_string(save).unwrap()[before..].to_owned();
    (server.console_text(), file, token)
}

/// `--private-text omit` keeps `/msg` and `/reply` text out of the `--save` file and the
/// console: the records keep who, to whom, when, the length and the id. Without it, both
/// hold the text (the console a preview). Either way no password or resume token is
/// written, and a restart on the file replays the public line but no private message.
#[test]
fn private_text_omit_keeps_private_messages_out_of_the_file_and_the_console() {
    let password = temp_path("private-password");
    std::fs::write(&password, "sesame-door-9\n").unwrap();
    let secrets = ["vault code", "4711", "burning it"];
    for omit in [true, false] {
        let save = temp_path("private.jsonl");
        let extra: &[&str] = if omit { &["--private-text", "omit"] } else { &[] };
        let (console, file, token) = private_exchange(&save, &password, extra);
        for secret in secrets {
            assert_eq!(console.contains(secret), !omit, "{secret:?} on the console:\n{console}");
            assert_eq!(file.contains(secret), !omit, "{secret:?} in the file:\n{file}");
        }
        for never in ["sesame-door-9", token.as_str()] {
            assert!(!console.contains(never) && !file.contains(never), "{never:?} was written");
        }
        assert!(file.contains("public words for everyone"), "{file}");
        let private: Vec<_> =
            parse_jsonl(&file).into_iter().filter(|r| r["msg"] == "Private message").collect();
        assert_eq!(private.len(), 2, "{file}");
        let (msg, reply) = (&private[0]["meta"], &private[1]["meta"]);
        assert_eq!(
            (&msg["from"], &msg["to"], &msg["len"]),
            (&"ann".into(), &"bob".into(), &22.into())
        );
        assert_eq!((&reply["from"], &reply["to"]), (&"bob".into(), &"ann".into()));
        assert!(msg["id"].as_u64().is_some() && private[0]["ts"].is_string(), "{msg}");
        assert_eq!(msg.get("text").is_some(), !omit, "{msg}");

        // A restart on the file: bob's resume finds no session, and its catch-up (from
        // id 0) holds the public line but neither private message.
        let mut server = Server::start(&[
            "--save",
            save.to_str().unwrap(),
            "--password-file",
            password.to_str().unwrap(),
        ]);
        let mut bob = with_password(&server, "sesame-door-9", "/hello json bob resume - 0");
        let missed = bob.expect_event("resumed")["missed"].as_u64().unwrap();
        let events: Vec<_> = (0..missed).map(|_| bob.next_line().unwrap()).collect();
        assert!(events.iter().any(|e| e.contains("public words for everyone")), "{events:?}");
        assert!(!events.iter().any(|e| e.contains("\"private\"")), "{events:?}");
        assert!(server.terminate().success());
        let _ = std::fs::remove_file(&save);
    }
    let _ = std::fs::remove_file(&password);
}
