//! One task per client: reads its lines, acts on them, and writes what its outbox holds.
//!
//! The task owns its socket outright. Reading, parsing and acting on a line are
//! synchronous (the hub never awaits), so the task waits only in the `select!` on the
//! socket, the outbox (whose wake-up also announces shutdown) and its timers, and in the
//! yields that keep a busy sender from monopolising a worker. Writes copy what the outbox
//! holds with one `write`; an error ends this connection only.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep, sleep, sleep_until};

mod account_commands;
mod everyday;
mod room_commands;

use super::access::{self, Rejected};
use super::close::linger;
use super::history::MAX_HISTORY_REQUEST;
use super::hub::{Across, Hub, Joined, NickChange, Removed, Skip};
use super::intake::{Intake, Step};
use super::journal::Kind;
use super::outbox::{Batch, Outbox};
use super::transport::{Detected, Transport, classify};
use crate::auth;
use crate::event_log::preview;
use crate::flood::Fakelag;
use crate::framing::{Line, LineBuffer};
use crate::protocol::{Event, EventKind, Request, Resume, help_entries_for};
use crate::sanitize::{needs_sanitizing, sanitize};

// `protocol::HISTORY_USAGE` and `/help` name this cap as 200: keep them in step.
const _: () = assert!(MAX_HISTORY_REQUEST == 200);

/// How long a new connection may take to send the hello line before it is welcomed in
/// text mode. Short enough that an `nc` user does not notice, long enough for a
/// structured client's hello to arrive first, so its join is announced once, with its
/// own nick, in the right encoding.
pub const HELLO_WINDOW: Duration = Duration::from_millis(300);

/// How long after connecting a connection that has said nothing is announced to the
/// others. It is welcomed when the hello window ends, so an `nc` user sees the chat at
/// once; but a TCP health check (a load balancer's, a monitoring probe's) connects and
/// closes without a word, and announcing it would show everyone a join and a leave each
/// time. A line, any line, announces the connection at once.
pub const QUIET_JOIN: Duration = Duration::from_secs(2);

/// How long a closing connection may take to flush its last lines (goodbye, shutdown
/// notice) before it is dropped anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Why a connection welcomed in plain text is closed when its first bytes are a TLS
/// handshake after all: they came after [`HELLO_WINDOW`].
const LATE_TLS: &str = "a TLS handshake came after the hello window (a slow first packet); \
                        the client should connect again";

/// Bytes read per wake-up. Lives on the thread stack for the duration of one
/// synchronous read, never in the task, so idle connections do not pay for it.
const READ_CHUNK: usize = 8 * 1024;

/// The state of one client's session that only its own task touches.
struct Session {
    hub: Arc<Hub>,
    id: u64,
    peer: SocketAddr,
    /// This client's nick; the registry holds the authoritative copy and only this task
    /// changes it, so the two never disagree.
    nick: String,
    /// The name of the room this client is in; the registry holds the authoritative
    /// key and, as with the nick, only this task moves it.
    room: String,
    registered: bool,
    /// The others were told this client joined (see [`QUIET_JOIN`]).
    announced: bool,
    /// The hello counts only as the first line, even if it came after the window.
    seen_a_line: bool,
    /// Whether any byte came from the client yet (see [`LATE_TLS`]).
    got_bytes: bool,
    /// Set once the session must end; the value is the leave reason (`None` inside:
    /// leave without announcement, as on shutdown).
    closing: Option<Option<String>>,
    /// Lines' worth of flood control owed for rooms created, charged to the intake once
    /// it hands over (it is borrowed while lines are handled).
    flood_debt: u32,
    /// "TLSv1.3" or "plain", for the log.
    transport: &'static str,
    /// The password was given, or none is needed: the client may be welcomed.
    authenticated: bool,
    /// The hello window is over; the client is welcomed as soon as it is authenticated,
    /// and closed if that takes longer than the password timeout.
    window_over: bool,
    /// The connection broke (not /quit, not a kick): the session may be held for a
    /// resume.
    lost_connection: bool,
}

