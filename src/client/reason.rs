//! Why a connection ended or an attempt failed, in a few words for the reconnect notice
//! (`Connection lost (REASON); reconnecting in 1.0 s …`) and the exit line.
//!
//! The errors come from the OS (`std::io`) and from rustls through tokio-rustls, whose
//! texts are written for developers: rustls's missing `close_notify` reads `peer closed
//! connection without sending TLS close_notify: https://docs.rs/…`. The common kinds get
//! a short human reason here, in one place; any other text keeps its words but loses
//! its links.

use std::io::{self, ErrorKind};

use super::ClientError;
use super::connect::{SETUP_TIMEOUT, Step};
use crate::auth::{PASSWORD_REQUIRED, PASSWORD_WRONG};
use crate::server::access::PLAINTEXT_REFUSED;

/// The reason `error` ended a session or failed an attempt, without links or the words
/// "connection lost" (the notice that shows it says that already).
pub fn why(error: &ClientError) -> String {
    match error {
        ClientError::Closed => "the server closed the connection".into(),
        ClientError::NoWelcome { .. } => {
            "the server closed the connection before its welcome".into()
        }
        ClientError::Lost(e) | ClientError::Connect { source: e, .. } => io_reason(e),
        ClientError::Tls { source, .. } => format!("TLS failed: {}", io_reason(source)),
        ClientError::Unanswered { step, .. } => {
            let what = match step {
                Step::Tls => "the TLS handshake",
                Step::Hello => "the hello",
            };
            format!("no answer to {what} within {} s", SETUP_TIMEOUT.as_secs())
        }
        other => without_links(&other.to_string()),
    }
}

/// A short reason for an I/O error: the kinds a dropped connection shows as words, any
/// other as its text without links.
pub fn io_reason(e: &io::Error) -> String {
    // tokio-rustls hands rustls's errors over inside an `InvalidData` I/O error.
    if let Some(rustls::Error::InvalidMessage(_)) =
        e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        // Bytes that are no TLS record: an SSH banner, an HTTP answer, a tchat server's
        // text mode from before TLS.
        return "the server did not answer in TLS".into();
    }
    let words = match e.kind() {
        // rustls: the peer closed without close_notify; also a TCP end mid-handshake.
        ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe | ErrorKind::WriteZero => {
            "the server closed the connection"
        }
        ErrorKind::ConnectionReset => "the connection was reset",
        ErrorKind::ConnectionAborted => "the connection was aborted",
        // Nothing listens on that port: the server is not running, or it is another port.
        ErrorKind::ConnectionRefused => {
            "connection refused: no server listens on that port (not started, or another port?)"
        }
        ErrorKind::TimedOut => "timed out",
        ErrorKind::HostUnreachable => "the host is unreachable",
        ErrorKind::NetworkUnreachable | ErrorKind::NetworkDown => "the network is unreachable",
        ErrorKind::AddrNotAvailable => "no route to the server's address",
        _ => return without_links(&e.to_string()),
    };
    words.into()
}

/// What to add to "TLS with HOST failed: REASON" for `source`, said in [`io_reason`]'s
/// words: what the failure suggests, and what to do. Bytes that are no TLS and no text
/// (a banner is named by [`super::sniff`]) may be a tchat server without TLS; a close
/// during the handshake is a server that turned the connection away.
pub fn tls_hint(source: &io::Error) -> &'static str {
    match io_reason(source).as_str() {
        "the server did not answer in TLS" => {
            " (not a TLS server; if it is a tchat server without TLS, connect with --plain)"
        }
        "the server closed the connection" | "the connection was reset" => {
            " during the handshake (not a tchat server, or one that turns this address away: \
             check the host and port, or ask its operator)"
        }
        _ => "",
    }
}

/// Whether the server's refusal before the welcome (`line`, its `!!!` line) asks to
/// try again later (a full server), rather than saying no.
pub fn try_later(line: &str) -> bool {
    line.starts_with("!!! ") && line.ends_with("try again later")
}

