//! The operator's interactive console: when `tchat serve` runs with its standard input
//! and output on a terminal, the console is also a command line for the operator
//! commands ([`super::operator`]), run as [`Actor::Console`].
//!
//! The same pattern as the client's line editor (`client::editor`), set up by the same
//! [`crate::terminal::line_reader`]: rustyline's
//! `readline` blocks, so it runs on its own thread; the event log's lines are printed
//! above the prompt through rustyline's `ExternalPrinter` ([`LogPrinter`], called from
//! the log's own writer thread, never from an async task). Typed lines travel to the
//! accept loop through a [`ConsoleLink`], which runs them against the hub and sends the
//! answer back; the editor thread prints it before the next prompt. End of file
//! (Ctrl-D), Ctrl-C on an empty line or an I/O error on the terminal stops the server
//! as SIGTERM does: closing the terminal stops it cleanly.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use owo_colors::OwoColorize;
use rustyline::error::ReadlineError;
use rustyline::{CompletionType, ExternalPrinter};
use tokio::sync::Notify;

use super::hub::Hub;
use super::operator::{self, Actor, Command};
use crate::terminal::{Candidates, EditorHelper, LineReader, TerminalMode, line_reader};

/// The console's prompt.
pub const PROMPT: &str = "tchat> ";

/// The console's history file's name, in the state directory.
const HISTORY_FILE: &str = "console_history";

/// How long the console waits for the server to answer a command (it answers at once
/// unless it is stopping) or to list the nicks for Tab.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// The commands whose first argument is a nick: Tab completes nicks there.
const NICK_COMMANDS: &[&str] =
    &["/kick", "/ban", "/unban", "/mute", "/unmute", "/whois", "/op", "/deop"];

/// What the console's editor thread asks of the server.
pub enum ConsoleInput {
    /// A line typed at the prompt, and where its answer goes.
    Line(String, Sender<Result<String, String>>),
    /// The nicks online, for Tab completion.
    Nicks(Sender<Vec<String>>),
    /// The terminal went away (end of file, Ctrl-C, an I/O error); holds why.
    Closed(String),
}

/// The way from the console's editor thread to the accept loop: a queue the loop reads
/// in `select!`. Cloned into [`super::Config`]; `None` there: no interactive console.
#[derive(Clone, Default)]
pub struct ConsoleLink(Arc<LinkState>);

#[derive(Default)]
struct LinkState {
    /// The inputs not yet taken, and whether the server has stopped reading them.
    queue: Mutex<(VecDeque<ConsoleInput>, bool)>,
    ready: Notify,
}

impl std::fmt::Debug for ConsoleLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsoleLink")
    }
}

impl ConsoleLink {
    fn queue(&self) -> MutexGuard<'_, (VecDeque<ConsoleInput>, bool)> {
        self.0.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `input` for the server; false once it has stopped reading.
    fn send(&self, input: ConsoleInput) -> bool {
        let mut queue = self.queue();
        if queue.1 {
            return false;
        }
        queue.0.push_back(input);
        drop(queue);
        self.0.ready.notify_one();
        true
    }

    /// The next input; one reader only (the accept loop).
    pub(super) async fn recv(&self) -> ConsoleInput {
        loop {
            if let Some(input) = self.queue().0.pop_front() {
                return input;
            }
            // A notification sent between the check and here is kept as a permit.
            self.0.ready.notified().await;
        }
    }

    /// The server stops reading: inputs still queued are dropped with their answer
    /// channels, so the editor thread stops waiting.
    pub(super) fn hang_up(&self) {
        let mut queue = self.queue();
        queue.1 = true;
        queue.0.clear();
    }
}

/// Runs one console input against the hub; returns the reason to stop for
/// [`ConsoleInput::Closed`].
///
/// A command that waits for the backbone (a ban kept for every node) finishes in a
/// task of its own, so that the accept loop that reads the console never waits for
/// NATS; the editor thread waits for the answer before its next prompt, so commands
/// still run one at a time, in order. Without a backbone it is answered at once.
pub(super) fn serve(hub: &Arc<Hub>, input: ConsoleInput) -> Option<String> {
    match input {
        ConsoleInput::Line(line, answer) => {
            let hub = Arc::clone(hub);
            super::at_once::now_or_spawn(async move {
                let result = match Command::parse(&line) {
                    Ok(command) => operator::execute(&hub, Actor::Console, command).await,
                    Err(usage) => Err(usage),
                };
                let _ = answer.send(result);
            });
        }
        ConsoleInput::Nicks(answer) => {
            let _ = answer.send(hub.nicks());
        }
        ConsoleInput::Closed(why) => return Some(why),
    }
    None
}

