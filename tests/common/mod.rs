//! Test harness shared by the integration tests: a real `tchat serve` child process on
//! 127.0.0.1 with a free port, and line-oriented raw TCP clients.
#![allow(dead_code)] // each test crate uses a different part of it

pub mod closer;
pub mod nats;
pub mod peer;
pub mod proxy;
pub mod pty;
pub mod silent;
pub mod state_dir;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Upper bound for anything a test waits for; generous because CI machines are shared.
pub const WAIT: Duration = Duration::from_secs(15);

/// Upper bound for the soak tests' waits: they load the 2-core CI machine themselves
/// (hundreds of clients, megabytes of logging), so they get twice [`WAIT`].
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running `tchat serve` that is killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every console line so far, in order, with a signal for each new one: for the
    /// waits that look at the whole console rather than at the next lines.
    console: Arc<(Mutex<Vec<String>>, Condvar)>,
    lines: Receiver<String>,
    /// How long this server's waits (and those of its clients) last before failing.
    patience: Duration,
    /// The server's standard error, also echoed to the test's. No input may make the
    /// server panic, not even in one connection's task (which it would survive), so
    /// dropping a `Server` whose stderr shows a panic fails the test.
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
    /// The server's XDG_STATE_HOME, where it keeps its generated TLS certificate: never
    /// the real one.
    pub state: state_dir::StateDir,
    /// The TLS certificate's fingerprint, from the `Listening` line.
    pub fingerprint: String,
}

