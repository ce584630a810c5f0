//! Man pages, shell completions and the command-line reference, rendered from the clap
//! definition in `tchat::cli`. A module of the `generated` test, not of the program: the
//! generators (clap_mangen, clap_complete) are dev-dependencies, as uv keeps its
//! generators in a dev crate, and the program's own help uses none of them.
//!
//! The files live in the repository (`man/`, `completions/`) so packagers can ship them
//! without building anything. They are rendered here by pure functions that return bytes
//! and contain no date, so a render is deterministic: `tests/generated.rs` compares every
//! committed file with a fresh render and fails when one is stale, and [`REGENERATE`]
//! rewrites them all. `man/` and `completions/` hold generated files only: regenerating
//! deletes anything else in them.
//!
//! clap_mangen renders the parts that come from the clap definition (synopsis, options
//! with their defaults, subcommands; a subcommand page's synopsis line is composed here
//! from that definition, with each option's value, see [`man_page`]); the sections
//! below it (in-chat commands, keys, log format, files, environment, exit status,
//! examples) are written here, next to the code they describe. The in-chat commands come from [`protocol::COMMANDS`], the same
//! table the server's `/help` answers with, so the two cannot drift apart.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::{Generator, Shell};
use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

use tchat::cli::Cli;
use tchat::client::editor::CLIENT_KEYS;
use tchat::event_log::{self, Level, Record};
use tchat::protocol;

mod markdown;

/// The one command that rewrites every generated file; printed when a file is stale.
pub const REGENERATE: &str = "TCHAT_BLESS=1 cargo test --test generated";

/// Where the man pages go, relative to the repository root.
pub const MAN_DIR: &str = "man";

/// The command-line reference in Markdown, relative to the repository root.
pub const REFERENCE: &str = "docs/reference/cli.md";

/// Where the shell completions go, relative to the repository root.
pub const COMPLETIONS_DIR: &str = "completions";

/// Every shell clap_complete supports, in a fixed order so the file list is stable.
pub const SHELLS: [Shell; 5] =
    [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell];

/// One file this module renders: its path relative to the repository root, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Relative path with `/` separators, e.g. `man/tchat.1`.
    pub path: String,
    /// The exact bytes the committed file must hold.
    pub contents: Vec<u8>,
}

/// The three man pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `tchat(1)`: the whole program, including every subcommand's options.
    Tchat,
    /// `tchat-serve(1)`: the server.
    Serve,
    /// `tchat-join(1)`: the client.
    Join,
    /// `tchat-ctl(1)`: the control socket's client.
    Ctl,
}

impl Page {
    /// Every page, top-level first.
    pub const ALL: [Page; 4] = [Page::Tchat, Page::Serve, Page::Join, Page::Ctl];

    /// The page's name as `man` knows it, e.g. `tchat-serve`.
    pub fn name(self) -> &'static str {
        match self {
            Page::Tchat => "tchat",
            Page::Serve => "tchat-serve",
            Page::Join => "tchat-join",
            Page::Ctl => "tchat-ctl",
        }
    }

    /// The clap subcommand the page documents; `None` for the top-level page.
    pub fn subcommand(self) -> Option<&'static str> {
        match self {
            Page::Tchat => None,
            Page::Serve => Some("serve"),
            Page::Join => Some("join"),
            Page::Ctl => Some("ctl"),
        }
    }
}

/// Every generated file, man pages first, then the completions and the reference, in a
/// stable order.
pub fn generated_files() -> Vec<GeneratedFile> {
    let pages = Page::ALL.into_iter().map(|page| GeneratedFile {
        path: format!("{MAN_DIR}/{}.1", page.name()),
        contents: man_page(page),
    });
    let completions = SHELLS.into_iter().map(|shell| GeneratedFile {
        path: format!("{COMPLETIONS_DIR}/{}", shell.file_name("tchat")),
        contents: completion(shell),
    });
    let reference =
        GeneratedFile { path: REFERENCE.to_owned(), contents: reference().into_bytes() };
    pages.chain(completions).chain([reference]).collect()
}

/// `docs/reference/cli.md`: tchat(1), the page with every command's options and every
/// hand-written section, in Markdown.
pub fn reference() -> String {
    let page = String::from_utf8(man_page(Page::Tchat)).expect("roff output is UTF-8");
    markdown::reference(&page)
}

/// The completion script for `shell`, for the binary name `tchat`.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tchat", &mut out);
    out
}

/// The man page `page` in roff, ready for `man -l`.
pub fn man_page(page: Page) -> Vec<u8> {
    // Man pages document real commands; clap's built-in `help` subcommand has no page
    // of its own (`tchat help serve` is the same as `tchat serve --help`).
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let cmd = match page.subcommand() {
        None => root.clone(),
        Some(name) => root.find_subcommand(name).expect("documented subcommand exists").clone(),
    };
    let man = match page.subcommand() {
        // The page's clone only: `--help` keeps clap's own usage line.
        Some(_) => {
            let usage = synopsis(&cmd);
            Man::new(cmd.override_usage(usage))
        }
        None => Man::new(cmd),
    };

    let mut out = title(page);
    render(&mut out, |w| man.render_name_section(w));
    render(&mut out, |w| man.render_synopsis_section(w));
    render(&mut out, |w| man.render_description_section(w));
    roff(&mut out, &description(page));
    render(&mut out, |w| man.render_options_section(w));
    if page == Page::Tchat {
        render(&mut out, |w| man.render_subcommands_section(w));
        subcommand_options(&mut out, &root);
    }
    roff(&mut out, &hand_written_sections(page));
    tidy(&out)
}

