//! The chat server: accepts connections, gives each a task, and shuts down cleanly.
//!
//! [`run`] takes a listener that is already bound, so tests can bind port 0 without
//! races, and a shutdown future, so the binary can pass Ctrl-C/SIGTERM and tests can pass
//! anything.

pub mod access;
pub mod accounts;
mod at_once;
pub mod backbone;
pub mod bans;
mod client_key;
pub mod clock;
mod close;
mod connection;
pub mod console;
#[cfg(unix)]
pub mod control;
mod history;
mod hub;
mod intake;
pub mod journal;
pub mod moderation;
pub mod operator;
mod outbox;
pub mod privacy;
mod resume;
mod room_budget;
mod rooms;
mod search;
pub mod tls;
mod tls_session;
mod transport;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::task::TaskTracker;

pub use connection::{HELLO_WINDOW, QUIET_JOIN};
use history::History;
use hub::Hub;
pub use moderation::ReloadTrigger;
use outbox::Outbox;
use transport::Detected;
pub use transport::HANDSHAKE_TIMEOUT;

use crate::cli::{Networks, ServeArgs};
use crate::event_log::EventLog;
use crate::protocol::{Event, EventKind};
pub use access::Access;

/// Limits and names the server runs with; see `tchat serve --help` for each.
#[derive(Debug, Clone)]
pub struct Config {
    pub server_name: String,
    pub max_line: usize,
    pub max_clients: usize,
    /// 0: no per-address limit.
    pub max_per_ip: usize,
    /// Peers from these networks are not limited by `max_per_ip`.
    pub max_per_ip_exempt: Networks,
    /// Lines per second; 0 turns flood control off.
    pub rate: f64,
    pub burst: u32,
    pub send_queue: usize,
    /// 0: always announce joins and leaves.
    pub announce_limit: usize,
    /// The room every connection starts in; a valid room name.
    pub default_room: String,
    /// Most rooms at once, the default room included.
    pub max_rooms: usize,
    /// How long after connecting a client may take to give the server password; then it
    /// is closed, so that connections that never authenticate do not hold slots.
    pub password_timeout: Duration,
    /// TLS, `--plaintext` and the password; the binary fills it in after reading the
    /// files ([`Access::default`]: plain text only, no password).
    pub access: Arc<Access>,
    /// `--bans`, `--motd`, `--oper-password-file`.
    pub files: moderation::Files,
    /// Where the control socket goes; `None`: no control socket.
    pub control_socket: Option<PathBuf>,
    /// The socket was asked for (`--control-socket`): failing to bind it stops the
    /// server. The default one is skipped with a warning instead (a second server of
    /// the same user, say).
    pub control_socket_required: bool,
    /// Fired (by SIGHUP, say) to re-read the MOTD and bans files.
    pub reload: ReloadTrigger,
    /// The operator's interactive console, when the server runs on a terminal.
    pub console: Option<console::ConsoleLink>,
    /// Conversation events kept in memory; 0 keeps none.
    pub history: usize,
    /// Public events sent to a client that joins, before the live stream.
    pub replay: usize,
    /// How long a structured client's lost session is held for a resume; zero: never.
    pub resume_grace: Duration,
    /// What the console and the `--save` log keep of private messages.
    pub private_text: crate::cli::PrivateText,
    /// The `--save` log, read back on start for the last id and the history (not on a
    /// backbone, whose stream holds the history).
    pub save: Option<std::path::PathBuf>,
    /// Registered nicks (`--accounts`); the binary opens the file, in-process servers
    /// keep them in memory.
    pub accounts: Arc<accounts::Accounts>,
    /// `--backbone` and its options: this node shares its chat with the other nodes on
    /// that NATS system. `None`: the single process it always was.
    pub backbone: Option<backbone::Options>,
}

impl Config {
    /// The flood control every connection gets, as the welcome states it; `None` with
    /// `--rate 0`.
    pub fn flood_limit(&self) -> Option<crate::protocol::FloodLimit> {
        let rate = self.rate;
        (rate > 0.0 && rate.is_finite())
            .then(|| crate::protocol::FloodLimit { rate, burst: self.burst.max(1) })
    }
}