/// The task serving one client until it leaves.
///
/// A plain function returning the task's future rather than an `async fn`: the state is
/// built here and moved into the `async` block whole, where it stays in place. An
/// `async fn` would keep its arguments and the locals built from them side by side in
/// every connection's task, idle ones included.
///
/// What each wake-up does is in synchronous functions ([`take_stock`],
/// [`Session::release_held`], [`on_ready`]): only the waits themselves are in the
/// `async` block, so its size is that of the state below and of the futures it awaits.
pub fn serve(
    hub: Arc<Hub>,
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    nick: String,
    outbox: Arc<Outbox>,
) -> impl Future<Output = ()> + Send {
    let mut intake = new_intake(&hub);
    let mut s = Session::new(hub, id, peer, nick);
    let mut pending = Batch::default();
    // Boxed so that its timer entry is freed once the client is announced, instead of
    // staying in every idle connection's task for good. It ends the hello window, then
    // (reset) the wait for a silent connection's announcement.
    let connected = Instant::now();
    let hello_by = connected + HELLO_WINDOW;
    let mut hello = Some(Box::pin(sleep_until(hello_by)));
    async move {
        // Boxed, and freed once done: the detection and handshake futures (timers, the
        // socket's readiness) and a refusal's 4 KiB drain buffer would otherwise be part
        // of every connection's task, idle ones included, for good.
        let Some(mut transport) = Box::pin(establish(&s, stream, hello_by, &outbox)).await else {
            return;
        };
        if transport.is_tls() {
            s.hub.note_tls(id);
            if let Some(key) = transport.client_key() {
                s.hub.note_key(id, key);
            }
            // The hello follows the handshake: the window starts over.
            hello = Some(Box::pin(sleep(HELLO_WINDOW)));
        }
        s.transport = transport.describe();
        // Boxed, and made only when the session starts closing.
        let mut close_by: Option<Pin<Box<Sleep>>> = None;
        // When held lines are due (fakelag); boxed, and made only while holding.
        let mut lag: Option<Pin<Box<Sleep>>> = None;
        let mut shutting_down = false;
        // Set when the client is dropped for not reading (a flag rather than its last
        // line: the task keeps whatever lives across its awaits, idle or not).
        let mut too_slow = false;

        let leave_reason: Option<String> = loop {
            if s.announced {
                hello = None;
            }
            match take_stock(&mut s, &outbox, &mut pending, &mut transport, &mut shutting_down) {
                Turn::Wait => {}
                Turn::Superseded => return,
                Turn::TooSlow => {
                    too_slow = true;
                    break Some("too slow: stopped reading".into());
                }
                Turn::Leave(reason) => break reason,
            }
            if s.closing.is_some() {
                close_by.get_or_insert_with(|| Box::pin(sleep(CLOSE_GRACE)));
            }
            tokio::select! {
                biased;
                _ = async { close_by.as_mut().expect("checked").await }, if close_by.is_some() => {
                    break s.closing.clone().flatten();
                }
                _ = async { hello.as_mut().expect("checked").await }, if hello.is_some() => {
                    match s.on_hello_timer(connected) {
                        Some(next) => hello.as_mut().expect("checked").as_mut().reset(next),
                        None => hello = None,
                    }
                }
                _ = async { lag.as_mut().expect("checked").await },
                    if lag.is_some() && s.closing.is_none() =>
                {
                    lag = s.release_held(&mut intake);
                }
                // One readiness future for both directions: each costs 152 bytes in
                // every connection's task. Nothing is read while lines are held.
                ready = transport.ready(transport.interest(s.reads(&intake), !pending.is_empty())),
                    if s.reads(&intake) || !pending.is_empty() || transport.wants_write() =>
                {
                    match on_ready(ready, &mut transport, &mut intake, &mut s, &mut lag) {
                        Woke::Idle => {}
                        // Socket readiness costs no cooperative budget, so a client
                        // that sends without pause would keep this worker thread to
                        // itself and starve every other connection and the accept
                        // loop: give way after a full buffer, and let the budget
                        // decide otherwise.
                        Woke::Read(READ_CHUNK) => tokio::task::yield_now().await,
                        Woke::Read(_) => tokio::task::coop::consume_budget().await,
                        Woke::Lost(e) => break s.lost(e),
                    }
                }
                // Polled even while a batch is pending, so an overflow is noticed at once.
                _ = outbox.wake.notified() => {
                    // Let the tasks already queued on this worker run first: under load
                    // they are senders adding to this outbox, and one write then carries
                    // their lines too. On a quiet server nothing is queued and this costs
                    // one more poll.
                    if pending.is_empty() {
                        tokio::task::yield_now().await;
                    }
                }
            }
        };

        // A kick that came as the connection broke: it is the reason, and no resume.
        let leave_reason = outbox.take_close().or(leave_reason);
        let leave_reason = if shutting_down { None } else { leave_reason };
        let ended = Ended { leave_reason, too_slow, transport, pending };
        // Boxed: reached once, at the end; its waits would otherwise size every task.
        Box::pin(finish(s, &outbox, ended)).await;
    }
}

