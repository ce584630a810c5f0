//! One connection's session, the heart of the connection core ([`super::core`] runs one
//! per connection): it sends the hello, then passes the server's lines to the core and
//! the user's lines to the server, until either side ends it.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;

use super::outgoing::{Outgoing, Pace};
use super::{ClientError, Input};
use crate::framing::{Line, LineBuffer};

/// How long the server may stay silent after `/quit` before the client gives up on its
/// goodbye. Counted from the last thing it sent: a server that delays a long paste (its
/// flood control) answers the lines before the `/quit` first, one by one.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the client goes on reading after a write to the server failed: the server
/// may have said why it ended the connection.
const READ_AFTER_WRITE_FAILED: Duration = Duration::from_secs(2);

/// Longest line accepted from the server. Far above any event it sends; it only stops
/// a broken or hostile server from growing the buffer without end.
const MAX_SERVER_LINE: usize = 1 << 20;

/// What the client answers one line from the server with.
#[derive(Debug, Default)]
pub(super) struct Answers {
    /// Lines to send: after a welcome, the `/join` back and the lines typed while
    /// offline; a `/nick` taking the user's nick back.
    pub(super) lines: Vec<String>,
    /// Set by the welcome: the pace the server's flood control asks for.
    pub(super) pace: Option<Pace>,
}

/// The connection loop: sends what `out` holds (the hello), then passes every line from
/// the server to `on_line` (which may add lines to send in answer, and set the pace)
/// and every input line to the server, until the server closes the connection.
/// `leave` resolving counts as the user leaving. Ok when the user left and the server
/// closed the connection after taking everything, the `/quit` included.
///
/// Reading never waits for writing (see [`Outgoing`]), and a failed write ends the
/// session only after what the server sent before it closed has been read and shown,
/// for up to [`READ_AFTER_WRITE_FAILED`].
///
/// The input channel is borrowed: it outlives the session, for the next one.
pub(super) async fn session(
    stream: impl AsyncRead + AsyncWrite,
    out: Outgoing,
    input: &mut UnboundedReceiver<Input>,
    mut on_line: impl FnMut(Line<'_>, &mut Answers),
    leave: impl std::future::Future<Output = ()>,
) -> SessionEnd {
    let mut quitting = false;
    let result = session_loop(stream, out, input, &mut on_line, leave, &mut quitting).await;
    SessionEnd { result, quitting }
}

/// How a session ended, and whether the user had asked to leave.
#[derive(Debug)]
pub(super) struct SessionEnd {
    pub(super) result: Result<(), ClientError>,
    pub(super) quitting: bool,
}

// Over 60 lines: the session's one `select!` (read, write, leave, input, deadline), whose
// branches share the quitting and write-failed state.
async fn session_loop(
    stream: impl AsyncRead + AsyncWrite,
    mut out: Outgoing,
    input: &mut UnboundedReceiver<Input>,
    mut on_line: impl FnMut(Line<'_>, &mut Answers),
    leave: impl std::future::Future<Output = ()>,
    quitting: &mut bool,
) -> Result<(), ClientError> {
    tokio::pin!(leave);
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut lines = LineBuffer::new(MAX_SERVER_LINE);
    let mut buf = vec![0u8; 16 * 1024];
    let mut input_open = true;
    let mut write_failed: Option<std::io::Error> = None;
    // Armed while the client waits for the end: after /quit, for the server's answer
    // (while the connection makes progress: each read or write puts it off, and a line
    // waiting for its turn holds it); after a failed write, for the rest of what the
    // server sent.
    let deadline = tokio::time::sleep(Duration::MAX);
    tokio::pin!(deadline);
    // When the next line waiting for its turn (the server's rate) may go.
    let turn = tokio::time::sleep(Duration::MAX);
    tokio::pin!(turn);
    let after = |wait| tokio::time::Instant::now() + wait;
    loop {
        let next_turn = out.release(tokio::time::Instant::now());
        if let Some(at) = next_turn {
            turn.as_mut().reset(at);
        }
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
            written = writer.write(out.pending()), if !out.pending().is_empty() && write_failed.is_none() => {
                write_failed = take_written(written, &mut out);
                if write_failed.is_some() {
                    deadline.as_mut().reset(after(READ_AFTER_WRITE_FAILED));
                } else if *quitting {
                    deadline.as_mut().reset(after(QUIT_TIMEOUT));
                }
            }
            () = &mut turn, if next_turn.is_some() => {}
            () = &mut leave, if !*quitting => {
                *quitting = true;
                out.quit_now();
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
            () = &mut deadline, if (*quitting && next_turn.is_none()) || write_failed.is_some() => {
                return Err(match write_failed {
                    Some(e) => ClientError::Lost(e),
                    None => ClientError::QuitUnanswered,
                });
            }
        }
    }
}

/// Passes each whole line of `bytes` from the server to `on_line`, queues the lines it
/// answers with, and takes the pace the welcome set.
fn answer(
    lines: &mut LineBuffer,
    bytes: &[u8],
    on_line: &mut impl FnMut(Line<'_>, &mut Answers),
    out: &mut Outgoing,
) {
    let mut answers = Answers::default();
    lines.feed(bytes, |line| on_line(line, &mut answers));
    if let Some(pace) = answers.pace {
        out.set_pace(pace);
    }
    // Lines typed while offline never hold a /quit (it ends the wait).
    for line in &answers.lines {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::hello_lines;
    use tokio::net::TcpStream;
    use tokio::sync::mpsc::unbounded_channel;

    /// The hello a session sends first, and every line after it at once.
    fn free_hello() -> Outgoing {
        Outgoing::new(&hello_lines(None, false), Pace::Free)
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
        let out = Outgoing::new(&hello_lines(Some("me"), false), Pace::Free);
        let ended = session(stream, out, &mut rx, |_, _| {}, std::future::pending()).await.result;
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
            session(stream, free_hello(), &mut rx, |_, _| {}, std::future::pending()).await.result;
        assert!(ended.is_ok(), "{ended:?}");
        assert_eq!(server.await.unwrap(), ["/hello json", "/quit"]);

        let (stream, _server) = fake_server(true).await;
        let (_tx, mut rx) = unbounded_channel();
        let ended =
            session(stream, free_hello(), &mut rx, |_, _| {}, std::future::pending()).await.result;
        assert!(matches!(ended, Err(ClientError::Closed)), "{ended:?}");
    }

    #[tokio::test]
    async fn a_signal_leaves_like_quit() {
        let (stream, server) = fake_server(false).await;
        let (_tx, mut rx) = unbounded_channel();
        let ended = session(stream, free_hello(), &mut rx, |_, _| {}, async {}).await.result;
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
        let on_line = |line: Line<'_>, _: &mut Answers| {
            if let Line::Text(text) = line {
                got.push(text.into_owned());
            }
        };
        let ended =
            session(stream, free_hello(), &mut rx, on_line, std::future::pending()).await.result;
        assert!(matches!(ended, Err(ClientError::Closed)), "{ended:?}");
        assert_eq!(got, ["!!! disconnected for flooding"]);
        server.await.unwrap();
    }
}
