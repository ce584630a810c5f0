//! What the client shows of each event from its connection core: rendered, filtered by
//! the user's own settings (`/ignore`, `/bell`), with the live nick list kept current,
//! and handed to the printer thread. The core never touches the screen, and this
//! never touches the socket.

use std::cell::RefCell;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use super::catchup;
use super::clean::Clean;
use super::complete::Roster;
use super::core::CoreEvent;
use super::local::LocalState;
use super::render::{Rendered, Renderer};
use super::status_line::{Outage, Print};
use crate::protocol::{Event, EventKind};

/// The UI side of one `tchat join`.
pub struct View<'a> {
    pub renderer: &'a Renderer,
    /// Shared with the line editor's completion and prompt.
    pub roster: &'a Arc<Mutex<Roster>>,
    /// Ignored nicks and the bell setting; the input filter changes them.
    pub local: &'a RefCell<LocalState>,
    /// Tells the line editor that a welcome, a `/nick` or an error came, so the
    /// prompt it waits to redraw is right.
    pub acks: std_mpsc::Sender<()>,
    /// The printer thread's queue.
    pub out: &'a std_mpsc::Sender<Print>,
    /// Whether a terminal is there to ring.
    pub bell: bool,
    /// The events of a resume's catch-up, held until the last has come, so that the
    /// `--- N messages while you were away ---` marker counts only what the user missed.
    pub away: RefCell<Option<Away>>,
    /// The nick asked for with `--nick`: a first welcome under another one (the nick
    /// was taken) says so at once, since the server's reason only comes after the
    /// message of the day and the replayed history.
    pub wanted_nick: Option<String>,
    /// The local date of the last live line shown: a live line of a later date is
    /// preceded by a day-change line, as irssi and weechat do.
    pub day: RefCell<Option<jiff::civil::Date>>,
    /// The connection being down, for the reconnecting notice.
    pub outage: RefCell<Outage>,
}

/// A catch-up being received: after the server's `resumed` event come `left` more
/// events marked as history.
#[derive(Debug, Default)]
pub struct Away {
    left: usize,
    /// Ids after the user's last one that the server no longer keeps.
    unavailable: u64,
    /// The events to show under the marker: the user's own join, leave and moves are
    /// left out (the user knows where they are; they are not news).
    events: Vec<Clean<Event>>,
}