/// The page's preamble: roff's own, the title line and the text settings.
fn title(page: Page) -> Vec<u8> {
    // The title line is written by hand: clap_mangen leaves an empty date unquoted, which
    // shifts the later fields. The date stays empty on purpose, so that a render depends
    // on nothing but the sources.
    let mut out = Roff::new().render().into_bytes();
    writeln!(
        out,
        ".TH {} 1 \"\" \"tchat {}\" \"tchat manual\"",
        page.name().to_uppercase(),
        env!("CARGO_PKG_VERSION")
    )
    .expect("writing to a Vec cannot fail");
    // Ragged right and no hyphenation, as asciidoctor does: justified text and a
    // hyphen inside an option name (--an-nounce-limit) both read badly in a terminal.
    out.extend_from_slice(b".nh\n.ad l\n");
    out
}

/// The top-level page is the whole reference: every subcommand's options too, each
/// under its own heading.
fn subcommand_options(out: &mut Vec<u8>, root: &clap::Command) {
    for (sub, heading) in [
        ("serve", "tchat serve options"),
        ("join", "tchat join options"),
        ("ctl", "tchat ctl options"),
    ] {
        let sub = root
            .find_subcommand(sub)
            .expect("documented subcommand exists")
            .clone()
            .mut_args(|arg| arg.help_heading(heading));
        render(out, |w| Man::new(sub).render_options_section(w));
    }
}

/// The sections clap_mangen does not render, those that apply to `page`.
fn hand_written_sections(page: Page) -> Roff {
    let mut extra = Roff::new();
    if matches!(page, Page::Tchat | Page::Join) {
        in_chat_commands(&mut extra);
        keys(&mut extra);
    }
    if page != Page::Join {
        operator_commands(&mut extra);
    }
    if matches!(page, Page::Tchat | Page::Serve) {
        session_log(&mut extra);
    }
    files(&mut extra, page);
    environment(&mut extra, page);
    exit_status(&mut extra, page);
    examples(&mut extra, page);
    see_also(&mut extra, page);
    extra
}

/// The SYNOPSIS of a subcommand's page: `tchat serve [--host HOST] [-p|--port PORT] …`,
/// each option that takes a value followed by its value name. clap_mangen 0.3's own
/// synopsis names an option without its value (`[--port]`) and has no setting for it;
/// an overridden usage is what it prints instead (name in bold, the rest in roman).
/// An option and its value are joined by [`NBSP`], so a line never ends between them.
/// Built from the same clap definition, in clap_mangen's order (display order, then
/// name; required options after optional ones, positionals last), so it cannot drift.
fn synopsis(cmd: &clap::Command) -> String {
    let mut options: Vec<&clap::Arg> =
        cmd.get_arguments().filter(|a| !a.is_hide_set() && !a.is_positional()).collect();
    options.sort_by_key(|a| (a.is_required_set(), a.get_display_order(), sort_name(a)));
    let mut words = vec![cmd.get_bin_name().unwrap_or(cmd.get_name()).to_owned()];
    for arg in options {
        let flag = match (arg.get_short(), arg.get_long()) {
            (Some(short), Some(long)) => format!("-{short}|--{long}"),
            (Some(short), None) => format!("-{short}"),
            (None, Some(long)) => format!("--{long}"),
            (None, None) => continue,
        };
        let value = match arg.get_value_names() {
            Some(names) if arg.get_num_args().is_some_and(|n| n.takes_values()) => {
                format!("{NBSP}{}", names.join(" "))
            }
            _ => String::new(),
        };
        words.push(bracket(arg, &format!("{flag}{value}")));
    }
    for arg in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        let names = arg.get_value_names().map(|n| n.join(" "));
        words.push(bracket(arg, &names.unwrap_or_else(|| arg.get_id().to_string())));
    }
    words.join(" ")
}

/// Joins an option to its value in the synopsis; [`tidy`] writes it as roff's
/// unbreakable space `\ ` once lines are wrapped (clap_mangen would escape the backslash).
const NBSP: char = '\u{a0}';

/// `[WORD]` for an optional argument, `<WORD>` for a required one, as clap_mangen marks them.
fn bracket(arg: &clap::Arg, word: &str) -> String {
    match arg.is_required_set() {
        true => format!("<{word}>"),
        false => format!("[{word}]"),
    }
}

/// clap_mangen's order among options of the same display order: the short letter
/// (lower case before upper), else the long name.
fn sort_name(arg: &clap::Arg) -> String {
    match (arg.get_short(), arg.get_long()) {
        (Some(c), _) => format!("{}{}", c.to_ascii_lowercase(), u8::from(!c.is_ascii_lowercase())),
        (None, Some(long)) => long.to_owned(),
        (None, None) => arg.get_id().to_string(),
    }
}

/// Runs one clap_mangen section renderer into `out`; writing to a `Vec` cannot fail.
fn render(out: &mut Vec<u8>, section: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
    section(out).expect("writing to a Vec cannot fail");
}

