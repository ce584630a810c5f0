//! Opening a session: TCP, then TLS with trust on first use (unless `--plain`), then the
//! password and the hello, up to the server's first line. Done before the line editor
//! starts, so the trust question and the password prompt own the terminal.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::ClientError;
use super::identity::{self, Identity};
use super::password;
use super::sniff::Heard;
use super::tls::{self, Outcome, Trusted};
use super::trust;
use crate::auth::{PASSWORD_NOT_NEEDED, PASSWORD_REQUIRED, Password};
use crate::cli::JoinArgs;
use crate::fingerprint::Fingerprint;

use super::servers::Endpoint;
use super::target::Target;

/// How long opening a session may take, from the TCP connect to the server's first
/// line (its welcome or its refusal), not counting the time the user spends on the
/// trust question or the password prompt. A tchat server answers within its hello window
/// (300 ms); this bound is for a server that accepted the connection and then hangs, or
/// a listener that is no tchat server, which would otherwise be waited for forever.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The step of opening a session that the server did not answer within
/// [`SETUP_TIMEOUT`] (the TCP connect's own timeout is a [`ClientError::Connect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The TCP connection is open, the TLS handshake got no answer.
    Tls,
    /// The hello was sent, no line came back.
    Hello,
}

/// A byte stream to the server, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open session: the stream, and what the server sent while it was opened (its first
/// line, which the session shows first).
pub struct Opened {
    pub stream: Prefixed<Box<dyn Io>>,
    /// The certificate's fingerprint when it was trusted by one (pinned, given, accepted
    /// at the question), not by an authority: the other addresses of the chat are
    /// expected to show the same one.
    pub fingerprint: Option<Fingerprint>,
}

/// Connects to `endpoint`, secures, authenticates and says hello; `interactive`:
/// questions and the password prompt may use the terminal. `chat`: the fingerprint this
/// run trusted at another address of the same chat, trusted (and pinned) at this one too
/// unless it has a pin of its own.
///
/// `password` is the one to give: read from `--password-file` when it is `None`, and
/// set to the one typed at the prompt, so that the caller can keep it (in memory only)
/// for reconnecting.
pub async fn open(
    endpoint: &Endpoint,
    args: &JoinArgs,
    (hello, interactive): (&[String], bool),
    password: &mut Option<Password>,
    chat: Option<Fingerprint>,
) -> Result<Opened, ClientError> {
    let target = &endpoint.target;
    if password.is_none()
        && let Some(path) = &args.password_file
    {
        *password = Some(Password::read_file(path).map_err(ClientError::Io)?);
    }
    let mut trust = TrustInputs::load(target, args, chat)?;
    // Passwords typed at the prompt so far: a wrong one is asked for again, up to
    // password::TRIES.
    let mut typed = 0;
    loop {
        let mut deadline = Instant::now() + SETUP_TIMEOUT;
        let (mut stream, fingerprint) =
            secure(endpoint, args, &mut trust, interactive, &mut deadline).await?;
        let mut lines = Vec::with_capacity(hello.len() + 1);
        lines.extend(password.as_ref().map(Password::pass_line));
        lines.extend(hello.iter().cloned());
        let mut out = lines.join("\n");
        out.push('\n');
        let answer = async {
            stream.write_all(out.as_bytes()).await.map_err(ClientError::Lost)?;
            stream.flush().await.map_err(ClientError::Lost)?;
            first_line(&mut stream).await
        };
        let unanswered = || ClientError::Unanswered { target: target.clone(), step: Step::Hello };
        let mut first = match timeout_at(deadline, answer).await.map_err(|_| unanswered())? {
            // Reset before a word: no session was lost, none was ever had.
            Err(ClientError::Lost(_)) => {
                let (target, tls) = (target.clone(), !args.plain);
                return Err(ClientError::NoWelcome { target, tls, banner: None });
            }
            answered => answered?,
        };
        if password.is_some() {
            skip_line(&mut first, &format!("*** {PASSWORD_NOT_NEEDED}"));
        }
        let asks_password = first.starts_with(format!("!!! {PASSWORD_REQUIRED}").as_bytes());
        if asks_password && password.is_none() && interactive {
            *password = Some(password::prompt(target)?);
            typed += 1;
            continue;
        }
        if typed > 0 && typed < password::TRIES && password::refused_as_wrong(&first) {
            eprintln!("{}", password::TRY_AGAIN);
            *password = Some(password::prompt(target)?);
            typed += 1;
            continue;
        }
        let stream = Prefixed { prefix: first, pos: 0, inner: stream };
        return Ok(Opened { stream, fingerprint });
    }
}

