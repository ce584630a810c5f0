//! Test harness shared by the integration tests: a real `tchat serve` child process on
//! 127.0.0.1 with a free port, and line-oriented raw TCP clients.
#![allow(dead_code)] // each test crate uses a different part of it

pub mod peer;
pub mod state_dir;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Upper bound for anything a test waits for; generous because CI machines are shared.
pub const WAIT: Duration = Duration::from_secs(15);

/// A running `tchat serve` that is killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every console line so far, in order.
    console: Arc<Mutex<Vec<String>>>,
    lines: Receiver<String>,
}

impl Server {
    /// Starts `tchat serve --host 127.0.0.1 --port 0 EXTRA…` and waits for its address.
    pub fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tchat"))
            .args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning tchat serve");
        let stdout = child.stdout.take().unwrap();
        let console = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = channel();
        {
            let console = console.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let line = match line {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("HARNESS console read error: {e}");
                            break;
                        }
                    };
                    console.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let mut server = Server { child, addr: "0.0.0.0:0".parse().unwrap(), console, lines };
        let line = server.wait_console("Listening");
        let addr = line
            .split_whitespace()
            .find_map(|w| w.rsplit("addr=").next().filter(|_| w.contains("addr=")))
            .map(|w| w.trim_start_matches("\u{1b}[0m"))
            .unwrap_or_else(|| panic!("no addr= in {line:?}"));
        server.addr = addr.parse().unwrap();
        server
    }

    /// Waits for the next console line containing `needle` and returns it.
    pub fn wait_console(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("console never showed {needle:?}; it showed:\n{}", self.console_text())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("server exited before showing {needle:?}:\n{}", self.console_text())
                }
            }
        }
    }

    pub fn console_text(&self) -> String {
        self.console.lock().unwrap().join("\n")
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A client whose socket has a small receive buffer, set before connecting so the
    /// TCP window stays small: a client that stops reading then backs up quickly.
    pub fn connect_with_rcvbuf(&self, bytes: usize) -> Client {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(self.addr),
            socket2::Type::STREAM,
            None,
        )
        .unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
        socket.connect(&self.addr.into()).unwrap();
        Client::from_stream(socket.into())
    }

    /// A text-mode client that has registered as `nick` (first line `/nick NICK`).
    pub fn text_client(&self, nick: &str) -> Client {
        let mut c = self.connect();
        c.send(&format!("/nick {nick}"));
        c.expect(&format!("You are {nick};"));
        c
    }

    /// A structured-mode client registered as `nick`; returns it with its welcome event.
    pub fn json_client(&self, nick: &str) -> (Client, serde_json::Value) {
        let mut c = self.connect();
        c.send(&format!("/hello json {nick}"));
        let welcome = c.expect_event("welcome");
        (c, welcome)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        wait_exit(&mut self.child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) for a child to exit.
pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw TCP client reading whole lines with a deadline.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// Every line received so far.
    pub seen: Vec<String>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).expect("connecting to the test server"))
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader, seen: Vec::new() }
    }

    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("sending to the server");
    }

    /// Next line, or `None` at end of stream; panics after [`WAIT`].
    pub fn next_line(&mut self) -> Option<String> {
        let deadline = Instant::now() + WAIT;
        let mut buf = Vec::new();
        loop {
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) if buf.is_empty() => return None,
                Ok(_) if buf.ends_with(b"\n") => {
                    let line = String::from_utf8(buf).expect("server sent invalid UTF-8");
                    let line = line.trim_end_matches(['\n', '\r']).to_owned();
                    self.seen.push(line.clone());
                    return Some(line);
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading from the server: {e}"),
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for a line; seen so far:\n{}",
                self.seen.join("\n")
            );
        }
    }

    /// Reads until a line contains `needle`; returns that line.
    pub fn expect(&mut self, needle: &str) -> String {
        loop {
            match self.next_line() {
                Some(line) if line.contains(needle) => return line,
                Some(_) => {}
                None => {
                    panic!("connection closed before {needle:?}; seen:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    /// Reads JSON events until one has `type` == `kind`; returns it.
    pub fn expect_event(&mut self, kind: &str) -> serde_json::Value {
        loop {
            let Some(line) = self.next_line() else {
                panic!("connection closed before a {kind} event; seen:\n{}", self.seen.join("\n"))
            };
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
            assert!(v["ts"].is_string(), "event without ts: {line}");
            if v["type"] == kind {
                return v;
            }
        }
    }

    /// Reads until the server closes the connection; returns the lines read meanwhile.
    pub fn read_to_close(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = self.next_line() {
            lines.push(line);
        }
        lines
    }

    /// Round trip through the server: everything queued for this client before now has
    /// arrived once this returns. Returns the lines read on the way.
    pub fn sync(&mut self) -> Vec<String> {
        let start = self.seen.len();
        self.send("/list");
        self.expect(" online: ");
        self.seen[start..].to_vec()
    }
}

/// A fresh temporary file path (not created).
pub fn temp_path(name: &str) -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("tchat-test-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Parses every line of a JSON Lines file, panicking on a torn or invalid line.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("line {} not JSON ({e}): {l:?}", i + 1))
        })
        .collect()
}
