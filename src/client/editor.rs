//! The interactive line editor: rustyline on its own thread, with Tab completion from the
//! live [`Roster`], a prompt that shows the current nick, and the input history file.
//!
//! rustyline's `readline` blocks, so it runs on a plain thread and hands each line to the
//! network task through a channel; incoming events are printed above the prompt through
//! rustyline's `ExternalPrinter`, which redraws the partly typed line afterwards.

use std::borrow::Cow;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, TryLockError};
use std::time::{Duration, Instant};

use rustyline::config::Configurer;
use rustyline::error::ReadlineError;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Event, EventContext, EventHandler, KeyCode,
    KeyEvent, Modifiers, RepeatCount,
};
use tokio::sync::mpsc::UnboundedSender;

use super::Input;
use super::complete::{Roster, complete};
use super::input_rows::InputRows;
use crate::protocol::{Request, canonical};
use crate::terminal::{Candidates, EditorHelper, LineReader, line_reader};

/// The keys of `tchat join`'s line editor, in the form of the client's `/help` list;
/// the man pages' KEYS section is rendered from it too.
pub const CLIENT_KEYS: &[(&str, &str)] = &[
    ("Tab", "complete a command, a room after /join, or a nick (cycles through several matches)"),
    ("Up / Down", "previous / next line from the input history"),
    ("Ctrl-R", "search the input history"),
    ("Ctrl-C", "clear the line; on an empty line, leave"),
    ("Ctrl-D", "leave (on an empty line)"),
    ("Ctrl-L", "clear the screen"),
];

/// How long the prompt waits for the server to confirm a welcome or a `/nick` before it
/// is drawn anyway (with the nick it knows).
const NICK_WAIT: Duration = Duration::from_secs(3);

/// Commands whose argument is a password: the operator's (`/oper`), the server's
/// (`/pass`, which the server takes at any time and answers without reading it) and a
/// registered nick's (`/register PASSWORD`, `/identify`, `/password`).
const SECRET_COMMANDS: &[&str] =
    &["/oper", crate::auth::PASS, "/register", "/identify", "/password"];

/// Whether what the user entered carries a password in any of its lines (a paste is one
/// entry): such an entry must stay out of the history file. Commands are compared as the
/// server reads them: in any case, aliases included.
pub fn is_secret(entry: &str) -> bool {
    entry.lines().any(|line| {
        let word = line.split_whitespace().next().unwrap_or("");
        SECRET_COMMANDS.contains(&canonical(word).as_str())
    })
}

/// Where the input history lives: `history` in the [`crate::state_dir`].
pub fn history_path() -> Option<PathBuf> {
    crate::state_dir::file("history")
}

/// The client's hooks into the line editor: completions (nicks from the roster,
/// commands, rooms), the prompt as it is now, and the input line's rows.
pub struct RosterCandidates {
    /// Shared with the network side, which applies every join, leave and rename to it;
    /// a lock because `Completer::complete` only gets `&self`.
    roster: Arc<Mutex<Roster>>,
    /// Shared with the editing loop, which erases accepted lines by it.
    rows: Arc<InputRows>,
}

impl Candidates for RosterCandidates {
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let roster = self.roster.lock().unwrap_or_else(|e| e.into_inner());
        complete(line, pos, &roster)
    }

    fn before_redraw(&self) {
        self.rows.before_redraw();
    }

    fn shown_prompt<'p>(&self, prompt: &'p str) -> Cow<'p, str> {
        self.rows.prompt(prompt)
    }

    fn shown_line<'l>(&self, line: &'l str) -> Cow<'l, str> {
        self.rows.line(line)
    }

    /// The prompt with the nick and room as they are now: a reconnection under another
    /// nick, a rename by the server or a reclaimed nick shows at once (rustyline redraws
    /// the prompt with every line printed above it), fitted to the columns of the prompt
    /// the line started with; the next line gets it whole.
    fn prompt_now<'a>(&self, drawn: &'a str) -> Cow<'a, str> {
        let now = self.roster.lock().unwrap_or_else(|e| e.into_inner()).prompt();
        if now == drawn {
            return Cow::Borrowed(drawn);
        }
        let mode = rustyline::GraphemeClusterMode::from_env();
        Cow::Owned(super::screen::fit(&now, mode.width(drawn), mode))
    }
}

/// Lets the editor thread hold incoming lines back for a moment, while it erases the
/// line the user just sent (the server echoes it with a timestamp, so the raw input
/// would show twice). The printer prints while holding the lock, so the editor only ever
/// pauses between two prints and never moves the cursor under one.
#[derive(Default)]
pub struct PrintGate {
    /// True while the editor is erasing; the printer waits.
    paused: Mutex<bool>,
    resumed: Condvar,
}