/// Reads until the first line end (or the end of the stream); returns all bytes read.
async fn first_line(stream: &mut Box<dyn Io>) -> Result<Vec<u8>, ClientError> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.contains(&b'\n') {
        let n = stream.read(&mut buf).await.map_err(ClientError::Lost)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

/// Drops the first line of `bytes` if it is `line` (with its line end): the server's
/// answer to a `/pass` it did not need, which the user did not ask for.
fn skip_line(bytes: &mut Vec<u8>, line: &str) {
    let Some(rest) = bytes.strip_prefix(line.as_bytes()) else { return };
    let end = match rest {
        [b'\n', ..] => 1,
        [b'\r', b'\n', ..] => 2,
        _ => return,
    };
    bytes.drain(..line.len() + end);
}

/// What decides whether a certificate is trusted: the fingerprint given, the one the
/// user accepted at the trust question, and the known hosts file with this server's pin.
struct TrustInputs {
    host: String,
    path: Option<PathBuf>,
    pin: Option<trust::Pin>,
    /// From `--fingerprint`: a mismatch with it is most likely a typo, and is told as one.
    given: Option<Fingerprint>,
    /// The fingerprint the user said yes to at the trust question, for the handshake
    /// that follows; a mismatch with it is the loud warning, as with a pin.
    accepted: Option<Fingerprint>,
    /// The fingerprint trusted at another address of this chat during this run: the
    /// nodes of one chat share a certificate, so that trust holds whichever answers.
    chat: Option<Fingerprint>,
}

impl TrustInputs {
    fn load(
        target: &Target,
        args: &JoinArgs,
        chat: Option<Fingerprint>,
    ) -> Result<TrustInputs, ClientError> {
        let host = target.to_string();
        let path = trust::default_path();
        let pin = match (&path, args.plain) {
            (Some(path), false) => trust::find(&trust::read(path).map_err(ClientError::Io)?, &host),
            _ => None,
        };
        Ok(TrustInputs { host, path, pin, given: args.fingerprint, accepted: None, chat })
    }

    fn expected(&self) -> Option<Fingerprint> {
        self.given.or(self.accepted).or(self.pin.map(|p| p.fingerprint)).or(self.chat)
    }

    /// Pins `fp` unless it is pinned already.
    fn remember(&mut self, fp: Fingerprint) -> Result<(), ClientError> {
        if self.pin.is_some_and(|p| p.fingerprint == fp) {
            return Ok(());
        }
        let path = self.path.as_ref().ok_or_else(|| {
            ClientError::Trust("cannot pin the certificate: set HOME or XDG_DATA_HOME".into())
        })?;
        trust::pin(path, &self.host, fp).map_err(ClientError::Io)?;
        self.pin = trust::find(&trust::read(path).map_err(ClientError::Io)?, &self.host);
        Ok(())
    }

    /// The refusal of a certificate that is not the expected one: a plain "does not
    /// match" for a fingerprint from the command line (most likely mistyped), the loud
    /// warning for a pinned or just accepted one, which an attacker could be behind.
    fn mismatch(&self, seen: Fingerprint) -> ClientError {
        let offered = ("the server offered:", seen);
        if let Some(given) = self.given {
            return ClientError::Trust(format!(
                "the server's fingerprint does not match the one given with --fingerprint; \
                 not connecting to {}\n{}\
                 Check the fingerprint with the server's operator (tchat serve --fingerprint).",
                self.host,
                aligned(&[("given with --fingerprint:", given), offered])
            ));
        }
        let path = self.path.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
        let (expected, forget) = match (self.accepted, self.pin) {
            (Some(accepted), _) => (("accepted just now:", accepted), String::new()),
            (None, Some(pin)) => (
                ("pinned in known hosts:", pin.fingerprint),
                format!(
                    "\nIf the operator confirms the new fingerprint, forget the old one by \
                     deleting line {} of {path}\n  ({} {}), and connect again.",
                    pin.line, self.host, pin.fingerprint
                ),
            ),
            (None, None) => {
                let chat = self.chat.expect("a mismatch needs an expected fingerprint");
                (
                    ("another address of this chat showed:", chat),
                    "\nThe servers of one chat share one certificate; ask the operator.".into(),
                )
            }
        };
        ClientError::Trust(format!(
            "WARNING: THE SERVER'S CERTIFICATE HAS CHANGED, refusing to connect to {}\n{}\
             Someone may be intercepting the connection, or the server has a new certificate.\
             {forget}",
            self.host,
            aligned(&[expected, offered])
        ))
    }
}

/// Labelled fingerprints, one a line, indented by two, the fingerprints in one column
/// so that two can be compared by eye.
fn aligned(rows: &[(&str, Fingerprint)]) -> String {
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    rows.iter().map(|(label, fp)| format!("  {label:<width$} {fp}\n")).collect()
}

/// The TCP connection to `endpoint`, by `deadline`.
async fn tcp(endpoint: &Endpoint, deadline: Instant) -> Result<TcpStream, ClientError> {
    let target = &endpoint.target;
    let attempt = TcpStream::connect(endpoint.addr);
    let result = match timeout_at(deadline, attempt).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out")),
    };
    let stream =
        result.map_err(|source| ClientError::Connect { target: target.clone(), source })?;
    // Best effort: a socket without these options still chats.
    let _ = crate::net::tune(&stream);
    Ok(stream)
}

