//! Node leases: which nodes are alive, so that the users of a node that crashed (or
//! stopped, or was cut off) are seen leaving and their nicks freed, once.
//!
//! Every node puts `n.<node>` in the `tchat_nodes` bucket every [`HEARTBEAT`] and
//! deletes it when it stops. Every node watches the bucket and notes, by its own
//! monotonic clock, when it last saw each node's heartbeat: no clocks are compared
//! between machines. A node not seen for [`LEASE`] (or whose key was deleted) is dead;
//! any live node then sweeps its claims ([`super::claims::sweep`], a compare-and-delete,
//! so exactly one node announces each leave): at once for text users, after
//! `--resume-grace` for structured ones, who may still resume on another node.
//!
//! A busy node is not a dead one: heartbeats and the watch of the leases go over a NATS
//! connection of their own (see `Connection` in [`super`]), never queued behind the
//! nick claims of a connect storm, and each heartbeat is sent on time whatever became of
//! the one before (its ack is awaited on the side, [`heartbeat`]).

use std::collections::{HashMap, HashSet};
use std::sync::Weak;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use tokio::time::Instant;

use super::bucket::Bucket;
use super::claims;
use crate::server::hub::Hub;

/// The bucket of node leases, in memory (a lease is worthless once NATS restarted).
/// Entries older than an hour go (a lease is renewed every second while its node lives).
pub const BUCKET: Bucket = Bucket {
    name: "tchat_nodes",
    what: "the node bucket",
    storage: jetstream::stream::StorageType::Memory,
    max_age: Duration::from_secs(3600),
};

/// How often a node renews its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a node may go unseen before the others declare it dead: four heartbeats,
/// so that one or two lost or late ones (a busy machine, a NATS leader change) do not
/// kill a node. A crashed node's users are seen leaving within about this plus one
/// sweep ([`SWEEP`]).
pub const LEASE: Duration = Duration::from_secs(4);

/// How often a node looks for claims of dead nodes.
pub const SWEEP: Duration = Duration::from_millis(500);

fn key(node: &str) -> String {
    format!("n.{node}")
}

/// What this node knows of the others' leases, by its own clock.
///
/// A node judges the others only while it sees its own heartbeats come back: cut off
/// from NATS, it cannot tell a dead node from its own silence. After a gap in its own
/// heartbeats, every other node gets a full lease from the moment it was back, so a
/// NATS outage never gets live nodes' users swept when it ends.
#[derive(Debug)]
pub struct Leases {
    /// Since when this node's view is current: its start, or its own heartbeat seen
    /// again after a gap. A node not seen since counts as seen then.
    current_since: Instant,
    /// When this node last saw its own heartbeat come back.
    own_seen: Option<Instant>,
    /// Node name -> when its heartbeat was last seen and whether it was a heartbeat
    /// (true) or its lease deleted (false: it stopped).
    seen: HashMap<String, (Instant, bool)>,
    /// Nodes already logged as dead, so each death is logged once.
    logged_dead: HashSet<String>,
    /// Nodes whose lease this node has seen (a heartbeat or its deletion).
    met: HashSet<String>,
    /// Nodes this node has seen renew their lease, so alive while it runs: each one
    /// that vanishes is declared dead (or stopped) in the log, users or not. A lease
    /// only read from the bucket's past (a node gone before this one started) is not.
    beating: HashSet<String>,
}

impl Leases {
    pub fn new(now: Instant) -> Leases {
        Leases {
            current_since: now,
            own_seen: None,
            seen: HashMap::new(),
            logged_dead: Default::default(),
            met: Default::default(),
            beating: Default::default(),
        }
    }

    /// This node's own heartbeat came back at `now`.
    pub fn saw_own(&mut self, now: Instant) {
        if self.own_seen.is_none_or(|seen| now.duration_since(seen) > 2 * HEARTBEAT) {
            self.current_since = now;
        }
        self.own_seen = Some(now);
    }