impl Server {
    /// Starts `tchat serve --host 127.0.0.1 --port 0 EXTRA…` and waits for its address.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_within(extra, WAIT)
    }

    /// [`Server::start`] for a test that loads the machine: every wait of this server
    /// and of the clients it connects lasts up to `patience`.
    pub fn start_within(extra: &[&str], patience: Duration) -> Server {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Server::start_in(state_dir::StateDir::new(&format!("serve{n}")), extra, patience)
    }

    /// [`Server::start_within`] with the given state directory (XDG_STATE_HOME), e.g. to
    /// keep the same certificate across a restart.
    ///
    /// Unless `extra` says otherwise, the server replays no history on join
    /// (`--replay 0`): a test about something else then sees only the lines it causes.
    pub fn start_in(state: state_dir::StateDir, extra: &[&str], patience: Duration) -> Server {
        let replay: &[&str] = if extra.contains(&"--replay") { &[] } else { &["--replay", "0"] };
        let mut child = serve_command(&state, &[replay, extra].concat())
            .env_remove("NO_COLOR")
            .spawn()
            .expect("spawning tchat serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = {
            let stderr = stderr.clone();
            let pipe = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    eprintln!("[tchat serve] {line}");
                    stderr.lock().unwrap().push_str(&(line + "\n"));
                }
            })
        };
        let stdout = child.stdout.take().unwrap();
        let console = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let (tx, lines) = channel();
        {
            let console = console.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let line = match line {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("test harness: cannot read the server's console: {e}");
                            break;
                        }
                    };
                    console.0.lock().unwrap().push(line.clone());
                    console.1.notify_all();
                    let _ = tx.send(line);
                }
            });
        }
        let mut server = Server {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            console,
            lines,
            patience,
            stderr,
            stderr_reader: Some(stderr_reader),
            state,
            fingerprint: String::new(),
        };
        let line = server.wait_console("Listening");
        server.addr = console_field(&line, "addr").parse().unwrap();
        server.fingerprint = console_field(&line, "fingerprint");
        server
    }

    /// Waits for the next console line containing `needle` and returns it.
    pub fn wait_console(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + self.patience;
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

    /// Waits until `n` console lines, counted from the start, contain `needle`; returns
    /// the `n`th. Unlike [`Server::wait_console`] it consumes nothing, so a test can wait
    /// for a count ("200 refusals") or look again at a line it has already seen.
    pub fn wait_console_nth(&self, needle: &str, n: usize) -> String {
        assert!(n > 0, "occurrences are counted from 1");
        let (lines, signal) = &*self.console;
        let deadline = Instant::now() + self.patience;
        let mut guard = lines.lock().unwrap();
        loop {
            if let Some(line) = guard.iter().filter(|l| l.contains(needle)).nth(n - 1) {
                return line.clone();
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                let text = guard.join("\n");
                drop(guard);
                panic!("console never showed {n} × {needle:?}; it showed:\n{text}");
            };
            guard = signal.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// How many console lines so far contain `needle`: for "reported once" checks.
    pub fn console_count(&self, needle: &str) -> usize {
        self.console.0.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    pub fn console_text(&self) -> String {
        self.console.0.lock().unwrap().join("\n")
    }

    /// The server's peak resident memory in KiB (`VmHWM` in /proc): the soak tests
    /// bound what a misbehaving client can make the server hold.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in /proc status:\n{status}"))
    }

    pub fn connect(&self) -> Client {
        Client::connect_within(self.addr, self.patience)
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
        Client::from_stream_within(socket.into(), self.patience)
    }

    /// A text-mode client that has registered as `nick` (first line `/nick NICK`).
    pub fn text_client(&self, nick: &str) -> Client {
        Client::connect_as(self.addr, nick, self.patience)
    }

    /// A structured-mode client registered as `nick`; returns it with its welcome event.
    pub fn json_client(&self, nick: &str) -> (Client, serde_json::Value) {
        let mut c = self.connect();
        c.send(&format!("/hello json {nick}"));
        let welcome = c.expect_event("welcome");
        (c, welcome)
    }

    /// Everything the server wrote to standard error, read to its end: only once the
    /// server has exited (a panic message, for one, is on stderr, never on the console).
    pub fn stderr_after_exit(&mut self) -> String {
        assert!(self.child.try_wait().unwrap().is_some(), "the server is still running");
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().expect("the stderr reader thread");
        }
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM")
    }

    /// Sends the signal named `name` (`TERM`, `HUP`, …) and waits for the server to exit.
    pub fn signal(&mut self, name: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap();
        assert!(status.success());
        wait_exit_within(&mut self.child, self.patience)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        let stderr = self.stderr.lock().unwrap();
        if stderr.contains("panicked") && !std::thread::panicking() {
            panic!("tchat serve panicked:\n{stderr}");
        }
    }
}

/// The value of `name=` in a console line (which may be colored).
/// `tchat serve --host 127.0.0.1 --port 0 ARGS…` with its state (XDG_STATE_HOME) in
/// `state`, no default control socket shared by every server of the test run, stdin
/// closed, stdout and stderr piped.
pub fn serve_command(state: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tchat"));
    command
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .args(args)
        .env("XDG_STATE_HOME", state)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("RUNTIME_DIRECTORY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// `tchat join ADDR --no-history` with its known hosts, keys and settings under `home`
/// (XDG_DATA_HOME, XDG_STATE_HOME and HOME: never the real ones), stdin, stdout and
/// stderr piped; the caller adds its own arguments.
pub fn join_command(addr: SocketAddr, home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tchat"));
    command
        .args(["join", &addr.to_string(), "--no-history"])
        .env("XDG_DATA_HOME", home)
        .env("XDG_STATE_HOME", home)
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub fn console_field(line: &str, name: &str) -> String {
    let key = format!("{name}=");
    line.split_whitespace()
        .find_map(|w| w.rsplit(&key).next().filter(|_| w.contains(&key)))
        .map(|w| w.trim_start_matches("\u{1b}[0m").to_owned())
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

/// Waits (bounded) for a child to exit.
pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    wait_exit_within(child, WAIT)
}

/// [`wait_exit`] with a deadline of `patience`, for a server started with
/// [`Server::start_within`].
pub fn wait_exit_within(child: &mut Child, patience: Duration) -> std::process::ExitStatus {
    expect_exit(child, patience, "the process")
}

/// Waits up to `patience` for `child` to exit by itself; panics saying `what` did not
/// (e.g. "the client after /quit").
pub fn expect_exit(child: &mut Child, patience: Duration, what: &str) -> std::process::ExitStatus {
    poll_exit(patience, || child.try_wait().unwrap())
        .unwrap_or_else(|| panic!("{what} did not exit within {patience:?}"))
}

/// The tests' one exit-wait loop: calls `try_wait` every 20 ms until it reports an exit
/// status, for at most `patience`; `None` if the process is still running then. Takes
/// a closure so that std's `Child` and portable-pty's share it.
pub fn poll_exit<S>(patience: Duration, mut try_wait: impl FnMut() -> Option<S>) -> Option<S> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(status) = try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw TCP client reading whole lines with a deadline.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// Every line received so far.
    pub seen: Vec<String>,
    /// How long [`Client::next_line`] waits for a line before failing.
    patience: Duration,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::connect_within(addr, WAIT)
    }

    /// [`Client::connect`] whose reads wait up to `patience`, for a loaded machine.
    pub fn connect_within(addr: SocketAddr, patience: Duration) -> Client {
        let stream = TcpStream::connect(addr).expect("connecting to the test server");
        Client::from_stream_within(stream, patience)
    }

    /// A text-mode client registered as `nick`, from the address alone: a test thread
    /// cannot share the [`Server`] (its console receiver is not `Sync`).
    pub fn connect_as(addr: SocketAddr, nick: &str, patience: Duration) -> Client {
        let mut c = Client::connect_within(addr, patience);
        c.send(&format!("/nick {nick}"));
        c.expect(&format!("You are {nick};"));
        c
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        Client::from_stream_within(stream, WAIT)
    }

    pub fn from_stream_within(stream: TcpStream, patience: Duration) -> Client {
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader, seen: Vec::new(), patience }
    }

    /// A handle that sends on this client's connection through `&TcpStream`, so one
    /// thread can talk while another owns the client and reads what arrives.
    pub fn send_half(&self) -> SendHalf {
        SendHalf(self.stream.try_clone().unwrap())
    }

    /// Reads and discards everything the server sends, on a thread of its own, until
    /// the connection ends or stays silent for the client's patience: a client that
    /// only talks is then never dropped as too slow. The socket is shared, so this
    /// client's own reads would now wait that long too (they race the drain anyway).
    pub fn spawn_drain(&self) -> JoinHandle<()> {
        let stream = self.stream.try_clone().unwrap();
        stream.set_read_timeout(Some(self.patience)).unwrap();
        std::thread::spawn(move || {
            let mut sink = [0u8; 64 * 1024];
            while matches!((&stream).read(&mut sink), Ok(n) if n > 0) {}
        })
    }

    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("sending to the server");
    }

    /// Next line, or `None` at end of stream; panics after the client's patience
    /// ([`WAIT`] unless connected with a longer one).
    pub fn next_line(&mut self) -> Option<String> {
        self.line_within(self.patience).unwrap_or_else(|| {
            panic!("timed out waiting for a line; seen so far:\n{}", self.seen.join("\n"))
        })
    }

    /// Next line within `wait` (`Some(None)` at end of stream), or `None` after `wait`
    /// without one: for a test that counts what came rather than fails at the first gap.
    pub fn line_within(&mut self, wait: Duration) -> Option<Option<String>> {
        let deadline = Instant::now() + wait;
        let mut buf = Vec::new();
        loop {
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) if buf.is_empty() => return Some(None),
                Ok(_) if buf.ends_with(b"\n") => {
                    let line = String::from_utf8(buf).expect("server sent invalid UTF-8");
                    let line = line.trim_end_matches(['\n', '\r']).to_owned();
                    self.seen.push(line.clone());
                    return Some(Some(line));
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(None),
                Err(e) => panic!("reading from the server: {e}"),
            }
            if Instant::now() >= deadline {
                return None;
            }
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

    /// Reads to the end of the stream, the line reader's buffer included, waiting up to
    /// the client's patience; for a connection the server ended, perhaps mid-line. An
    /// error (a reset, or no end in time) is returned, not hidden.
    pub fn read_rest(&mut self) -> std::io::Result<Vec<u8>> {
        self.stream.set_read_timeout(Some(self.patience))?;
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest)?;
        Ok(rest)
    }

    /// Reads until the server closes the connection, and fails if the connection ended
    /// with an error (a reset) rather than in order; returns the lines read meanwhile.
    pub fn read_to_clean_close(&mut self) -> Vec<String> {
        let rest = self.read_rest().unwrap_or_else(|e| {
            panic!("the connection ended with {e:?} instead of an orderly close")
        });
        let lines: Vec<String> =
            String::from_utf8_lossy(&rest).lines().map(str::to_owned).collect();
        self.seen.extend(lines.iter().cloned());
        lines
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

/// The sending side of a [`Client`] (see [`Client::send_half`]).
pub struct SendHalf(TcpStream);

impl SendHalf {
    pub fn send(&self, line: &str) {
        (&self.0).write_all(format!("{line}\n").as_bytes()).expect("sending to the server");
    }
}

/// What `tchat ctl` did: its exit code and output.
pub struct CtlOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tchat ctl --control-socket SOCKET ARGS…` to completion (bounded).
pub fn ctl(socket: &Path, args: &[&str]) -> CtlOutput {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tchat"))
        .arg("ctl")
        .arg("--control-socket")
        .arg(socket)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning tchat ctl");
    let status = wait_exit(&mut child);
    let read = |pipe: Option<&mut dyn Read>| {
        let mut s = String::new();
        pipe.unwrap().read_to_string(&mut s).unwrap();
        s
    };
    let stdout = read(child.stdout.as_mut().map(|p| p as &mut dyn Read));
    let stderr = read(child.stderr.as_mut().map(|p| p as &mut dyn Read));
    CtlOutput { code: status.code().unwrap_or(-1), stdout, stderr }
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
    parse_jsonl(&std::fs::read_to_string(path).unwrap())
}

/// [`read_jsonl`] for part of a file: the records one server run appended to a log.
pub fn parse_jsonl(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("line {} not JSON ({e}): {l:?}", i + 1))
        })
        .collect()
}

/// One IPv4 TCP socket as `/proc/net/tcp` shows it.
pub struct TcpRow {
    pub local_port: u16,
    pub remote_port: u16,
    /// 1: established.
    pub state: u8,
    /// The armed timer: 0 none, 1 retransmission, 2 keepalive, 4 zero-window probe.
    pub timer: u8,
    /// Clock ticks (USER_HZ) until that timer fires.
    pub timer_ticks: u64,
}

/// Every IPv4 TCP socket of this network namespace, from `/proc/net/tcp`.
pub fn tcp_sockets() -> Vec<TcpRow> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("reading /proc/net/tcp");
    let port = |addr: &str| u16::from_str_radix(addr.rsplit_once(':')?.1, 16).ok();
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when ...
    (table.lines().skip(1))
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (timer, ticks) = f.get(5)?.split_once(':')?;
            Some(TcpRow {
                local_port: port(f.get(1)?)?,
                remote_port: port(f.get(2)?)?,
                state: u8::from_str_radix(f.get(3)?, 16).ok()?,
                timer: u8::from_str_radix(timer, 16).ok()?,
                timer_ticks: u64::from_str_radix(ticks, 16).ok()?,
            })
        })
        .collect()
}

/// Seconds until the keepalive timer of the TCP socket from `local_port` to
/// `remote_port` fires, once the kernel shows it armed (a socket with data in flight
/// shows its retransmission timer instead); `None` if it is not armed within [`WAIT`].
pub fn keepalive_timer(local_port: u16, remote_port: u16) -> Option<f64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let armed = tcp_sockets()
            .into_iter()
            .find(|s| s.local_port == local_port && s.remote_port == remote_port && s.timer == 2);
        if let Some(socket) = armed {
            // SAFETY: sysconf has no preconditions.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
            return Some(socket.timer_ticks as f64 / hz);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The TCP socket that process `pid` holds from `local_port` to `remote_port`,
/// duplicated into this process with `pidfd_getfd(2)` (Linux 5.6; allowed for a child
/// of the caller), so a test reads the options the real binary set on it with
/// `getsockopt`: `/proc/net/tcp` shows only some of them.
#[cfg(target_os = "linux")]
pub fn socket_of(pid: u32, local_port: u16, remote_port: u16) -> socket2::Socket {
    use std::os::fd::{FromRawFd, OwnedFd};
    let port = |addr: std::io::Result<socket2::SockAddr>| addr.ok()?.as_socket().map(|a| a.port());
    // SAFETY: plain system calls; each fd returned is new and owned by what wraps it.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    assert!(pidfd >= 0, "pidfd_open({pid}): {}", std::io::Error::last_os_error());
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    let dir = format!("/proc/{pid}/fd");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let entry = entry.unwrap();
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if !is_socket {
            continue;
        }
        let raw = unsafe {
            libc::syscall(libc::SYS_pidfd_getfd, std::os::fd::AsRawFd::as_raw_fd(&pidfd), fd, 0)
        };
        assert!(raw >= 0, "pidfd_getfd({pid}, {fd}): {}", std::io::Error::last_os_error());
        let socket = socket2::Socket::from(unsafe { OwnedFd::from_raw_fd(raw as i32) });
        if port(socket.local_addr()) == Some(local_port)
            && port(socket.peer_addr()) == Some(remote_port)
        {
            return socket;
        }
    }
    panic!("process {pid} holds no socket from port {local_port} to port {remote_port}");
}

/// Whether `tool` can run. When it cannot: a `SKIPPED` notice and `false` on a developer
/// machine, a failure under CI (`CI` set), where `.ci/packages` installs `package`.
pub fn have_tool(tool: &str, package: &str) -> bool {
    // Only whether it starts: mandoc, for one, has no --version and fails on it.
    let found = Command::new(tool).arg("--version").output().is_ok();
    found
        || skip_outside_ci(&format!(
            "`{tool}` is not installed (Debian package `{package}`, listed in .ci/packages)"
        ))
}

/// For a test that cannot run here because of `why` (a missing tool, no IPv6 loopback):
/// a `SKIPPED` notice and `false` on a developer machine, a failure under CI (`CI` set),
/// where everything a test needs must be there.
pub fn skip_outside_ci(why: &str) -> bool {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{why}; CI must run this test");
    }
    eprintln!("SKIPPED: {why}; this test runs in CI");
    false
}