/// The TCP connection, secured with TLS unless `--plain`, by `deadline`, and the
/// fingerprint the certificate was trusted by (none for an authority's); a trust
/// question answered on the terminal moves the deadline to [`SETUP_TIMEOUT`] after the
/// answer, for the connection made again.
async fn secure(
    endpoint: &Endpoint,
    args: &JoinArgs,
    trust: &mut TrustInputs,
    interactive: bool,
    deadline: &mut Instant,
) -> Result<(Box<dyn Io>, Option<Fingerprint>), ClientError> {
    let target = &endpoint.target;
    // Set up (the identity read or made, the roots loaded) before connecting: the server
    // takes a connection that says nothing for its hello window for a plain-text one.
    let prepared = match args.plain {
        true => None,
        false => Some(prepare_tls(target, args, trust)?),
    };
    let tcp = tcp(endpoint, *deadline).await?;
    let Some(prepared) = prepared else {
        // Once per run: on a reconnect it would land on stderr across the line editor.
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            eprintln!("tchat: connecting without TLS (--plain): the network can read this chat");
        });
        return Ok((Box::new(tcp), None));
    };
    // What the server sent instead of TLS names it, if the handshake fails.
    let heard = Heard::default();
    let sniffed = heard.sniff(tcp);
    let handshake = tls::handshake(prepared, sniffed);
    let handshake = timeout_at(*deadline, handshake);
    let unanswered = || ClientError::Unanswered { target: target.clone(), step: Step::Tls };
    match handshake.await.map_err(|_| unanswered())? {
        Outcome::Connected(stream, Trusted::ByAuthority) => Ok((stream, None)),
        Outcome::Connected(stream, Trusted::ByFingerprint(fp)) => {
            trust.remember(fp)?;
            Ok((stream, Some(fp)))
        }
        Outcome::Failed(source) => {
            Err(ClientError::Tls { target: target.clone(), source, banner: heard.banner() })
        }
        Outcome::Untrusted(seen) if trust.expected().is_some() => Err(trust.mismatch(seen)),
        Outcome::Untrusted(seen) if interactive && ask_to_trust(&trust.host, seen)? => {
            trust.accepted = Some(seen);
            *deadline = Instant::now() + SETUP_TIMEOUT;
            Box::pin(secure(endpoint, args, trust, interactive, deadline)).await
        }
        Outcome::Untrusted(seen) if interactive => Err(ClientError::Trust(format!(
            "not connecting: the certificate of {} ({seen}) was not trusted",
            trust.host
        ))),
        Outcome::Untrusted(seen) => Err(ClientError::Trust(format!(
            "the certificate of {} is not known: its fingerprint is {seen}\n\
             Check it with the server's operator (tchat serve --fingerprint), then connect \
             with --fingerprint {seen}, or once from a terminal to be asked.",
            trust.host
        ))),
    }
}

/// The TLS setup for `target`: the trust inputs' expected fingerprint and this
/// client's identity.
fn prepare_tls(
    target: &Target,
    args: &JoinArgs,
    trust: &TrustInputs,
) -> Result<tls::Prepared, ClientError> {
    let identity = identity(args)?;
    tls::prepare(&target.host, trust.expected(), identity.as_ref())
        .map_err(|source| ClientError::Tls { target: target.clone(), source, banner: None })
}

