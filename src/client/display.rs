//! What the client shows of each event from its connection core: rendered, filtered by
//! the user's own settings (`/ignore`, `/bell`), with the live nick list kept current,
//! and handed to the printer thread. The core never touches the screen, and this
//! never touches the socket.

use std::cell::RefCell;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use super::complete::Roster;
use super::core::CoreEvent;
use super::local::LocalState;
use super::render::{Rendered, Renderer};
use crate::protocol::{Event, EventKind};

/// The UI side of one `tchat join`.
pub struct Display<'a> {
    pub renderer: &'a Renderer,
    /// Shared with the line editor's completion and prompt.
    pub roster: &'a Arc<Mutex<Roster>>,
    /// Ignored nicks and the bell setting; the input filter changes them.
    pub local: &'a RefCell<LocalState>,
    /// Tells the line editor that a welcome, a `/nick` or an error came, so the
    /// prompt it waits to redraw is right.
    pub acks: std_mpsc::Sender<()>,
    /// The printer thread's queue: text with its line end.
    pub out: &'a std_mpsc::Sender<String>,
    /// Whether a terminal is there to ring.
    pub bell: bool,
}

impl Display<'_> {
    /// Shows one event from the core, unless the user hid it.
    pub fn show(&self, event: CoreEvent) {
        let rendered = match event {
            CoreEvent::Welcomed { event, again, rejoin } => {
                self.welcomed(&event, again, rejoin.as_deref())
            }
            CoreEvent::Event(event) => match self.event(&event) {
                Some(rendered) => rendered,
                None => return,
            },
            CoreEvent::Raw(text) => self.renderer.raw_line(&text),
            CoreEvent::TooLong => {
                self.renderer.raw_line("!!! (an over-long line from the server was dropped)")
            }
            CoreEvent::Lost { reason, retry_in, attempt } => {
                let note = format!(
                    "Connection lost ({reason}); reconnecting in {:.1} s (attempt {attempt}; \
                     /quit or Ctrl-C to leave).",
                    retry_in.as_secs_f64()
                );
                Rendered { text: self.renderer.notice(&note), alert: false }
            }
        };
        let mut text = rendered.text;
        if rendered.alert && self.bell {
            text.push('\u{7}');
        }
        text.push('\n');
        let _ = self.out.send(text);
    }

    /// Shows the answer to one of the client's own commands (`/ignore`, `/bell`).
    pub fn local(&self, kind: EventKind) {
        let me = self.roster().me().to_owned();
        let _ = self.out.send(self.renderer.event(&Event::now(kind), &me).text + "\n");
    }

    fn welcomed(&self, event: &Event, again: bool, rejoin: Option<&str>) -> Rendered {
        let mut roster = self.roster();
        let rendered = match &event.kind {
            EventKind::Welcome { nick, online, room, .. } if again => {
                let mut note = format!("Reconnected as {nick}; {online} online.");
                if let Some(old) = rejoin {
                    note = format!(
                        "{note} The server had forgotten you and put you in {room}; rejoining \
                         {old}, where lines typed while offline go."
                    );
                }
                Rendered { text: self.renderer.notice(&note), alert: false }
            }
            _ => self.renderer.event(event, roster.me()),
        };
        if roster.apply(&event.kind) {
            let _ = self.acks.send(());
        }
        rendered
    }

    /// The rendering of `event`, or `None` when the user ignores its sender (the nick
    /// list still follows it).
    fn event(&self, event: &Event) -> Option<Rendered> {
        let mut roster = self.roster();
        let local = self.local.borrow();
        if local.hides(&event.kind, roster.me()) {
            roster.apply(&event.kind);
            return None;
        }
        let mut rendered = self.renderer.event(event, roster.me());
        // The renderer never alerts for history; the bell setting decides the rest.
        rendered.alert = !event.history && local.rings(&event.kind, roster.me(), rendered.alert);
        let me_changed = roster.apply(&event.kind);
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
