//! `tchat join`: the terminal client.
//!
//! - [`target`]: reading a `HOST` argument, and [`servers`]: the addresses of one chat,
//!   in the order to try them;
//! - [`render`]: turning events into (colored) lines;
//! - [`complete`]: the live nick list and Tab completion candidates;
//! - [`editor`]: the rustyline editor thread and the history file;
//! - [`local`]: the commands the client keeps to itself (`/ignore`, `/bell`, `/clear`,
//!   which [`clear`] carries out on the terminal), and
//!   [`settings`]: where it remembers them per server;
//! - [`screen`]: how many terminal rows a prompt and line take, in display columns;
//! - [`connect`]: opening a session (TLS, trust on first use, password), with [`tls`]
//!   (the certificate verifier), [`trust`] (the known hosts file) and [`password`] (the
//!   prompt and its three tries).
//! - [`core`]: the connection core, which reconnects and resumes and hands the UI typed
//!   events, and [`reason`]: why a connection ended, in a few words.
//!
//! This module holds one connection's loop: it sends `/hello json [NICK]`, then reads
//! events from the server and writes the user's lines to it. The user's lines come from
//! the editor thread (on a terminal) or from stdin (piped, for scripts); rendered events
//! go to a printer thread, because printing above rustyline's prompt can block and must
//! not stall the network loop. The client's own commands and settings are the UI's: they
//! are taken out of the user's input before it reaches the connection core, and applied
//! to the events the core hands over.

pub mod catchup;
pub mod clear;
pub mod complete;
pub mod connect;
pub mod core;
pub mod display;
pub mod editor;
pub mod identity;
mod input_rows;
pub mod local;
mod outgoing;
pub mod password;
pub mod reason;
pub mod render;
pub mod screen;
pub mod servers;
pub mod settings;
pub mod sniff;
pub mod status_line;
pub mod target;
pub mod tls;
pub mod trust;

use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::cli::JoinArgs;
use crate::framing::{Line, LineBuffer};
use crate::protocol::{HELLO, HELLO_MODE_JSON};
use complete::Roster;
use core::Core;
use display::Display;
use local::LocalState;
use outgoing::Outgoing;
use render::Renderer;
use servers::Servers;
use status_line::{Print, StatusLine};
use target::{Target, TargetError};

/// How long the server may stay silent after `/quit` before the client gives up on its
/// goodbye. Counted from the last thing it sent: a server that delays a long paste (its
/// flood control) answers the lines before the `/quit` first, one by one.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the client goes on reading after a write to the server failed: the server
/// may have said why it ended the connection.
const READ_AFTER_WRITE_FAILED: Duration = Duration::from_secs(2);

/// Longest wait for the printer thread to hand its queue to the line editor at exit.
const PRINTER_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the last message printed above the prompt gets to appear before the client
/// exits under a running line editor (rustyline's printer confirms nothing).
const LAST_PRINT_GRACE: Duration = Duration::from_millis(150);

/// Longest line accepted from the server. Far above any event it sends; it only stops
/// a broken or hostile server from growing the buffer without end.
const MAX_SERVER_LINE: usize = 1 << 20;

/// What the input side hands to the connection.
#[derive(Debug)]
pub enum Input {
    /// A line to send as typed.
    Line(String),
    /// The user is leaving (Ctrl-D, Ctrl-C on an empty line, end of piped input): send
    /// `/quit` and wait for the server to close.
    Quit,
}