/// What to do about the server's refusal before the welcome (`line`, its `!!!` line,
/// already shown), when it is about the password: the server's words are for any client
/// (`send /pass PASSWORD first`), not for `tchat join`, which gives the password from
/// `--password-file` (`from_file`) or asks for it on a terminal. `None` for any other
/// refusal, and for a wrong password typed at the prompt: the line says it all.
pub fn refusal_hint(line: &str, from_file: bool) -> Option<&'static str> {
    let said = line.strip_prefix("!!! ")?;
    if said == PASSWORD_REQUIRED {
        Some("use --password-file FILE (or run on a terminal to be asked)")
    } else if said == PLAINTEXT_REFUSED {
        Some("it only accepts TLS: connect without --plain")
    } else if said == PASSWORD_WRONG && from_file {
        Some("the password was refused (check --password-file)")
    } else {
        None
    }
}

/// A line from the server before the welcome, as `tchat join` shows it: the refusal of
/// a plain connection names the clients to use instead, `tchat join` among them, which
/// is no advice to a `tchat join` user; its first clause is kept (the hint says what to
/// do, see [`refusal_hint`]).
pub fn for_tchat_join(line: &str) -> &str {
    match line.strip_prefix("!!! ") {
        Some(said) if said == PLAINTEXT_REFUSED => {
            let end = "!!! ".len() + said.find(':').unwrap_or(said.len());
            &line[..end]
        }
        _ => line,
    }
}

/// `text` with every `http://` or `https://` link left out, along with the `: ` or
/// ` (` that introduced it.
fn without_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("http://").or_else(|| rest.find("https://")) {
        let before = rest[..at].trim_end_matches([' ', ':', '(']);
        out.push_str(before);
        let link_end = rest[at..].find([' ', ')']).map_or(rest.len(), |n| at + n);
        rest = rest[link_end..].strip_prefix(')').unwrap_or(&rest[link_end..]);
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_eof_is_the_server_closing_without_its_link() {
        let e = io::Error::new(
            ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify: \
             https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof",
        );
        assert_eq!(why(&ClientError::Lost(e)), "the server closed the connection");
        assert_eq!(why(&ClientError::Closed), "the server closed the connection");
        let reset = io::Error::from(ErrorKind::ConnectionReset);
        assert_eq!(why(&ClientError::Lost(reset)), "the connection was reset");
    }

    #[test]
    fn a_refusal_for_the_password_says_how_to_give_it() {
        let required = format!("!!! {PASSWORD_REQUIRED}");
        assert!(refusal_hint(&required, false).unwrap().contains("--password-file FILE"));
        let wrong = format!("!!! {PASSWORD_WRONG}");
        assert!(refusal_hint(&wrong, true).unwrap().contains("check --password-file"));
        assert_eq!(refusal_hint(&wrong, false), None);
        assert_eq!(refusal_hint("!!! the server is full", true), None);
        assert_eq!(refusal_hint(PASSWORD_REQUIRED, false), None);
        let plain = format!("!!! {PLAINTEXT_REFUSED}");
        assert_eq!(
            refusal_hint(&plain, false),
            Some("it only accepts TLS: connect without --plain")
        );
        assert_eq!(for_tchat_join(&plain), "!!! this server only accepts TLS");
        assert_eq!(for_tchat_join("!!! the server is full"), "!!! the server is full");
    }

    #[test]
    fn bytes_that_are_no_tls_are_said_to_be_so() {
        let corrupt = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let e = io::Error::new(ErrorKind::InvalidData, corrupt);
        assert_eq!(io_reason(&e), "the server did not answer in TLS");
        let other = io::Error::new(ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert_eq!(io_reason(&other), "cannot decrypt peer's message");
    }

    #[test]
    fn other_texts_keep_their_words_but_lose_their_links() {
        let e = io::Error::other("odd failure: https://example.org/why#x");
        assert_eq!(io_reason(&e), "odd failure");
        assert_eq!(without_links("a (https://x.y/z) b"), "a b");
        assert_eq!(without_links("no link here"), "no link here");
        let target = super::super::Target::parse("127.0.0.1", 9).unwrap();
        let source = io::Error::from(ErrorKind::UnexpectedEof);
        let tls = ClientError::Tls { target, source, banner: None };
        assert_eq!(why(&tls), "TLS failed: the server closed the connection");
    }
}
