//! The server's interactive console in a real pseudo-terminal: operator commands typed
//! at its prompt (with Tab completion) act on connected clients, the log keeps
//! scrolling above the prompt, and Ctrl-D stops the server cleanly. Without a terminal
//! the console stays a plain log.

#![cfg(unix)]

mod common;

use std::net::SocketAddr;

use common::pty::{COLS, ROWS, Term};
use common::state_dir::StateDir;
use common::{Client, Server, WAIT};

/// `tchat serve EXTRA…` on a pty, and the address it listens on (read off its screen).
fn serve(state: &StateDir, extra: &[&str]) -> (Term, SocketAddr) {
    let mut args: Vec<String> =
        ["serve", "--host", "127.0.0.1", "--port", "0"].map(String::from).to_vec();
    args.extend(extra.iter().map(|a| a.to_string()));
    let term = Term::spawn(&args, state, ROWS, COLS);
    term.wait_text("Listening");
    let flat = term.flat();
    let addr = flat.split("addr=").nth(1).and_then(|rest| rest.split_whitespace().next());
    let addr = addr.unwrap_or_else(|| panic!("no addr= on the screen:\n{}", term.screen()));
    (term, addr.parse().unwrap())
}

#[test]
fn kick_and_ban_typed_at_the_console_take_effect_and_ctrl_d_stops_the_server() {
    let state = StateDir::new("console");
    let (mut term, addr) = serve(&state, &[]);
    term.wait_input("tchat> ");
    let mut alice = Client::connect_as(addr, "alice", WAIT);
    let mut bob = Client::connect_as(addr, "bob", WAIT);
    alice.expect("bob joined");
    // The log scrolls above the prompt, which stays on the last line.
    term.wait_text("Nick set");
    term.wait_input("tchat> ");

    // Tab completes the command, then the nick (asked of the running server); the
    // leading `/` is optional there too.
    term.keys("/ki\t");
    term.wait_input("tchat> /kick ");
    term.keys("\x15ki\t");
    term.wait_input("tchat> kick ");
    term.keys("bo\t");
    term.wait_input("tchat> kick bob ");
    term.keys("spamming\r");
    bob.expect("!!! you were kicked by console: spamming");
    bob.read_to_close();
    alice.expect("*** bob left: kicked by console: spamming");
    term.wait_text("kicked bob");
    term.wait_input("tchat> ");

    let mut bob = Client::connect_as(addr, "bob", WAIT);
    term.keys("/ban bob 1h flooding\r");
    bob.expect("!!! you were banned by console for 1h 0m: flooding");
    bob.read_to_close();
    term.wait_text("banned bob for 1h 0m; disconnected bob");
    let mut again = Client::connect(addr);
    again.send("/nick bob");
    let refused = again.next_line().unwrap();
    assert!(refused.starts_with("!!! you are banned from this server until "), "{refused}");

    // A mistake gets an error and the console goes on.
    term.keys("/kick nobody\r");
    term.wait_text("error: no such user: nobody");
    term.wait_input("tchat> ");

    // A network wider than an IPv4 /16 is refused without --wide, naming the flag,
    // and made with it.
    term.keys("/ban 10.0.0.0/8 1h\r");
    term.wait_text("error: not banning 10.0.0.0/8: it is a network wider than /16");
    term.wait_text("add --wide to confirm");
    term.wait_input("tchat> ");
    term.keys("/ban 10.0.0.0/8 --wide 1h\r");
    term.wait_text("banned 10.0.0.0/8 for 1h 0m");
    term.wait_input("tchat> ");

    // Ctrl-D: the server stops as on SIGTERM, and the terminal is given back.
    term.keys("\x04");
    alice.expect("*** Server shutting down");
    let status = term.wait_exit();
    assert!(status.success(), "{status:?}; screen:\n{}", term.screen());
    term.wait_text("Server stopped");
    let flags = term.local_flags();
    assert_ne!(flags & libc::ICANON, 0, "canonical mode not restored");
    assert_ne!(flags & libc::ECHO, 0, "echo not restored");
    let history = std::fs::read_to_string(state.join("tchat/console_history")).unwrap();
    assert!(history.contains("kick bob spamming"), "{history}");
}

/// With `--state-dir`, the console's history is kept there, with the certificate,
/// not in XDG_STATE_HOME.
#[test]
fn the_console_history_follows_the_state_dir() {
    let state = StateDir::new("console-state-dir");
    let custom = state.join("custom");
    let (mut term, _addr) = serve(&state, &["--state-dir", custom.to_str().unwrap()]);
    term.wait_input("tchat> ");
    term.keys("/bans\r");
    term.wait_text("no bans");
    term.wait_input("tchat> ");
    term.keys("\x04");
    let status = term.wait_exit();
    assert!(status.success(), "{status:?}; screen:\n{}", term.screen());
    let history = std::fs::read_to_string(custom.join("console_history"))
        .unwrap_or_else(|e| panic!("no console_history in --state-dir: {e}"));
    assert!(history.contains("/bans"), "{history}");
    assert!(custom.join("tls-cert.pem").exists(), "the certificate is there too");
    assert!(!state.join("tchat").exists(), "XDG_STATE_HOME/tchat was made");
}

#[test]
fn without_a_terminal_the_console_is_a_plain_log() {
    let mut server = Server::start(&[]);
    let _alice = server.text_client("alice");
    server.wait_console("Nick set");
    assert!(!server.console_text().contains("tchat>"), "{}", server.console_text());
    assert!(server.terminate().success());
}

/// Kills the server a test shell started in the background, whatever happens to the test:
/// it is in its own process group, out of reach of the shell's death.
struct Background(libc::pid_t);

impl Drop for Background {
    fn drop(&mut self) {
        // SAFETY: plain signals to a process this test started.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::kill(self.0, libc::SIGCONT);
        }
    }
}

#[test]
fn started_in_the_background_of_a_terminal_the_server_runs_as_a_plain_log() {
    // `tchat serve &` in an interactive shell: job control (`set -m`) puts the server in
    // a process group of its own that is not the terminal's foreground one, where
    // touching the terminal's mode stops it with SIGTTOU.
    let state = StateDir::new("console-bg");
    let script = "set -m; \"$0\" serve --host 127.0.0.1 --port 0 & echo \"server pid=$!\"; wait $!";
    let args: Vec<String> = ["-c", script, common::peer::BIN].map(String::from).to_vec();
    let mut term = Term::spawn_program("sh", &args, &state, ROWS, COLS);
    term.wait_text("server pid=");
    let flat = term.flat();
    let pid = flat.split("server pid=").nth(1).and_then(|rest| rest.split_whitespace().next());
    let server = Background(pid.unwrap().parse().unwrap());
    term.wait_text("Listening");
    let flat = term.flat();
    let addr = flat.split("addr=").nth(1).and_then(|rest| rest.split_whitespace().next());
    let addr: SocketAddr = addr.unwrap().parse().unwrap();

    let _alice = Client::connect_as(addr, "alice", WAIT);
    term.wait_text("Nick set");
    assert!(!term.flat().contains("tchat>"), "a console prompt:\n{}", term.screen());
    // SAFETY: a plain signal to the server this test started.
    assert_eq!(unsafe { libc::kill(server.0, libc::SIGTERM) }, 0);
    let status = term.wait_exit();
    assert!(status.success(), "{status:?}; screen:\n{}", term.screen());
    term.wait_text("Server stopped");
}