impl PrintGate {
    /// Runs `print` once the gate is open, holding it closed to the editor meanwhile.
    pub fn print(&self, print: impl FnOnce()) {
        let mut paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        while *paused {
            paused = self.resumed.wait(paused).unwrap_or_else(|e| e.into_inner());
        }
        print();
    }

    /// Pauses the printer unless it is printing right now (then false: never wait for
    /// it, since its print may be waiting for the editor).
    fn try_pause(&self) -> bool {
        let mut paused = match self.paused.try_lock() {
            Ok(paused) => paused,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        *paused = true;
        true
    }

    fn resume(&self) {
        *self.paused.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.resumed.notify_all();
    }
}

/// How long Enter waits for the printer to finish the print it is in before the
/// accepted line is left on screen unerased (see [`Submit`]).
const PAUSE_PATIENCE: Duration = Duration::from_millis(200);

/// Enter: before the line is accepted, pause the printer so the accepted line can be
/// erased before anything else is printed under it.
struct Submit {
    gate: Arc<PrintGate>,
    /// Set when the gate was paused for this line: the editor must erase and resume.
    paused: Arc<AtomicBool>,
}

impl ConditionalEventHandler for Submit {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext) -> Option<Cmd> {
        // The printer holds the gate for as long as one print takes: usually a write, so
        // trying again for a moment catches the gap after it (a line arriving just as
        // Enter is pressed left the raw input on screen beside the server's echo). Only
        // a print waiting for this thread (rustyline's one-message channel, full) keeps
        // the gate past the deadline; then the line is left, never a deadlock.
        let deadline = Instant::now() + PAUSE_PATIENCE;
        loop {
            if self.gate.try_pause() {
                self.paused.store(true, Ordering::SeqCst);
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None // the usual Enter
    }
}

/// The editor, before its thread starts; creating it also yields the printer that the
/// network side uses to print above the prompt.
pub struct LineEditor {
    editor: LineReader<RosterCandidates>,
    history: Option<PathBuf>,
    /// Shared with the printer thread, see [`PrintGate`].
    gate: Arc<PrintGate>,
    /// Set by [`Submit`] when the printer was paused for the line being accepted.
    paused: Arc<AtomicBool>,
    /// How the line being edited is drawn (see [`InputRows`]).
    rows: Arc<InputRows>,
}

/// A failure to set up the terminal for editing.
pub type EditorError = ReadlineError;

impl LineEditor {
    pub fn new(
        roster: Arc<Mutex<Roster>>,
        gate: Arc<PrintGate>,
        color: bool,
        use_history: bool,
    ) -> Result<(LineEditor, impl rustyline::ExternalPrinter + Send + 'static), EditorError> {
        let history = if use_history { history_path() } else { None };
        let history = history.filter(|path| match crate::private_file::prepare(path) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("tchat: history disabled: {}: {e}", path.display());
                false
            }
        });
        let rows = Arc::new(InputRows::new());
        let candidates = RosterCandidates { roster, rows: rows.clone() };
        let helper = EditorHelper { candidates, color };
        let mut editor = line_reader(helper, CompletionType::Circular, history.as_deref())?;
        // Always through the helper, colors or not: it draws the prompt, which follows
        // the nick while a line is edited (see `RosterCandidates::prompt_now`); it adds
        // colors only when `color` says so.
        editor.set_color_mode(rustyline::ColorMode::Forced);
        let paused = Arc::new(AtomicBool::new(false));
        for enter in [KeyEvent(KeyCode::Enter, Modifiers::NONE), KeyEvent::ctrl('J')] {
            let submit = Submit { gate: gate.clone(), paused: paused.clone() };
            editor.bind_sequence(enter, EventHandler::Conditional(Box::new(submit)));
        }
        let printer = editor.create_external_printer()?;
        Ok((LineEditor { editor, history, gate, paused, rows }, printer))
    }