fn roff(out: &mut Vec<u8>, roff: &Roff) {
    roff.to_writer(out).expect("writing to a Vec cannot fail");
}

/// Longest text line written, in bytes, so the source reads well and `mandoc -T lint`
/// has no style complaint.
const TEXT_WIDTH: usize = 80;

/// Makes the concatenated renders one clean roff document:
/// - every roff render starts with the same preamble (defining the apostrophe string):
///   keep only the first;
/// - clap_mangen separates an option's help from its possible values with `.br`, an
///   empty line and `.br` again, which linters flag: use one `.sp`;
/// - no trailing whitespace, and text lines wrapped at spaces to [`TEXT_WIDTH`], except
///   in `.nf` blocks and `.TP` tags; roff fills them back into paragraphs, so the output
///   is the same;
/// - [`NBSP`] written as roff's unbreakable space (both are two bytes, so the wrapping
///   holds).
fn tidy(out: &[u8]) -> Vec<u8> {
    let preamble = Roff::new().render();
    let text = std::str::from_utf8(out).expect("roff output is UTF-8");
    let body = text.strip_prefix(&preamble).expect("every render starts with the preamble");
    let body = body.replace(&preamble, "").replace("\n.br\n\n.br\n", "\n.sp\n");

    let mut tidy = preamble;
    let mut no_fill = false;
    let mut tag = false;
    for line in body.lines().map(str::trim_end) {
        // The line after `.TP` is the tag and must stay one line.
        let is_tag = std::mem::replace(&mut tag, line == ".TP");
        match line {
            ".nf" => no_fill = true,
            ".fi" => no_fill = false,
            _ => {}
        }
        if no_fill || is_tag || line.starts_with('.') || line.len() <= TEXT_WIDTH {
            tidy.push_str(line);
            tidy.push('\n');
            continue;
        }
        let mut width = 0;
        for word in line.split(' ') {
            if width > 0 && width + 1 + word.len() > TEXT_WIDTH {
                tidy.push('\n');
                width = 0;
            }
            if width > 0 {
                tidy.push(' ');
                width += 1;
            } else if word.starts_with(['.', '\'']) {
                // A line starting with these would be a request, not text.
                tidy.push_str("\\&");
                width += 2;
            }
            tidy.push_str(word);
            width += word.len();
        }
        tidy.push('\n');
    }
    tidy.replace(NBSP, "\\ ").into_bytes()
}

/// Hand-written paragraphs appended to the DESCRIPTION clap_mangen renders from the
/// command's about text.
fn description(page: Page) -> Roff {
    let paragraphs = match page {
        Page::Tchat => TCHAT_DESCRIPTION,
        Page::Serve => SERVE_DESCRIPTION,
        Page::Ctl => CTL_DESCRIPTION,
        Page::Join => JOIN_DESCRIPTION,
    };
    let mut r = Roff::new();
    for text in paragraphs {
        r.control("PP", []).text([roman(*text)]);
    }
    r
}

/// The paragraphs of tchat(1)'s DESCRIPTION, one `.PP` each.
const TCHAT_DESCRIPTION: &[&str] = &[
    "Run one server with tchat serve, then everyone joins it with tchat join \
     HOST. Messages are public unless sent with /msg. A nickname belongs to \
     whoever holds it until they leave, unless it is registered (/register): \
     then only a connection that proves it, with the key tchat join keeps in \
     identity.pem or with a password, may take it. A server may ask every connection for one shared password (--password-file), \
     and whoever knows the operator password (--oper-password-file) becomes an \
     operator in chat with /oper; the server's own user runs the operator \
     commands with tchat ctl.",
    "See tchat-serve(1), tchat-join(1) and tchat-ctl(1) for each command; this \
     page gathers everything in one place.",
];

