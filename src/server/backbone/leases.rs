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

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use serde_json::json;
use tokio::time::Instant;

use super::BackboneError;
use super::claims;
use crate::server::hub::Hub;

/// The bucket of node leases.
pub const BUCKET: &str = "tchat_nodes";

/// How often a node renews its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a node may go unseen before the others declare it dead: four heartbeats,
/// so that one or two lost or late ones (a busy machine, a NATS leader change) do not
/// kill a node. A crashed node's users are seen leaving within about this plus one
/// sweep ([`SWEEP`]).
pub const LEASE: Duration = Duration::from_secs(4);

/// How often a node looks for claims of dead nodes.
pub const SWEEP: Duration = Duration::from_millis(500);

/// Opens the bucket of node leases, making it if no node did yet. Entries older than an
/// hour go (a lease is renewed every second while its node lives).
pub async fn open(
    jetstream: &jetstream::Context,
    replicas: usize,
) -> Result<kv::Store, BackboneError> {
    match jetstream.get_key_value(BUCKET).await {
        Ok(store) => Ok(store),
        Err(_) => jetstream
            .create_key_value(kv::Config {
                bucket: BUCKET.into(),
                history: 1,
                max_age: Duration::from_secs(3600),
                storage: jetstream::stream::StorageType::Memory,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| BackboneError::Stream(format!("the node bucket: {e}"))),
    }
}

fn key(node: &str) -> String {
    format!("n.{node}")
}

/// What this node knows of the others' leases, by its own clock.
#[derive(Debug)]
pub struct Leases {
    /// When this node started following the leases: a node it never saw counts as
    /// last seen then.
    started: Instant,
    /// Node name -> when its heartbeat was last seen and whether it was a heartbeat
    /// (true) or its lease deleted (false: it stopped).
    seen: HashMap<String, (Instant, bool)>,
    /// Nodes already logged as dead, so each death is logged once.
    logged_dead: std::collections::HashSet<String>,
}

impl Leases {
    pub fn new(now: Instant) -> Leases {
        Leases { started: now, seen: HashMap::new(), logged_dead: Default::default() }
    }

    /// A heartbeat of `node` (`alive`), or its lease deleted, seen at `now`.
    /// Returns true when `node` comes back after it was logged dead.
    pub fn saw(&mut self, node: &str, alive: bool, now: Instant) -> bool {
        self.seen.insert(node.to_owned(), (now, alive));
        alive && self.logged_dead.remove(node)
    }

    /// Whether `node`'s death is news (to be logged once).
    pub fn newly_dead(&mut self, node: &str) -> bool {
        self.logged_dead.insert(node.to_owned())
    }

    /// Since when `node` counts as dead at `now`, if it does: its lease deleted, or
    /// not renewed for [`LEASE`].
    pub fn dead_since(&self, node: &str, now: Instant) -> Option<Instant> {
        let (seen, alive) = self.seen.get(node).copied().unwrap_or((self.started, true));
        match alive {
            false => Some(seen),
            true => (now.duration_since(seen) >= LEASE).then_some(seen + LEASE),
        }
    }
}

/// Renews this node's lease every [`HEARTBEAT`] until the hub is gone; a renewal that
/// fails is retried at the next beat (the node is cut off: see the fencing in the docs).
pub async fn heartbeat(store: kv::Store, node: String, hub: Weak<Hub>) {
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        beat.tick().await;
        if hub.upgrade().is_none_or(|hub| hub.is_shutting_down()) {
            return;
        }
        let _ = store.put(key(&node), bytes::Bytes::from_static(b"{}")).await;
    }
}

/// Deletes this node's lease: the others then know at once that it stopped.
pub async fn end(store: &kv::Store, node: &str) {
    let _ = store.delete(key(node)).await;
}

/// Follows the leases into the hub (`Hub::lease_seen`) until the hub is gone.
pub async fn watch(store: kv::Store, hub: Weak<Hub>) {
    loop {
        if let Ok(mut changes) = store.watch_with_history(">").await {
            while let Some(change) = changes.next().await {
                let Some(hub) = hub.upgrade() else { return };
                if let Ok(entry) = change
                    && let Some(node) = entry.key.strip_prefix("n.")
                {
                    hub.lease_seen(node, entry.operation == kv::Operation::Put);
                }
            }
        }
        let Some(hub) = hub.upgrade() else { return };
        hub.log.warn("Backbone stream", json!({"error": "the lease watch ended; made again"}));
        drop(hub);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
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

    #[test]
    fn a_node_is_dead_once_unseen_for_the_lease_or_gone() {
        let t0 = Instant::now();
        let mut leases = Leases::new(t0);
        assert_eq!(leases.dead_since("never-seen", t0), None);
        assert_eq!(leases.dead_since("never-seen", t0 + LEASE), Some(t0 + LEASE));
        leases.saw("a", true, t0 + Duration::from_secs(3));
        assert_eq!(leases.dead_since("a", t0 + Duration::from_secs(6)), None);
        let late = t0 + Duration::from_secs(3) + LEASE;
        assert_eq!(leases.dead_since("a", late), Some(late));
        leases.saw("b", false, t0 + Duration::from_secs(1));
        assert_eq!(
            leases.dead_since("b", t0 + Duration::from_secs(1)),
            Some(t0 + Duration::from_secs(1))
        );
    }
}
