//! The reference server for the fan-out benchmark: a bare tokio chat relay, the minimal
//! fast relay a competent engineer would write (issue 5's "bare tokio relay, no nicks,
//! no parsing"). It has no nicks, no commands, no logging, no flood control and no
//! queue limit, so the gap between it and tchat is what tchat's features cost on this
//! machine, measured with the same load generator.
//!
//! It runs in its own process (the benchmark re-executes itself with `--relay-server`),
//! so the server CPU and RSS figures read from /proc are its own, as for tchat.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

/// The benchmark connects up to 256 clients at once; a short backlog would drop SYNs.
const BACKLOG: u32 = 1024;

/// Room made for each `read`: about 130 benchmark lines. A common size for a relay; each
/// connection keeps it while idle, as a plain relay would.
const READ_CHUNK: usize = 4096;

/// Queued messages one write may coalesce (about 30 KiB of benchmark lines).
const WRITE_BATCH: usize = 1024;

/// Held in the peer map; dropping it (on the peer's EOF) ends the peer's writer task.
struct Peer {
    tx: mpsc::UnboundedSender<Bytes>,
}

/// Every connected peer by connection id. A `std` mutex: it is only held to insert,
/// remove, or hand one message to every queue, never across an `.await`.
type Peers = Arc<Mutex<HashMap<u64, Peer>>>;

/// Serves until killed. Prints `Listening addr=…` on stdout, the line the benchmark
/// parses for tchat too.
pub fn run() -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(serve())
}

async fn serve() -> io::Result<()> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let listener = socket.listen(BACKLOG)?;
    let mut out = io::stdout().lock();
    writeln!(out, "Listening addr={}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);

    let peers = Peers::default();
    for id in 0u64.. {
        let stream = loop {
            match listener.accept().await {
                Ok((stream, _)) => break stream,
                // Out of fds, say: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        tokio::spawn(connection(stream, id, peers.clone()));
    }
    Ok(())
}

async fn connection(mut stream: TcpStream, id: u64, peers: Peers) {
    let _ = stream.set_nodelay(true);
    let (tx, rx) = mpsc::unbounded_channel();
    // Join before the welcome: once the load generator sees every welcome it starts
    // sending, and a peer that joined after its welcome could miss the first lines.
    // Lines queued meanwhile wait in the channel until the writer starts.
    peers.lock().unwrap().insert(id, Peer { tx });
    if stream.write_all(b"*** Welcome\n").await.is_ok() {
        let (rd, wr) = stream.into_split();
        tokio::spawn(write_queued(wr, rx));
        read_lines(rd, id, &peers).await;
    }
    peers.lock().unwrap().remove(&id);
}

/// Relays every complete line as `<cID> LINE`, encoded once and shared by all peers.
///
/// The first line is dropped: the load generator registers with `/nick bN` as it must
/// for tchat, and a relay without nicks has nothing to do with it. Relaying it would
/// send C²/2 lines nobody counts while clients connect (50 million for 10,000 idle
/// clients) and leave some still in flight when the measured phase starts. Dropping it
/// keeps the load generator's count ("a line starting with `<` is a delivery") the same
/// for both servers.
async fn read_lines(mut rd: OwnedReadHalf, id: u64, peers: &Peers) {
    let prefix = format!("<c{id}> ");
    let mut registered = false;
    let mut buf = BytesMut::new();
    loop {
        buf.reserve(READ_CHUNK);
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line = buf.split_to(end + 1);
            if !registered {
                registered = true;
                continue;
            }
            let mut msg = BytesMut::with_capacity(prefix.len() + line.len());
            msg.extend_from_slice(prefix.as_bytes());
            msg.extend_from_slice(&line);
            broadcast(peers, id, msg.freeze());
        }
    }
}

/// Queues `msg` for every peer but its sender (tchat's text mode does not echo either).
fn broadcast(peers: &Peers, from: u64, msg: Bytes) {
    for (&id, peer) in peers.lock().unwrap().iter() {
        if id != from {
            // A peer whose writer died is removed when its reader sees the EOF.
            let _ = peer.tx.send(msg.clone());
        }
    }
}

/// Writes everything queued in one `write_all`, so a burst costs one syscall per batch
/// rather than one per line.
async fn write_queued(mut wr: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    let mut batch = Vec::new();
    let mut out = Vec::new();
    while rx.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        out.clear();
        for msg in batch.drain(..) {
            out.extend_from_slice(&msg);
        }
        if wr.write_all(&out).await.is_err() {
            return;
        }
    }
}