/// The paragraphs of tchat-serve(1)'s DESCRIPTION, one `.PP` each.
const SERVE_DESCRIPTION: &[&str] = &[
    "The server accepts TCP connections, plain text or TLS on the same port, \
     and relays text lines between them. Every connection gets a unique \
     nickname at once: the one it asks for, or a guest name until it picks \
     one. Joins, leaves and nick changes are announced in the room they \
     happen in.",
    "Everyone starts in the default room (#lobby, or --default-room). A person \
     is in one room at a time: /join #name moves them there, creating the room \
     if needed (at most --max-rooms rooms, the default room included; creating \
     one costs more flood control than a line), and /part brings them back. \
     Public lines and actions reach the sender's room only; private messages \
     reach anyone. Room names are # and 1 to 32 characters under the nick \
     rules, so #Dev and #dev are one room. A room other than the default one \
     disappears, topic and all, with its last member. Nobody who never types a \
     room command notices rooms.",
    "A nickname is 1 to 32 letters of any script, digits, combining marks and \
     the punctuation _ - [ ] { } | ^ \\ `, not starting with - and not only \
     digits. It is kept in its RFC 8266 (PRECIS Nickname) form and compared \
     after NFKC and full case folding, so Alice is alice, and cafe with a \
     combining acute accent is the same nickname as with the precomposed \
     letter. A nickname with invisible characters, one that \
     looks like a nickname online or a reserved name (server, system, tchat, \
     admin, root, operator) by its Unicode TR39 skeleton, or one that mixes \
     scripts that look alike (Latin with Cyrillic or Greek) is refused, with \
     an error that names the rule. A line with nothing visible is not sent.",
    "Each event is shown on standard output as it happens, as HH:MM:SS LEVEL \
     message key=value..., colored when standard output is a terminal. With \
     --save, the events are also appended to a file (see SESSION LOG).",
    "The server is hardened for use on a network it does not trust: lines \
     longer than --max-line are refused, control characters and terminal \
     escape sequences are removed before anything \
     reaches another client or the console, a client that sends too fast is \
     warned and then disconnected, a client that stops reading is disconnected \
     once its send queue is full, and surplus connections are refused with a \
     message (loopback, an SSH tunnel or a local proxy, is not counted by \
     --max-per-ip unless --max-per-ip-exempt leaves it out).",
    "A client's lines may end in LF, CRLF, a bare CR or CR NUL; each ends one \
     line. Telnet command sequences (option negotiation and the like, RFC 854) \
     are removed from what a client sends and never answered, so a telnet \
     client chats like nc. A connection that says nothing is welcomed after \
     300 ms but announced to the others only at its first line or 2 s after it \
     connected: one that closes before that, such as a TCP health check, is \
     logged but never shown as a join and a leave.",
    "Every conversation event has an id, increasing and unique per server; \
     the last --history events of each room (and as many private messages) \
     are kept in memory, a busy room never pushing out a quiet one's, and, \
     with --save, read back from the end of the log on start, so ids continue and history survives a \
     restart. A joining client first gets the last --replay lines, actions \
     and topics of its room (not joins or leaves), marked as history (in text mode with their time, [HH:MM]); /history asks \
     for more. What is sent again at once is at most half of --send-queue in \
     bytes: the newest events that fit, the older ones counted as not shown \
     (or, for a resume, as unavailable). A structured client whose connection is lost keeps its nick, \
     unannounced, for --resume-grace seconds, and can take its session back \
     with the resume token of its welcome and get every event it missed \
     (see docs/protocol.md in the tchat sources).",
    "On SIGINT (Ctrl-C) or SIGTERM, or on SIGHUP when the terminal the server was \
     started from has closed, the server tells every client it is shutting \
     down, flushes and closes every connection and the log, and exits with \
     status 0. Any other SIGHUP (a service manager's reload) reloads the TLS \
     certificate and key and the --motd and --bans files; a user online whom \
     a ban in the reloaded file covers is disconnected as by ban, nobody else \
     is dropped; a file that fails to load keeps its old contents, and the \
     error is logged.",
    "TLS and typed lines share the port: a connection whose first bytes are a \
     TLS ClientHello gets a TLS session, anything else is plain text. Without \
     --tls-cert/--tls-key the server generates a self-signed certificate on \
     first start and keeps it in its state directory; its SHA256 fingerprint is \
     printed at start and by --fingerprint, for clients to compare.",
    "With --password-file, every connection must send /pass PASSWORD as its \
     first line. A wrong password gets one line and a close, and the address \
     must wait before its next attempt; a connection that has not given the \
     password --password-timeout seconds (60) after connecting is closed with \
     one line, so that connections that never authenticate hold no places.",
    "When standard input and output are a terminal, the console is also a \
     command line: the log scrolls above a tchat> prompt where the operator \
     commands are typed (/kick bob spamming), with Tab completion of commands \
     and nicks and a history kept in console_history in the state directory. \
     Ctrl-D, Ctrl-C on an empty line or losing the terminal stops the server \
     as SIGTERM does. Without a terminal, or when started in the background of \
     one (tchat serve &), the console is a plain log.",
    "The operator commands (see OPERATOR COMMANDS) reach a running server \
     at its interactive console and through its control socket, a Unix socket of mode 0600 that only the \
     server's user (and root) may use, with tchat ctl; never through a \
     network port. Users who know the --oper-password-file password become \
     operators in chat with /oper and may kick, ban, mute, /say and set the \
     MOTD; after a wrong /oper password the address must wait before its next \
     attempt, as for --password-file. Bans apply to new connections (address or network) and to nick \
     claims (nick); --bans keeps them across restarts.",
];

/// The paragraphs of tchat-ctl(1)'s DESCRIPTION, one `.PP` each.
const CTL_DESCRIPTION: &[&str] =
    &["tchat ctl sends one operator command to a running tchat serve through \
     its control socket, prints the answer and exits, as birdc or \
     unbound-control do. The words after ctl form the command: tchat ctl \
     kick bob spamming links."];

