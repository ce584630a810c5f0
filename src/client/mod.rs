//! `tchat join`: the terminal client.
//!
//! - [`target`]: reading a `HOST` argument, and [`servers`]: the addresses of one chat,
//!   in the order to try them;
//! - [`clean`]: received text, sanitised once as it enters the client;
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
//!   events, running one `session` per connection (the hello, then the server's lines in
//!   and the user's lines out), and [`reason`]: why a connection ended, in a few words;
//! - `ui`: the editor (or stdin) thread and the printer thread.
//!
//! This module starts them: the first connection, the UI threads, and the core. The
//! user's lines come from the editor thread (on a terminal) or from stdin (piped, for
//! scripts); rendered events go to a printer thread, because printing above rustyline's
//! prompt can block and must not stall the network loop. The client's own commands and
//! settings are the UI's: they are taken out of the user's input before it reaches the
//! connection core, and applied to the events the core hands over.

pub mod catchup;
pub mod clean;
pub mod clear;
pub mod complete;
pub mod connect;
pub mod core;
pub mod display;
pub mod editor;
pub mod help;
pub mod identity;
mod input_rows;
pub mod local;
mod outgoing;
pub mod palette;
pub mod password;
pub mod reason;
pub mod render;
pub mod screen;
pub mod servers;
mod session;
pub mod settings;
pub mod sniff;
pub mod status_line;
pub mod target;
pub mod tls;
pub mod trust;
mod ui;
mod write_through;

use std::cell::RefCell;
use std::io::IsTerminal;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::unbounded_channel;

use crate::cli::JoinArgs;
use crate::protocol::{HELLO, HELLO_MODE_JSON, HELLO_REPLAY};
use clean::Clean;
use complete::Roster;
use core::Core;
use display::View;
use local::LocalState;
use render::Renderer;
use servers::Servers;
use target::{Target, TargetError};
use ui::Ui;

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
        banner: Option<Clean<String>>,
    },
    /// The first connection ended before the server's welcome, without a refusal: a
    /// server that accepts and closes, or a service that is not tchat. Not a lost
    /// session: nothing is reconnected. `tls`: the handshake had completed; `banner`:
    /// the first line it sent, if any.
    NoWelcome {
        target: Target,
        tls: bool,
        banner: Option<Clean<String>>,
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
    // Over 60 lines: one arm per error, each its one line of text for the user.
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
// Over 60 lines: the client's set-up in order (servers, editor, renderer, first
// connection, UI threads, display, core), each step a call or a struct.
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
        truecolor: palette::truecolor(),
        tz: jiff::tz::TimeZone::system(),
        show_keys: interactive,
        cols: interactive.then_some(screen::terminal_cols as fn() -> u16),
        now: jiff::Timestamp::now,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClientError::Io)?;
    let hello = hello_lines(args.nick.as_deref(), args.no_replay);
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
    let display = View {
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
/// along, and `replay=0` for `--no-replay`. A nick with spaces cannot (the hello takes
/// one word), so it follows as a `/nick` and the server explains why it is refused.
fn hello_lines(nick: Option<&str>, no_replay: bool) -> Vec<String> {
    let options = hello_options(no_replay);
    match nick.map(str::trim).filter(|n| !n.is_empty()) {
        Some(nick) if !nick.contains(char::is_whitespace) => {
            vec![format!("{HELLO} {HELLO_MODE_JSON} {nick}{options}")]
        }
        Some(nick) => {
            vec![format!("{HELLO} {HELLO_MODE_JSON}{options}"), format!("/nick {nick}")]
        }
        None => vec![format!("{HELLO} {HELLO_MODE_JSON}{options}")],
    }
}

/// The options that end every hello of this run, with their leading space: `replay=0`
/// for `--no-replay` (see docs/protocol.md).
fn hello_options(no_replay: bool) -> String {
    if no_replay { format!(" {HELLO_REPLAY}=0") } else { String::new() }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nick_rides_on_the_hello_when_it_can() {
        assert_eq!(hello_lines(None, false), ["/hello json"]);
        assert_eq!(hello_lines(Some("alice"), false), ["/hello json alice"]);
        assert_eq!(hello_lines(Some(" "), false), ["/hello json"]);
        assert_eq!(hello_lines(Some("two words"), false), ["/hello json", "/nick two words"]);
        assert_eq!(hello_lines(None, true), ["/hello json replay=0"]);
        assert_eq!(hello_lines(Some("bot"), true), ["/hello json bot replay=0"]);
        let spaced = hello_lines(Some("two words"), true);
        assert_eq!(spaced, ["/hello json replay=0", "/nick two words"]);
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