/// The line reader of a new connection, with its flood control (fakelag) at the
/// server's `--rate`, `--burst` and `--flood-kick-after`.
fn new_intake(hub: &Hub) -> Intake {
    let config = &hub.config;
    let flood = Fakelag::new(config.rate, config.burst, config.flood_kick_after, Instant::now());
    Intake::new(LineBuffer::with_telnet(config.max_line), flood)
}

/// What the connection loop does after [`take_stock`].
enum Turn {
    /// Wait for the socket, the outbox or a timer.
    Wait,
    /// The session is another connection's now: nothing to announce or log.
    Superseded,
    /// The outbox overflowed: the client is dropped for not reading.
    TooSlow,
    /// The session ends with this leave reason (`None`: without announcement).
    Leave(Option<String>),
}

/// Each turn of the connection loop, before it waits: takes what the outbox holds and
/// writes what the socket takes, then notes a kick or ban and the shutdown, and ends a
/// closing session once its last lines are out.
fn take_stock(
    s: &mut Session,
    outbox: &Outbox,
    pending: &mut Batch,
    transport: &mut Transport,
    shutting_down: &mut bool,
) -> Turn {
    if outbox.is_superseded() {
        return Turn::Superseded;
    }
    if !outbox.take(pending) {
        return Turn::TooSlow;
    }
    if let Err(e) = write_batch(pending, transport) {
        return Turn::Leave(s.lost(e));
    }
    // An operator's kick or ban.
    if let Some(reason) = outbox.take_close() {
        s.closing.get_or_insert(Some(reason));
    }
    // Set once, before every task is woken through its outbox: no shutdown future of
    // its own in every task.
    if !*shutting_down && s.hub.is_shutting_down() {
        *shutting_down = true;
        s.closing = Some(None);
    }
    match &s.closing {
        Some(reason) if pending.is_empty() && outbox.is_empty() && !transport.wants_write() => {
            Turn::Leave(reason.clone())
        }
        _ => Turn::Wait,
    }
}

/// What the socket's readiness led to, for the connection loop.
enum Woke {
    /// Nothing was read (writable only, or not reading now).
    Idle,
    /// This many bytes were read (0: none after all) and their lines handled.
    Read(usize),
    /// The connection broke or the peer closed its side.
    Lost(io::Error),
}

/// The socket is ready (or failed): reads and handles its lines if this client is
/// read from now; writing is left to the next turn's [`take_stock`].
fn on_ready(
    ready: io::Result<tokio::io::Ready>,
    transport: &mut Transport,
    intake: &mut Intake,
    s: &mut Session,
    lag: &mut Option<Pin<Box<Sleep>>>,
) -> Woke {
    let ready = match ready {
        Ok(ready) => ready,
        Err(e) => return Woke::Lost(e),
    };
    if !(ready.is_readable() && s.reads(intake)) {
        return Woke::Idle;
    }
    match read_chunk(transport, intake, s, lag) {
        Ok(Some(n)) => Woke::Read(n),
        Ok(None) => Woke::Lost(io::ErrorKind::UnexpectedEof.into()),
        Err(e) => Woke::Lost(e),
    }
}

/// Tells TLS from plain text and runs the handshake, or turns the connection away
/// (`--plaintext`, a failed handshake) with its line and an ordered close. `None` when
/// the connection was turned away, or shutdown (the outbox's wake-up) came first.
async fn establish(
    s: &Session,
    stream: TcpStream,
    hello_by: Instant,
    outbox: &Outbox,
) -> Option<Transport> {
    let established = tokio::select! {
        established = access::establish(&s.hub, stream, s.peer, hello_by) => established,
        _ = outbox.wake.notified() => Err(Rejected::Drop),
    };
    match established {
        Ok(transport) => Some(transport),
        Err(rejected) => {
            s.hub.remove(s.id, None);
            if let Rejected::Refuse(stream, line) = rejected {
                super::close_with(stream, &line).await;
            }
            None
        }
    }
}

/// How the connection loop ended, for [`finish`].
struct Ended {
    /// The leave reason to announce; `None`: leave without one (shutdown).
    leave_reason: Option<String>,
    /// Dropped for not reading.
    too_slow: bool,
    transport: Transport,
    /// What was taken from the outbox and not yet written.
    pending: Batch,
}

