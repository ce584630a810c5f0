//! Soak and fault tests of the real `tchat serve` binary (issue 5): churn, a client that
//! stops reading, `kill -9` while logging, an unwritable `--save` file, and connection
//! storms beyond `--max-clients`.
//!
//! Loopback only, bounded in count and time, no timing assertions: every wait is for
//! some output, with a generous deadline.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, PATIENCE, Server, parse_jsonl, temp_path};

/// Hundreds of clients come, chat and go (half with `/quit`, half by resetting the
/// connection) while a few stay. Afterwards every live client got every message,
/// `/list` names exactly the live clients, and every departed nick is free again.
#[test]
fn churn_loses_no_message_and_leaks_no_nick() {
    const LIVE: usize = 8;
    const WAVES: usize = 10;
    const PER_WAVE: usize = 30;
    const LINES: usize = 5;
    let server = Server::start_within(
        &["--rate", "0", "--max-per-ip", "0", "--announce-limit", "0"],
        PATIENCE,
    );
    let live: Vec<Client> = (0..LIVE).map(|i| server.text_client(&format!("live{i}"))).collect();
    let talkers: Vec<_> = live.iter().map(Client::send_half).collect();

    // Each live client collects the public lines it receives until it sees its stop word.
    let readers: Vec<_> = live
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            thread::spawn(move || {
                let mut got = HashSet::new();
                loop {
                    let line = c.next_line().unwrap_or_else(|| panic!("live{i} was disconnected"));
                    if line.ends_with("> end of churn") {
                        return got;
                    }
                    if line.starts_with('<') {
                        assert!(got.insert(line.clone()), "duplicate delivery: {line}");
                    }
                }
            })
        })
        .collect();

    let mut sent = HashSet::new();
    for wave in 0..WAVES {
        let churners: Vec<_> = (0..PER_WAVE)
            .map(|j| {
                let addr = server.addr;
                thread::spawn(move || {
                    let nick = format!("churn{wave}x{j}");
                    let mut c = Client::connect_as(addr, &nick, PATIENCE);
                    let mut lines = Vec::new();
                    for k in 0..LINES {
                        let text = format!("m {nick} {k}");
                        c.send(&text);
                        lines.push(format!("<{nick}> {text}"));
                    }
                    // The answer to /list comes after the server has fanned out every
                    // line before it, so nothing sent is still in flight.
                    c.send("/list");
                    c.expect(" online: ");
                    if j % 2 == 0 {
                        c.send("/quit bye");
                        c.expect("Goodbye");
                    } else {
                        // Unread data in the receive buffer: closing sends a reset.
                        c.send("/help");
                        thread::sleep(Duration::from_millis(5));
                    }
                    drop(c);
                    lines
                })
            })
            .collect();
        for (i, c) in talkers.iter().enumerate() {
            let text = format!("m live{i} w{wave}");
            c.send(&text);
            sent.insert(format!("<live{i}> {text}"));
        }
        for t in churners {
            sent.extend(t.join().unwrap());
        }
    }

    // Every departure processed: /list shows exactly the live clients.
    let expected: BTreeSet<String> = (0..LIVE).map(|i| format!("live{i}")).collect();
    let mut checker = server.text_client("checker");
    let deadline = Instant::now() + PATIENCE;
    loop {
        checker.send("/list");
        let line = checker.expect(" online: ");
        let names: BTreeSet<String> =
            line.split(" online: ").nth(1).unwrap().split(", ").map(str::to_owned).collect();
        let mut want = expected.clone();
        want.insert("checker".into());
        if names == want {
            break;
        }
        assert!(Instant::now() < deadline, "/list never settled to the live clients: {line}");
        thread::sleep(Duration::from_millis(50));
    }
    // No nick leaked: every departed nick can be taken again.
    for wave in 0..WAVES {
        for j in 0..PER_WAVE {
            let nick = format!("churn{wave}x{j}");
            checker.send(&format!("/nick {nick}"));
            let reply = checker.expect(&nick);
            assert!(reply.contains("is now known as"), "nick {nick} leaked: {reply}");
        }
    }

    checker.send("end of churn");
    for (i, t) in readers.into_iter().enumerate() {
        let got = t.join().unwrap();
        let own = format!("<live{i}> ");
        let want: HashSet<&String> = sent.iter().filter(|l| !l.starts_with(&own)).collect();
        let missing: Vec<_> = want.iter().filter(|l| !got.contains(**l)).take(5).collect();
        assert!(missing.is_empty(), "live{i} lost messages, e.g. {missing:?}");
    }
}