    /// The editing loop, run on its own thread until the user leaves or the network side
    /// goes away. `acks` is signalled by the network side when the welcome, a rename of
    /// the user, or an error arrives, so the next prompt shows the right nick.
    pub fn run(
        mut self,
        roster: Arc<Mutex<Roster>>,
        lines: UnboundedSender<Input>,
        acks: Receiver<()>,
    ) {
        let prompt =
            |roster: &Arc<Mutex<Roster>>| roster.lock().unwrap_or_else(|e| e.into_inner()).prompt();
        if roster.lock().unwrap_or_else(|e| e.into_inner()).me().is_empty()
            && acks.recv_timeout(NICK_WAIT) == Err(RecvTimeoutError::Disconnected)
        {
            return;
        }
        loop {
            let prompt = prompt(&roster);
            self.rows.start();
            let result = self.editor.readline(&prompt);
            if self.paused.swap(false, Ordering::SeqCst) {
                if let Ok(line) = &result {
                    self.erase_accepted(&prompt, line);
                }
                self.gate.resume();
            }
            let line = match result {
                Ok(line) => line,
                Err(ReadlineError::Interrupted | ReadlineError::Eof) => {
                    let _ = lines.send(Input::Quit);
                    return;
                }
                Err(e) => {
                    eprintln!("tchat: terminal error: {e}");
                    let _ = lines.send(Input::Quit);
                    return;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            self.remember(&line);
            if super::clear::is_clear(&line) {
                self.clear_screen();
                continue;
            }
            let request = Request::parse(&line);
            while acks.try_recv().is_ok() {}
            let quit = matches!(request, Ok(Request::Quit(_)));
            // The next prompt waits (a little) for the new nick or room.
            let renames =
                matches!(request, Ok(Request::Nick(_) | Request::Join(_) | Request::Part));
            if lines.send(Input::Line(line)).is_err() || quit {
                return;
            }
            if renames && acks.recv_timeout(NICK_WAIT) == Err(RecvTimeoutError::Disconnected) {
                return;
            }
        }
    }

    /// Erases the accepted input line: every row that prompt and line took, measured in
    /// display columns at the width they were last drawn at, with a hard break ending
    /// each row (see [`InputRows`]): a window widened since keeps them, one narrowed
    /// since splits them into more (a stale piece stays rather than a received line
    /// going). The cursor is at the start of the row below the line, where rustyline left
    /// it.
    fn erase_accepted(&mut self, prompt: &str, line: &str) {
        let rows = self.rows.drawn().rows(&format!("{prompt}{line}"));
        let mut stdout = std::io::stdout().lock();
        let erase = format!("\x1b[{rows}A\r\x1b[J");
        let _ = stdout.write_all(erase.as_bytes()).and_then(|()| stdout.flush());
    }

    /// `/clear`, between two lines (see [`super::clear`]).
    fn clear_screen(&mut self) {
        let Some((_, rows)) = self.editor.dimensions() else { return };
        let mut stdout = std::io::stdout().lock();
        let clear = super::clear::keeping_scrollback(rows);
        let _ = stdout.write_all(clear.as_bytes()).and_then(|()| stdout.flush());
    }

    fn remember(&mut self, line: &str) {
        // A password never goes to the history file.
        if is_secret(line) {
            return;
        }
        crate::terminal::remember(&mut self.editor, line, self.history.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_lines_stay_out_of_the_history() {
        assert!(is_secret("/oper hunter2"));
        assert!(is_secret("/register hunter2"));
        assert!(is_secret("/IDENTIFY alice hunter2"));
        assert!(is_secret("/password hunter2"));
        assert!(is_secret("  /OPER hunter2"));
        assert!(is_secret("/pass hunter2pass"));
        assert!(is_secret("/Pass hunter2pass"));
        assert!(is_secret("a pasted block\n/pass hunter2pass\nand more"));
        assert!(!is_secret("/passwords are words"));
        assert!(!is_secret("//pass as text"));
        assert!(!is_secret("/operator is a word"));
        assert!(!is_secret("talking about /oper"));
    }

    #[test]
    fn the_print_gate_holds_prints_back_but_never_waits_for_one() {
        use std::sync::mpsc::channel;
        let gate = Arc::new(PrintGate::default());
        assert!(gate.try_pause());
        let (printed_tx, printed) = channel();
        let printer = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.print(|| printed_tx.send(()).unwrap()))
        };
        // Paused: whatever the timing, nothing can print.
        assert!(printed.recv_timeout(Duration::from_millis(50)).is_err());
        gate.resume();
        printed.recv_timeout(Duration::from_secs(30)).expect("printed after resume");
        printer.join().unwrap();

        // A print in progress: pausing gives up instead of waiting for it.
        let (inside_tx, inside) = channel();
        let (finish_tx, finish) = channel::<()>();
        let printer = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                gate.print(|| {
                    inside_tx.send(()).unwrap();
                    finish.recv().unwrap();
                })
            })
        };
        inside.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(!gate.try_pause());
        finish_tx.send(()).unwrap();
        printer.join().unwrap();
        assert!(gate.try_pause());
    }
}