/// The paragraphs of tchat-join(1)'s DESCRIPTION, one `.PP` each.
const JOIN_DESCRIPTION: &[&str] = &[
    "The client connects to a tchat server, prints every message with a \
     timestamp and a color per nick, and reads your lines with a line editor \
     that has history and Tab completion of commands and nicks. Messages that \
     arrive while you type are printed above the input line, which is left \
     as it was. Lines that mention your nick are highlighted and ring the \
     terminal bell (unless --no-bell).",
    "When standard input or output is not a terminal, tchat join sends each \
     input line as it is, prints incoming events as plain lines and exits at \
     the end of the input, once the server has answered. Scripts can drive it \
     that way.",
    "The client uses TLS unless --plain. A certificate that the system's \
     authorities vouch for is used as is; any other is trusted on first use, \
     as ssh does: the client shows its SHA256 fingerprint and asks (or takes \
     --fingerprint), then pins it in $XDG_DATA_HOME/tchat/known_hosts \
     (~/.local/share/tchat/known_hosts). A different certificate later stops \
     the client with both fingerprints and the known hosts line to delete. \
     Piped, it never asks: it needs a pinned or given fingerprint.",
    "When the connection is lost (not after /quit, a refusal or a kick), the \
     client says so and reconnects, waiting 1 s and doubling up to 60 s \
     between attempts; the line being typed is kept, and /quit or Ctrl-C \
     leaves during the wait. It resumes its session and prints the messages \
     it missed after a marker, then the live stream; replayed messages never \
     ring the bell. --no-reconnect exits instead; piped mode reconnects only \
     with --reconnect.",
];

/// `.TP` entries, one per `(term, description)` pair of a table shared with the program
/// (`/help` answers): the term in bold, the description made a sentence.
fn sentences(r: &mut Roff, entries: &[(&str, &str)]) {
    for (term, text) in entries {
        let mut sentence = text.to_string();
        if let Some(first) = sentence.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        sentence.push('.');
        r.control("TP", []).text([bold(*term)]).text([roman(sentence)]);
    }
}

/// `.TP` entries: a bold term, then its description.
fn terms(r: &mut Roff, entries: &[(&str, &str)]) {
    for (term, text) in entries {
        r.control("TP", []).text([bold(*term)]).text([roman(*text)]);
    }
}

fn operator_commands(r: &mut Roff) {
    r.control("SH", ["OPERATOR COMMANDS"]);
    r.text([roman(
        "Typed at the server's interactive console, given to tchat ctl (the leading / \
         may be left out) or, for kick, ban, unban, bans, mute, unmute, say and motd, \
         typed in chat by an operator. A duration is \
         a number and s, m, h, d or w (90s, 10m, 2h, 7d). An operator in chat may not \
         ban their own nick or address. Everything an operator does \
         is logged with who did it.",
    )]);
    sentences(r, tchat::server::operator::USAGE);
}

fn in_chat_commands(r: &mut Roff) {
    r.control("SH", ["IN-CHAT COMMANDS"]);
    r.text([roman(
        "A line that starts with / is a command, interpreted by the server; any other \
         line is sent to everyone in your room. /help lists the same commands.",
    )]);
    sentences(r, protocol::COMMANDS);
    r.control("PP", []).text([roman(
        "An unknown command or a command with wrong arguments gets an error that shows the \
         right usage; nothing is sent to the others.",
    )]);
}

fn keys(r: &mut Roff) {
    r.control("SH", ["KEYS"]);
    r.text([roman(
        "These keys work in tchat join when standard input and output are terminals. Tab \
         completes a command at the start of the line (/ms becomes /msg), a room after \
         /join, and a nick anywhere (those in your room first); a nick completed at the \
         start of the line gets \": \" after it.",
    )]);
    sentences(r, CLIENT_KEYS);
    r.control("SH", ["CLIENT COMMANDS"]);
    r.text([roman(
        "tchat join keeps these commands to itself; they never reach the server. Both \
         settings are remembered per server (host:port) in \
         $XDG_STATE_HOME/tchat/servers.json (mode 0600). Nicks compare as the server \
         compares them.",
    )]);
    sentences(r, tchat::client::local::CLIENT_COMMANDS);
}

/// One `Public message` line exactly as the server writes it, at a fixed time.
fn example_log_line() -> String {
    let text = "Hello everyone";
    let record = Record {
        ts: "2025-09-26T23:00:05Z".parse().expect("valid timestamp"),
        level: Level::Info,
        msg: "Public message",
        meta: serde_json::json!({
            "from": "MrLaction",
            "len": text.chars().count(),
            "preview": event_log::preview(text),
            "text": text,
        }),
    };
    serde_json::to_string(&record).expect("records always serialise")
}

fn session_log(r: &mut Roff) {
    r.control("SH", ["SESSION LOG"]);
    r.text([
        roman("With "),
        bold("--save"),
        roman(" "),
        italic("FILE"),
        roman(
            ", the server appends every event to FILE as JSON Lines: one JSON object per \
             line, never truncating what the file already holds. For example:",
        ),
    ]);
    r.control("PP", []).control("RS", ["4"]).control("nf", []);
    r.text([roman(example_log_line())]);
    r.control("fi", []).control("RE", []);
    let meta = format!(
        "Its details. A message keeps its sender (from), its length in characters (len), \
         its first {} characters (preview) and its full text, so a session can be \
         reconstructed from the log.",
        event_log::PREVIEW_CHARS
    );
    terms(
        r,
        &[
            (
                "ts",
                "When it happened: an RFC 3339 timestamp in UTC, in whole seconds \
                 (2025-09-26T23:00:05Z), which jq's fromdateiso8601 reads. Events of the \
                 same second keep the order of the file.",
            ),
            ("level", "INFO, WARN or ERROR."),
            ("msg", "What happened, e.g. Connection, Nick set, Public message, Disconnected."),
            ("meta", &meta),
        ],
    );
    r.control("PP", []).text([roman(
        "Each batch of lines is written whole, before the same events reach the console. \
         Only a SIGKILL during a write longer than a page can cut the last line (the kernel \
         stops between pages); the next start on the same file ends that line and logs a \
         warning, so later records stay whole. If the file cannot be written (disk full), \
         the console says so once and the server keeps serving. When FILE is moved or \
         deleted (logrotate(8) without copytruncate, say), the server notices within a \
         second and starts a new FILE at the same path; no signal is needed. A stalled \
         console never costs the file an event: the console skips them and says how many \
         once it moves again; a disk slower than the chat slows the chat instead. jq(1) \
         reads the file as it is.",
    )]);
}

