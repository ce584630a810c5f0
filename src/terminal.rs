//! The terminal mode from before a line editor started, put back when the program ends
//! while the editor is still waiting for a key: rustyline only restores it when
//! `readline` returns; and the line editor as both editors set it up (history, Tab
//! completion, Ctrl-C, the prompt). Shared by the client and the server's interactive
//! console.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::path::Path;

use owo_colors::{OwoColorize, Style};
use rustyline::Context;
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Editor, Event, EventContext, EventHandler,
    KeyEvent, Movement, RepeatCount,
};

/// Most lines a line editor keeps in its history file.
pub const HISTORY_SIZE: usize = 1000;

/// A line editor with completion from `C` and a file history.
pub type LineReader<C> = Editor<EditorHelper<C>, FileHistory>;

/// A line editor as both the client and the console use it: up to [`HISTORY_SIZE`]
/// lines of history, a line that repeats the previous one or starts with a space left
/// out, lines added only by [`remember`] (the caller decides which); Tab completing
/// from `helper` in `completion` style; Ctrl-C as [`CtrlC`]. The history is read from
/// `history` when given; a missing or unreadable file only costs the old lines.
///
/// Errors: rustyline's, when the terminal cannot be set up for editing.
pub fn line_reader<C: Candidates>(
    helper: EditorHelper<C>,
    completion: CompletionType,
    history: Option<&Path>,
) -> rustyline::Result<LineReader<C>> {
    let config = rustyline::Config::builder()
        .max_history_size(HISTORY_SIZE)?
        .history_ignore_dups(true)?
        .history_ignore_space(true)
        .auto_add_history(false)
        .completion_type(completion)
        .build();
    let mut editor = Editor::with_config(config)?;
    editor.set_helper(Some(helper));
    editor.bind_sequence(KeyEvent::ctrl('C'), EventHandler::Conditional(Box::new(CtrlC)));
    if let Some(path) = history {
        let _ = editor.load_history(path);
    }
    Ok(editor)
}

/// Adds `line` to the editor's history and, when it was added, appends it to the file
/// `history` at once, so the history survives a process that ends abruptly (the server
/// dropping the connection, the console's terminal closing). Write errors only cost
/// the history.
pub fn remember<C: Candidates>(editor: &mut LineReader<C>, line: &str, history: Option<&Path>) {
    if let Ok(true) = editor.add_history_entry(line)
        && let Some(path) = history
    {
        let _ = editor.append_history(path);
    }
}

/// Ctrl-C: clears a partly typed line; on an empty line it is the usual interrupt, which
/// the client takes as "leave" and the console as "stop the server".
pub struct CtrlC;

impl ConditionalEventHandler for CtrlC {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        if ctx.line().is_empty() { None } else { Some(Cmd::Kill(Movement::WholeLine)) }
    }
}

/// Where a line editor's completions come from.
pub trait Candidates {
    /// The start of the word before `pos` in `line` and what may replace it, as
    /// rustyline's `Completer::complete` answers.
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>);

    /// The prompt to draw in place of `drawn`, the one the line being edited started
    /// with: it may have gone stale meanwhile (the client's nick changed). It must take
    /// as many columns as `drawn`, which rustyline measured once for the whole line.
    fn prompt_now<'a>(&self, drawn: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(drawn)
    }

    /// Called before rustyline redraws the edited line: for most edits, and after a
    /// resize, once it has read the new width.
    fn before_redraw(&self) {}

    /// The prompt (as [`Candidates::prompt_now`] gave it, before any color) as it is to
    /// be written; it must take the same rows and columns.
    fn shown_prompt<'p>(&self, prompt: &'p str) -> Cow<'p, str> {
        Cow::Borrowed(prompt)
    }

    /// The edited line as it is to be written after the prompt; it must take the same
    /// rows and columns.
    fn shown_line<'l>(&self, line: &'l str) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

/// rustyline's hooks for both line editors: completion from `C` and a bold prompt
/// ([`bold_prompt`]); no hints, no validation.
pub struct EditorHelper<C> {
    pub candidates: C,
    /// Whether the prompt may be colored.
    pub color: bool,
}

impl<C: Candidates> Completer for EditorHelper<C> {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.candidates.candidates(line, pos))
    }
}

impl<C: Candidates> Hinter for EditorHelper<C> {
    type Hint = String;

    /// No hints: the hook only tells `C` a redraw is coming (see
    /// [`Candidates::before_redraw`]).
    fn hint(&self, _line: &str, _pos: usize, _ctx: &rustyline::Context<'_>) -> Option<String> {
        self.candidates.before_redraw();
        None
    }
}

impl<C: Candidates> Highlighter for EditorHelper<C> {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        self.candidates.shown_line(line)
    }

    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        default: bool,
    ) -> Cow<'b, str> {
        let now = if default { self.candidates.prompt_now(prompt) } else { Cow::Borrowed(prompt) };
        let shown = match now {
            Cow::Borrowed(now) => self.candidates.shown_prompt(now),
            Cow::Owned(now) => Cow::Owned(self.candidates.shown_prompt(&now).into_owned()),
        };
        match shown {
            Cow::Borrowed(shown) => bold_prompt(shown, self.color, default),
            Cow::Owned(shown) => Cow::Owned(bold_prompt(&shown, self.color, default).into_owned()),
        }
    }
}

impl<C> Validator for EditorHelper<C> {}

impl<C: Candidates> rustyline::Helper for EditorHelper<C> {}

/// The line editor's prompt as drawn: bold when colors are on. `default` is rustyline's
/// word that this is the prompt as given, not one it made (the Ctrl-R search prompt).
pub fn bold_prompt(prompt: &str, color: bool, default: bool) -> Cow<'_, str> {
    if color && default {
        Cow::Owned(prompt.style(Style::new().bold()).to_string())
    } else {
        Cow::Borrowed(prompt)
    }
}

/// Whether standard input and output are a terminal and the process is in that
/// terminal's foreground process group, so it may change the terminal's mode: a
/// background job (`tchat serve &` in a shell with job control) that does is stopped
/// with SIGTTOU (POSIX, "General Terminal Interface": tcsetattr from a background
/// process group).
pub fn in_foreground() -> bool {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || !std::io::stdout().is_terminal() {
        return false;
    }
    #[cfg(unix)]
    {
        use nix::unistd::{getpgrp, tcgetpgrp};
        // No foreground group to read (no controlling terminal): not ours to touch.
        tcgetpgrp(stdin).is_ok_and(|group| group == getpgrp())
    }
    #[cfg(not(unix))]
    true
}

pub struct TerminalMode {
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
}

impl TerminalMode {
    /// Saves the mode of standard input; call it before the editor first reads.
    pub fn save() -> TerminalMode {
        #[cfg(unix)]
        {
            // On failure (not a terminal after all) there is nothing to restore.
            let saved = nix::sys::termios::tcgetattr(std::io::stdin()).ok();
            TerminalMode { saved }
        }
        #[cfg(not(unix))]
        TerminalMode {}
    }

    /// Restores the saved mode and clears the abandoned prompt line.
    pub fn restore(self) {
        #[cfg(unix)]
        if let Some(termios) = &self.saved {
            use nix::sys::termios::{SetArg, tcsetattr};
            // Best effort: the terminal may be gone (SIGHUP), and the process is ending.
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, termios);
        }
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(b"\r\x1b[K").and_then(|()| stdout.flush());
    }
}