/// Ends the session: holds it for a resume if the connection was lost, else leaves and,
/// when the server ended it (kick, /quit, shutdown, too slow), closes in order so the
/// last lines are not lost to a reset. A peer that hung up needs none of that.
async fn finish(s: Session, outbox: &Outbox, ended: Ended) {
    let Ended { leave_reason, too_slow, mut transport, mut pending } = ended;
    if s.lost_connection && leave_reason.is_some() && s.hub.hold_for_resume(s.id) {
        drop(transport);
        return match wait_for_resume(&s, outbox).await {
            Held::Resumed => {}
            Held::Expired => s.leave(leave_reason),
            Held::Kicked(reason) => s.leave(Some(reason)),
            Held::ShuttingDown => s.leave(None),
        };
    }
    // Encoded while the member is still known; written if the socket has room.
    let farewell = if too_slow { s.drop_slow() } else { None };
    s.leave(leave_reason);
    if s.closing.is_none() && !too_slow {
        return;
    }
    if let Some(line) = farewell {
        // Best effort: only what the socket takes now, after the unfinished batch.
        if write_batch(&mut pending, &mut transport).is_ok() && pending.is_empty() {
            let _ = transport.write(line.as_bytes());
        }
    }
    // Best effort: lets a TLS client tell a close from a cut connection.
    transport.close_notify();
    let _ = transport.flush();
    linger(transport.into_stream()).await;
}

/// How the wait for a resume ended.
enum Held {
    /// Another connection took the session back: nothing more to do.
    Resumed,
    /// The grace ran out: the member leaves as the connection was lost.
    Expired,
    /// An operator kicked or banned the held member: it leaves with this reason.
    Kicked(String),
    /// The server is stopping: the member goes without an announcement.
    ShuttingDown,
}

/// Holds the session of a lost connection for `--resume-grace`.
async fn wait_for_resume(s: &Session, outbox: &Outbox) -> Held {
    let grace = s.hub.config.resume_grace;
    s.hub.log.info(
        "Held for resume",
        json!({"nick": s.nick, "peer": s.peer.to_string(), "grace_s": grace.as_secs()}),
    );
    let deadline = sleep(grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return Held::Expired,
            // A resume, a kick and a shutdown all wake the held member through its outbox.
            _ = outbox.wake.notified() => {
                if !s.hub.is_held(s.id) {
                    return Held::Resumed;
                }
                if s.hub.is_shutting_down() {
                    return Held::ShuttingDown;
                }
                if let Some(reason) = outbox.take_close() {
                    return Held::Kicked(reason);
                }
            }
        }
    }
}

/// Reads what is available and handles its complete lines as the rate allows; the
/// rest is held and `lag` set to when it is due. Returns the bytes read, or `None` when
/// the peer closed its side.
fn read_chunk(
    transport: &mut Transport,
    intake: &mut Intake,
    s: &mut Session,
    lag: &mut Option<Pin<Box<Sleep>>>,
) -> io::Result<Option<usize>> {
    let mut buf = [0u8; READ_CHUNK];
    match transport.read(&mut buf) {
        Ok(0) => Ok(None),
        Ok(n) => {
            if !std::mem::replace(&mut s.got_bytes, true)
                && !transport.is_tls()
                && classify(&buf[..n]) == Some(Detected::Tls)
            {
                // A TLS client whose first packet was slower than the hello window (a
                // retransmission, a slow link): it was welcomed as a plain user, and its
                // ClientHello must not become a chat line. It connects again.
                return Err(io::Error::new(io::ErrorKind::InvalidData, LATE_TLS));
            }
            let step = intake.feed(&buf[..n], Instant::now(), |line| s.on_line(line));
            intake.charge(std::mem::take(&mut s.flood_debt));
            *lag = s.after(step);
            Ok(Some(n))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            intake.caught_up();
            Ok(Some(0))
        }
        Err(e) => Err(e),
    }
}

/// Writes as much of `batch` as the socket takes without blocking, after any TLS
/// records still waiting.
fn write_batch(batch: &mut Batch, transport: &mut Transport) -> io::Result<()> {
    transport.flush()?;
    batch.write_with(|data| transport.write(data))
}

impl Session {
    fn new(hub: Arc<Hub>, id: u64, peer: SocketAddr, nick: String) -> Session {
        let authenticated = hub.config.access.password.is_none();
        Session {
            hub,
            id,
            peer,
            nick,
            room: String::new(),
            registered: false,
            announced: false,
            seen_a_line: false,
            got_bytes: false,
            closing: None,
            lost_connection: false,
            flood_debt: 0,
            transport: "plain",
            authenticated,
            window_over: false,
        }
    }

