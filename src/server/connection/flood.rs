//! Flood control in the task: lines held to the rate (fakelag) or while the node is
//! behind its backbone, the notice the first hold gives, and the kick for excess flood
//! (bytes without a line end, see `intake`).

use serde_json::json;
use tokio::time::Instant;

use super::{Closing, Due, Session};
use crate::server::intake::{Intake, Step};

impl Session {
    /// Whether the socket is to be read: not while closing, nor while lines are held.
    pub(super) fn reads(&self, intake: &Intake) -> bool {
        !self.closing.is_set() && !intake.is_holding() && self.claim.is_none()
    }

    /// Held lines are due (fakelag, the backbone's window): handles those that may go
    /// now. Returns what the rest wait for, if lines are still held.
    pub(super) fn release_held(&mut self, intake: &mut Intake) -> Option<Due> {
        let step = intake.resume(Instant::now(), |line| self.on_line(line));
        self.after(step)
    }

    /// Acts on where the intake stopped; returns what held lines wait for, if any.
    pub(super) fn after(&mut self, step: Step) -> Option<Due> {
        match step {
            // A nick claim across nodes: the connection loop resumes once it is done.
            Step::Done | Step::Waits => None,
            Step::Hold { until, tell } => {
                if tell {
                    self.slowed();
                }
                Some(Box::pin(tokio::time::sleep_until(until)))
            }
            Step::Window { until } => match self.hub.backbone_window() {
                Some(window) => Some(Box::pin(async move { window.wait_open(until).await })),
                None => Some(Box::pin(tokio::time::sleep_until(until))),
            },
            Step::Kick { lineless } => {
                self.kick_flooder(lineless);
                None
            }
        }
    }

    /// First hold of an episode: the sender is told once, as news rather than an error,
    /// since nothing it sent is lost.
    fn slowed(&self) {
        let rate = self.hub.config.rate;
        self.hub.log.warn("Flood throttled", json!({"nick": self.nick, "rate": rate}));
        self.info(format!(
            "you are sending faster than {rate} lines per second: your lines are delayed \
             to that rate, none is lost"
        ));
    }

    /// Excess flood: `lineless` bytes came without a line end (see `intake`).
    fn kick_flooder(&mut self, lineless: usize) {
        let meta = json!({"nick": self.nick, "peer": self.peer.to_string(), "bytes": lineless});
        self.hub.log.warn("Flooder disconnected", meta);
        let max = self.hub.config.max_line;
        self.error(
            "flood",
            format!(
                "disconnected for excess flood: {lineless} bytes without a line end (a line \
                 ends within {max} bytes)"
            ),
        );
        self.closing = Closing::Leave("excess flood".into());
    }
}