fn files(r: &mut Roff, page: Page) {
    r.control("SH", ["FILES"]);
    if matches!(page, Page::Tchat | Page::Join) {
        client_files(r);
    }
    if matches!(page, Page::Tchat | Page::Serve) {
        server_files(r);
    }
    if page != Page::Join {
        control_socket_file(r);
    }
}

/// FILES entries of tchat join: input history, per-server settings, known hosts.
fn client_files(r: &mut Roff) {
    r.control("TP", []).text([italic("$XDG_STATE_HOME/tchat/history")]);
    r.text([
        roman(
            "The input history of tchat join, kept across runs. It is created with \
                 mode 0600, since it holds private messages. If XDG_STATE_HOME is unset or \
                 not an absolute path, the file is ",
        ),
        italic("~/.local/state/tchat/history"),
        roman(". "),
        bold("--no-history"),
        roman(" neither reads nor writes it."),
    ]);
    r.control("TP", []).text([italic("$XDG_STATE_HOME/tchat/servers.json")]);
    r.text([
        roman("tchat join's settings per server (/ignore and /bell), mode 0600; else "),
        italic("~/.local/state/tchat/servers.json"),
        roman("."),
    ]);
    r.control("TP", []).text([italic("$XDG_STATE_HOME/tchat/identity.pem")]);
    r.text([
        roman(
            "Your identity: a private key and its self-signed certificate, made on first \
                 use (mode 0600) and presented over TLS to prove your registered nicks \
                 (/register). Copy it to back it up or to use your nicks from another \
                 machine; keep it as private as an ssh key. Else ",
        ),
        italic("~/.local/state/tchat/identity.pem"),
        roman("; "),
        bold("--identity"),
        roman(" names another."),
    ]);
    r.control("TP", []).text([italic("$XDG_DATA_HOME/tchat/known_hosts")]);
    r.text([
        roman(
            "The servers' certificate fingerprints tchat join trusts, one HOST:PORT \
                 SHA256:... per line, as ssh keeps host keys; mode 0600. If XDG_DATA_HOME \
                 is unset or not an absolute path, the file is ",
        ),
        italic("~/.local/share/tchat/known_hosts"),
        roman("."),
    ]);
}

/// FILES entries of tchat serve: the generated certificate, console history, --save, --bans.
fn server_files(r: &mut Roff) {
    r.control("TP", []).text([
        italic("STATE/tls-cert.pem"),
        roman(", "),
        italic("STATE/tls-key.pem"),
    ]);
    r.text([
        roman(
            "The self-signed certificate and its key that tchat serve generates on \
                 first start when no ",
        ),
        bold("--tls-cert"),
        roman(" is given, and keeps (directory 0700, files 0600). STATE is "),
        bold("--state-dir"),
        roman(", else "),
        italic("$XDG_STATE_HOME/tchat"),
        roman(", else "),
        italic("~/.local/state/tchat"),
        roman("."),
    ]);
    r.control("TP", []).text([italic("STATE/accounts.jsonl")]);
    r.text([
        roman(
            "The registered nicks, one JSON object per line (nick, the keys' fingerprints, \
                 the password's Argon2id hash, operator or not), rewritten atomically on \
                 every change, mode 0600; ",
        ),
        bold("--accounts"),
        roman(" names another file. A malformed line stops the server from starting."),
    ]);
    r.control("TP", []).text([italic("STATE/console_history")]);
    r.text([roman(
        "The interactive console's command history, mode 0600, in the same STATE \
             directory as the generated certificate.",
    )]);
    r.control("TP", []).text([italic("FILE")]);
    r.text([
        roman("The session log given to tchat serve "),
        bold("--save"),
        roman(
            "; it is opened for appending and created if needed, with mode 0600 (it \
                 holds private messages); an existing file keeps its mode. See SESSION LOG.",
        ),
    ]);
    r.control("TP", []).text([italic("BANS")]);
    r.text([
        roman("The file given to "),
        bold("--bans"),
        roman(
            ": one JSON object per line (kind nick, addr or net; target, as typed to \
                 ban: a nick, 203.0.113.9 or 198.51.100.0/24; until, \
                 null for a permanent ban; reason; by; at), replaced whole on every change \
                 and read again on SIGHUP. Created with mode 0600 (it holds addresses); an \
                 existing file keeps its mode.",
        ),
    ]);
}