/// The identity to present: `--identity FILE`, else the state directory's, made on
/// first use (a user at a terminal is told where, once; a script's stderr stays
/// quiet); none without a state directory.
fn identity(args: &JoinArgs) -> Result<Option<Identity>, ClientError> {
    let Some(path) = identity::path(args.identity.as_deref()) else { return Ok(None) };
    let (identity, created) =
        Identity::load_or_create(&path).map_err(|e| ClientError::Identity(e.to_string()))?;
    if created && std::io::stderr().is_terminal() {
        eprintln!(
            "tchat: made your identity (a key and its certificate) in {}; it proves your \
             registered nicks (/register): back it up, or copy it to your other machines",
            path.display()
        );
    }
    Ok(Some(identity))
}

/// Asks on the terminal whether to trust an unknown certificate, as ssh does.
fn ask_to_trust(host: &str, seen: Fingerprint) -> Result<bool, ClientError> {
    let mut err = std::io::stderr();
    let question = format!(
        "The certificate of {host} is not signed by an authority this system trusts.\n\
         Its fingerprint is {seen}.\n\
         Compare it with the one the operator gives (tchat serve --fingerprint).\n\
         Trust it and connect (yes/no)? "
    );
    let mut ask = question.as_str();
    for _ in 0..TRUST_ASKS {
        err.write_all(ask.as_bytes()).and_then(|()| err.flush()).map_err(ClientError::Io)?;
        let mut answer = String::new();
        let read = std::io::stdin().lock().read_line(&mut answer).map_err(ClientError::Io)?;
        if read == 0 {
            return Ok(false); // the end of input: nobody to answer
        }
        if let Some(yes) = trust_answer(&answer) {
            return Ok(yes);
        }
        ask = "Please type yes or no: ";
    }
    Ok(false)
}

/// How many times the trust question is asked before an unclear answer counts as no.
const TRUST_ASKS: usize = 3;

/// `Some(true)` for yes, `Some(false)` for no (`y`, `n`, any case), `None` for anything
/// else: a question about trust is not answered by a typo.
fn trust_answer(answer: &str) -> Option<bool> {
    match answer.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" => Some(true),
        "no" | "n" => Some(false),
        _ => None,
    }
}

/// A stream that first yields bytes already read from it.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            if self.pos == self.prefix.len() {
                self.prefix = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

super::write_through::write_through!(Prefixed);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trust_question_takes_yes_or_no_only() {
        assert_eq!(trust_answer("Y\n"), Some(true));
        assert_eq!(trust_answer(" yes "), Some(true));
        assert_eq!(trust_answer("NO\n"), Some(false));
        for unclear in ["maybe", "", "yess", "ja"] {
            assert_eq!(trust_answer(unclear), None, "{unclear}");
        }
    }

    #[test]
    fn a_changed_pin_is_the_loud_warning_with_both_fingerprints_aligned() {
        let (old, new) = (Fingerprint::of(b"old"), Fingerprint::of(b"new"));
        let trust = TrustInputs {
            host: "chat.lan:5555".into(),
            path: Some("/k/known_hosts".into()),
            pin: Some(trust::Pin { fingerprint: old, line: 3 }),
            given: None,
            accepted: None,
            chat: None,
        };
        let text = trust.mismatch(new).to_string();
        let expected = format!(
            "WARNING: THE SERVER'S CERTIFICATE HAS CHANGED, refusing to connect to chat.lan:5555\n  \
             pinned in known hosts: {old}\n  \
             the server offered:    {new}\n\
             Someone may be intercepting the connection, or the server has a new certificate.\n\
             If the operator confirms the new fingerprint, forget the old one by deleting line 3 \
             of /k/known_hosts\n  (chat.lan:5555 {old}), and connect again."
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn only_a_whole_first_line_is_skipped() {
        let mut bytes = b"*** a\r\n{\"type\":\"welcome\"}\n".to_vec();
        skip_line(&mut bytes, "*** a");
        assert_eq!(bytes, b"{\"type\":\"welcome\"}\n");
        for kept in [&b"*** ab\n"[..], b"*** a", b"x\n*** a\n"] {
            let mut bytes = kept.to_vec();
            skip_line(&mut bytes, "*** a");
            assert_eq!(bytes, kept);
        }
    }
}
