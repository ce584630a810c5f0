//! The client's connection core: it connects, says hello, runs the session, and when the
//! connection is lost, reconnects with backoff and resumes. The UI never touches the
//! socket: it gets typed [`CoreEvent`]s, every string in them already sanitised (they
//! are [`Clean`]: this is where received text is made so), and sends the user's lines
//! through the input channel.
//!
//! Shaped like osa1/tiny's `libtiny_client`, whose connection task is a `'connect:`
//! loop that reconnects after a delay while its TUI only renders events.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::clean::Clean;
use super::connect::{self, Io, Prefixed};
use super::outgoing::{Outgoing, Pace};
use super::reason;
use super::servers::{Endpoint, Reached, Servers};
use super::session::{Answers, session};
use super::{ClientError, Input, hello_lines, hello_options};
use crate::auth::Password;
use crate::cli::JoinArgs;
use crate::fingerprint::Fingerprint;
use crate::framing::Line;
use crate::protocol::{Event, EventKind, HELLO, HELLO_MODE_JSON, HELLO_RESUME, Request};

/// The first wait before reconnecting; it doubles with every failed attempt.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The longest wait between two attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// What the connection tells the UI.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreEvent {
    /// The server's welcome; `again` for the welcome of a reconnection. `rejoin`: the
    /// reconnection landed in another room than the user was in (the server restarted
    /// and forgot the session), so the core sent `/join` for this one, the user's, before
    /// the lines typed while offline. `server`: the server that answered, when the chat
    /// has several addresses.
    Welcomed { event: Clean<Event>, again: bool, rejoin: Option<String>, server: Option<String> },
    /// Any other event from the server.
    Event(Clean<Event>),
    /// A line that is not an event; before the first welcome, a `!!!` one is the
    /// server's refusal.
    Raw(Clean<String>),
    /// The server sent a line longer than the client accepts; it was dropped.
    TooLong,
    /// The connection was lost (or an attempt to reconnect failed): the next attempt
    /// comes in `retry_in`.
    Lost { reason: String, retry_in: Duration, attempt: u32 },
    /// A line was entered while there is no connection: `waiting` lines are now held,
    /// to be sent once it is back.
    Queued { waiting: usize },
}

/// How `tchat join` connects: where, as whom (the command line: nick, TLS, trust,
/// password file), and whether it comes back after a loss.
pub struct Core {
    /// The chat's addresses: a reconnection tries the others before the one lost.
    pub servers: Servers,
    pub args: JoinArgs,
    pub reconnect: bool,
    /// The password the first connection gave (from the file or typed at the prompt),
    /// given again on every reconnection: the prompt cannot be shown then, since the
    /// line editor owns the terminal. Kept in memory only, for this run.
    pub password: Option<Password>,
}

/// A session's stream, as [`connect::open`] hands it over.
type Stream = Prefixed<Box<dyn Io>>;

/// Where the current session is: its endpoint, whether the chat had other addresses
/// then (the UI then names the one that answered), and the certificate trusted there,
/// which the chat's other addresses are held to.
struct Place {
    endpoint: Endpoint,
    several: bool,
    fingerprint: Option<Fingerprint>,
}

impl Place {
    /// The session `reached` opened; `fingerprint`: the one trusted before, kept when
    /// this certificate was trusted by an authority.
    fn of(reached: Reached, fingerprint: Option<Fingerprint>) -> (Stream, Place) {
        let Reached { opened, endpoint, tried_from } = reached;
        let fingerprint = opened.fingerprint.or(fingerprint);
        (opened.stream, Place { endpoint, several: tried_from > 1, fingerprint })
    }

    /// The server's name for the welcome notice, when the chat has several.
    fn shown(&self) -> Option<String> {
        self.several.then(|| self.endpoint.to_string())
    }
}