    /// The hello timer fired (connected at `connected`): ends the hello window, the
    /// wait for the password, or the wait before a silent client is announced. Returns
    /// when it should fire next, if ever.
    fn on_hello_timer(&mut self, connected: Instant) -> Option<Instant> {
        if self.registered {
            self.announce();
            None
        } else if self.window_over {
            // The password never came (the timer was reset to its bound).
            self.password_timed_out();
            None
        } else if !self.authenticated {
            // Welcomed once the password is given, if before the bound.
            self.window_over = true;
            self.info(auth::PASSWORD_PROMPT.into());
            Some(connected + self.hub.config.password_timeout)
        } else {
            self.welcome_silent();
            Some(connected + QUIET_JOIN)
        }
    }

    /// Removes this member, announcing its leave for `reason`, and logs it.
    fn leave(&self, reason: Option<String>) {
        let Some(Removed { nick, room, leave }) = self.hub.remove(self.id, reason.as_deref())
        else {
            return;
        };
        let reason = reason.unwrap_or_else(|| "server shutdown".into());
        let mut meta =
            json!({"nick": nick, "peer": self.peer.to_string(), "reason": reason, "room": room});
        if !self.announced {
            // Never heard from, and gone before QUIET_JOIN: a health check, say.
            meta["announced"] = false.into();
        }
        if let Some((id, online)) = leave {
            meta["id"] = id.into();
            meta["online"] = online.into();
        }
        self.hub.log.info("Disconnected", Kind::Leave.tag(meta));
    }

    /// Leave reason for a connection that ended without /quit.
    fn lost(&mut self, e: io::Error) -> Option<String> {
        self.lost_connection = self.closing.is_none();
        if e.kind() != io::ErrorKind::UnexpectedEof {
            self.hub
                .log
                .info("Connection error", json!({"nick": self.nick, "error": e.to_string()}));
        }
        Some("connection lost".into())
    }

    fn register(&mut self, json_mode: bool, wanted: Option<&str>, resume: Option<Resume<'_>>) {
        self.enter(json_mode, wanted, true, resume);
    }

    /// The hello window passed in silence: welcome this client in text mode, but leave
    /// its announcement for its first line or [`QUIET_JOIN`].
    fn welcome_silent(&mut self) {
        self.enter(false, None, false, None);
    }

    fn announce(&mut self) {
        if let Some(id) = self.hub.announce(self.id) {
            // Logged with its id, so a restart can replay it (see `journal`).
            let online = self.hub.online();
            let meta = json!({"nick": self.nick, "id": id, "online": online, "room": self.room});
            self.hub.log.info("Joined", Kind::Join.tag(meta));
        }
        self.announced = true;
    }

    fn enter(
        &mut self,
        json_mode: bool,
        wanted: Option<&str>,
        announce: bool,
        resume: Option<Resume<'_>>,
    ) {
        self.registered = true;
        self.announced = announce;
        let hub = Arc::clone(&self.hub);
        // On a backbone the nick is claimed across nodes first, and the guest nick when
        // the wanted one is not given (a no-op in a single process).
        let across = match wanted {
            Some(w) => hub.claim_across(self.id, w, resume.map(|r| r.token)),
            None => Ok(Across::No),
        };
        let joined = match (across, resume) {
            // A session held on another node, taken over here.
            (Ok(Across::Adopted(claim)), Some(r)) => {
                let adopted = hub.adopt(self.id, claim, r.token, r.last_id);
                return self.entered(adopted, true, None, None);
            }
            (across, _) => across,
        };
        let claimed = matches!(joined, Ok(Across::Claimed));
        if !claimed {
            hub.claim_guest_across(self.id);
        }
        let wanted_here = wanted.filter(|_| joined.is_ok());
        let registered = hub.register(self.id, json_mode, wanted_here, announce, resume);
        if let (Joined::Fresh { refused: Some(_), nick, .. }, Some(w), true) =
            (&registered, wanted, claimed)
        {
            hub.release_across(self.id, w, Some(nick));
        }
        self.entered(registered, json_mode, wanted, joined.err());
    }