/// A client that stops reading is dropped once its queue is full; the others keep
/// receiving everything, and the server's memory stays bounded.
#[test]
fn a_client_that_stops_reading_is_dropped_and_others_keep_up() {
    const QUEUE: usize = 64 * 1024;
    let mut server = Server::start_within(
        &["--rate", "0", "--max-per-ip", "0", "--send-queue", &QUEUE.to_string()],
        PATIENCE,
    );
    let mut watcher = server.text_client("watcher");
    let mut sender = server.text_client("sender");
    let mut slow = server.text_client("slow");
    let received = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Mutex::new(None::<String>));
    let reader = {
        let (received, done) = (received.clone(), done.clone());
        thread::spawn(move || {
            loop {
                let line = watcher.next_line().expect("the watcher was disconnected");
                if line == "<sender> end of test" {
                    return;
                } else if line.starts_with("<sender> ") {
                    received.fetch_add(1, Ordering::Relaxed);
                } else if line.contains("slow left") {
                    *done.lock().unwrap() = Some(line);
                }
            }
        })
    };

    // Send in batches well under the queue limit, each once the watcher has the one
    // before, so only the client that does not read can fall behind.
    let payload = "x".repeat(400);
    let batch = (QUEUE / 2) / payload.len();
    let mut sent = 0u64;
    let deadline = Instant::now() + PATIENCE;
    while done.lock().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the slow client was never dropped");
        assert!(sent < 200_000, "the slow client was never dropped after {sent} lines");
        let mut chunk = String::new();
        for _ in 0..batch {
            chunk.push_str(&format!("{sent} {payload}\n"));
            sent += 1;
        }
        sender.send_raw(chunk.as_bytes());
        while received.load(Ordering::Relaxed) < sent {
            assert!(
                Instant::now() < deadline,
                "the watcher stopped receiving; console:\n{}",
                server.console_text()
            );
            thread::sleep(Duration::from_millis(1));
        }
    }
    let left = done.lock().unwrap().clone().unwrap();
    assert!(left.contains("too slow: stopped reading"), "{left}");
    let dropped = server.wait_console("Slow client dropped (send queue full)");
    assert!(dropped.contains("nick=slow"), "{dropped}");
    sender.send("end of test");
    reader.join().unwrap();
    assert_eq!(received.load(Ordering::Relaxed), sent, "the watcher lost messages");
    // Everything sent reached the watcher; the slow client's queue never held more than
    // its limit, so the server holds a few MiB at most.
    let peak = server.peak_rss_kib();
    assert!(peak < 128 * 1024, "server peak RSS {peak} KiB");
    // The slow client's connection ends with a clean close (not a reset, not a hang),
    // after what the kernel had buffered: the sender's lines from the first on, in
    // order, the last perhaps cut where the server stopped writing.
    let rest = slow.read_rest().expect("the slow client's connection did not end cleanly");
    let rest = String::from_utf8(rest).expect("the server sent invalid UTF-8");
    assert!(rest.starts_with(&format!("<sender> 0 {payload}\n")), "{:.200}", rest);
    let mut got = 0u64;
    for line in rest.split_inclusive('\n') {
        let want = format!("<sender> {got} {payload}\n");
        assert!(want.starts_with(line), "line {got} of the slow client: {line:.200}");
        got += 1;
    }
    assert!(got < sent, "the slow client got all {sent} lines but was dropped");
}

