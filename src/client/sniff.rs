//! What answered when the TLS handshake failed: the first bytes the other end sent, kept
//! while the handshake reads them, so that an SSH server, a web server or a tchat server
//! without TLS is named for what it is instead of "an older server without TLS" for all.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::clean::Clean;

/// Most bytes kept of what the other end sent first: a banner line fits.
pub const KEPT: usize = 128;

/// A stream that keeps a copy of the first [`KEPT`] bytes read from it.
pub struct Sniffed<S> {
    inner: S,
    heard: Heard,
}

/// The bytes a [`Sniffed`] stream read first, readable after the stream is gone.
#[derive(Clone, Default)]
pub struct Heard(Arc<Mutex<Vec<u8>>>);

impl Heard {
    /// Wraps `inner`; what it reads is kept here.
    pub fn sniff<S>(&self, inner: S) -> Sniffed<S> {
        Sniffed { inner, heard: self.clone() }
    }

    /// The first line heard (up to [`KEPT`] bytes), if it is text: a banner. `None`
    /// when nothing came, or bytes that are no text (TLS records, for one).
    pub fn banner(&self) -> Option<Clean<String>> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
        let text = !line.is_empty() && !line.chars().any(|c| c.is_control() && c != '\t');
        text.then(|| Clean::text(line))
    }
}

/// What kind of server sends `banner` first, when the banner says: `None` for a line
/// that names nothing known.
pub fn service(banner: &str) -> Option<&'static str> {
    if banner.starts_with("SSH-") {
        Some("an SSH server")
    } else if banner.starts_with("HTTP/") {
        Some("a web server")
    } else if banner.starts_with("*** ") || banner.starts_with("!!! ") {
        Some(TCHAT_WITHOUT_TLS)
    } else {
        None
    }
}

/// What [`service`] calls a tchat server that answered in text where TLS was expected.
pub const TCHAT_WITHOUT_TLS: &str = "a tchat server without TLS";

impl<S: AsyncRead + Unpin> AsyncRead for Sniffed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let mut kept = self.heard.0.lock().unwrap_or_else(|e| e.into_inner());
        let room = KEPT.saturating_sub(kept.len());
        let new = &buf.filled()[before..];
        kept.extend_from_slice(&new[..new.len().min(room)]);
        polled
    }
}

super::write_through::write_through!(Sniffed);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_banner_names_the_service() {
        assert_eq!(service("SSH-2.0-OpenSSH_9.6"), Some("an SSH server"));
        assert_eq!(service("HTTP/1.1 400 Bad Request"), Some("a web server"));
        assert_eq!(service("*** Welcome"), Some(TCHAT_WITHOUT_TLS));
        assert_eq!(service("220 mail.example ESMTP"), None);
        let heard = Heard::default();
        heard.0.lock().unwrap().extend_from_slice(b"SSH-2.0-x\r\nmore");
        assert_eq!(heard.banner().as_deref().map(String::as_str), Some("SSH-2.0-x"));
        let alert = Heard::default();
        alert.0.lock().unwrap().extend_from_slice(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
        assert_eq!(alert.banner(), None);
        assert_eq!(Heard::default().banner(), None);
    }
}