/// Tab completion on the console: a command name at the start of the line, a nick as
/// the first argument of the commands that take one. The leading `/` is optional, as
/// for the commands themselves: a name is completed with the `/` if one was typed.
/// Returns where the replaced word starts and the candidates, each followed by a space.
/// Case-insensitive.
pub fn complete(line: &str, pos: usize, nicks: &[String]) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = before[start..].to_lowercase();
    let earlier: Vec<&str> = before[..start].split_whitespace().collect();
    let candidates: Vec<String> = match earlier.as_slice() {
        [] => {
            let slash = if word.starts_with('/') { "/" } else { "" };
            (operator::USAGE.iter())
                .filter_map(|(usage, _)| usage.split(' ').next()?.strip_prefix('/'))
                .filter(|name| name.starts_with(word.trim_start_matches('/')))
                .map(|name| format!("{slash}{name} "))
                .collect()
        }
        [command] if is_nick_command(command) => (nicks.iter())
            .filter(|nick| nick.to_lowercase().starts_with(&word))
            .map(|nick| format!("{nick} "))
            .collect(),
        _ => Vec::new(),
    };
    (start, candidates)
}

/// Whether `command` (with or without its `/`) takes a nick first.
fn is_nick_command(command: &str) -> bool {
    let name = command.trim_start_matches('/').to_lowercase();
    NICK_COMMANDS.iter().any(|c| c[1..] == name)
}

/// The console's completions: the nicks online, asked of the server.
struct ServerNicks(ConsoleLink);

impl Candidates for ServerNicks {
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let (tx, rx) = channel();
        let nicks = if self.0.send(ConsoleInput::Nicks(tx)) {
            rx.recv_timeout(ANSWER_WAIT).unwrap_or_default()
        } else {
            Vec::new()
        };
        complete(line, pos, &nicks)
    }
}

/// The event log's console output while the interactive console runs: each flushed
/// batch of lines is printed above the prompt. Written only by the log's writer thread,
/// which may block here while rustyline holds prints back (a completion list on screen).
pub struct LogPrinter {
    printer: Box<dyn ExternalPrinter + Send>,
    pending: Vec<u8>,
}

impl Write for LogPrinter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
        self.printer.print(text).map_err(io::Error::other)
    }
}

/// The interactive console, started: its editor thread runs until the terminal goes
/// away or the server stops.
pub struct Interactive {
    link: ConsoleLink,
    log_out: Option<LogPrinter>,
    terminal: TerminalMode,
}

impl Interactive {
    /// Starts the console on the terminal; fails on a terminal rustyline does not
    /// support (`TERM=dumb`), where the console stays a plain log. Its history is kept
    /// in `state_dir` (`--state-dir`), else in the [`crate::state_dir`].
    pub fn start(color: bool, state_dir: Option<&Path>) -> Result<Interactive, ReadlineError> {
        let link = ConsoleLink::default();
        let history = history_file(state_dir);
        let helper = EditorHelper { candidates: ServerNicks(link.clone()), color };
        let mut editor = line_reader(helper, CompletionType::List, history.as_deref())?;
        let log_out = LogPrinter {
            printer: Box::new(editor.create_external_printer()?),
            pending: Vec::new(),
        };
        let answers = Box::new(editor.create_external_printer()?);
        // Before the editor first switches the terminal to raw mode.
        let terminal = TerminalMode::save();
        let thread = EditorThread { editor, history, link: link.clone(), answers, color };
        std::thread::Builder::new()
            .name("tchat-console".into())
            .spawn(move || thread.run())
            .map_err(ReadlineError::Io)?;
        Ok(Interactive { link, log_out: Some(log_out), terminal })
    }

    /// The link to put in [`super::Config::console`].
    pub fn link(&self) -> ConsoleLink {
        self.link.clone()
    }

    /// The writer for the event log's console; once.
    pub fn log_out(&mut self) -> Option<LogPrinter> {
        self.log_out.take()
    }

    /// Puts the terminal back as it was, after the server stopped (the editor thread
    /// may still wait for a key; the process is about to end).
    pub fn finish(self) {
        self.link.hang_up();
        self.terminal.restore();
    }
}

