//! The interactive client shown in tmux, a terminal that re-wraps its rows when the
//! window is resized (as VTE, kitty and Alacritty do; the vt100 model of the pty tests
//! does not): resizing under a wrapped input line must never erase a received line.
//!
//! A terminal re-wraps at once and tells the program later (tmux holds the new size back
//! up to a quarter of a second after another resize), so lines can arrive in between.
//! To put them there on purpose, the client runs on a pseudo-terminal of the test's
//! (tests/common/pty.rs) whose output is relayed to a tmux pane: resizing the tmux window
//! re-wraps what is shown, resizing the client's terminal tells the client (SIGWINCH),
//! and the test orders the two and the received lines as it likes.

#![cfg(unix)]

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;
use common::peer::{Peer, TIMEOUT};
use common::pty::{Seen, Term};
use common::state_dir::StateDir;

const ROWS: u16 = 20;
const PROMPT: &str = "[ana #lobby] ";
const TYPED: &str =
    "words typed at length, more than one row of the window can hold, and more again";

/// A tmux server of its own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output();
        let out = out.expect("running tmux");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The visible rows, trailing blanks trimmed, without the empty rows at the bottom.
    fn rows(&self) -> Vec<String> {
        let shown = self.run(&["capture-pane", "-p"]);
        let mut rows: Vec<String> = shown.lines().map(|r| r.trim_end().to_owned()).collect();
        while rows.last().is_some_and(|r| r.is_empty()) {
            rows.pop();
        }
        rows
    }

    /// Everything the pane holds, scrollback included, rows that tmux wrapped joined.
    fn everything(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-"])
    }

    fn wait(&self, what: &str, pred: impl Fn(&Tmux) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while !pred(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.everything()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Re-wraps what the pane shows at `cols` columns, without telling the client.
    fn rewrap(&self, cols: u16) {
        self.run(&["resize-window", "-x", &cols.to_string(), "-y", &ROWS.to_string()]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).output();
    }
}

/// Copies everything the client writes to its terminal into the tmux pane (through a
/// FIFO that `cat` in the pane reads), until dropped.
struct Relay {
    copied: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(seen: Arc<Mutex<Seen>>, fifo: &Path) -> Relay {
        // Read and write: opening never waits for the reader (Linux and the BSDs).
        let mut pipe = OpenOptions::new().read(true).write(true).open(fifo).expect("the FIFO");
        let copied = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (done, quit) = (copied.clone(), stop.clone());
        std::thread::spawn(move || {
            while !quit.load(Ordering::SeqCst) {
                let from = done.load(Ordering::SeqCst);
                let new = seen.lock().unwrap().raw[from..].to_vec();
                if new.is_empty() {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                pipe.write_all(&new).expect("writing to the pane");
                done.store(from + new.len(), Ordering::SeqCst);
            }
        });
        Relay { copied, stop }
    }

    /// Waits until all the client wrote so far is in the pane's input.
    fn drain(&self, seen: &Mutex<Seen>) {
        let written = seen.lock().unwrap().raw.len();
        let deadline = Instant::now() + TIMEOUT;
        while self.copied.load(Ordering::SeqCst) < written {
            assert!(Instant::now() < deadline, "the relay is stuck");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The prompt and typed line laid out at `cols` columns (ASCII: a column a byte).
fn laid_out(cols: u16) -> Vec<String> {
    let text = format!("{PROMPT}{TYPED}");
    text.as_bytes().chunks(cols.into()).map(|c| String::from_utf8_lossy(c).into_owned()).collect()
}

fn ends_with_input(rows: &[String], cols: u16) -> bool {
    let want = laid_out(cols);
    rows.len() >= want.len() && rows[rows.len() - want.len()..] == want[..]
}

/// The client's own screen (what it drew, at the size it was told), trailing blanks and
/// empty bottom rows trimmed.
fn client_rows(term: &Term) -> Vec<String> {
    let seen = term.seen.lock().unwrap();
    let screen = seen.parser.screen();
    let (rows, cols) = screen.size();
    let mut out: Vec<String> = screen
        .rows(0, cols.get())
        .take(rows.get().into())
        .map(|r| r.trim_end().to_owned())
        .collect();
    while out.last().is_some_and(|r| r.is_empty()) {
        out.pop();
    }
    out
}

struct Setup {
    _server: Server,
    term: Term,
    tmux: Tmux,
    relay: Relay,
    bo: Peer,
    said: Vec<String>,
    _state: StateDir,
    _fifo: PathBuf,
}

impl Setup {
    /// The client at 80 columns with the long line typed, shown in tmux, and bo there.
    fn start(name: &str) -> Setup {
        let server = Server::start(&["--rate", "0"]);
        let state = StateDir::new(name);
        let fifo = state.join("pane.fifo");
        let made = Command::new("mkfifo").arg(&fifo).status().expect("running mkfifo");
        assert!(made.success());
        let tmux = Tmux { socket: format!("tchat-test-{name}-{}", std::process::id()) };
        // Raw: the pane shows the client's bytes as they are.
        let pane = format!("stty raw -echo; exec cat {}", fifo.display());
        let size = ["-x", "80", "-y", "20"];
        tmux.run(&[&["-f", "/dev/null", "new-session", "-d"], &size[..], &[&pane]].concat());
        tmux.run(&["set-option", "-g", "status", "off"]);
        let args = ["--fingerprint", &server.fingerprint, "--nick", "ana"];
        let mut term = Term::start_sized(server.addr, &state, &args, ROWS, 80);
        let relay = Relay::start(term.seen.clone(), &fifo);
        term.wait_input(PROMPT);
        let bo = Peer::join(server.addr, "bo");
        term.wait_text("bo joined");
        term.keys(TYPED);
        term.wait_typed(&format!("{PROMPT}{TYPED}"));
        tmux.wait("the typed line in tmux", |t| ends_with_input(&t.rows(), 80));
        Setup {
            _server: server,
            term,
            tmux,
            relay,
            bo,
            said: Vec::new(),
            _state: state,
            _fifo: fifo,
        }
    }

    /// bo says `text`; waits until the pane shows it.
    fn say(&mut self, text: &str) {
        self.bo.send(text);
        let line = format!("<bo> {text}\n");
        self.tmux.wait(&format!("{line:?} in the pane"), |t| t.everything().contains(&line));
        self.said.push(line);
    }

    /// Tells the client its terminal is now `cols` wide; waits until it has drawn the
    /// line again at that width and the pane has it.
    fn tell(&mut self, cols: u16) {
        self.term.resize(ROWS, cols);
        self.term.wait(&format!("the line redrawn at {cols} columns"), |t| {
            ends_with_input(&client_rows(t), cols)
        });
        self.relay.drain(&self.term.seen);
    }

    /// Every received line so far is in the pane (screen or scrollback) exactly once.
    fn check(&self, after: &str) {
        let all = self.tmux.everything();
        // Whole lines: one said text can begin another.
        for line in self.said.iter().map(String::as_str).chain(["*** bo joined (2 online)\n"]) {
            assert_eq!(all.matches(line).count(), 1, "after {after}: {line:?} in\n{all}");
        }
    }
}

#[test]
fn resizing_under_a_wrapped_line_never_erases_a_received_line() {
    if !common::have_tool("tmux", "tmux") {
        return;
    }
    let mut s = Setup::start("tmux-resize");
    // The issue's order: narrower, a line, wider, a line; each time the terminal has
    // re-wrapped before the client is told (93 columns: 2 rows at 80, 3 at 37, 1 at 100).
    s.tmux.rewrap(37);
    s.say("said at 37 columns before the client knew");
    s.tell(37);
    s.say("said at 37 columns");
    s.tmux.rewrap(100);
    s.say("said at 100 columns before the client knew");
    s.check("widening to 100 columns");
    s.tell(100);
    s.tmux.wait("the line in one row", |t| ends_with_input(&t.rows(), 100));
    s.say("said at 100 columns");
    s.check("the client redrew at 100 columns");
    // Told first, then re-wrapped (4 rows at 30), then wider and narrower again before
    // the client hears of it (two resizes in a row, as tmux reports only the last).
    s.tell(30);
    s.tmux.rewrap(30);
    s.tmux.wait("the line in 4 rows", |t| ends_with_input(&t.rows(), 30));
    s.say("said at 30 columns");
    s.tmux.rewrap(120);
    s.say("said at 120 columns before the client knew");
    s.tmux.rewrap(55);
    s.say("said at 55 columns before the client knew");
    s.tell(55);
    s.check("30, 120 and 55 columns");
    s.tmux.rewrap(110);
    s.tell(110);
    s.say("said at 110 columns");
    s.check("110 columns");
    // The line is whole at the bottom, and sending it works as ever.
    s.tmux.wait("the line at 110 columns", |t| ends_with_input(&t.rows(), 110));
    s.term.keys("\r");
    s.say_mine();
    s.check("sending the line");
}

impl Setup {
    /// Waits for the server's echo of the typed line in the pane.
    fn say_mine(&mut self) {
        let line = format!("<ana> {TYPED}\n");
        self.tmux.wait("the sent line", |t| t.everything().contains(&line));
        self.said.push(line);
    }
}
