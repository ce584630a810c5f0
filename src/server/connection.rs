//! One task per client: reads its lines, acts on them, and writes what its outbox holds.
//!
//! The task owns its socket outright. Reading, parsing and acting on a line are
//! synchronous (the hub never awaits), so the task waits only in the `select!` on the
//! socket, the outbox (whose wake-up also announces shutdown) and its timers, and in the
//! yields that keep a busy sender from monopolising a worker. Writes copy what the outbox
//! holds with one `write`; an error ends this connection only.
//!
//! This file holds the task's loop and its socket; the session's parts are `hello`
//! (window, password, registration), `lines` (parsing and the chat commands),
//! `room_commands`, `account_commands`, `profile_commands` (`/reply`, `/away`, `/whois`, `/motd`, `/oper`, mutes), `flood`
//! (fakelag) and `closing` (leave, resume hold, ordered close).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, sleep_until};

mod account_commands;
mod claiming;
mod closing;
mod flood;
mod hello;
mod lines;
mod profile_commands;
mod room_commands;
mod wake;

use closing::{Ended, finish};
use wake::{Due, Reads, Timers, Wake};

use super::access::{self, Rejected};
use super::history::MAX_HISTORY_REQUEST;
use super::hub::Hub;
use super::intake::{Intake, excess_flood_bound};
use super::outbox::{Batch, Outbox};
use super::transport::{Carrier, Detected, Transport, classify};
use crate::event_log::preview;
use crate::flood::Fakelag;
use crate::framing::LineBuffer;
use crate::protocol::{Event, EventKind};

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
    /// Where the session is: password, hello window, welcomed, announced.
    phase: Phase,
    /// The hello counts only as the first line, even if it came after the window.
    seen_a_line: bool,
    /// Whether any byte came from the client yet (see [`LATE_TLS`]).
    got_bytes: bool,
    /// Whether the session must end, and how its leave is announced.
    closing: Closing,
    /// Lines' worth of flood control the line being handled owes beyond its own (a room
    /// it created), charged by the intake before it looks at the next line.
    flood_debt: u16,
    /// What the connection is carried over, for the log.
    transport: Carrier,
    /// The connection broke (not /quit, not a kick): the session may be held for a
    /// resume.
    lost_connection: bool,
    /// On a backbone, the nick claim across nodes (or another round trip to NATS: an
    /// account written, a ban kept) this session waits for before it takes another line
    /// ([`claiming`]).
    claim: Option<claiming::Claiming>,
}

/// Where a session is in its life, in order: each phase implies those before it (a
/// welcomed client gave the password, or none is needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// A password is needed and not given yet; the hello window still runs.
    Password,
    /// A password is needed and not given yet, and the hello window is over: the client
    /// is welcomed as soon as it gives it, and closed if that takes longer than the
    /// password timeout.
    PasswordOverdue,
    /// The hello window: the password given (or none needed), the client not welcomed.
    Hello,
    /// Welcomed (registered in the hub), not announced to the others yet (see
    /// [`QUIET_JOIN`]).
    Welcomed,
    /// Welcomed, and the others were told this client joined.
    Announced,
}

impl Phase {
    /// Registered in the hub: welcomed, announced or not.
    fn registered(self) -> bool {
        self >= Phase::Welcomed
    }

    /// The password was given, or none is needed: the client may be welcomed.
    fn authenticated(self) -> bool {
        self >= Phase::Hello
    }
}

/// Whether the session must end, and how its leave is announced.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Closing {
    /// The session goes on.
    No,
    /// The session ends; its leave is announced with this reason. Boxed text, and
    /// `flood_debt` a `u16`: the session is 128 bytes so, in every connection's task.
    Leave(Box<str>),
    /// The session ends without an announcement, as on shutdown.
    Unannounced,
}

impl Closing {
    /// The session must end.
    fn is_set(&self) -> bool {
        *self != Closing::No
    }