/// What the core learnt from the current session's events.
#[derive(Debug, Default)]
struct Tracker {
    welcomed: bool,
    /// A `!!!` line before the welcome: the server turned the connection away, and
    /// said why.
    refusal: Option<Clean<String>>,
    /// The first line before the welcome that was not an event: a service that is not
    /// tchat introducing itself (`SSH-2.0-…`).
    banner: Option<Clean<String>>,
    /// A kick (flooding, too slow): the server ended the session on purpose.
    kicked: bool,
    /// The shutdown notice: the server is going away and may come back.
    shut_down: bool,
    /// What a resume needs: the nick in use, the token of the last welcome, the highest
    /// id seen. Kept across sessions.
    nick: Option<String>,
    token: Option<String>,
    last_id: u64,
    /// The room the user is in (from the welcome and the `room` events), kept across
    /// sessions: a reconnection that lands elsewhere goes back to it.
    room: String,
    /// The nick the user had (or asked for with `--nick`) and a welcome did not give
    /// back, because someone else held it: asked for again, once, when its holder is
    /// seen to leave or take another nick, as ssh-chat and weechat do. Forgotten when
    /// the user picks a nick with `/nick`, or gets this one.
    reclaim: Option<String>,
    /// Lines the user entered while there was no connection: sent once the next welcome
    /// has come (after the `/join` back to [`Tracker::room`], if needed), so that they
    /// reach the room the user meant.
    pending: Vec<String>,
}

impl Tracker {
    /// Types one line from the server, notes what a resume needs, and sanitises it.
    /// Lines to send in answer (after a welcome: the rejoin and the lines typed while
    /// offline) are appended to `send`.
    // Over 60 lines: one arm per event the core acts on before the UI sees it (a kick or
    // shutdown, the welcome and its resume token, the room, renames, leaves).
    fn on_line(&mut self, line: Line<'_>, again: bool, send: &mut Vec<String>) -> CoreEvent {
        let text = match line {
            Line::Text(text) => text,
            Line::TooLong => return CoreEvent::TooLong,
        };
        let Ok(event) = serde_json::from_str::<Event>(&text) else {
            let text = Clean::text(&text);
            if !self.welcomed && text.starts_with("!!! ") {
                self.refusal = Some(text.clone());
            }
            if !self.welcomed && self.banner.is_none() {
                self.banner = Some(text.clone());
            }
            return CoreEvent::Raw(text);
        };
        let event = Clean::event(event);
        if let Some(id) = event.id {
            self.last_id = self.last_id.max(id);
        }
        if event.kind.ends_session() {
            match event.kind {
                EventKind::Shutdown { .. } => self.shut_down = true,
                _ => self.kicked = true,
            }
        }
        match &event.kind {
            EventKind::Welcome { nick, last_id, resume, room, .. } => {
                self.welcomed = true;
                // A wish still pending outlasts the guest nick in use.
                let meant = self.reclaim.take().or_else(|| self.nick.take());
                self.reclaim = meant.filter(|m| crate::nick::key(m) != crate::nick::key(nick));
                self.nick = Some(nick.clone());
                self.token = resume.clone();
                // The server's numbering, not the highest id ever seen: after a restart
                // that did not keep its ids (no `--save`) they start again below ours.
                // What came before the welcome's `last_id` and was missed follows it.
                self.last_id = *last_id;
                let old = std::mem::replace(&mut self.room, room.clone());
                let moved = again && !old.is_empty() && !room.is_empty() && *room != old;
                let rejoin = moved.then_some(old);
                send.extend(rejoin.iter().map(|room| format!("/join {room}")));
                send.append(&mut self.pending);
                return CoreEvent::Welcomed { event, again, rejoin, server: None };
            }
            EventKind::Room { room, .. } => self.room = room.clone(),
            // A registered nick is not freed by its holder leaving: asking again would
            // only be refused again, in words the user never asked for. (A `/nick` the
            // user typed and was refused so drops the wish too: they are picking
            // another.)
            EventKind::Error { code, .. } if code == "nick_registered" => self.reclaim = None,
            EventKind::Nick { old, new, .. } if self.nick.as_deref() == Some(old) => {
                self.nick = Some(new.clone());
                self.reclaim = None;
            }
            // Live only: a catch-up holds the old leaves, the user's own among them.
            EventKind::Leave { nick: gone, .. } | EventKind::Nick { old: gone, .. }
                if !event.history =>
            {
                let freed = |want: &String| crate::nick::key(want) == crate::nick::key(gone);
                if let Some(want) = self.reclaim.take_if(|want| freed(want)) {
                    send.push(format!("/nick {want}"));
                }
            }
            _ => {}
        }
        CoreEvent::Event(event)
    }

