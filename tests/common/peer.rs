//! A participant speaking the structured protocol with typed events, for the client
//! tests: it checks what `tchat join` sends as [`EventKind`]s.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tchat::protocol::{Event, EventKind};

/// Generous: CI machines are slow and shared.
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub const BIN: &str = env!("CARGO_BIN_EXE_tchat");

/// A participant speaking the structured protocol directly, as a second client.
pub struct Peer {
    pub nick: String,
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Peer {
    pub fn join(addr: SocketAddr, nick: &str) -> Peer {
        let stream = TcpStream::connect(addr).expect("peer connects");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut peer = Peer { nick: nick.to_owned(), stream, reader };
        peer.send(&format!("/hello json {nick}"));
        match peer.next_event() {
            EventKind::Welcome { nick: got, .. } => assert_eq!(got, nick),
            other => panic!("expected a welcome, got {other:?}"),
        }
        peer
    }

    pub fn send(&mut self, line: &str) {
        self.stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// Sends raw bytes (for lines with escape sequences in them).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn next_event(&mut self) -> EventKind {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("peer reads an event in time");
        assert!(n > 0, "server closed the peer's connection");
        serde_json::from_str::<Event>(&line).expect("a JSON event").kind
    }

    /// Reads events until one matches; panics after [`TIMEOUT`].
    pub fn wait_for(&mut self, what: &str, mut pred: impl FnMut(&EventKind) -> bool) -> EventKind {
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let event = self.next_event();
            if pred(&event) {
                return event;
            }
            seen.push(event);
        }
        panic!("{} never saw {what}; saw {seen:?}", self.nick);
    }
}
