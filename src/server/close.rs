//! Closing a connection in order, so that the last lines the server wrote reach the
//! client.
//!
//! Closing a socket whose receive queue holds unread input makes the kernel send a
//! reset instead of a FIN (RFC 1122, 4.2.2.13; RFC 2525, 2.17). A reset can overtake a
//! line still waiting to be retransmitted, and the client's system may discard what it
//! had received but the client not yet read (Windows does). A client that is being told
//! why it is refused or kicked has often sent more meanwhile (its hello, a flood), so
//! the server half-closes first, then reads and discards until the client closes too.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest the server reads a closing client's input, waiting for its close. A client
/// that goes on sending (a flooder) is cut off after it, reset or not.
pub const LINGER: Duration = Duration::from_secs(1);

/// Half-closes `stream` (the FIN follows what was written), then reads and discards
/// what the peer sends until it closes its side, for at most [`LINGER`].
pub async fn linger(mut stream: TcpStream) {
    let _ = tokio::time::timeout(LINGER, async {
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}