/// The control socket's FILES entry, on every page but tchat join's.
fn control_socket_file(r: &mut Roff) {
    r.control("TP", []).text([italic("$XDG_RUNTIME_DIR/tchat/control.sock")]);
    r.text([roman(
        "The control socket, unless --control-socket names another; under systemd \
             $RUNTIME_DIRECTORY/control.sock. tchat ctl falls back to \
             /run/tchat/control.sock, where the systemd unit puts it.",
    )]);
}

fn environment(r: &mut Roff, page: Page) {
    r.control("SH", ["ENVIRONMENT"]);
    let mut vars = Vec::new();
    if page != Page::Ctl {
        // tchat ctl prints the server's answer as it is, without colors.
        vars.push((
            "NO_COLOR",
            "If set to a non-empty value, --color auto (the default) writes no colors.",
        ));
    }
    if page != Page::Join {
        vars.extend([
            ("XDG_RUNTIME_DIR", "Where the control socket goes by default (see FILES)."),
            ("RUNTIME_DIRECTORY", "Set by systemd's RuntimeDirectory=; takes precedence."),
        ]);
    }
    match page {
        Page::Tchat => vars.push((
            "XDG_STATE_HOME",
            "Where the client keeps its history and settings, and the server its generated \
             certificate and console history unless --state-dir is given (see FILES).",
        )),
        Page::Join => vars.push((
            "XDG_STATE_HOME",
            "Where the client keeps its history and settings files (see FILES).",
        )),
        Page::Serve => vars.push((
            "XDG_STATE_HOME",
            "Where the server keeps its generated certificate and its console history, \
             unless --state-dir is given (see FILES).",
        )),
        Page::Ctl => {}
    }
    if matches!(page, Page::Tchat | Page::Join) {
        vars.push(("XDG_DATA_HOME", "Where the client keeps its known hosts file (see FILES)."));
    }
    if page != Page::Ctl {
        vars.push((
            "HOME",
            "Used for the files above when the XDG variables are unset or not absolute.",
        ));
    }
    match page {
        Page::Tchat | Page::Join => vars.push((
            "TERM",
            "Read by the line editor. On a terminal it does not support (TERM=dumb, \
             cons25 or emacs) there is no line editing, history keys or completion.",
        )),
        Page::Serve => vars.push((
            "TERM",
            "Read by the interactive console's line editor. On a terminal it does not \
             support (TERM=dumb, cons25 or emacs) the console is a plain log.",
        )),
        Page::Ctl => {}
    }
    terms(r, &vars);
}

fn exit_status(r: &mut Roff, page: Page) {
    r.control("SH", ["EXIT STATUS"]);
    let success = match page {
        Page::Tchat => {
            "Success: the server was stopped by SIGINT, SIGTERM or SIGHUP (from a closed \
             terminal), or the client left (/quit, Ctrl-D, Ctrl-C on an empty line, or the \
             end of its input) and the server answered."
        }
        Page::Serve => {
            "Success: the server was stopped by SIGINT, SIGTERM, SIGHUP (from a closed \
             terminal), /shutdown or the end of its interactive console's input, or \
             --fingerprint printed the fingerprint."
        }
        Page::Ctl => "The server carried the command out.",
        Page::Join => {
            "Success: you left (/quit, Ctrl-D, Ctrl-C on an empty line, or the end of the \
             input) and the server answered, after every line sent before."
        }
    };
    let failure = match page {
        Page::Tchat => {
            "An error, reported on standard error in one line: for example the address \
             is in use or the log file cannot be opened (serve); the server cannot be \
             reached, refused the connection, ended the session (a kick, a shutdown) or \
             did not answer /quit (join)."
        }
        Page::Serve => {
            "An error, reported on standard error in one line: for example the address \
             is in use or the log file cannot be opened."
        }
        Page::Join => {
            "An error, reported on standard error in one line: the server address is \
             malformed or cannot be reached, the server did not answer the TLS handshake or \
             the hello within 10 seconds, the server refused the connection (full, or the \
             password missing or wrong: the message says what to do), the \
             connection broke, the server ended the session (it closed the connection \
             before you left, an operator kicked you, it disconnected you for excess flood \
             or for not reading, or it shut down, even after your /quit), or it did not answer /quit within 5 seconds of \
             silence."
        }
        Page::Ctl => "The server refused the command; its answer is on standard error.",
    };
    let usage = match page {
        Page::Ctl => "Invalid arguments, or the control socket cannot be reached.",
        _ => "Invalid command-line arguments.",
    };
    terms(r, &[("0", success), ("1", failure), ("2", usage)]);
}

fn examples(r: &mut Roff, page: Page) {
    r.control("SH", ["EXAMPLES"]);
    let serve: &[(&str, &str)] = &[
        (
            "tchat serve --port 5555 --save log.jsonl",
            "Run a server on every IPv4 address, port 5555, and append every event to log.jsonl.",
        ),
        (
            "jq -r 'select(.msg==\"Public message\") | .meta.text' log.jsonl",
            "Print the text of every public message in a session log.",
        ),
        (
            "jq -c 'select((.ts | fromdateiso8601) > now - 3600)' log.jsonl",
            "Print the events of the last hour.",
        ),
    ];
    let join: &[(&str, &str)] = &[
        (
            "tchat join 192.168.0.10 --nick MrLaction",
            "Join the server on 192.168.0.10, port 5555, as MrLaction.",
        ),
        ("tchat join [::1]:6000", "Join a server on an IPv6 address and another port."),
        ("nc 192.168.0.10 5555", "Chat without tchat: the protocol is plain text lines."),
    ];
    let ctl: &[(&str, &str)] = &[
        ("tchat ctl ban 203.0.113.0/24 2h flooding", "Ban a network for two hours."),
        ("tchat ctl kick bob \"that's enough\"", "Disconnect bob, telling everyone why."),
    ];
    if matches!(page, Page::Tchat | Page::Serve) {
        terms(r, serve);
    }
    if matches!(page, Page::Tchat | Page::Join) {
        terms(r, join);
    }
    if matches!(page, Page::Tchat | Page::Ctl) {
        terms(r, ctl);
    }
}