    /// Takes in how registering went (`refused_across`: the wanted nick was refused
    /// across nodes, before the hub was asked), and logs it.
    fn entered(
        &mut self,
        joined: Joined,
        json_mode: bool,
        wanted: Option<&str>,
        refused_across: Option<NickChange>,
    ) {
        let peer = self.peer.to_string();
        match joined {
            Joined::Resumed { nick, room, missed, took_over } => {
                (self.nick, self.room) = (nick, room);
                self.announced = true;
                let meta = json!({"nick": self.nick, "peer": peer, "missed": missed, "took_over": took_over, "room": self.room});
                self.hub.log.info("Resumed", meta);
            }
            Joined::Fresh { nick, room, refused, join_id } => {
                (self.nick, self.room) = (nick, room);
                let mode = if json_mode { "json" } else { "text" };
                let mut meta = json!({"new": self.nick, "peer": peer, "mode": mode, "room": self.room, "transport": self.transport});
                if let Some(join_id) = join_id {
                    meta["id"] = join_id.into();
                    meta["online"] = self.hub.online().into();
                }
                // The key's fingerprint (public, as an ssh key's): which device it was.
                if let Some(key) = self.hub.key_of(self.id) {
                    meta["key"] = key.to_string().into();
                }
                self.hub.log.info("Nick set", Kind::Join.tag(meta));
                if let (Some(err), Some(wanted)) = (refused_across.or(refused), wanted) {
                    self.error(err.code(), err.describe(wanted));
                }
            }
            Joined::Refused(refusal) => {
                let reason = refusal.to_string();
                self.hub.log.warn(
                    "Connection refused",
                    json!({"peer": peer, "reason": reason, "after": "no session resumed"}),
                );
                self.hub.send_line(self.id, &format!("!!! {reason}\n"));
                self.closing = Some(Some(reason));
            }
        }
        self.note_seen();
    }

    /// Whether the socket is to be read: not while closing, nor while lines are held.
    fn reads(&self, intake: &Intake) -> bool {
        self.closing.is_none() && !intake.is_holding()
    }

    /// Held lines are due (fakelag): handles those the rate allows now. Returns when the
    /// rest are due, if lines are still held.
    fn release_held(&mut self, intake: &mut Intake) -> Option<Pin<Box<Sleep>>> {
        let step = intake.resume(Instant::now(), |line| self.on_line(line));
        intake.charge(std::mem::take(&mut self.flood_debt));
        self.after(step)
    }

    /// Acts on where the intake stopped; returns the timer for held lines, if any.
    fn after(&mut self, step: Step) -> Option<Pin<Box<Sleep>>> {
        match step {
            Step::Done => None,
            Step::Hold { until, tell } => {
                if tell {
                    self.slowed();
                }
                Some(Box::pin(tokio::time::sleep_until(until)))
            }
            Step::Kick => {
                self.kick_flooder();
                None
            }
        }
    }

    /// First hold of an episode: the sender is told once, as news rather than an error,
    /// since nothing it sent is lost.
    fn slowed(&self) {
        let rate = self.hub.config.rate;
        self.hub.log.warn("Flood throttled", json!({"nick": self.nick, "rate": rate}));
        self.info(format!(
            "you are sending faster than {rate} lines per second: your lines are delayed \
             to that rate, none is lost"
        ));
    }

    fn kick_flooder(&mut self) {
        let after = self.hub.config.flood_kick_after.unwrap_or_default().as_secs();
        self.hub.log.warn("Flooder disconnected", json!({"nick": self.nick, "after_s": after}));
        self.error(
            "flood",
            format!(
                "disconnected for flooding: still over {} lines per second after {after} s",
                self.hub.config.rate
            ),
        );
        self.closing = Some(Some("flooding".into()));
    }

    /// Logs a client dropped for not reading and returns its last line, encoded for it.
    fn drop_slow(&self) -> Option<String> {
        let limit = self.hub.config.send_queue;
        self.hub.log.warn(
            "Slow client dropped (send queue full)",
            json!({"nick": self.nick, "peer": self.peer.to_string(), "limit": limit}),
        );
        let message = format!(
            "disconnected: too slow (you stopped reading; {limit} bytes were waiting for you)"
        );
        let event = Event::now(EventKind::Error { code: "too_slow".into(), message });
        self.hub.encode_for_member(self.id, &event)
    }

    /// Handles one line; returns false once the session takes no more (it is closing).
    fn on_line(&mut self, line: Line<'_>) -> bool {
        self.handle_line(line);
        self.closing.is_none()
    }