impl From<&ServeArgs> for Config {
    fn from(a: &ServeArgs) -> Config {
        Config {
            server_name: a.name.clone(),
            max_line: a.max_line as usize,
            max_clients: a.max_clients as usize,
            max_per_ip: a.max_per_ip as usize,
            max_per_ip_exempt: a.max_per_ip_exempt.clone(),
            rate: a.rate,
            burst: a.burst,
            send_queue: a.send_queue as usize,
            announce_limit: a.announce_limit as usize,
            default_room: a.default_room.clone(),
            max_rooms: a.max_rooms as usize,
            password_timeout: Duration::from_secs(a.password_timeout.into()),
            access: Arc::default(),
            files: moderation::Files {
                bans: a.bans.clone(),
                motd: a.motd.clone(),
                oper_password: a.oper_password_file.clone(),
                max_motd: Some(moderation::motd_limit(a.send_queue as usize)),
            },
            control_socket: a.control_socket.clone().or_else(default_control_socket),
            control_socket_required: a.control_socket.is_some(),
            reload: ReloadTrigger::default(),
            console: None,
            history: a.history as usize,
            replay: a.replay as usize,
            resume_grace: Duration::from_secs(a.resume_grace.into()),
            save: a.save.clone(),
            private_text: a.private_text,
            accounts: Arc::new(accounts::Accounts::in_memory(a.account_expiry.0)),
            backbone: a.backbone_options(),
        }
    }
}

