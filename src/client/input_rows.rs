//! The input line drawn so that resizing the window never erases a received line.
//!
//! rustyline clears the rows its layout says the prompt and line took (counted up from
//! where it thinks the cursor is) before it redraws them, when a line is printed above
//! and after a resize. Terminals that re-wrap their rows on a resize (tmux, VTE, kitty,
//! Alacritty) join rows that the terminal wrapped itself when the window widens, so a
//! line wrapped over 3 rows at 40 columns is 1 row at 100, and clearing "3 rows" erased
//! the 2 received lines above it, from the screen and the scrollback. The terminal
//! re-wraps at once, but tells the program later (SIGWINCH; tmux holds it up to a
//! quarter of a second), so no recount after the resize can be in time: a line printed
//! meanwhile is laid out at the old width.
//!
//! So the prompt and line are drawn with a hard row break (`\r\n`) wherever rustyline
//! counts a new row (through the highlighter, which writes what rustyline draws): rows
//! ended so are never joined, so widening leaves them as many as rustyline counts, and
//! narrowing only splits them into more, which rustyline then clears too few of: a
//! stale piece of the input line can stay above it, but nothing received is lost. (As
//! fish and ble.sh found, a program cannot follow a terminal's re-wrapping exactly;
//! it can only choose which way to be wrong.)
//!
//! The breaks must fall where rustyline's layout puts rows, which is at the width it last
//! read: when it starts a line and when it handles SIGWINCH, just before its redraw,
//! which calls the hint hook ([`InputRows::before_redraw`]). Between a resize and its
//! signal the terminal's width can be ahead of rustyline's: the breaks use the smaller
//! of the width at the last hook and the width now, so they are never wider than
//! rustyline's rows, only, for an instant, narrower (more rows, never fewer).

use std::borrow::Cow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};

use super::screen::{Geometry, terminal_cols as width};

/// The line editor's view of the terminal's width, and the row breaks drawn with it.
pub struct InputRows {
    /// The width at the last redraw hook or line start (0: none yet).
    hooked: AtomicU16,
    /// The last drawing: its width, and the column the prompt ended at.
    drawn: Mutex<(u16, u16)>,
}

impl InputRows {
    pub fn new() -> InputRows {
        InputRows { hooked: AtomicU16::new(0), drawn: Mutex::new((0, 0)) }
    }

    /// A new line is about to be edited: rustyline reads the width as it starts.
    pub fn start(&self) {
        self.hooked.store(width(), Ordering::Relaxed);
    }

    /// rustyline is about to redraw the line (after an edit, or after a SIGWINCH, at the
    /// width it has just read).
    pub fn before_redraw(&self) {
        self.hooked.store(width(), Ordering::Relaxed);
    }

    /// The prompt as drawn, with its row breaks; remembers where it ends for
    /// [`InputRows::line`], which rustyline draws right after it.
    pub fn prompt<'p>(&self, prompt: &'p str) -> Cow<'p, str> {
        let hooked = self.hooked.load(Ordering::Relaxed);
        let cols = match hooked {
            0 => width(),
            hooked => hooked.min(width()),
        };
        let (shown, end) = Geometry::at(cols).hard_wrap(prompt, 0);
        *self.drawn.lock().unwrap_or_else(|e| e.into_inner()) = (cols, end);
        if shown.len() == prompt.len() { Cow::Borrowed(prompt) } else { Cow::Owned(shown) }
    }

    /// The line as drawn after the prompt drawn last, with its row breaks.
    pub fn line<'l>(&self, line: &'l str) -> Cow<'l, str> {
        let (cols, start) = *self.drawn.lock().unwrap_or_else(|e| e.into_inner());
        if cols == 0 {
            return Cow::Borrowed(line);
        }
        let (shown, _) = Geometry::at(cols).hard_wrap(line, start);
        if shown.len() == line.len() { Cow::Borrowed(line) } else { Cow::Owned(shown) }
    }

    /// The terminal as the last drawing was laid out on (the width now before any).
    pub fn drawn(&self) -> Geometry {
        let (cols, _) = *self.drawn.lock().unwrap_or_else(|e| e.into_inner());
        Geometry::at(if cols == 0 { width() } else { cols })
    }
}
