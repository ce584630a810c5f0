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

/// `tchat serve` on a pty, and the address it listens on (read off its screen).
fn serve(state: &StateDir) -> (Term, SocketAddr) {
    let args: Vec<String> =
        ["serve", "--host", "127.0.0.1", "--port", "0"].map(String::from).to_vec();
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
    let (mut term, addr) = serve(&state);
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
    bob.expect("!!! you were banned by console: flooding");
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

#[test]
fn without_a_terminal_the_console_is_a_plain_log() {
    let mut server = Server::start(&[]);
    let _alice = server.text_client("alice");
    server.wait_console("Nick set");
    assert!(!server.console_text().contains("tchat>"), "{}", server.console_text());
    assert!(server.terminate().success());
}