    /// A heartbeat of `node` (`alive`), or its lease deleted, seen at `now`.
    /// Returns true when `node` comes back after it was logged dead.
    pub fn saw(&mut self, node: &str, alive: bool, now: Instant) -> bool {
        self.seen.insert(node.to_owned(), (now, alive));
        if !self.met.insert(node.to_owned()) && alive {
            self.beating.insert(node.to_owned());
        }
        alive && self.logged_dead.remove(node)
    }

    /// The nodes seen alive while this node runs that count as gone at `now`, each with
    /// whether it stopped (its lease deleted) rather than went silent.
    pub fn vanished(&self, now: Instant) -> Vec<(String, bool)> {
        let gone = |node: &&String| self.dead_since(node, now).is_some();
        let stopped = |node: &String| self.seen.get(node).is_some_and(|(_, alive)| !alive);
        self.beating.iter().filter(gone).map(|n| (n.clone(), stopped(n))).collect()
    }

    /// Whether `node`'s death is news (to be logged once).
    pub fn newly_dead(&mut self, node: &str) -> bool {
        self.logged_dead.insert(node.to_owned())
    }

    /// Since when `node` counts as dead at `now`, if it does: its lease deleted, or
    /// not renewed for [`LEASE`].
    pub fn dead_since(&self, node: &str, now: Instant) -> Option<Instant> {
        let current = self.own_seen.is_some_and(|own| now.duration_since(own) <= 2 * HEARTBEAT);
        if !current {
            return None;
        }
        let (seen, alive) = self.seen.get(node).copied().unwrap_or((self.current_since, true));
        let seen = seen.max(self.current_since);
        match alive {
            false => Some(seen),
            true => (now.duration_since(seen) >= LEASE).then_some(seen + LEASE),
        }
    }
}

/// This node's heartbeat ([`heartbeat`]), running until [`end`] stops it.
pub struct Heartbeat {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Starts renewing this node's lease every [`HEARTBEAT`], until [`end`] (or the hub is
/// gone). It beats on while the node stops, through the last flush of its leaves and
/// claims, however many seconds that takes: the others must see a stopping node stop
/// (its lease deleted), never go silent, or they would declare it dead and sweep the
/// claims it had not let go yet, announcing those users' leaves a second time.
pub fn heartbeat(store: kv::Store, node: String, hub: Weak<Hub>) -> Heartbeat {
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(beat(store, node, hub, stop.clone()));
    Heartbeat { stop, task }
}

/// Each renewal awaits its ack on a task of its own, for at most [`LEASE`]: one whose
/// ack is slow (a busy nats-server) never holds back the next, and one that fails is
/// simply followed by the next (a node cut off for longer is fenced: see the docs).
/// Once stopped, the renewals not yet handed to the client are called off, so none can
/// put the lease back after [`end`] deleted it.
async fn beat(
    store: kv::Store,
    node: String,
    hub: Weak<Hub>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewals = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = beat.tick() => {}
            _ = stop.cancelled() => break,
        }
        if hub.strong_count() == 0 {
            break;
        }
        while renewals.try_join_next().is_some() {}
        let (store, key) = (store.clone(), key(&node));
        renewals.spawn(async move {
            let renewal = store.put(key, bytes::Bytes::from_static(b"{}"));
            let _ = tokio::time::timeout(LEASE, renewal).await;
        });
    }
    // A renewal already handed to the client goes out before the deletion that follows
    // on the same connection; one not yet handed over never goes.
    renewals.abort_all();
    while renewals.join_next().await.is_some() {}
}

/// Stops the heartbeat and deletes this node's lease: the others then know at once that
/// it stopped. Each step waits at most `bound`.
pub async fn end(store: &kv::Store, node: &str, heartbeat: Heartbeat, bound: Duration) {
    heartbeat.stop.cancel();
    let _ = tokio::time::timeout(bound, heartbeat.task).await;
    let _ = tokio::time::timeout(bound, store.delete(key(node))).await;
}