/// `console_history` in `state_dir`, else in the [`crate::state_dir`], created
/// private; `None` if it cannot be. With `--state-dir` the server keeps everything it
/// remembers in one place, as a service's `StateDirectory=` expects.
fn history_file(state_dir: Option<&Path>) -> Option<PathBuf> {
    let path = match state_dir {
        Some(dir) => dir.join(HISTORY_FILE),
        None => crate::state_dir::file(HISTORY_FILE)?,
    };
    crate::private_file::prepare(&path).ok().map(|()| path)
}

struct EditorThread {
    editor: LineReader<ServerNicks>,
    history: Option<PathBuf>,
    link: ConsoleLink,
    answers: Box<dyn ExternalPrinter + Send>,
    color: bool,
}

impl EditorThread {
    fn run(mut self) {
        loop {
            let line = match self.editor.readline(PROMPT) {
                Ok(line) => line,
                Err(ReadlineError::Eof) => return self.close("end of file on the console"),
                Err(ReadlineError::Interrupted) => return self.close("Ctrl-C on the console"),
                Err(e) => return self.close(&format!("console error: {e}")),
            };
            if line.trim().is_empty() {
                continue;
            }
            self.remember(&line);
            if !self.command(&line) {
                return;
            }
        }
    }

    /// Has the server run `line` and prints its answer. False when the console should
    /// stop reading: the server is gone or stopping.
    fn command(&mut self, line: &str) -> bool {
        let (tx, rx) = channel();
        if !self.link.send(ConsoleInput::Line(line.to_owned(), tx)) {
            return false;
        }
        let answer = match rx.recv_timeout(ANSWER_WAIT) {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) => Err("no answer from the server".into()),
            Err(RecvTimeoutError::Disconnected) => return false,
        };
        let stopping = answer.is_ok() && matches!(Command::parse(line), Ok(Command::Shutdown(_)));
        let text = match answer {
            Ok(text) => text,
            Err(e) if self.color => format!("error: {e}").red().to_string(),
            Err(e) => format!("error: {e}"),
        };
        let _ = self.answers.print(text + "\n");
        // Reading on would put the terminal back in raw mode under the server's exit.
        !stopping
    }

    fn close(&self, why: &str) {
        self.link.send(ConsoleInput::Closed(why.to_owned()));
    }

    fn remember(&mut self, line: &str) {
        crate::terminal::remember(&mut self.editor, line, self.history.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(line: &str, nicks: &[&str]) -> (usize, Vec<String>) {
        let nicks: Vec<String> = nicks.iter().map(|n| n.to_string()).collect();
        complete(line, line.len(), &nicks)
    }

    #[test]
    fn tab_completes_commands_then_nicks() {
        assert_eq!(c("/ki", &[]), (0, vec!["/kick ".to_string()]));
        assert_eq!(c("/MU", &[]), (0, vec!["/mute ".to_string()]));
        assert_eq!(c("/b", &[]).1, ["/ban ", "/bans "]);
        let nicks = ["Bob", "bobby", "alice"];
        assert_eq!(c("/kick bo", &nicks), (6, vec!["Bob ".to_string(), "bobby ".to_string()]));
        assert_eq!(c("/whois A", &nicks).1, ["alice "]);
        assert!(c("/kick bob spa", &nicks).1.is_empty(), "the reason is free text");
        assert!(c("/say bo", &nicks).1.is_empty(), "/say takes text");
        assert!(c("/bo", &nicks).1.is_empty(), "no command starts so");
        // The `/` is optional here as for the commands.
        assert_eq!(c("wh", &[]), (0, vec!["whois ".to_string()]));
        assert_eq!(c("B", &[]).1, ["ban ", "bans "]);
        assert_eq!(c("kick bo", &nicks).1, ["Bob ", "bobby "]);
        assert!(c("say bo", &nicks).1.is_empty());
    }

    #[tokio::test]
    async fn the_link_hands_inputs_over_in_order_until_hung_up() {
        let link = ConsoleLink::default();
        let (tx, rx) = channel();
        assert!(link.send(ConsoleInput::Nicks(tx)));
        assert!(link.send(ConsoleInput::Closed("eof".into())));
        assert!(matches!(link.recv().await, ConsoleInput::Nicks(_)));
        assert!(matches!(link.recv().await, ConsoleInput::Closed(why) if why == "eof"));
        let (tx2, rx2) = channel::<Vec<String>>();
        assert!(link.send(ConsoleInput::Nicks(tx2)));
        link.hang_up();
        assert!(rx2.recv().is_err(), "the queued answer channel was dropped");
        assert!(!link.send(ConsoleInput::Closed("late".into())));
        drop(rx);
    }
}
