//! How a session ends: its leave announced and logged, a lost connection held for a
//! resume, a client dropped for not reading, and the ordered close that lets the last
//! lines arrive.

use std::io;

use serde_json::json;
use tokio::time::sleep;

use super::{Phase, Session, write_batch};
use crate::protocol::{Event, EventKind};
use crate::server::close::linger;
use crate::server::hub::Removed;
use crate::server::journal::Kind;
use crate::server::outbox::{Batch, Outbox};
use crate::server::transport::Transport;

/// How the connection loop ended, for [`finish`].
pub(super) struct Ended {
    /// The leave reason to announce; `None`: leave without one (shutdown).
    pub(super) leave_reason: Option<String>,
    /// Dropped for not reading.
    pub(super) too_slow: bool,
    pub(super) transport: Transport,
    /// What was taken from the outbox and not yet written.
    pub(super) pending: Batch,
}

/// Ends the session: holds it for a resume if the connection was lost, else leaves and,
/// when the server ended it (kick, /quit, shutdown, too slow), closes in order so the
/// last lines are not lost to a reset. A peer that hung up needs none of that.
pub(super) async fn finish(mut s: Session, outbox: &Outbox, ended: Ended) {
    let Ended { leave_reason, too_slow, mut transport, mut pending } = ended;
    // A nick claim (or an account written to NATS) still in flight is awaited and taken
    // in first (each is bounded in time): what it claimed across nodes is then let go
    // with the member below, as when the session ends after its claim. Taking it in
    // may start another (a registered nick's last use noted).
    while let Some(claim) = s.claim.take() {
        s.claimed(claim.await, false);
    }
    if s.lost_connection && leave_reason.is_some() && s.hub.hold_for_resume(s.id) {
        drop(transport);
        return match wait_for_resume(&s, outbox).await {
            Held::Resumed => {}
            Held::Expired => s.leave(leave_reason),
            Held::Kicked(reason) => s.leave(Some(reason)),
            Held::ShuttingDown => s.leave(None),
        };
    }
    // Encoded while the member is still known; written if the socket has room.
    let farewell = if too_slow { s.drop_slow() } else { None };
    s.leave(leave_reason);
    if !s.closing.is_set() && !too_slow {
        return;
    }
    if let Some(line) = farewell {
        // Best effort: only what the socket takes now, after the unfinished batch.
        if write_batch(&mut pending, &mut transport).is_ok() && pending.is_empty() {
            let _ = transport.write(line.as_bytes());
        }
    }
    // Best effort: lets a TLS client tell a close from a cut connection.
    transport.close_notify();
    let _ = transport.flush();
    linger(transport.into_stream()).await;
}

/// How the wait for a resume ended.
pub(super) enum Held {
    /// Another connection took the session back: nothing more to do.
    Resumed,
    /// The grace ran out: the member leaves as the connection was lost.
    Expired,
    /// An operator kicked or banned the held member: it leaves with this reason.
    Kicked(String),
    /// The server is stopping: the member goes without an announcement.
    ShuttingDown,
}

/// Holds the session of a lost connection for `--resume-grace`.
async fn wait_for_resume(s: &Session, outbox: &Outbox) -> Held {
    let grace = s.hub.config.resume_grace;
    s.hub.log.info(
        "Held for resume",
        json!({"nick": s.nick, "peer": s.peer.to_string(), "grace_s": grace.as_secs()}),
    );
    let deadline = sleep(grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return Held::Expired,
            // A resume, a kick and a shutdown all wake the held member through its outbox.
            () = outbox.woken() => {
                if !s.hub.is_held(s.id) {
                    return Held::Resumed;
                }
                if s.hub.is_shutting_down() {
                    return Held::ShuttingDown;
                }
                if let Some(reason) = outbox.take_close() {
                    return Held::Kicked(reason);
                }
            }
        }
    }
}

impl Session {
    /// Removes this member, announcing its leave for `reason`, and logs it.
    pub(super) fn leave(&self, reason: Option<String>) {
        let Some(Removed { nick, room, leave }) = self.hub.remove(self.id, reason.as_deref())
        else {
            return;
        };
        let reason = reason.unwrap_or_else(|| "server shutdown".into());
        let mut meta =
            json!({"nick": nick, "peer": self.peer.to_string(), "reason": reason, "room": room});
        if self.phase != Phase::Announced {
            // Never heard from, and gone before QUIET_JOIN: a health check, say.
            meta["announced"] = false.into();
        }
        if let Some((id, online)) = leave {
            meta["id"] = id.into();
            meta["online"] = online.into();
        }
        self.hub.log.info("Disconnected", Kind::Leave.tag(meta));
    }

    /// Leave reason for a connection that ended without /quit.
    pub(super) fn lost(&mut self, e: io::Error) -> Option<String> {
        self.lost_connection = !self.closing.is_set();
        if e.kind() != io::ErrorKind::UnexpectedEof {
            self.hub
                .log
                .info("Connection error", json!({"nick": self.nick, "error": e.to_string()}));
        }
        Some("connection lost".into())
    }

    /// Logs a client dropped for not reading and returns its last line, encoded for it.
    fn drop_slow(&self) -> Option<String> {
        let limit = self.hub.config.send_queue;
        self.hub.log.warn(
            "Slow client dropped (send queue full)",
            json!({"nick": self.nick, "peer": self.peer.to_string(), "limit": limit}),
        );
        let message = format!(
            "disconnected: too slow (you stopped reading; {limit} bytes were waiting for you)"
        );
        let event = Event::now(EventKind::Error { code: "too_slow".into(), message });
        self.hub.encode_for_member(self.id, &event)
    }
}