/// Follows the leases into the hub (`Hub::lease_seen`) until the hub is gone.
pub async fn watch(store: kv::Store, hub: Weak<Hub>) {
    super::bucket::watch(store, hub, |hub, entry| {
        if let Some(node) = entry.key.strip_prefix("n.") {
            hub.lease_seen(node, entry.operation == kv::Operation::Put);
        }
    })
    .await
}

/// Every [`SWEEP`], deletes the claims of dead nodes that are due (`Hub::sweep_due`)
/// and announces the leave of each this node deleted, until the hub is gone.
pub async fn sweep(nicks: kv::Store, hub: Weak<Hub>) {
    let mut tick = tokio::time::interval(SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = match hub.upgrade() {
            Some(hub) if !hub.is_shutting_down() => hub.sweep_due(Instant::now()),
            _ => return,
        };
        for (key, claim, revision) in due {
            if claims::sweep(&nicks, &key, revision, &claim).await {
                let Some(hub) = hub.upgrade() else { return };
                hub.announce_swept(&key, &claim);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    /// `leases` seeing its own heartbeat every second from `from` to `to`.
    fn beating(leases: &mut Leases, t0: Instant, from: u64, to: u64) {
        (from..=to).for_each(|s| leases.saw_own(secs(t0, s)));
    }

    #[test]
    fn a_node_is_dead_once_unseen_for_the_lease_or_gone() {
        let t0 = Instant::now();
        let mut leases = Leases::new(t0);
        beating(&mut leases, t0, 0, 10);
        assert_eq!(leases.dead_since("never-seen", secs(t0, 1)), None);
        assert_eq!(leases.dead_since("never-seen", t0 + LEASE), Some(t0 + LEASE));
        leases.saw("a", true, secs(t0, 3));
        assert_eq!(leases.dead_since("a", secs(t0, 6)), None);
        let late = secs(t0, 3) + LEASE;
        assert_eq!(leases.dead_since("a", late), Some(late));
        leases.saw("b", false, secs(t0, 1));
        assert_eq!(leases.dead_since("b", secs(t0, 1)), Some(secs(t0, 1)));
    }

    #[test]
    fn every_node_seen_beating_that_vanishes_is_named_users_or_not() {
        let t0 = Instant::now();
        let mut leases = Leases::new(t0);
        beating(&mut leases, t0, 0, 20);
        // "old" is only read from the bucket's past: never renewed while we run.
        leases.saw("old", true, t0);
        leases.saw("quiet", true, t0);
        leases.saw("quiet", true, secs(t0, 1));
        leases.saw("leaver", true, t0);
        leases.saw("leaver", true, secs(t0, 1));
        leases.saw("leaver", false, secs(t0, 2));
        assert_eq!(leases.vanished(secs(t0, 4)), [("leaver".to_owned(), true)]);
        let mut gone = leases.vanished(secs(t0, 1) + LEASE);
        gone.sort();
        assert_eq!(gone, [("leaver".to_owned(), true), ("quiet".to_owned(), false)]);
    }

    #[test]
    fn a_node_cut_off_judges_nobody_and_gives_a_full_lease_once_back() {
        let t0 = Instant::now();
        let mut leases = Leases::new(t0);
        beating(&mut leases, t0, 0, 2);
        leases.saw("a", true, secs(t0, 2));
        // NATS is gone from 3 s to 20 s: no heartbeat comes back, not even its own.
        assert_eq!(leases.dead_since("a", secs(t0, 10)), None, "cut off: no judgement");
        beating(&mut leases, t0, 20, 30);
        assert_eq!(leases.dead_since("a", secs(t0, 21)), None, "a full lease from 20 s");
        assert_eq!(leases.dead_since("a", secs(t0, 24)), Some(secs(t0, 24)));
        assert_eq!(leases.dead_since("b", secs(t0, 23)), None, "counted from 20 s too");
    }
}