    /// The leave reason to announce: `None` when not closing, or closing unannounced.
    fn reason(&self) -> Option<String> {
        match self {
            Closing::Leave(reason) => Some(reason.to_string()),
            Closing::No | Closing::Unannounced => None,
        }
    }
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
// Over 60 lines: the connection task's one `select!`, kept in one `async` block so that
// the task holds only what lives across its waits; every branch calls a synchronous
// function.
pub fn serve(
    hub: Arc<Hub>,
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    nick: String,
    outbox: Arc<Outbox>,
) -> impl Future<Output = ()> + Send {
    let mut intake = new_intake(&hub);
    let connected = Instant::now();
    let hello_by = connected + HELLO_WINDOW;
    // Boxed, and freed once done: the detection and handshake futures (timers, the
    // socket's readiness) and a refusal's 4 KiB drain buffer would otherwise be part of
    // every connection's task, idle ones included, for good. Made here, so the task
    // keeps a pointer to it rather than the socket it takes.
    let establishing =
        Box::pin(establish(Arc::clone(&hub), stream, peer, id, hello_by, Arc::clone(&outbox)));
    let mut s = Session::new(hub, id, peer, nick);
    let mut pending = Batch::default();
    // The hello timer ends the hello window, then (reset) the wait for a silent
    // connection's announcement.
    let mut timers = Timers { hello: Some(Box::pin(sleep_until(hello_by))), ..Timers::default() };
    async move {
        let Some(mut transport) = establishing.await else {
            return;
        };
        if transport.is_tls() {
            s.hub.note_tls(s.id);
            if let Some(key) = transport.client_key() {
                s.hub.note_key(s.id, key);
            }
            // The hello follows the handshake: the window starts over.
            timers.hello = Some(Box::pin(sleep(HELLO_WINDOW)));
        }
        s.transport = transport.carrier();
        let mut shutting_down = false;
        // Set when the client is dropped for not reading (a flag rather than its last
        // line: the task keeps whatever lives across its awaits, idle or not).
        let mut too_slow = false;

        let leave_reason: Option<String> = loop {
            if s.phase == Phase::Announced {
                timers.hello = None;
            }
            match take_stock(&mut s, &outbox, &mut pending, &mut transport, &mut shutting_down) {
                Turn::Wait => {}
                // Boxed: reached once, at the end, as `finish` below.
                Turn::Superseded => return Box::pin(s.abandon_claim()).await,
                Turn::TooSlow => {
                    too_slow = true;
                    break Some("too slow: stopped reading".into());
                }
                Turn::Leave(reason) => break reason,
            }
            if s.closing.is_set() {
                timers.close_by.get_or_insert_with(|| Box::pin(sleep(CLOSE_GRACE)));
            }
            // One readiness for both directions. Nothing is read while lines are held.
            let reads = match (s.reads(&intake), s.phase == Phase::Hello) {
                (false, _) => Reads::No,
                (true, false) => Reads::Yes,
                (true, true) => Reads::BeforeHello,
            };
            let writes = !pending.is_empty();
            let lag = !s.closing.is_set();
            let socket = (reads, writes);
            let woke =
                wake::wait(&mut timers, &mut s.claim, lag, &transport, socket, &outbox).await;
            // What to wait for before the next turn, decided first: the wake-up itself is
            // then not kept in the task across that wait.
            let then = match woke {
                Wake::CloseBy => break s.closing.reason(),
                Wake::Hello => {
                    match (s.on_hello_timer(connected), timers.hello.as_mut()) {
                        (Some(next), Some(hello)) => hello.as_mut().reset(next),
                        _ => timers.hello = None,
                    }
                    Then::Go
                }
                Wake::Claimed(claimed) => {
                    s.claim = None;
                    s.claimed(*claimed, true);
                    if s.claim.is_none() {
                        timers.lag = s.release_held(&mut intake);
                    }
                    Then::Go
                }
                Wake::Lag => {
                    timers.lag = s.release_held(&mut intake);
                    Then::Go
                }
                Wake::Ready(ready) => {
                    match on_ready(ready, &mut transport, &mut intake, &mut s, &mut timers.lag) {
                        Woke::Idle => Then::Go,
                        // Socket readiness costs little cooperative budget, so a client
                        // that sends without pause would keep this worker thread to
                        // itself and starve every other connection and the accept
                        // loop: give way after a full buffer, and let the budget
                        // decide otherwise.
                        Woke::Read(READ_CHUNK) => Then::Yield,
                        Woke::Read(_) => Then::Budget,
                        Woke::Lost(e) => break s.lost(e),
                    }
                }
                // Looked at even while a batch is pending, so an overflow is noticed at
                // once. Let the tasks already queued on this worker run first: under
                // load they are senders adding to this outbox, and one write then
                // carries their lines too. On a quiet server nothing is queued and this
                // costs one more poll.
                Wake::Outbox if pending.is_empty() => Then::Yield,
                Wake::Outbox => Then::Go,
            };
            match then {
                Then::Go => {}
                Then::Yield => tokio::task::yield_now().await,
                Then::Budget => tokio::task::coop::consume_budget().await,
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
/// server's `--rate` and `--burst`.
fn new_intake(hub: &Hub) -> Intake {
    let config = &hub.config;
    let flood = Fakelag::new(config.rate, config.burst, Instant::now());
    let excess = excess_flood_bound(config.max_line);
    Intake::new(LineBuffer::with_telnet(config.max_line), flood, excess, hub.backbone_window())
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
    if let Some(reason) = outbox.take_close()
        && !s.closing.is_set()
    {
        s.closing = Closing::Leave(reason.into());
    }
    // Set once, before every task is woken through its outbox: no shutdown future of
    // its own in every task.
    if !*shutting_down && s.hub.is_shutting_down() {
        *shutting_down = true;
        s.closing = Closing::Unannounced;
    }
    if s.closing.is_set() && pending.is_empty() && outbox.is_empty() && !transport.wants_write() {
        Turn::Leave(s.closing.reason())
    } else {
        Turn::Wait
    }
}

/// What the connection loop waits for after handling a wake-up, before its next turn.
enum Then {
    /// Nothing: on to the next turn.
    Go,
    /// Give way to the other tasks on this worker first.
    Yield,
    /// Spend a unit of the cooperative budget (give way if it is spent).
    Budget,
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
    lag: &mut Option<Due>,
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
    hub: Arc<Hub>,
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    hello_by: Instant,
    outbox: Arc<Outbox>,
) -> Option<Transport> {
    let established = tokio::select! {
        established = access::establish(&hub, stream, peer, hello_by) => established,
        () = outbox.woken() => Err(Rejected::Drop),
    };
    match established {
        Ok(transport) => Some(transport),
        Err(rejected) => {
            hub.remove(id, None);
            if let Rejected::Refuse(stream, line) = rejected {
                super::close_with(stream, &line).await;
            }
            None
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
    lag: &mut Option<Due>,
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
            *lag = s.after(step);
            Ok(Some(n))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Some(0)),
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
        let phase =
            if hub.config.access.password.is_none() { Phase::Hello } else { Phase::Password };
        Session {
            hub,
            id,
            peer,
            nick,
            room: String::new(),
            phase,
            seen_a_line: false,
            got_bytes: false,
            closing: Closing::No,
            lost_connection: false,
            claim: None,
            flood_debt: 0,
            transport: Carrier::Plain,
        }
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
        let mut meta = message_meta(&self.nick, text, id);
        meta["room"] = self.room.clone().into();
        meta
    }
}

/// Log metadata of a message: the seed's `from`/`len`/`preview`, plus the full text so
/// a session can be reconstructed from the log. On a backbone the line is logged when
/// the stream gives it its id (`Hub::apply`).
pub(crate) fn message_meta(from: &str, text: &str, id: Option<u64>) -> serde_json::Value {
    json!({"from": from, "len": text.chars().count(), "preview": preview(text), "text": text, "id": id})
}