impl View<'_> {
    /// Shows one event from the core, unless the user hid it. A resume's catch-up is held
    /// back and shown as one block (see [`Away`]).
    pub fn show(&self, event: CoreEvent) {
        let event = match event {
            CoreEvent::Event(event) => match self.catch_up(event) {
                Some(event) => CoreEvent::Event(event),
                None => return,
            },
            other => other,
        };
        self.flush_away();
        if let CoreEvent::Event(event) = &event
            && !event.history
        {
            self.date_live_line(event.ts);
        }
        let rendered = match event {
            CoreEvent::Welcomed { event, again, rejoin, server } => {
                self.welcomed(&event, again, (rejoin.as_deref(), server.as_deref()))
            }
            CoreEvent::Event(event) => match self.event(&event) {
                Some(rendered) => rendered,
                None => return,
            },
            CoreEvent::Raw(text) => {
                self.renderer.raw_line(&Clean::text(super::reason::for_tchat_join(&text)))
            }
            CoreEvent::TooLong => self
                .renderer
                .raw_line(&Clean::text("!!! (an over-long line from the server was dropped)")),
            CoreEvent::Lost { reason, retry_in, attempt } => {
                let now = jiff::Timestamp::now();
                let clock = |ts: jiff::Timestamp| self.renderer.clock(ts);
                let lost = (reason.as_str(), retry_in, attempt);
                let (note, news) = self.outage.borrow_mut().lost(lost, now, clock);
                let text = self.renderer.notice(now, &note);
                let _ = self.out.send(Print::Status { text, news });
                return;
            }
            CoreEvent::Queued { waiting } => {
                let lines = if waiting == 1 { "1 line" } else { &format!("{waiting} lines") };
                let note = format!("Not connected: {lines} waiting, sent once reconnected.");
                Rendered { text: self.renderer.notice(jiff::Timestamp::now(), &note), alert: false }
            }
        };
        self.print(rendered);
    }

    /// Shows the day-change line when a live line at `ts` falls on a later local date
    /// than the last one shown.
    fn date_live_line(&self, ts: jiff::Timestamp) {
        let date = ts.to_zoned_datetime(self.renderer.tz.clone()).date();
        let before = self.day.borrow_mut().replace(date);
        match before {
            Some(before) if date > before => {
                let text = self.renderer.day_changed(date);
                self.print(Rendered { text, alert: false });
            }
            // A line stamped earlier (clocks differ) does not move the day back.
            Some(before) if date < before => *self.day.borrow_mut() = Some(before),
            _ => {}
        }
    }

    fn print(&self, rendered: Rendered) {
        let mut text = rendered.text;
        if rendered.alert && self.bell {
            text.push('\u{7}');
        }
        text.push('\n');
        let _ = self.out.send(Print::Line(text));
    }

    /// Takes `event` into the catch-up being received, or starts one on the `resumed`
    /// event; gives it back when it is not part of one.
    fn catch_up(&self, event: Clean<Event>) -> Option<Clean<Event>> {
        let mut away = self.away.borrow_mut();
        match (&event.kind, away.as_mut()) {
            (EventKind::Resumed { missed, unavailable, .. }, _) => {
                *away = Some(Away { left: *missed, unavailable: *unavailable, events: Vec::new() });
            }
            (kind, Some(block)) if event.history && block.left > 0 => {
                block.left -= 1;
                let me = self.roster().me().to_owned();
                let own = match kind {
                    EventKind::Join { nick, .. }
                    | EventKind::Leave { nick, .. }
                    | EventKind::Part { nick, .. } => *nick == me,
                    _ => false,
                };
                if !own {
                    block.events.push(event);
                }
            }
            _ => return Some(event),
        }
        if away.as_ref().is_some_and(|block| block.left == 0) {
            drop(away);
            self.flush_away();
        }
        None
    }

    /// Shows the catch-up held so far, if any: the marker (unless nothing shown was
    /// missed), then what was said, then the comings and goings as one summary that
    /// ends in who is here now (see [`catchup`]). What the user ignores is neither shown
    /// nor counted.
    fn flush_away(&self) {
        let Some(block) = self.away.borrow_mut().take() else { return };
        let (moves, rest): (Vec<Clean<Event>>, Vec<Clean<Event>>) =
            block.events.into_iter().partition(|e| catchup::is_membership(&e.kind));
        let me = self.roster().me().to_owned();
        let shown: Vec<Clean<Event>> =
            rest.into_iter().filter(|e| !self.local.borrow().hides(&e.kind, &me)).collect();
        if shown.is_empty() && moves.is_empty() && block.unavailable == 0 {
            return;
        }
        let said = shown.iter().filter(|e| e.kind.is_said()).count();
        let others = moves.len();
        let marker = self.renderer.away_marker(said, others, block.unavailable);
        self.print(Rendered { text: marker, alert: false });
        for event in shown {
            if let Some(rendered) = self.event(&event) {
                self.print(rendered);
            }
        }
        if let Some(last) = moves.last() {
            let kinds: Vec<EventKind> = moves.iter().map(|e| e.kind.clone()).collect();
            let summary = catchup::summary(&kinds, self.roster().here());
            let kind = EventKind::Info { message: summary };
            let text =
                self.renderer.event(&Clean::event(Event { kind, ..Event::clone(last) }), &me);
            self.print(Rendered { text: text.text, alert: false });
        }
    }

    /// Shows the answer to one of the client's own commands (`/ignore`, `/bell`).
    pub fn local(&self, kind: EventKind) {
        let me = self.roster().me().to_owned();
        let text = self.renderer.event(&Clean::event(Event::now(kind)), &me).text + "\n";
        let _ = self.out.send(Print::Line(text));
    }

    /// The welcome; after a reconnection, a notice with the room the core rejoins
    /// (`rejoin`) and the server that answered (`server`, when the chat has several).
    fn welcomed(
        &self,
        event: &Clean<Event>,
        again: bool,
        (rejoin, server): (Option<&str>, Option<&str>),
    ) -> Rendered {
        let mut roster = self.roster();
        // The nick the user meant: the one asked for, or the one in use before a loss.
        let wanted = if again { Some(roster.me()) } else { self.wanted_nick.as_deref() };
        let refused = match (&event.kind, wanted) {
            (EventKind::Welcome { nick, .. }, Some(wanted))
                if !wanted.is_empty() && crate::nick::key(wanted) != crate::nick::key(nick) =>
            {
                let line = format!(
                    "!!! You are {nick}, not {wanted}: the server refused that nick (its \
                     reason follows). tchat asks for {wanted} again when whoever holds it \
                     leaves, unless it is registered; /nick NAME picks another."
                );
                Some(self.renderer.raw_line(&Clean::text(&line)).text)
            }
            _ => None,
        };
        let mut rendered = match &event.kind {
            EventKind::Welcome { nick, online, room, .. } if again => {
                self.outage.borrow_mut().over();
                let to = server.map(|s| format!(" to {s}")).unwrap_or_default();
                let mut note = format!("Reconnected{to} as {nick}; {online} online.");
                if let Some(old) = rejoin {
                    note = format!(
                        "{note} The server had forgotten you and put you in {room}; rejoining \
                         {old}, where lines typed while offline go."
                    );
                }
                Rendered { text: self.renderer.notice(event.ts, &note), alert: false }
            }
            _ => self.renderer.event(event, roster.me()),
        };
        if let Some(refused) = refused {
            rendered.text = format!("{}\n{refused}", rendered.text);
        }
        if roster.apply(event) {
            let _ = self.acks.send(());
        }
        rendered
    }

    /// The rendering of `event`, or `None` when the user ignores its sender (the nick
    /// list still follows it).
    fn event(&self, event: &Clean<Event>) -> Option<Rendered> {
        let mut roster = self.roster();
        let local = self.local.borrow();
        if local.hides(&event.kind, roster.me()) {
            roster.apply(event);
            return None;
        }
        let mut rendered = self.renderer.event(event, roster.me());
        // The renderer never alerts for history; the bell setting decides the rest.
        rendered.alert = !event.history && local.rings(&event.kind, roster.me(), rendered.alert);
        let me_changed = roster.apply(event);
        drop(roster);
        if me_changed || matches!(event.kind, EventKind::Error { .. }) {
            let _ = self.acks.send(());
        }
        Some(rendered)
    }

    fn roster(&self) -> std::sync::MutexGuard<'_, Roster> {
        self.roster.lock().unwrap_or_else(|e| e.into_inner())
    }
}