/// `kill -9` while the server logs heavily leaves only whole JSON lines in `--save`
/// (except for a kernel page-boundary cut of the write in progress; see below), and the
/// next server on the same file ends such a cut line, says so, and appends whole lines.
#[test]
fn kill_9_while_logging_leaves_whole_json_lines() {
    let path = temp_path("kill9.jsonl");
    let save = ["--rate", "0", "--max-per-ip", "0", "--save", path.to_str().unwrap()];
    let mut server = Server::start_within(&save, PATIENCE);
    let listener = server.text_client("listener");
    let senders: Vec<_> = (0..4)
        .map(|i| {
            let c = server.text_client(&format!("loud{i}"));
            // Read what the other loud clients say, so nobody is dropped for being slow.
            c.spawn_drain();
            thread::spawn(move || {
                let text = format!("loud{i} says {}", "é".repeat(200));
                // Until the server dies under us.
                for k in 0.. {
                    if (&c.stream).write_all(format!("{k} {text}\n").as_bytes()).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    // Keep reading so nobody is dropped for being slow.
    let drain = listener.spawn_drain();
    let deadline = Instant::now() + PATIENCE;
    while std::fs::metadata(&path).map_or(0, |m| m.len()) < 4 << 20 {
        assert!(Instant::now() < deadline, "the log never grew");
        thread::sleep(Duration::from_millis(10));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for t in senders {
        t.join().unwrap();
    }
    drain.join().unwrap();

    let killed = std::fs::read(&path).unwrap();
    let cut = !killed.ends_with(b"\n");
    let mut content = killed.clone();
    if cut {
        // Linux copies a write(2) to a file page by page and gives up between pages once
        // SIGKILL is pending, so a kill during a multi-page write can leave a partial
        // last line, cut at a page boundary. No user-space writer can prevent that; what
        // tchat guarantees is that the cut is the kernel's, never its own.
        assert_eq!(content.len() % 4096, 0, "the last line is torn inside a page");
        let end = content.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        content.truncate(end);
    }
    let text = String::from_utf8(content).expect("the log is UTF-8");
    let mut messages = 0;
    for (n, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {line:.200}", n + 1));
        if v["msg"] == "Public message" {
            messages += 1;
        }
    }
    assert!(messages > 1000, "only {messages} messages were logged");

    // A new server on the same file: the killed run's lines stay as they are, a cut last
    // line is ended (and reported) so that every record after it is whole again.
    let mut server = Server::start_within(&save, PATIENCE);
    let mut c = server.text_client("after");
    c.send("after the kill");
    server.wait_console("Public message from=after");
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let appended = std::fs::read(&path).unwrap();
    assert!(appended.starts_with(&killed), "the killed run's lines were changed");
    let mut new = &appended[killed.len()..];
    if cut {
        new = new.strip_prefix(b"\n").expect("the cut line was not ended by a newline");
    }
    let new = std::str::from_utf8(new).expect("the new records are UTF-8");
    assert!(new.ends_with('\n'), "the new run's last record is not a whole line");
    let records = parse_jsonl(new);
    let mended = records
        .iter()
        .filter(|r| {
            r["level"] == "WARN"
                && r["msg"].as_str().is_some_and(|m| m.starts_with("Log file ended in a cut line"))
        })
        .count();
    assert_eq!(mended, usize::from(cut), "cut last line: {cut}; new records:\n{new}");
    assert!(
        records.iter().any(|r| r["msg"] == "Public message"
            && r["meta"]["from"] == "after"
            && r["meta"]["text"] == "after the kill"),
        "the new run's message is not in the log:\n{new}"
    );
    std::fs::remove_file(&path).unwrap();
}

/// `--save /dev/full`: the write error is reported on the console once and chat goes on.
#[cfg(target_os = "linux")]
#[test]
fn unwritable_save_file_is_reported_and_chat_goes_on() {
    let mut server = Server::start_within(&["--rate", "0", "--save", "/dev/full"], PATIENCE);
    let mut a = server.text_client("alice");
    let mut b = server.text_client("bob");
    server.wait_console_nth("Log file write failed", 1);
    for i in 0..50 {
        a.send(&format!("still here {i}"));
        assert_eq!(b.expect("<alice>"), format!("<alice> still here {i}"));
    }
    server.wait_console("preview=\"still here 49\"");
    let error = server.wait_console_nth("Log file write failed", 1);
    assert!(error.contains("ERROR") && error.contains("/dev/full"), "{error}");
    assert!(error.contains("No space left on device"), "{error}");
    assert_eq!(server.console_count("Log file write failed"), 1, "reported once, not per event");
}

/// Connections beyond `--max-clients` are refused with a message, and the clients
/// already in keep chatting.
#[test]
fn connection_storm_beyond_max_clients_is_refused_politely() {
    const MAX: usize = 20;
    const STORM: usize = 200;
    let server =
        Server::start_within(&["--max-clients", &MAX.to_string(), "--max-per-ip", "0"], PATIENCE);
    let mut members: Vec<Client> = (0..MAX).map(|i| server.text_client(&format!("m{i}"))).collect();

    let storm: Vec<_> = (0..STORM)
        .map(|_| {
            let addr = server.addr;
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).expect("the kernel accepts the connection");
                s.set_read_timeout(Some(PATIENCE)).unwrap();
                let mut reply = String::new();
                let _ = s.read_to_string(&mut reply);
                let _ = s.shutdown(Shutdown::Both);
                reply
            })
        })
        .collect();
    for t in storm {
        let reply = t.join().unwrap();
        assert_eq!(reply, format!("!!! server full ({MAX} clients); try again later\n"));
    }
    server.wait_console_nth("Connection refused", STORM);
    assert_eq!(server.console_count("Connection refused"), STORM);

    // The members did not notice: each still gets the others' lines and /list is whole.
    members[0].send("/list");
    let list = members[0].expect(" online: ");
    assert!(list.starts_with(&format!("*** {MAX} online: ")), "{list}");
    members[1].send("still fine");
    for (i, m) in members.iter_mut().enumerate() {
        if i != 1 {
            assert_eq!(m.expect("<m1>"), "<m1> still fine");
        }
    }
}