fn see_also(r: &mut Roff, page: Page) {
    r.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<(&str, &str)> =
        Page::ALL.into_iter().filter(|&p| p != page).map(|p| (p.name(), "1")).collect();
    refs.extend([("nc", "1"), ("jq", "1")]);
    let mut line: Vec<Inline> = Vec::new();
    for (i, (name, section)) in refs.into_iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(bold(name));
        line.push(roman(format!("({section})")));
    }
    r.text(line);
    r.control("PP", []).text([roman(
        "docs/protocol.md in the tchat sources describes the wire protocol, for writing \
         other clients.",
    )]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the child process of [`renders_depend_on_the_sources_alone`]: where it
    /// writes its render.
    const RENDER_CHILD: &str = "TCHAT_DOCS_RENDER_TO";

    /// Every generated file in one byte string, for comparing two renders.
    fn render_all() -> Vec<u8> {
        let mut all = Vec::new();
        for file in generated_files() {
            all.extend_from_slice(format!("{} {}\n", file.path, file.contents.len()).as_bytes());
            all.extend_from_slice(&file.contents);
        }
        all
    }

    /// A render depends on the sources alone: this test binary, run again as a child
    /// process with another terminal width, locale, time zone and home, renders the same
    /// bytes. A date, the terminal's width (clap wraps help to it), the locale or a
    /// per-process random order (a `HashMap`'s) would each show as a difference. The
    /// committed files are compared with a render in `tests/generated.rs`; this test
    /// catches what would differ only on another machine or another day.
    #[test]
    fn renders_depend_on_the_sources_alone() {
        if let Some(path) = std::env::var_os(RENDER_CHILD) {
            std::fs::write(path, render_all()).expect("writing the child's render");
            return;
        }
        let path = std::env::temp_dir().join(format!("tchat-docs-render-{}", std::process::id()));
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "render::tests::renders_depend_on_the_sources_alone"])
            .args(["--test-threads", "1", "--nocapture"])
            .env(RENDER_CHILD, &path)
            .env("COLUMNS", "37")
            .env("LINES", "10")
            .env("LC_ALL", "de_DE.UTF-8")
            .env("LANG", "tr_TR.UTF-8")
            .env("TZ", "Pacific/Kiritimati")
            .env("HOME", "/nonexistent")
            .env("TERM", "dumb")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("re-running the test binary");
        assert!(status.success(), "the child render failed: {status:?}");
        let child = std::fs::read(&path).expect("the child's render");
        let _ = std::fs::remove_file(&path);
        let here = render_all();
        if child != here {
            let at = child.iter().zip(&here).position(|(a, b)| a != b).unwrap_or(0);
            let show = |b: &[u8]| {
                String::from_utf8_lossy(&b[at.saturating_sub(80)..(at + 80).min(b.len())])
                    .into_owned()
            };
            panic!(
                "renders differ at byte {at}:\nhere:  {:?}\nchild: {:?}",
                show(&here),
                show(&child)
            );
        }
    }

    #[test]
    fn every_man_page_lists_the_in_chat_commands_it_should() {
        for page in [Page::Tchat, Page::Join] {
            let text = String::from_utf8(man_page(page)).unwrap();
            for (usage, _) in protocol::COMMANDS {
                assert!(text.contains(&usage.replace('-', "\\-")), "{usage} missing");
            }
        }
    }

    /// tchat(1) once said the server keeps no password (wrong since --password-file and
    /// /oper) and sent readers only to tchat-serve(1) and tchat-join(1).
    #[test]
    fn the_overview_page_names_the_passwords_and_every_other_page() {
        let text = String::from_utf8(man_page(Page::Tchat)).unwrap();
        // One line: the roff source wraps its lines anywhere.
        let description = text.split(".SH OPTIONS").next().unwrap();
        let description = description.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(!description.contains("no account or password"), "{description}");
        for needle in ["\\-\\-password\\-file", "\\-\\-oper\\-password\\-file", "/oper"] {
            assert!(description.contains(needle), "{needle} missing:\n{description}");
        }
        for page in [Page::Serve, Page::Join, Page::Ctl] {
            let reference = format!("{}(1)", page.name().replace('-', "\\-"));
            assert!(description.contains(&reference), "{reference} missing:\n{description}");
        }
    }

    #[test]
    fn the_log_example_is_a_real_log_line() {
        let v: serde_json::Value = serde_json::from_str(&example_log_line()).unwrap();
        assert_eq!(v["ts"], "2025-09-26T23:00:05Z");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["meta"]["from"], "MrLaction");
    }
}