    fn handle_line(&mut self, line: Line<'_>) {
        if self.closing.is_some() {
            return;
        }
        if !self.authenticated {
            return self.authenticate(line);
        }
        let first = !self.seen_a_line;
        self.seen_a_line = true;
        if self.registered && !self.announced {
            self.announce();
        }
        let text = match line {
            Line::Text(text) => text,
            Line::TooLong => {
                let max = self.hub.config.max_line;
                self.hub.log.warn("Line too long", json!({"nick": self.nick, "max": max}));
                return self.error(
                    "too_long",
                    format!("line too long (limit {max} bytes); it was not sent"),
                );
            }
        };
        if auth::parse_pass(&text).is_some() {
            // Never parsed as a command or a message: the secret must not reach the log.
            return self.info(auth::PASSWORD_NOT_NEEDED.into());
        }
        let text = if needs_sanitizing(&text) { sanitize(&text).into() } else { text };
        let request = match Request::parse(&text) {
            Ok(r) => r,
            Err(e) => {
                self.register_if_needed();
                self.hub
                    .log
                    .warn("Bad command", json!({"nick": self.nick, "error": e.to_string()}));
                return self.error(e.code(), e.to_string());
            }
        };
        match request {
            Request::Hello { .. } if self.registered && !first => {
                return self.error("usage", "/hello is only valid as the first line".into());
            }
            Request::Hello { nick, .. } if self.registered => {
                self.hub.upgrade_to_json(self.id);
                self.hub.log.info("Late hello", json!({"nick": self.nick}));
                if let Some(nick) = nick {
                    self.handle(Request::Nick(nick));
                }
                return;
            }
            Request::Hello { nick, .. } if self.refuse_banned_nick(nick) => return,
            Request::Hello { nick, resume } => return self.register(true, nick, resume),
            Request::Nick(nick) if !self.registered && self.refuse_banned_nick(Some(nick)) => {
                return;
            }
            // A first line of `/nick NAME` joins under NAME directly: nobody sees a
            // guest name come and go.
            Request::Nick(nick) if !self.registered => {
                return self.register(false, Some(nick), None);
            }
            _ => {}
        }
        self.register_if_needed();
        self.handle(request);
    }

    /// A line before the password was given: it must be `/pass` with the right one;
    /// anything else gets one `!!!` line and a close. Once it is given after the hello
    /// window, the client is welcomed (and announced: it has spoken).
    fn authenticate(&mut self, line: Line<'_>) {
        let given = match &line {
            Line::Text(text) => auth::parse_pass(text),
            Line::TooLong => None,
        };
        let access = &self.hub.config.access;
        match access.check_password(&self.hub.log, self.peer, given) {
            Ok(()) => {
                self.authenticated = true;
                if self.window_over {
                    self.register(false, None, None);
                }
            }
            Err(refusal) => {
                self.error("password", refusal.to_owned());
                self.closing = Some(Some(refusal.to_owned()));
            }
        }
    }

    /// The password timeout passed without the password: one line, a close, a WARN.
    /// Without the bound, connections that never authenticate would hold slots (of
    /// `--max-clients` and `--max-per-ip`) for good.
    fn password_timed_out(&mut self) {
        let after = self.hub.config.password_timeout.as_secs();
        self.hub
            .log
            .warn("Password not given", json!({"peer": self.peer.to_string(), "after_s": after}));
        self.error("password", format!("no password given within {after} s; closing"));
        self.closing = Some(Some("no password".into()));
    }

    fn register_if_needed(&mut self) {
        if !self.registered {
            self.register(false, None, None);
        }
    }

    fn handle(&mut self, request: Request<'_>) {
        let hub = Arc::clone(&self.hub);
        match request {
            Request::Empty | Request::Hello { .. } => {}
            Request::Public(_) | Request::Me(_) if !self.may_speak() => {}
            Request::Public(text) => {
                let event = Event::now(EventKind::Public {
                    from: self.nick.clone(),
                    text: text.to_owned(),
                    room: self.room.clone(),
                });
                let id = hub.to_room(self.id, event, Skip::TextEcho(self.id));
                hub.log.info("Public message", Kind::Public.tag(self.room_message_meta(text, id)));
            }
            Request::Me(text) => {
                let event = Event::now(EventKind::Action {
                    from: self.nick.clone(),
                    text: text.to_owned(),
                    room: self.room.clone(),
                });
                let id = hub.to_room(self.id, event, Skip::Nobody);
                hub.log.info("Action", Kind::Action.tag(self.room_message_meta(text, id)));
            }
            Request::History(n) => self.history(n),
            Request::Msg { to, text } => self.private_message(to, text),
            Request::Nick(wanted) => self.rename(wanted),
            Request::List { .. }
            | Request::Join(_)
            | Request::Part
            | Request::Rooms
            | Request::Topic(_) => self.handle_room(request),
            Request::Help => {
                hub.log.info("Command", json!({"nick": self.nick, "command": "/help"}));
                let history_default = hub.config.replay.max(1);
                let commands = help_entries_for(hub.is_oper(self.id), history_default);
                self.send(EventKind::Help { commands });
            }
            Request::Quit(reason) => self.quit(reason),
            other => self.handle_everyday(other),
        }
    }