/// Why `tchat join` failed; each becomes one line on stderr.
#[derive(Debug)]
pub enum ClientError {
    BadTarget(TargetError),
    Connect {
        target: Target,
        source: std::io::Error,
    },
    /// The server ended the session: it closed the connection without the user asking
    /// to leave, or with a kick or a shutdown notice although the user had asked.
    Closed,
    /// The user asked to leave and the server did not answer: it stayed silent for
    /// 5 s after the `/quit`.
    QuitUnanswered,
    /// The server turned the connection away (full, or too many from this address)
    /// with a `!!!` line before any welcome; that line has been shown. `hint`: what to
    /// do about it, when the line is about the password (see [`reason::refusal_hint`]).
    Refused {
        hint: Option<&'static str>,
    },
    /// The connection broke.
    Lost(std::io::Error),
    /// The TLS handshake failed (not a trust question: a protocol error, or a server
    /// that does not speak TLS; `--plain` connects without it). `banner`: the first line
    /// the server sent instead of TLS, when it was text (see [`sniff`]).
    Tls {
        target: Target,
        source: std::io::Error,
        banner: Option<String>,
    },
    /// The first connection ended before the server's welcome, without a refusal: a
    /// server that accepts and closes, or a service that is not tchat. Not a lost
    /// session: nothing is reconnected. `tls`: the handshake had completed; `banner`:
    /// the first line it sent, if any.
    NoWelcome {
        target: Target,
        tls: bool,
        banner: Option<String>,
    },
    /// The server accepted the TCP connection but did not answer `step` within
    /// [`connect::SETUP_TIMEOUT`]: a hung server, or no tchat server at all.
    Unanswered {
        target: Target,
        step: connect::Step,
    },
    /// The client ended (`cause`) while there was no connection, with `lines` the user
    /// typed meanwhile never sent: the user must know they did not reach anyone.
    Unsent {
        lines: usize,
        cause: Box<ClientError>,
    },
    /// Every address of the chat failed; each error names its server.
    NoServer(Vec<ClientError>),
    /// The server's certificate is not trusted; the text says why and what to do.
    Trust(String),
    /// The identity file could not be read or made; the text names it and why.
    Identity(String),
    Io(std::io::Error),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::BadTarget(e) => write!(f, "{e}"),
            // In the words a reconnect notice gives the same failure.
            ClientError::Connect { target, source } => {
                write!(f, "cannot connect to {target}: {}", reason::io_reason(source))
            }
            ClientError::Closed => write!(f, "the server closed the connection"),
            ClientError::QuitUnanswered => write!(f, "the server did not answer /quit"),
            ClientError::Refused { hint: None } => write!(f, "the server refused the connection"),
            ClientError::Refused { hint: Some(hint) } => {
                write!(f, "the server refused the connection; {hint}")
            }
            ClientError::Lost(e) => write!(f, "connection lost: {}", reason::io_reason(e)),
            ClientError::Tls { target, banner: Some(banner), .. } => match sniff::service(banner) {
                Some(sniff::TCHAT_WITHOUT_TLS) => write!(
                    f,
                    "{target} answered in plain text, not TLS ({banner:?}): a tchat server \
                     without TLS; connect with --plain"
                ),
                Some(service) => write!(
                    f,
                    "{target} is {service}, not a tchat server: it said {banner:?} (check the \
                     host and port)"
                ),
                None => write!(
                    f,
                    "{target} is not a tchat server: it said {banner:?} instead of TLS (check \
                     the host and port)"
                ),
            },
            ClientError::Tls { target, source, banner: None } => {
                write!(f, "TLS with {target} failed: {}", reason::io_reason(source))?;
                f.write_str(reason::tls_hint(source))
            }
            ClientError::NoWelcome { target, tls, banner } => {
                let opened =
                    if *tls { "completed the TLS handshake" } else { "accepted the connection" };
                write!(f, "{target} {opened} but closed the connection before any welcome")?;
                match banner.as_deref().map(|b| (b, sniff::service(b))) {
                    Some((banner, Some(service))) if service != sniff::TCHAT_WITHOUT_TLS => {
                        write!(f, ": it is {service} (it said {banner:?}); check the host and port")
                    }
                    Some((banner, _)) => write!(
                        f,
                        ", after saying {banner:?}: not a tchat server, or one that is failing \
                         (check the host and port, or ask its operator)"
                    ),
                    None => f.write_str(
                        ": not a tchat server, or one that is failing (check the host and port, \
                         or ask its operator)",
                    ),
                }
            }
            ClientError::Unanswered { target, step: connect::Step::Tls } => write!(
                f,
                "{target} accepted the connection but did not answer the TLS handshake \
                 within {} s (not a tchat server? an older one without TLS needs --plain)",
                connect::SETUP_TIMEOUT.as_secs()
            ),
            ClientError::Unanswered { target, step: connect::Step::Hello } => write!(
                f,
                "{target} did not answer the hello within {} s (not a tchat server?)",
                connect::SETUP_TIMEOUT.as_secs()
            ),
            ClientError::Unsent { lines: 1, cause } => {
                write!(f, "{cause}; 1 line typed while offline was not sent")
            }
            ClientError::Unsent { lines, cause } => {
                write!(f, "{cause}; {lines} lines typed while offline were not sent")
            }
            ClientError::NoServer(errors) => {
                let each: Vec<String> = errors.iter().map(ClientError::to_string).collect();
                write!(f, "no server of the chat answered: {}", each.join("; "))
            }
            ClientError::Trust(text) | ClientError::Identity(text) => write!(f, "{text}"),
            ClientError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Runs `tchat join`. Interactive when stdin and stdout are terminals the line editor
/// supports; otherwise reads lines from stdin and prints plain lines.
pub fn run(args: JoinArgs) -> Result<(), ClientError> {
    let servers = Servers::parse(args.hosts(), args.port).map_err(ClientError::BadTarget)?;
    let stdout_tty = std::io::stdout().is_terminal();
    let roster = Arc::new(Mutex::new(Roster::default()));
    let gate = Arc::new(editor::PrintGate::default());
    let editor = if stdout_tty && std::io::stdin().is_terminal() {
        let color = args.color.enabled(stdout_tty);
        // Fails on a terminal rustyline does not support (TERM=dumb, emacs): plain lines.
        editor::LineEditor::new(roster.clone(), gate.clone(), color, !args.no_history).ok()
    } else {
        None
    };
    let interactive = editor.is_some();
    let renderer = Renderer {
        color: args.color.enabled(stdout_tty),
        tz: jiff::tz::TimeZone::system(),
        show_keys: interactive,
        now: jiff::Timestamp::now,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClientError::Io)?;
    let hello = hello_lines(args.nick.as_deref());
    let asks = std::io::stdin().is_terminal();
    let mut password = None;
    let open = async |at: &servers::Endpoint| {
        connect::open(at, &args, (&hello, asks), &mut password, None).await
    };
    let reached = runtime.block_on(servers.open_any(None, open))?;

    // What the user enters goes to `lines_tx`; what is not the client's own command
    // goes on to the core through `core_tx`.
    let (lines_tx, lines_rx) = unbounded_channel();
    let (core_tx, mut core_rx) = unbounded_channel();
    let (acks_tx, acks_rx) = std_mpsc::channel();
    let ui = Ui::start(editor, gate, &roster, lines_tx, acks_rx);
    let target = servers.first();
    let settings = settings::SettingsFile::for_server(&target.host, target.port);
    let local = RefCell::new(LocalState::load(settings, args.no_bell));
    let display = Display {
        renderer: &renderer,
        roster: &roster,
        local: &local,
        acks: acks_tx,
        out: &ui.out,
        bell: interactive,
        away: RefCell::default(),
        wanted_nick: args.nick.as_deref().map(str::trim).map(str::to_owned),
        day: RefCell::default(),
        outage: RefCell::default(),
    };
    // Piped mode (a script) comes back only if asked: a script may prefer to fail.
    let reconnect = if interactive { !args.no_reconnect } else { args.reconnect };
    let core = Core { servers: servers.clone(), args: args.clone(), reconnect, password };
    // The hello went out while the session was opened.
    let result = runtime.block_on(async {
        tokio::select! {
            result = core.run(reached, &mut core_rx, leave_signal(), |e| display.show(e)) => result,
            never = local::filter_input(lines_rx, core_tx, &local, |k| display.local(k)) => match never {},
        }
    });
    ui.finish(&renderer, result.is_err());
    result
}

/// The first lines to send: the structured-mode hello, with the nick if it can ride
/// along. A nick with spaces cannot (the hello takes one word), so it follows as a
/// `/nick` and the server explains why it is refused.
fn hello_lines(nick: Option<&str>) -> Vec<String> {
    match nick.map(str::trim).filter(|n| !n.is_empty()) {
        Some(nick) if !nick.contains(char::is_whitespace) => {
            vec![format!("{HELLO} {HELLO_MODE_JSON} {nick}")]
        }
        Some(nick) => vec![format!("{HELLO} {HELLO_MODE_JSON}"), format!("/nick {nick}")],
        None => vec![format!("{HELLO} {HELLO_MODE_JSON}")],
    }
}

/// Resolves on SIGINT, SIGTERM or SIGHUP: the client then leaves as on `/quit`, and the
/// terminal is restored on the way out instead of being left in raw mode.
async fn leave_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [SignalKind::interrupt(), SignalKind::terminate(), SignalKind::hangup()];
        let [mut int, mut term, mut hup] = kinds.map(|k| signal(k).ok());
        // A signal whose handler could not be installed never fires.
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => drop(s.recv().await),
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = recv(&mut int) => {}
            () = recv(&mut term) => {}
            () = recv(&mut hup) => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The connection loop: sends the hello, then passes every line from the server to
/// `on_line` (which may add lines to send in answer) and every input line to the server, until the server closes the connection.
/// `leave` resolving counts as the user leaving. Ok when the user left and the server
/// closed the connection after taking everything, the `/quit` included.
///
/// Reading never waits for writing (see [`Outgoing`]), and a failed write ends the
/// session only after what the server sent before it closed has been read and shown,
/// for up to [`READ_AFTER_WRITE_FAILED`].
///
/// `typed` are lines the user entered while there was no connection, sent after the
/// hello. The input channel is borrowed: it outlives the session, for the next one.
async fn session(
    stream: impl AsyncRead + AsyncWrite,
    hello: Vec<String>,
    typed: Vec<String>,
    input: &mut UnboundedReceiver<Input>,
    mut on_line: impl FnMut(Line<'_>, &mut Vec<String>),
    leave: impl std::future::Future<Output = ()>,
) -> SessionEnd {
    let mut quitting = false;
    let result =
        session_loop(stream, hello, typed, input, &mut on_line, leave, &mut quitting).await;
    SessionEnd { result, quitting }
}

/// How a session ended, and whether the user had asked to leave.
#[derive(Debug)]
struct SessionEnd {
    result: Result<(), ClientError>,
    quitting: bool,
}

async fn session_loop(
    stream: impl AsyncRead + AsyncWrite,
    hello: Vec<String>,
    typed: Vec<String>,
    input: &mut UnboundedReceiver<Input>,
    mut on_line: impl FnMut(Line<'_>, &mut Vec<String>),
    leave: impl std::future::Future<Output = ()>,
    quitting: &mut bool,
) -> Result<(), ClientError> {
    tokio::pin!(leave);
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut out = Outgoing::default();
    hello.iter().for_each(|line| out.push_line(line));
    *quitting = typed.iter().any(|line| out.push_input(line));
    let mut lines = LineBuffer::new(MAX_SERVER_LINE);
    let mut buf = vec![0u8; 16 * 1024];
    let mut input_open = true;
    let mut write_failed: Option<std::io::Error> = None;
    // Armed while the client waits for the end: after /quit, for the server's answer;
    // after a failed write, for the rest of what the server sent.
    let deadline = tokio::time::sleep(Duration::MAX);
    tokio::pin!(deadline);
    let after = |wait| tokio::time::Instant::now() + wait;
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = read.map_err(ClientError::Lost)?;
                if n == 0 {
                    let answered = *quitting && out.is_empty() && write_failed.is_none();
                    return if answered { Ok(()) } else { Err(ClientError::Closed) };
                }
                answer(&mut lines, &buf[..n], &mut on_line, &mut out);
                if *quitting && write_failed.is_none() {
                    deadline.as_mut().reset(after(QUIT_TIMEOUT));
                }
            }
            written = writer.write(out.pending()), if !out.is_empty() && write_failed.is_none() => {
                write_failed = take_written(written, &mut out);
                if write_failed.is_some() {
                    deadline.as_mut().reset(after(READ_AFTER_WRITE_FAILED));
                }
            }
            () = &mut leave, if !*quitting => {
                *quitting = true;
                out.push_line("/quit");
                deadline.as_mut().reset(after(QUIT_TIMEOUT));
            }
            next = input.recv(), if input_open && !*quitting && !out.is_full() => {
                if out.push_input(&input_line(next, &mut input_open)) {
                    *quitting = true;
                    if write_failed.is_none() {
                        deadline.as_mut().reset(after(QUIT_TIMEOUT));
                    }
                }
            }
            () = &mut deadline, if *quitting || write_failed.is_some() => {
                return Err(match write_failed {
                    Some(e) => ClientError::Lost(e),
                    None => ClientError::QuitUnanswered,
                });
            }
        }
    }
}