    /// The hello that asks for the session back: the nick, the token (`-` if there is
    /// none, which the server reads as a wrong one) and the last id seen; `replay=0`
    /// for `--no-replay` (`no_replay`), which a session the server lost needs again.
    fn resume_hello(&self, fallback: Option<&str>, no_replay: bool) -> Vec<String> {
        match self.nick.as_deref().or(fallback) {
            Some(nick) if !nick.contains(char::is_whitespace) => {
                let token = self.token.as_deref().unwrap_or("-");
                let last = self.last_id;
                let mut hello =
                    format!("{HELLO} {HELLO_MODE_JSON} {nick} {HELLO_RESUME} {token} {last}");
                // The room too: a server that lost the session (restarted) puts us back
                // there before the catch-up, which is then that room's.
                if !self.room.is_empty() && !self.room.contains(char::is_whitespace) {
                    hello.push(' ');
                    hello.push_str(&self.room);
                }
                hello.push_str(&hello_options(no_replay));
                vec![hello]
            }
            _ => hello_lines(fallback, no_replay),
        }
    }
}

impl Core {
    /// Runs sessions until the user leaves, the server refuses or kicks the client, or
    /// (without `reconnect`) the connection ends. `leave` resolving (a signal) counts as
    /// the user leaving, also while waiting to reconnect.
    ///
    /// `first` is the first session, opened (and its hello sent) before the line editor
    /// took the terminal; every reconnection goes through [`connect::open`] too, with
    /// the resume hello, TLS and the pinned certificate as the first time, starting with
    /// the chat's address after the one lost.
    // Over 60 lines: the `'connect` loop (session, lost, wait, reconnect) reads as one
    // piece; each step is a call.
    pub async fn run(
        &self,
        first: Reached,
        input: &mut UnboundedReceiver<Input>,
        leave: impl Future<Output = ()>,
        mut emit: impl FnMut(CoreEvent),
    ) -> Result<(), ClientError> {
        tokio::pin!(leave);
        let (mut stream, mut place) = Place::of(first, None);
        let asked = self.args.nick.as_deref().map(str::trim);
        let asked = asked.filter(|n| !n.is_empty() && !n.contains(char::is_whitespace));
        let mut tracker = Tracker { reclaim: asked.map(str::to_owned), ..Tracker::default() };
        let mut again = false;
        // Whether any session of this run was welcomed: before that, a connection that
        // ends is a failure to connect, not a session to come back to.
        let mut ever_welcomed = false;
        // Failed attempts since the last welcome: a server that accepts and drops at
        // once (a proxy whose backend is down) still gets the growing waits.
        let mut attempts = 0;
        loop {
            tracker.welcomed = false;
            tracker.shut_down = false;
            let server = place.shown();
            let on_line = |line: Line<'_>, answers: &mut Answers| {
                let mut event = tracker.on_line(line, again, &mut answers.lines);
                if let CoreEvent::Welcomed { event: welcome, server: shown, .. } = &mut event {
                    shown.clone_from(&server);
                    if let EventKind::Welcome { flood, .. } = &welcome.kind {
                        answers.pace = Some(Pace::of(*flood));
                    }
                }
                emit(event)
            };
            // The hello went out as the session was opened; the lines typed meanwhile
            // and input wait for the welcome's pace.
            let out = Outgoing::new(&[], Pace::Waiting);
            let ended = session(stream, out, input, on_line, leave.as_mut());
            let ended = ended.await;
            // "Try again later" (a full server) is a wait, not an answer: retried with
            // the backoff, as a lost connection, when reconnecting is on.
            let refused_for_now = match tracker.refusal.take() {
                Some(line) if self.reconnect && reason::try_later(&line) => Some(line),
                Some(line) => return Err(self.refused(&line)),
                None => None,
            };
            let result = match ended.result {
                _ if refused_for_now.is_some() => Err(ClientError::Closed),
                Ok(()) if tracker.kicked || tracker.shut_down => Err(ClientError::Closed),
                result => result,
            };
            ever_welcomed |= tracker.welcomed;
            // (Leaving meanwhile does not change that: the end of piped input is no
            // answer to a server that closes.)
            let failed = matches!(result, Err(ClientError::Closed | ClientError::Lost(_)));
            if !ever_welcomed && failed && refused_for_now.is_none() {
                return Err(self.no_welcome(&place.endpoint, tracker.banner.take()));
            }
            if ended.quitting || tracker.kicked || !self.reconnect || result.is_ok() {
                return result;
            }
            if tracker.welcomed {
                attempts = 0;
            }
            let reason = match &result {
                _ if let Some(line) = &refused_for_now => line.trim_start_matches("!!! ").into(),
                Err(ClientError::Closed) if tracker.shut_down => "the server shut down".into(),
                Err(e) => reason::why(e),
                Ok(()) => unreachable!("returned above"),
            };
            let hello = tracker.resume_hello(self.args.nick.as_deref(), self.args.no_replay);
            let waited = self.wait_and_reconnect(
                (reason, &hello),
                (&mut place, &mut attempts),
                (input, leave.as_mut()),
                &mut tracker.pending,
                &mut emit,
            );
            let waited = waited.await;
            let unsent = |cause| with_unsent(cause, tracker.pending.len());
            match waited.map_err(unsent)? {
                Some(s) => stream = s,
                None if tracker.pending.is_empty() => return Ok(()),
                // Lines typed while offline were never sent.
                None => return result.map_err(unsent),
            }
            again = true;
        }
    }

    /// The error for a first connection, to `at`, that ended before the welcome, after
    /// the server said `banner` (or nothing).
    fn no_welcome(&self, at: &Endpoint, banner: Option<Clean<String>>) -> ClientError {
        let target = at.target.clone();
        ClientError::NoWelcome { target, tls: !self.args.plain, banner }
    }

    /// The error for a refusal before the welcome, `line`; it has been shown.
    fn refused(&self, line: &str) -> ClientError {
        let from_file = self.args.password_file.is_some();
        ClientError::Refused { hint: reason::refusal_hint(line, from_file) }
    }

    /// Waits with backoff and reconnects, sending `hello`: each attempt tries every
    /// address of the chat, the others before the one `place` lost, and moves `place`
    /// to the one that answers. Lines typed meanwhile are
    /// kept in `typed` for the next session. Returns `None` when the user leaves (a
    /// `/quit`, the end of input or a signal) before a connection succeeds, and an error
    /// when the server's certificate is no longer the one trusted: that is no network
    /// trouble to wait out.
    async fn wait_and_reconnect(
        &self,
        (mut reason, hello): (String, &[String]),
        (place, attempts): (&mut Place, &mut u32),
        (input, mut leave): (&mut UnboundedReceiver<Input>, Pin<&mut impl Future<Output = ()>>),
        typed: &mut Vec<String>,
        emit: &mut impl FnMut(CoreEvent),
    ) -> Result<Option<Stream>, ClientError> {
        loop {
            *attempts = attempts.saturating_add(1);
            let attempt = *attempts;
            let retry_in = backoff(attempt, jitter());
            emit(CoreEvent::Lost { reason: reason.clone(), retry_in, attempt });
            let sleep = tokio::time::sleep(retry_in);
            let waited = meanwhile(sleep, input, leave.as_mut(), typed, emit);
            if waited.await.is_none() {
                return Ok(None);
            }
            // Not interactive: the line editor owns the terminal now, so a certificate
            // to decide on or a password to type ends the session instead.
            let mut password = self.password.clone();
            let known = place.fingerprint;
            let open = async |at: &Endpoint| {
                connect::open(at, &self.args, (hello, false), &mut password, known).await
            };
            let open = self.servers.open_any(Some(&place.endpoint), open);
            // The user may leave during the attempt too: it can take up to
            // connect::SETUP_TIMEOUT against a server that hangs (per address).
            match meanwhile(open, input, leave.as_mut(), typed, emit).await {
                None => return Ok(None),
                Some(Ok(reached)) => {
                    let (stream, reached_place) = Place::of(reached, known);
                    *place = reached_place;
                    return Ok(Some(stream));
                }
                Some(Err(e @ (ClientError::Trust(_) | ClientError::Identity(_)))) => return Err(e),
                Some(Err(e)) => reason = reason::why(&e),
            }
        }
    }
}