    /// `/history [n]`: the last `n` events (the `--replay` count by default, at least
    /// one) of the client's room, capped at [`MAX_HISTORY_REQUEST`] with a line saying so.
    fn history(&self, n: Option<usize>) {
        let hub = &self.hub;
        hub.log.info("Command", json!({"nick": self.nick, "command": "/history"}));
        if n.is_some_and(|n| n > MAX_HISTORY_REQUEST) {
            self.info(format!(
                "/history sends at most {MAX_HISTORY_REQUEST} lines at once; \
                 here are up to the last {MAX_HISTORY_REQUEST}"
            ));
        }
        if hub.history(self.id, n.unwrap_or(hub.config.replay.max(1))) == 0 {
            self.info("no earlier events are kept".into());
        }
    }

    /// `/nick NAME` of a registered client.
    fn rename(&mut self, wanted: &str) {
        if self.is_muted("/nick") {
            return;
        }
        let hub = Arc::clone(&self.hub);
        // On a backbone the nick is claimed across nodes first (a no-op in a single
        // process); the old one is let go once the new one is given.
        let across = hub.claim_across(self.id, wanted, None);
        let claimed = matches!(across, Ok(Across::Claimed));
        let result = match across {
            Ok(_) => hub.rename(self.id, wanted),
            Err(refused) => Err(refused),
        };
        if result.is_err() && claimed {
            hub.release_across(self.id, wanted, Some(&self.nick));
        }
        match result {
            Ok((old, new, _)) if old == new => self.info(format!("you are already {new}")),
            Ok((old, new, id)) => {
                hub.release_across(self.id, &old, Some(&new));
                let meta = json!({"old": old, "new": new, "room": self.room, "id": id});
                hub.log.info("Nick changed", Kind::Nick.tag(meta));
                self.nick = new;
                self.note_seen();
            }
            Err(e) => {
                hub.log.warn(
                    "Nick refused",
                    json!({"nick": self.nick, "wanted": wanted, "error": e.describe(wanted)}),
                );
                self.error(e.code(), e.describe(wanted));
            }
        }
    }

    /// `/quit [reason]`: a goodbye, then the session closes with the reason.
    fn quit(&mut self, reason: Option<&str>) {
        // A muted user leaves, but its reason reaches nobody.
        let reason = reason.filter(|_| !self.is_muted("/quit REASON"));
        self.hub
            .log
            .info("Command", json!({"nick": self.nick, "command": "/quit", "reason": reason}));
        self.info(format!("Goodbye, {}!", self.nick));
        self.closing = Some(Some(match reason {
            Some(r) => format!("quit: {r}"),
            None => "quit".into(),
        }));
    }

    fn send(&self, kind: EventKind) {
        self.hub.send_to(self.id, &Event::now(kind));
    }

    fn info(&self, message: String) {
        self.send(EventKind::Info { message });
    }

    fn error(&self, code: &str, message: String) {
        self.send(EventKind::Error { code: code.to_owned(), message });
    }
}

impl Session {
    /// [`message_meta`] of a line to this client's room, with the room.
    fn room_message_meta(&self, text: &str, id: Option<u64>) -> serde_json::Value {
        let mut meta = message_meta(&self.nick, None, text, id);
        meta["room"] = self.room.clone().into();
        meta
    }
}

/// Log metadata of a message: the seed's `from`/`len`/`preview`, plus the full text so
/// a session can be reconstructed from the log. The id is `null` on a backbone, whose
/// stream gives it after the line is logged.
fn message_meta(from: &str, to: Option<&str>, text: &str, id: Option<u64>) -> serde_json::Value {
    let mut meta = json!({"from": from, "len": text.chars().count(), "preview": preview(text), "text": text, "id": id});
    if let Some(to) = to {
        meta["to"] = to.into();
    }
    meta
}