/// Passes each whole line of `bytes` from the server to `on_line` and queues the lines
/// it answers with.
fn answer(
    lines: &mut LineBuffer,
    bytes: &[u8],
    on_line: &mut impl FnMut(Line<'_>, &mut Vec<String>),
    out: &mut Outgoing,
) {
    let mut answers = Vec::new();
    lines.feed(bytes, |line| on_line(line, &mut answers));
    // Lines typed while offline never hold a /quit (it ends the wait).
    for line in &answers {
        out.push_input(line);
    }
}

/// Takes what a write sent off `out`; the error that ends writing if it failed (a write
/// of 0 bytes included).
fn take_written(written: std::io::Result<usize>, out: &mut Outgoing) -> Option<std::io::Error> {
    match written {
        Ok(n) if n > 0 => {
            out.advance(n);
            None
        }
        Ok(_) => Some(std::io::ErrorKind::WriteZero.into()),
        Err(e) => Some(e),
    }
}

/// The line to send for the UI's `next` input: the end of input (or the UI's quit) is a
/// `/quit`, after which the input is not read again.
fn input_line(next: Option<Input>, input_open: &mut bool) -> String {
    match next {
        Some(Input::Line(line)) => line,
        Some(Input::Quit) | None => {
            *input_open = false;
            "/quit".to_owned()
        }
    }
}

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
struct Ui {
    /// The printer's queue.
    out: std_mpsc::Sender<Print>,
    /// Told (or disconnected) once `out` is dropped and the queue drained.
    printer: std_mpsc::Receiver<()>,
    editor_thread: Option<std::thread::JoinHandle<()>>,
    /// The terminal mode to put back if the editor is still waiting for a key at the end.
    terminal: Option<crate::terminal::TerminalMode>,
}

impl Ui {
    /// Starts the editor thread with `editor` (and prints through its printer), or, with
    /// none, reads stdin and prints plain lines.
    fn start<P: rustyline::ExternalPrinter + Send + 'static>(
        editor: Option<(editor::LineEditor, P)>,
        gate: Arc<editor::PrintGate>,
        roster: &Arc<Mutex<Roster>>,
        lines: UnboundedSender<Input>,
        acks: std_mpsc::Receiver<()>,
    ) -> Ui {
        let Some((editor, mut printer)) = editor else {
            drop(acks);
            std::thread::spawn(move || read_stdin(lines));
            let (out, printer) = spawn_printer(|print| {
                let Some(text) = status_line::piped(print) else { return };
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
            });
            return Ui { out, printer, editor_thread: None, terminal: None };
        };
        let terminal = Some(crate::terminal::TerminalMode::save());
        let roster = roster.clone();
        let editor_thread = Some(std::thread::spawn(move || editor.run(roster, lines, acks)));
        let mut status = StatusLine::default();
        let (out, printer) = spawn_printer(move |print| {
            gate.print(|| {
                let text = status.render(print, screen::Geometry::now());
                let _ = rustyline::ExternalPrinter::print(&mut printer, text);
            });
        });
        Ui { out, printer, editor_thread, terminal }
    }

    /// Lets the printer finish and puts the terminal back. `failed`: the session ended
    /// in an error, which an editor still waiting for a key is told about.
    fn finish(self, renderer: &Renderer, failed: bool) {
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
fn spawn_printer(
    mut print: impl FnMut(Print) + Send + 'static,
) -> (std_mpsc::Sender<Print>, std_mpsc::Receiver<()>) {
    let (tx, rx) = std_mpsc::channel::<Print>();
    let (done_tx, done) = std_mpsc::channel();
    std::thread::spawn(move || {
        for text in rx {
            print(text);
        }
        let _ = done_tx.send(());
    });
    (tx, done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    #[test]
    fn the_nick_rides_on_the_hello_when_it_can() {
        assert_eq!(hello_lines(None), ["/hello json"]);
        assert_eq!(hello_lines(Some("alice")), ["/hello json alice"]);
        assert_eq!(hello_lines(Some(" ")), ["/hello json"]);
        assert_eq!(hello_lines(Some("two words")), ["/hello json", "/nick two words"]);
    }

    /// A fake server on 127.0.0.1: records the lines it gets until `/quit` (then closes),
    /// or closes at once after the hello when `hang_up` is set.
    async fn fake_server(hang_up: bool) -> (TcpStream, tokio::task::JoinHandle<Vec<String>>) {
        use tokio::io::AsyncBufReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut lines = tokio::io::BufReader::new(stream).lines();
            let mut got = Vec::new();
            while let Some(line) = lines.next_line().await.unwrap() {
                let quit = line.starts_with("/quit");
                got.push(line);
                if quit || hang_up {
                    break;
                }
            }
            got
        });
        (TcpStream::connect(addr).await.unwrap(), server)
    }

    #[tokio::test]
    async fn a_pasted_block_is_sent_line_by_line_up_to_quit() {
        let (stream, server) = fake_server(false).await;
        let (tx, mut rx) = unbounded_channel();
        tx.send(Input::Line("first\r\nsecond\n\n  \n/quit bye\nnever sent".into())).unwrap();
        let hello = hello_lines(Some("me"));
        let ended =
            session(stream, hello, vec![], &mut rx, |_, _| {}, std::future::pending()).await.result;
        assert!(ended.is_ok(), "{ended:?}");
        let got = server.await.unwrap();
        assert_eq!(got, ["/hello json me", "first", "second", "/quit bye"]);
    }

    #[tokio::test]
    async fn end_of_input_sends_quit_and_a_hang_up_is_an_error() {
        let (stream, server) = fake_server(false).await;
        let (tx, mut rx) = unbounded_channel();
        drop(tx);
        let ended =
            session(stream, hello_lines(None), vec![], &mut rx, |_, _| {}, std::future::pending())
                .await
                .result;
        assert!(ended.is_ok(), "{ended:?}");
        assert_eq!(server.await.unwrap(), ["/hello json", "/quit"]);

        let (stream, _server) = fake_server(true).await;
        let (_tx, mut rx) = unbounded_channel();
        let ended =
            session(stream, hello_lines(None), vec![], &mut rx, |_, _| {}, std::future::pending())
                .await
                .result;
        assert!(matches!(ended, Err(ClientError::Closed)), "{ended:?}");
    }

    #[tokio::test]
    async fn a_signal_leaves_like_quit() {
        let (stream, server) = fake_server(false).await;
        let (_tx, mut rx) = unbounded_channel();
        let ended =
            session(stream, hello_lines(None), vec![], &mut rx, |_, _| {}, async {}).await.result;
        assert!(ended.is_ok(), "{ended:?}");
        assert_eq!(server.await.unwrap(), ["/hello json", "/quit"]);
    }

    /// The client's writes fail from the start (its sending side is shut down), while
    /// the server says why it ends the connection and closes: that line still reaches
    /// `on_line`, and the session fails.
    #[tokio::test]
    async fn what_the_server_said_is_read_after_a_write_failed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(b"!!! disconnected for flooding\n").await.unwrap();
            stream.shutdown().await.unwrap();
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink).await;
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        socket2::SockRef::from(&stream).shutdown(std::net::Shutdown::Write).unwrap();
        let (tx, mut rx) = unbounded_channel();
        tx.send(Input::Line("more".into())).unwrap();
        let mut got = Vec::new();
        let on_line = |line: Line<'_>, _: &mut Vec<String>| {
            if let Line::Text(text) = line {
                got.push(text.into_owned());
            }
        };
        let ended =
            session(stream, hello_lines(None), vec![], &mut rx, on_line, std::future::pending())
                .await
                .result;
        assert!(matches!(ended, Err(ClientError::Closed)), "{ended:?}");
        assert_eq!(got, ["!!! disconnected for flooding"]);
        server.await.unwrap();
    }

    #[test]
    fn errors_are_one_line() {
        let e = ClientError::Connect {
            target: Target::parse("::1", 9).unwrap(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(
            e.to_string(),
            "cannot connect to [::1]:9: connection refused: no server listens on that port (not \
             started, or another port?)"
        );
        assert!(!ClientError::Closed.to_string().contains('\n'));
        let unsent = ClientError::Unsent { lines: 1, cause: Box::new(ClientError::Closed) };
        assert_eq!(
            unsent.to_string(),
            "the server closed the connection; 1 line typed while offline was not sent"
        );
    }
}
