//! The UI's threads: the line editor (or, piped, the stdin reader) and the printer that
//! shows rendered events above the prompt without stalling the network loop.

use std::io::{BufRead, Write};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::Input;
use super::complete::Roster;
use super::editor;
use super::render::Renderer;
use super::screen;
use super::status_line::{self, Print, StatusLine};

/// Longest wait for the printer thread to hand its queue to the line editor at exit.
const PRINTER_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the last message printed above the prompt gets to appear before the client
/// exits under a running line editor (rustyline's printer confirms nothing).
const LAST_PRINT_GRACE: Duration = Duration::from_millis(150);

/// Piped mode: every stdin line is sent as is; end of input means leave.
fn read_stdin(lines: UnboundedSender<Input>) {
    let mut stdin = std::io::stdin().lock();
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match stdin.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&raw);
                let line = line.trim_end_matches(['\n', '\r']);
                if lines.send(Input::Line(line.to_owned())).is_err() {
                    return;
                }
            }
        }
    }
    let _ = lines.send(Input::Quit);
}

/// The UI's threads: the line editor (or, piped, the stdin reader) and the printer that
/// shows rendered events above the prompt.
pub(super) struct Ui {
    /// The printer's queue.
    pub(super) out: std_mpsc::Sender<Print>,
    /// Told (or disconnected) once `out` is dropped and the queue drained.
    printer: std_mpsc::Receiver<()>,
    editor_thread: Option<std::thread::JoinHandle<()>>,
    /// The terminal mode to put back if the editor is still waiting for a key at the end.
    terminal: Option<crate::terminal::TerminalMode>,
}

impl Ui {
    /// Starts the editor thread with `editor` (and prints through its printer), or, with
    /// none, reads stdin and prints plain lines.
    pub(super) fn start<P: rustyline::ExternalPrinter + Send + 'static>(
        editor: Option<(editor::LineEditor, P)>,
        gate: Arc<editor::PrintGate>,
        roster: &Arc<Mutex<Roster>>,
        lines: UnboundedSender<Input>,
        acks: std_mpsc::Receiver<()>,
    ) -> Ui {
        let Some((editor, mut printer)) = editor else {
            drop(acks);
            std::thread::spawn(move || read_stdin(lines));
            let (out, printer) = spawn_printer(|batch| {
                let text: String = batch.into_iter().filter_map(status_line::piped).collect();
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
            });
            return Ui { out, printer, editor_thread: None, terminal: None };
        };
        let terminal = Some(crate::terminal::TerminalMode::save());
        let roster = roster.clone();
        let editor_thread = Some(std::thread::spawn(move || editor.run(roster, lines, acks)));
        let mut status = StatusLine::default();
        let (out, printer) = spawn_printer(move |batch| {
            gate.print(|| {
                let geometry = screen::Geometry::now();
                let text: String = batch.into_iter().map(|p| status.render(p, geometry)).collect();
                let _ = rustyline::ExternalPrinter::print(&mut printer, text);
            });
        });
        Ui { out, printer, editor_thread, terminal }
    }

    /// Lets the printer finish and puts the terminal back. `failed`: the session ended
    /// in an error, which an editor still waiting for a key is told about.
    pub(super) fn finish(self, renderer: &Renderer, failed: bool) {
        // Still editing: the server went away (or a signal came) while the user was typing.
        let editing = self.editor_thread.as_ref().is_some_and(|t| !t.is_finished());
        if editing && failed {
            let text = renderer.notice(jiff::Timestamp::now(), "Disconnected.") + "\n";
            let _ = self.out.send(Print::Line(text));
        }
        drop(self.out);
        if editing {
            // Bounded: rustyline holds external prints back while the user cycles
            // through completions or searches the history, and the user may not be
            // typing any more.
            let _ = self.printer.recv_timeout(PRINTER_DRAIN_TIMEOUT);
            // rustyline has taken every message but the last from the printer; give it
            // a moment to draw that one before the terminal is reset under it.
            std::thread::sleep(LAST_PRINT_GRACE);
        } else {
            let _ = self.printer.recv();
        }
        if let Some(terminal) = self.terminal {
            terminal.restore();
        }
    }
}

/// Starts the thread that writes rendered text; returns its channel, and a receiver
/// that is told (or disconnected) once every sender is dropped and the queue is drained.
///
/// `print` gets everything queued at once as one batch, written as one text: rustyline's
/// external printer holds a single message and takes it only between two keys, so a
/// burst (the welcome and the room's roster, a paste from a peer) printed piece by piece
/// while the user pressed Enter blocked the printer on the second piece with the
/// [`editor::PrintGate`] held, and the accepted line stayed on screen beside its echo.
fn spawn_printer(
    mut print: impl FnMut(Vec<Print>) + Send + 'static,
) -> (std_mpsc::Sender<Print>, std_mpsc::Receiver<()>) {
    let (tx, rx) = std_mpsc::channel::<Print>();
    let (done_tx, done) = std_mpsc::channel();
    std::thread::spawn(move || {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            batch.extend(rx.try_iter());
            print(batch);
        }
        let _ = done_tx.send(());
    });
    (tx, done)
}