/// Connections the kernel may hold, completed but not yet accepted. The usual 128 (std's
/// and mio's default) overflows when hundreds of clients connect at once, and every
/// overflow costs a client a one-second SYN retransmission.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds the listener for [`run`], with a backlog fit for connection storms. Must be
/// called inside the tokio runtime.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Pause after a failed `accept` (out of file descriptors, say) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `listener` until `shutdown` resolves or an operator asks, then tells every
/// client, waits for their tasks to flush and finish, and returns. Fails before serving
/// if the moderation files cannot be read or the control socket cannot be bound.
// Over 60 lines: start, the accept loop's one `select!` and the ordered stop read in
// sequence here, each step a call; split, the stop would need the loop's locals passed on.
pub async fn run(
    listener: TcpListener,
    config: Config,
    log: EventLog,
    shutdown: impl Future,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let moderation = moderation::Moderation::load(&config.files).map_err(io::Error::other)?;
    let control = bind_control(&config, &log)?;
    let reload = config.reload.clone();
    let console = config.console.clone();
    // On a backbone, the node serves only once it has joined it (and never as a chat of
    // its own): "Listening" comes after.
    let (hub, link) = match config.backbone.clone() {
        None => {
            log_listening(&log, addr, &config, &control);
            let history = load_history(&config, &log);
            (Arc::new(Hub::new(config, log, moderation, history, None)), None)
        }
        Some(options) => {
            let (hub, link) =
                join_backbone(&options, config, log, moderation).await.map_err(io::Error::other)?;
            log_listening(&hub.log, addr, &hub.config, &control);
            (hub, Some(link))
        }
    };
    // Stops with the runtime; it holds no connection and nothing to flush.
    let watcher = hub.config.access.tls.clone().map(|tls| tokio::spawn(tls.watch(hub.log.clone())));
    let tasks = TaskTracker::new();
    let lingering = Arc::new(AtomicUsize::new(0));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            // In this order: `shutdown` is then polled on the first pass, before any
            // client is accepted, so a signal handler it installs when first polled (the
            // binary's) is in place before a client can see the server up. The other
            // branches are ready rarely; accepting is last and never starved by them.
            biased;
            _ = &mut shutdown => break,
            _ = hub.moderation.stop_requested() => break,
            _ = reload.fired() => reload_files(&hub),
            input = console_input(console.as_ref()) => {
                if let Some(why) = console::serve(&hub, input) {
                    hub.log.info("Console closed", json!({"reason": why}));
                    break;
                }
            }
            client = control.accept() => {
                if let Some((stream, owner)) = client {
                    tasks.spawn(control_serve(hub.clone(), stream, owner));
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => accept(&hub, stream, peer, &tasks, &lingering),
                Err(e) => {
                    hub.log.error("Accept failed", json!({"error": e.to_string()}));
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
    drop(listener);
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    drop(control);
    if let Some(console) = &console {
        console.hang_up();
    }
    wind_down(&hub, tasks).await;
    if let Some((link, (leases, heartbeat))) = link {
        // The last leaves go out before the process ends, then the lease: the other
        // nodes then count this one as stopped at once. Its heartbeat beats until then,
        // so a node slow to flush is seen stopping, never dead.
        let flushed = tokio::time::timeout(backbone::TIMEOUT, link.flush()).await;
        backbone::leases::end(&leases, &link.node, heartbeat, backbone::TIMEOUT).await;
        if flushed.is_err() {
            hub.log.warn("Backbone not flushed", json!({"waited_s": backbone::TIMEOUT.as_secs()}));
        }
    }
    Ok(())
}

/// This node's lease: its bucket and the heartbeat renewing it until it is ended.
type Lease = (async_nats::jetstream::kv::Store, backbone::leases::Heartbeat);

/// Joins the backbone (see [`backbone`]): connects, makes the hub with its link, starts
/// the tasks that publish to the stream and follow it, and waits until this node's
/// history mirrors the stream as it was at start.
async fn join_backbone(
    options: &backbone::Options,
    config: Config,
    log: EventLog,
    moderation: moderation::Moderation,
) -> Result<(Arc<Hub>, (backbone::Link, Lease)), backbone::BackboneError> {
    let settings =
        backbone::StreamSettings { history: config.history, max_rooms: config.max_rooms };
    let joined = backbone::connect(options, &settings, &log).await?;
    share_accounts(&config, &joined.accounts, &log).await?;
    let (link, queue) = backbone::Link::new(&joined.node, options.persist, config.max_clients);
    // Ids come from the stream, so the history starts empty and fills from it.
    let history = History::new(config.history, config.max_rooms, 0);
    let (applied, mut progress) = tokio::sync::watch::channel(0);
    let mirror = backbone::Mirror { stream: joined.stream.clone(), applied: progress.clone() };
    let nicks = joined.nicks.clone();
    let kept = joined.moderation.clone();
    let side =
        backbone::HubSide { link: link.clone(), run: joined.run, nicks, moderation: kept, mirror };
    let hub = Arc::new(Hub::new(config, log, moderation, history, Some(side)));
    backbone::kept::load(&joined.moderation, &hub).await?;
    tokio::spawn(backbone::kept::watch(joined.moderation, Arc::downgrade(&hub)));
    let nicks = joined.nicks;
    tokio::spawn(backbone::publish(joined.jetstream, nicks.clone(), queue, Arc::downgrade(&hub)));
    tokio::spawn(backbone::claims::watch(nicks.clone(), Arc::downgrade(&hub)));
    tokio::spawn(backbone::accounts::watch(joined.accounts, Arc::downgrade(&hub)));
    let leases = joined.leases;
    let weak = Arc::downgrade(&hub);
    let heartbeat = backbone::leases::heartbeat(leases.clone(), joined.node.clone(), weak.clone());
    tokio::spawn(backbone::leases::watch(leases.clone(), weak.clone()));
    tokio::spawn(backbone::leases::sweep(nicks, weak));
    let target = joined.last_at_start;
    let weak = Arc::downgrade(&hub);
    tokio::spawn(backbone::follow(joined.stream, joined.client, weak, applied, target));
    let caught_up = progress.wait_for(|&seq| seq >= target);
    match tokio::time::timeout(MIRROR_WAIT, caught_up).await {
        Ok(Ok(_)) => {
            for (key, claim) in &joined.stale {
                hub.announce_swept(key, claim);
            }
            Ok((hub, (link, (leases, heartbeat))))
        }
        _ => Err(backbone::BackboneError::Stream(format!(
            "the history did not load within {} s (up to id {target})",
            MIRROR_WAIT.as_secs()
        ))),
    }
}

/// Moves the registered nicks to the backbone's bucket, bringing over those of this
/// node's accounts file that no node registered yet; logs where they are kept now.
async fn share_accounts(
    config: &Config,
    bucket: &async_nats::jetstream::kv::Store,
    log: &EventLog,
) -> Result<(), backbone::BackboneError> {
    let shared = backbone::accounts::SharedAccounts { store: bucket.clone() };
    let brought = config.accounts.share(Box::new(shared)).await.map_err(|e| {
        backbone::BackboneError::Stream(format!("the registered nicks could not be shared: {e}"))
    })?;
    log.info(
        "Backbone accounts",
        json!({"bucket": backbone::accounts::BUCKET.name, "accounts": config.accounts.list().len(),
               "brought_over": brought}),
    );
    Ok(())
}

/// Longest a node waits at start for its history to load from the stream.
const MIRROR_WAIT: Duration = Duration::from_secs(60);

/// The control socket `config` asks for. The default one is skipped with a warning when
/// it cannot be bound; one named by `--control-socket` is required.
fn bind_control(config: &Config, log: &EventLog) -> io::Result<ControlSocket> {
    match ControlSocket::bind(config.control_socket.as_deref()) {
        Ok(control) => Ok(control),
        Err(e) if !config.control_socket_required => {
            log.warn("No control socket", json!({"error": e.to_string()}));
            ControlSocket::bind(None)
        }
        Err(e) => Err(e),
    }
}

/// The start's log lines: where the server listens (with the certificate's fingerprint
/// under TLS) and where its control socket is.
fn log_listening(log: &EventLog, addr: SocketAddr, config: &Config, control: &ControlSocket) {
    let mut listening = json!({"addr": addr.to_string(), "version": env!("CARGO_PKG_VERSION"), "max_clients": config.max_clients});
    if let Some(tls) = &config.access.tls {
        listening["fingerprint"] = tls.certs.fingerprint().to_string().into();
    }
    log.info("Listening", listening);
    if let Some(path) = control.path() {
        log.info("Control socket", json!({"path": path.display().to_string()}));
    }
}

/// Tells every client the server is shutting down (with the operator's reason), then
/// waits for every task to flush and finish.
async fn wind_down(hub: &Hub, tasks: TaskTracker) {
    hub.log.info("Shutting down", json!({"online": hub.online()}));
    let reason = hub.moderation.stop_reason();
    let notice = Event::now(EventKind::Shutdown { reason });
    hub.broadcast(&notice);
    hub.shut_down();
    tasks.close();
    tasks.wait().await;
    hub.log.info("Server stopped", json!({}));
}

/// The history to start with: with `--save`, ids continue after the last one logged and
/// the latest events come back from the log's tail. A log that cannot be read starts an
/// empty history (and says so): the server still serves.
fn load_history(config: &Config, log: &EventLog) -> History {
    let new = |last_id| History::new(config.history, config.max_rooms, last_id);
    let Some(path) = &config.save else { return new(0) };
    let started = std::time::Instant::now();
    match journal::load(path, config.history, config.max_rooms, &config.default_room) {
        Ok(loaded) => {
            let events = loaded.records.iter().filter(|r| r.event.is_some()).count();
            let ms = started.elapsed().as_millis() as u64;
            log.info(
                "History loaded",
                json!({"last_id": loaded.last_id, "events": events, "bytes_read": loaded.bytes_read, "ms": ms}),
            );
            let mut history = new(loaded.last_id);
            let default_key = crate::room::key(&config.default_room);
            history.restore(loaded.floor, &default_key, loaded.records);
            history
        }
        Err(e) => {
            log.error(
                "Cannot read the history back from the log; ids start at 1",
                json!({"file": path.display().to_string(), "error": e.to_string()}),
            );
            new(0)
        }
    }
}

/// Refused connections closed gracefully at a time; in a storm beyond this many, the
/// rest get their line best effort and are closed at once, so a storm cannot hold
/// file descriptors.
const MAX_LINGERING: usize = 64;

fn accept(
    hub: &Arc<Hub>,
    stream: TcpStream,
    peer: SocketAddr,
    tasks: &TaskTracker,
    lingering: &Arc<AtomicUsize>,
) {
    let outbox = Arc::new(Outbox::new(hub.config.send_queue));
    let admitted = match hub.moderation.banned_ip(peer.ip()) {
        Some(ban) => Err(hub::Refusal::Banned(ban)),
        None => hub.admit(peer.ip(), outbox.clone()),
    };
    match admitted {
        Ok((id, nick)) => {
            hub.note_peer(id, peer);
            // Best effort: a socket without these options still chats.
            let _ = crate::net::tune(&stream);
            hub.log.info("Connection", json!({"peer": peer.to_string(), "nick": nick}));
            tasks.spawn(connection::serve(hub.clone(), stream, peer, id, nick, outbox));
        }
        Err(refusal) => {
            hub.log.warn(
                "Connection refused",
                json!({"peer": peer.to_string(), "reason": refusal.to_string()}),
            );
            let line = format!("!!! {refusal}\n");
            if lingering.fetch_add(1, Ordering::Relaxed) < MAX_LINGERING {
                let tls = hub.config.access.tls.as_ref().map(|tls| tls.config());
                tasks.spawn(refuse(stream, line, tls, lingering.clone()));
            } else {
                lingering.fetch_sub(1, Ordering::Relaxed);
                // A fresh socket has room for one line; never wait for it.
                let _ = stream.try_write(line.as_bytes());
            }
        }
    }
}

/// Writes the refusal line and closes in order (see [`close::linger`]): the client may
/// have spoken already (its hello, say).
///
/// A TLS client gets the line over TLS, so it can show it: the handshake comes first,
/// within the same time bound.
async fn refuse(
    stream: TcpStream,
    line: String,
    tls: Option<Arc<rustls::ServerConfig>>,
    lingering: Arc<AtomicUsize>,
) {
    let hello_by = tokio::time::Instant::now() + HELLO_WINDOW;
    let detected = match &tls {
        Some(_) => transport::detect(&stream, hello_by).await.unwrap_or(Detected::Plain),
        None => Detected::Plain,
    };
    match (detected, tls) {
        (Detected::Tls, Some(config)) => {
            let _ = tokio::time::timeout(close::LINGER, async {
                let mut tls = tokio_rustls::TlsAcceptor::from(config).accept(stream).await?;
                tls.write_all(line.as_bytes()).await?;
                tls.shutdown().await?;
                let mut sink = [0u8; 512];
                while tls.read(&mut sink).await? > 0 {}
                io::Result::Ok(())
            })
            .await;
        }
        _ => close_with(stream, &line).await,
    }
    lingering.fetch_sub(1, Ordering::Relaxed);
}

/// The plain-text close of [`refuse`]; also for a plain connection that `--plaintext`
/// turns away.
async fn close_with(mut stream: TcpStream, line: &str) {
    let written = tokio::time::timeout(close::LINGER, stream.write_all(line.as_bytes())).await;
    if matches!(written, Ok(Ok(()))) {
        close::linger(stream).await;
    }
}

/// The next line or request from the interactive console; pending forever without one.
async fn console_input(console: Option<&console::ConsoleLink>) -> console::ConsoleInput {
    match console {
        Some(console) => console.recv().await,
        None => std::future::pending().await,
    }
}

/// Re-reads the MOTD and bans files, disconnects who a ban in force covers
/// ([`operator::reload`]) and logs the outcome.
pub fn reload_files(hub: &Hub) {
    match operator::reload(hub) {
        Ok(done) => hub.log.info("Reloaded", json!({"result": done})),
        Err(e) => hub.log.error("Reload failed", json!({"error": e})),
    }
}

/// The bound control socket, if any; removes its file when dropped.
struct ControlSocket {
    #[cfg(unix)]
    bound: Option<(tokio::net::UnixListener, PathBuf, u32)>,
}

#[cfg(unix)]
type ControlStream = tokio::net::UnixStream;
#[cfg(not(unix))]
type ControlStream = ();

impl ControlSocket {
    #[cfg(unix)]
    fn bind(path: Option<&std::path::Path>) -> io::Result<ControlSocket> {
        let Some(path) = path else { return Ok(ControlSocket { bound: None }) };
        let listener = control::bind(path)?;
        let owner = control::owner(path)?;
        Ok(ControlSocket { bound: Some((listener, path.to_owned(), owner)) })
    }

    #[cfg(not(unix))]
    fn bind(path: Option<&std::path::Path>) -> io::Result<ControlSocket> {
        match path {
            Some(_) => Err(io::Error::other("a control socket needs a Unix system")),
            None => Ok(ControlSocket {}),
        }
    }

    fn path(&self) -> Option<&std::path::Path> {
        #[cfg(unix)]
        return self.bound.as_ref().map(|(_, path, _)| path.as_path());
        #[cfg(not(unix))]
        None
    }

    /// The next control client with the socket owner's uid; pending forever without a
    /// socket. An accept error is skipped (`None`).
    async fn accept(&self) -> Option<(ControlStream, u32)> {
        #[cfg(unix)]
        if let Some((listener, _, owner)) = &self.bound {
            return listener.accept().await.ok().map(|(s, _)| (s, *owner));
        }
        std::future::pending().await
    }
}

#[cfg(unix)]
impl Drop for ControlSocket {
    fn drop(&mut self) {
        if let Some((_, path, _)) = &self.bound {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(unix)]
async fn control_serve(hub: Arc<Hub>, stream: ControlStream, owner: u32) {
    control::serve(hub, stream, owner).await;
}

#[cfg(not(unix))]
async fn control_serve(_hub: Arc<Hub>, _stream: ControlStream, _owner: u32) {}

#[cfg(unix)]
fn default_control_socket() -> Option<PathBuf> {
    control::default_path()
}

#[cfg(not(unix))]
fn default_control_socket() -> Option<PathBuf> {
    None
}