/// Runs `task` while there is no connection, keeping the lines the user enters
/// meanwhile in `typed`; `None` when the user leaves first (a `/quit`, the end of input
/// or a signal).
async fn meanwhile<T>(
    task: impl Future<Output = T>,
    input: &mut UnboundedReceiver<Input>,
    mut leave: Pin<&mut impl Future<Output = ()>>,
    typed: &mut Vec<String>,
    emit: &mut impl FnMut(CoreEvent),
) -> Option<T> {
    tokio::pin!(task);
    loop {
        tokio::select! {
            done = &mut task => return Some(done),
            () = leave.as_mut() => return None,
            next = input.recv() => match next {
                Some(Input::Line(line)) if !quits(&line) => {
                    typed.push(line);
                    // Else the line just leaves the screen, looking sent.
                    emit(CoreEvent::Queued { waiting: typed.len() });
                }
                _ => return None,
            },
        }
    }
}

/// `cause`, with the count of `lines` typed while offline that it left unsent, if any.
fn with_unsent(cause: ClientError, lines: usize) -> ClientError {
    match lines {
        0 => cause,
        lines => ClientError::Unsent { lines, cause: Box::new(cause) },
    }
}

/// Whether what the user entered (a line, or a pasted block) contains a `/quit`.
fn quits(input: &str) -> bool {
    input.lines().any(|l| matches!(Request::parse(l.trim_end()), Ok(Request::Quit(_))))
}

/// How long to wait before attempt `attempt` (1 for the first): [`FIRST_RETRY`]
/// doubling up to [`MAX_RETRY`], times a factor between 0.8 and 1.2 from `jitter`
/// (in `0.0..1.0`), so clients that lost the same server do not all come back at once.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    let base = FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY);
    base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

/// A number in `0.0..1.0` from the OS's randomness (0.5 if it has none).
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute_with_jitter() {
        let mid: Vec<u64> = (1..=8).map(|a| backoff(a, 0.5).as_millis() as u64).collect();
        assert_eq!(mid, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
        assert_eq!(backoff(1, 0.0), Duration::from_millis(800));
        assert_eq!(backoff(1, 1.0), Duration::from_millis(1200));
        assert_eq!(backoff(u32::MAX, 1.0), Duration::from_secs(72));
        let j = jitter();
        assert!((0.0..1.0).contains(&j), "{j}");
    }

    fn line(text: &str) -> Line<'_> {
        Line::Text(text.into())
    }

    #[test]
    fn the_tracker_keeps_what_a_resume_needs_and_sanitises_once() {
        let mut t = Tracker::default();
        assert_eq!(
            t.on_line(line("!!! server full"), false, &mut Vec::new()),
            CoreEvent::Raw(Clean::text("!!! server full"))
        );
        assert_eq!(t.refusal.as_deref().map(String::as_str), Some("!!! server full"));
        let mut t = Tracker::default();
        let welcome = r#"{"ts":"2026-01-01T00:00:00Z","type":"welcome","server":"s","version":"1","nick":"bob","online":1,"users":["bob"],"last_id":7,"resume":"00ff"}"#;
        assert!(matches!(
            t.on_line(line(welcome), false, &mut Vec::new()),
            CoreEvent::Welcomed { again: false, .. }
        ));
        let public = r#"{"id":9,"ts":"2026-01-01T00:00:00Z","type":"public","from":"a\u001b[31m","text":"hi\u0007"}"#;
        match t.on_line(line(public), false, &mut Vec::new()) {
            CoreEvent::Event(event) => match &event.kind {
                EventKind::Public { from, text, .. } => assert_eq!((&**from, &**text), ("a", "hi")),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        let rename =
            r#"{"id":10,"ts":"2026-01-01T00:00:00Z","type":"nick","old":"bob","new":"rob"}"#;
        t.on_line(line(rename), false, &mut Vec::new());
        assert_eq!(t.resume_hello(Some("bob"), false), ["/hello json rob resume 00ff 10"]);
        // A server that restarted without its log numbers from 1 again: its welcome says
        // where it is, and the next resume counts from there.
        let restarted = welcome.replace(r#""last_id":7"#, r#""last_id":2"#);
        t.on_line(line(&restarted), true, &mut Vec::new());
        assert_eq!(t.resume_hello(None, false), ["/hello json bob resume 00ff 2"]);
        // The room it is in goes with the resume, for a server that lost the session.
        let room =
            r##"{"ts":"2026-01-01T00:00:00Z","type":"room","room":"#dev","topic":"","users":[]}"##;
        t.on_line(line(room), false, &mut Vec::new());
        assert_eq!(t.resume_hello(None, false), ["/hello json bob resume 00ff 2 #dev"]);
        assert_eq!(t.resume_hello(None, true), ["/hello json bob resume 00ff 2 #dev replay=0"]);
        let kick = r#"{"ts":"2026-01-01T00:00:00Z","type":"error","code":"flood","message":"x"}"#;
        t.on_line(line(kick), false, &mut Vec::new());
        assert!(t.kicked && t.refusal.is_none());
        assert_eq!(
            Tracker::default().resume_hello(Some("two words"), false),
            ["/hello json", "/nick two words"]
        );
        assert_eq!(
            Tracker::default().resume_hello(Some("al"), false),
            ["/hello json al resume - 0"]
        );
    }

    #[test]
    fn a_reconnection_in_another_room_rejoins_before_the_lines_typed_offline() {
        let welcome = |room: &str| {
            format!(
                r#"{{"ts":"2026-01-01T00:00:00Z","type":"welcome","server":"s","version":"1","nick":"rob","online":1,"users":[],"room":"{room}"}}"#
            )
        };
        let room =
            r##"{"ts":"2026-01-01T00:00:00Z","type":"room","room":"#dev","topic":"","users":[]}"##;
        let mut t = Tracker::default();
        let mut send = Vec::new();
        t.on_line(line(&welcome("#lobby")), false, &mut send);
        t.on_line(line(room), false, &mut send);
        assert!(send.is_empty());
        // Resumed into the same room: only the typed lines.
        t.pending.push("typed 1".into());
        let event = t.on_line(line(&welcome("#dev")), true, &mut send);
        assert!(matches!(event, CoreEvent::Welcomed { rejoin: None, .. }), "{event:?}");
        assert_eq!(send, ["typed 1"]);
        // The server restarted: back to #dev first.
        send.clear();
        t.pending.push("typed 2".into());
        let event = t.on_line(line(&welcome("#lobby")), true, &mut send);
        assert!(matches!(event, CoreEvent::Welcomed { rejoin: Some(ref r), .. } if r == "#dev"));
        assert_eq!(send, ["/join #dev", "typed 2"]);
        assert!(t.pending.is_empty());
    }

    /// A nick a welcome did not give back is asked for again, once, when its holder
    /// leaves or renames; not after the user picked another one, nor when it was
    /// refused as registered.
    #[test]
    fn a_nick_held_by_someone_else_is_taken_back_when_it_frees() {
        let welcome = |nick: &str| {
            format!(
                r#"{{"ts":"2026-01-01T00:00:00Z","type":"welcome","server":"s","version":"1","nick":"{nick}","online":2,"users":[]}}"#
            )
        };
        let leave = |nick: &str| {
            format!(
                r##"{{"ts":"2026-01-01T00:00:00Z","type":"leave","nick":"{nick}","reason":"quit","online":1,"room":"#lobby","here":1}}"##
            )
        };
        let rename = |old: &str, new: &str| {
            format!(
                r##"{{"ts":"2026-01-01T00:00:00Z","type":"nick","old":"{old}","new":"{new}","room":"#lobby"}}"##
            )
        };
        let mut t = Tracker { reclaim: Some("Ann".into()), ..Tracker::default() };
        let mut send = Vec::new();
        t.on_line(line(&welcome("guest1")), false, &mut send);
        t.on_line(line(&leave("bob")), false, &mut send);
        // An old leave in a catch-up is no news: Ann is held by someone now.
        let old = leave("Ann").replace(r#""type""#, r#""history":true,"type""#);
        t.on_line(line(&old), false, &mut send);
        assert!(send.is_empty());
        t.on_line(line(&rename("ANN", "annie")), false, &mut send);
        assert_eq!(send, ["/nick Ann"]);
        t.on_line(line(&leave("ann")), false, &mut send);
        assert_eq!(send, ["/nick Ann"], "asked once");

        // After a reconnection that lost the nick: the same; but a /nick of the user's
        // own ends the wish.
        let mut t = Tracker::default();
        t.on_line(line(&welcome("ann")), false, &mut send);
        t.on_line(line(&welcome("guest7")), true, &mut send);
        assert_eq!(t.reclaim.as_deref(), Some("ann"));
        t.on_line(line(&rename("guest7", "annette")), false, &mut send);
        send.clear();
        t.on_line(line(&leave("ann")), false, &mut send);
        assert!(send.is_empty(), "{send:?}");
        // Given back at the welcome: nothing to wish for.
        let mut t = Tracker { reclaim: Some("zoe".into()), ..Tracker::default() };
        t.on_line(line(&welcome("Zoe")), false, &mut send);
        assert_eq!(t.reclaim, None);
        // Refused because it is registered: its holder leaving frees nothing.
        let mut t = Tracker { reclaim: Some("ann".into()), ..Tracker::default() };
        send.clear();
        t.on_line(line(&welcome("guest2")), false, &mut send);
        let registered = r#"{"ts":"2026-01-01T00:00:00Z","type":"error","code":"nick_registered","message":"the nick ann is registered"}"#;
        t.on_line(line(registered), false, &mut send);
        t.on_line(line(&leave("ann")), false, &mut send);
        assert!(send.is_empty(), "{send:?}");
    }

    #[test]
    fn a_quit_anywhere_in_a_paste_counts() {
        assert!(quits("/quit"));
        assert!(quits("hello\n/QUIT bye"));
        assert!(!quits("hello\n//quit"));
    }
}
