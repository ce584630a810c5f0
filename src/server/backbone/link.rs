//! Sending conversation events to the stream, and nick claims' changes to their bucket.
//!
//! The hub hands an event to its [`Link`] under its lock: a `try_send` into a bounded
//! queue, never an await, so a slow or lost backbone never holds the lock (and with it
//! every client of the node). One task takes the queue in order and publishes; each
//! publish's ack is awaited on its own, so many are in flight. A line the stream did not
//! take (queue full, publish refused, no ack within `--backbone-persist`, [`PERSIST`] by
//! default) gets its sender an error instead of being lost silently.
//!
//! While the NATS connection is down, events wait in this node's queue, not in the NATS
//! client: the client would send what it holds whenever NATS is back, even after the
//! sender was told the line was not delivered. Here an event still waiting when its
//! time is up is dropped, and its sender told so: it never shows (`Unsent::Dropped`).
//!
//! An ack that does not come in [`super::TIMEOUT`] does not mean the line is lost: a
//! publish handed to NATS may be stored with its ack lost, or sent once the connection
//! that dropped under it is back. So a publish without an ack is sent again, with the
//! same message id, once the connection is up, until acked or its time is up: within
//! the stream's duplicate window the stream stores one copy whichever arrives, and the
//! sender is not told "not delivered" of a line everyone then gets (and says again).
//! One never acked in time gets its sender told that it may still show
//! (`Unsent::Unconfirmed`): it was handed over, and only NATS knows.
//!
//! Claims' changes (a room or away message changed, a nick let go) take two round trips
//! to the key-value bucket each, so they have a queue and a task of their own: lines
//! never wait behind them (300 clients renaming at once held every line for a second).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::{self, kv, message::PublishMessage};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::window::Window;
use super::wire::{self, Origin};
use crate::server::hub::{Hub, Unsent};

/// How long an event waits for the stream by default (`--backbone-persist`): queued
/// while the connection is down, then retried with its message id, before its sender
/// is told it was not delivered.
pub const PERSIST: Duration = Duration::from_secs(90);

/// The longest `--backbone-persist`: inside the stream's duplicate window
/// ([`super::DUPLICATE_WINDOW`]), so the stream never stores a retry as a second line.
pub const PERSIST_MAX: Duration = Duration::from_secs(110);

/// Events waiting to be published; past this many (the backbone stalled), senders are
/// told at once that their line was not sent.
const QUEUE: usize = 8192;

/// One event to publish, or a request to report once all before it are done.
enum Outgoing {
    Event(Event),
    Flush(oneshot::Sender<()>),
}

/// A conversation event queued for the stream.
struct Event {
    subject: String,
    payload: Bytes,
    origin: Origin,
    sessions: Option<(u64, u64)>,
    /// When the hub queued it: its sender is told it was not delivered `persist` after.
    queued: Instant,
}

/// A change to a nick claim, or a request to report once all before it are done.
enum ClaimChange {
    /// A claim's value changed (room, away): put on its nick key if `session` holds it.
    Update {
        key: String,
        value: Bytes,
        session: u64,
    },
    /// A nick let go: its keys deleted, those `session` holds.
    Release {
        keys: Vec<String>,
        session: u64,
    },
    Flush(oneshot::Sender<()>),
}

/// The hub's handle on the backbone: cheap to use under its lock.
#[derive(Clone)]
pub struct Link {
    pub node: Arc<str>,
    queue: mpsc::Sender<Outgoing>,
    claims: mpsc::Sender<ClaimChange>,
    /// How far this node is behind the stream (see [`super::window`]).
    pub window: Arc<Window>,
}

/// The event was not handed to the backbone (its queue is full: the backbone has
/// stalled); the sender is told.
#[derive(Debug)]
pub struct NotSent;

impl Link {
    /// A link for node `node`, and the receiving end for [`publish`].
    /// `persist`: how long an event may wait for the stream (`--backbone-persist`, at
    /// most [`PERSIST_MAX`]; [`PERSIST`] by default). `clients`: the most clients the
    /// node holds (`--max-clients`), each of which may let its nick go at once.
    pub fn new(node: &str, persist: Duration, clients: usize) -> (Link, Receiver) {
        let (queue, events) = mpsc::channel(QUEUE);
        // Room for every client's release: a node that loses all its clients at once
        // (a network cut, a stop) must not drop some, leaving their nicks to be swept
        // (and their leaves announced again) when it stops. The queue takes memory only
        // for what it holds.
        let (claims, claim_changes) = mpsc::channel(QUEUE.max(clients.saturating_add(1)));
        let (window, node): (_, Arc<str>) = (Arc::default(), node.into());
        let persist = persist.min(PERSIST_MAX);
        let receiver = Receiver { events, claim_changes, node: Arc::clone(&node), persist };
        (Link { node, queue, claims, window }, receiver)
    }

    /// Queues the event `json` (its JSON line without an id) for room `key`.
    pub fn room(&self, key: &str, json: &str, origin: Origin) -> Result<(), NotSent> {
        self.send(wire::room_subject(key), json, origin, None)
    }

    /// Queues moderation for the other nodes.
    pub fn moderation(
        &self,
        action: &super::wire::Moderation,
        origin: Origin,
    ) -> Result<(), NotSent> {
        let json = serde_json::to_string(action).expect("moderation always serialises");
        self.send(super::wire::MODERATION.into(), &json, origin, None)
    }

    /// Queues the private message `json` between sessions `from` and `to`.
    pub fn private(&self, json: &str, origin: Origin, from: u64, to: u64) -> Result<(), NotSent> {
        self.send(wire::PRIVATE.into(), json, origin, Some((from, to)))
    }

    fn send(
        &self,
        subject: String,
        json: &str,
        origin: Origin,
        sessions: Option<(u64, u64)>,
    ) -> Result<(), NotSent> {
        let payload = Bytes::copy_from_slice(json.trim_end().as_bytes());
        let event = Event { subject, payload, origin, sessions, queued: Instant::now() };
        self.queue.try_send(Outgoing::Event(event)).map_err(|_| NotSent)?;
        self.window.queued();
        Ok(())
    }

    /// Queues the new value of the claim under `key` (see [`super::presence`]).
    pub fn update_claim(&self, key: String, claim: &super::presence::Claim) {
        let session = claim.session;
        self.queue_claim_change(ClaimChange::Update { key, value: claim.to_bytes(), session });
    }

    /// Queues the deletion of `keys`, a nick's claim let go by session `session`.
    pub fn release(&self, keys: Vec<String>, session: u64) {
        self.queue_claim_change(ClaimChange::Release { keys, session });
    }

    /// A change that does not fit in the queue (the backbone has stalled) is dropped:
    /// the old claim then stays until this node next starts and frees its claims.
    fn queue_claim_change(&self, change: ClaimChange) {
        let _ = self.claims.try_send(change);
    }

    /// Waits until every event and claim change queued before now is done (acked or
    /// refused): at shutdown, so that the last leaves are published and their claims
    /// let go before the process ends.
    pub async fn flush(&self) {
        let (events, events_done) = oneshot::channel();
        let (claims, claims_done) = oneshot::channel();
        if self.queue.send(Outgoing::Flush(events)).await.is_ok() {
            let _ = events_done.await;
        }
        if self.claims.send(ClaimChange::Flush(claims)).await.is_ok() {
            let _ = claims_done.await;
        }
    }
}

/// The receiving ends of a [`Link`]'s queues.
pub struct Receiver {
    events: mpsc::Receiver<Outgoing>,
    claim_changes: mpsc::Receiver<ClaimChange>,
    /// This node's name: claim changes touch only claims that name it.
    node: Arc<str>,
    persist: Duration,
}

/// Publishes what the hub queues, in order, until the hub is gone, and changes claims
/// on a task of its own. An event the stream does not take gets its sender (on this
/// node) an error.
pub async fn publish(
    jetstream: jetstream::Context,
    nicks: kv::Store,
    Receiver { events: mut rx, claim_changes, node, persist }: Receiver,
    hub: Weak<Hub>,
) {
    let Some(window) = hub.upgrade().and_then(|h| h.backbone_window()) else { return };
    tokio::spawn(change_claims(nicks, claim_changes, node, hub.clone()));
    // Each publish's message id is `NODE-TAG-N`, unique to this process (a node
    // restarted under the same name gets another tag): the stream stores a publish the
    // client retries once, and never takes a new event for a retry.
    let tag = getrandom::u64().unwrap_or(u64::from(std::process::id()));
    let mut out =
        Publisher { jetstream, hub, window, acks: JoinSet::new(), tag, published: 0, persist };
    loop {
        // Acks are reported as they come, not only when the next event is queued: a
        // sender whose line the stream did not take is told even if nobody speaks after.
        let outgoing = tokio::select! {
            Some(acked) = out.acks.join_next(), if !out.acks.is_empty() => {
                report(&out.hub, &out.window, acked);
                continue;
            }
            outgoing = rx.recv() => match outgoing {
                Some(outgoing) => outgoing,
                None => return,
            },
        };
        match outgoing {
            Outgoing::Event(event) => out.event(event).await,
            Outgoing::Flush(done) => {
                while let Some(acked) = out.acks.join_next().await {
                    report(&out.hub, &out.window, acked);
                }
                let _ = done.send(());
            }
        }
    }
}

/// The publishing task's state ([`publish`]).
struct Publisher {
    jetstream: jetstream::Context,
    hub: Weak<Hub>,
    window: Arc<Window>,
    /// Each publish in flight, awaiting its ack ([`confirm`]).
    acks: JoinSet<(u64, Result<u64, jetstream::context::PublishError>)>,
    tag: u64,
    published: u64,
    persist: Duration,
}

impl Publisher {
    /// Publishes `event` once the NATS connection is up, unless `persist` passes first:
    /// then its sender is told it was not delivered, and it never is. It is never
    /// handed to the NATS client while the connection is down: the client would keep it
    /// and send it whenever NATS is back, however long after its sender was told, and
    /// the line would show after all.
    async fn event(&mut self, event: Event) {
        let Event { subject, payload, origin, sessions, queued } = event;
        let (deadline, member) = (queued + self.persist, origin.member);
        if !self.until_connected(deadline).await {
            self.window.acked(None);
            return not_sent(&self.hub, member, "the backbone was away", Unsent::Dropped);
        }
        self.published += 1;
        let mut message = PublishMessage::build()
            .payload(payload)
            .message_id(format!("{}-{:x}-{}", origin.node, self.tag, self.published))
            .header(wire::ORIGIN, origin.header());
        if let Some((from, to)) = sessions {
            message = message.header(wire::SESSIONS, format!("{from} {to}"));
        }
        let again = (self.jetstream.clone(), subject.clone(), message.clone());
        match self.jetstream.send_publish(subject, message).await {
            Ok(ack) => {
                self.acks.spawn(async move { (member, confirm(ack, again, deadline).await) });
            }
            Err(e) => {
                self.window.acked(None);
                not_sent(&self.hub, member, &e.to_string(), Unsent::Unconfirmed);
            }
        }
    }

    /// Waits until the NATS connection is up (true) or `deadline` has passed (false),
    /// reporting the acks of the events before meanwhile.
    async fn until_connected(&mut self, deadline: Instant) -> bool {
        let client = self.jetstream.client();
        loop {
            if client.connection_state() == async_nats::connection::State::Connected {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::select! {
                Some(acked) = self.acks.join_next(), if !self.acks.is_empty() => {
                    report(&self.hub, &self.window, acked);
                }
                _ = tokio::time::sleep(RETRY_PAUSE) => {}
            }
        }
    }
}

/// Claim changes in flight at once: a node that loses thousands of clients at once (a
/// stop) lets their nicks go within its flush's bound, each change two round trips.
const CLAIM_CHANGES_IN_FLIGHT: usize = 64;

/// Makes the claim changes the hub queues until the hub is gone, up to
/// [`CLAIM_CHANGES_IN_FLIGHT`] at once, each key's in the order queued.
///
/// Changes of different keys commute: each touches only its own key, and only while
/// the claim there is its session's on this node ([`Ours`]); so only changes of the
/// same key are ordered. A change whose key is still being changed waits for that one
/// (and, the queue being taken in order, so does every change after it): a release
/// never overtakes an earlier update of its key, nor an update an earlier release.
async fn change_claims(
    nicks: kv::Store,
    mut rx: mpsc::Receiver<ClaimChange>,
    node: Arc<str>,
    hub: Weak<Hub>,
) {
    let mut in_flight = ClaimsInFlight::default();
    while let Some(change) = rx.recv().await {
        let (keys, value, session) = match change {
            ClaimChange::Update { key, value, session } => (vec![key], Some(value), session),
            ClaimChange::Release { keys, session } => (keys, None, session),
            ClaimChange::Flush(done) => {
                while in_flight.join_next().await {}
                let _ = done.send(());
                continue;
            }
        };
        while in_flight.tasks.len() >= CLAIM_CHANGES_IN_FLIGHT || in_flight.touches(&keys) {
            in_flight.join_next().await;
        }
        let (nicks, node, hub) = (nicks.clone(), Arc::clone(&node), hub.clone());
        let todo = keys.clone();
        let task = in_flight.tasks.spawn(async move {
            for key in todo {
                let ours = Ours { session, node: &node };
                if let Err(e) = change_claim(&nicks, &key, value.clone(), ours).await {
                    not_sent(&hub, 0, &e, Unsent::Unconfirmed);
                }
            }
        });
        in_flight.keys.insert(task.id(), keys);
    }
}

/// The claim changes [`change_claims`] has under way, and the keys each touches.
#[derive(Default)]
struct ClaimsInFlight {
    tasks: JoinSet<()>,
    keys: HashMap<tokio::task::Id, Vec<String>>,
}

impl ClaimsInFlight {
    /// Whether a change under way touches one of `keys`.
    fn touches(&self, keys: &[String]) -> bool {
        self.keys.values().flatten().any(|key| keys.contains(key))
    }

    /// Waits for one change to finish; false when none was under way.
    async fn join_next(&mut self) -> bool {
        let Some(done) = self.tasks.join_next_with_id().await else { return false };
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => e.id(),
        };
        self.keys.remove(&id);
        true
    }
}

/// Waits for the ack of a publish; without one, publishes it again (`again`: the
/// context, subject and message, with its message id) whenever the connection is up,
/// until acked or `deadline` has passed. Returns the stream sequence it was stored as.
async fn confirm(
    first: jetstream::context::PublishAckFuture,
    (jetstream, subject, message): (jetstream::Context, String, PublishMessage),
    deadline: Instant,
) -> Result<u64, jetstream::context::PublishError> {
    use jetstream::context::PublishErrorKind as Kind;
    let mut result = first.await.map(|ack| ack.sequence);
    while let Err(e) = &result {
        let final_error = matches!(
            e.kind(),
            Kind::MaxPayloadExceeded | Kind::WrongLastMessageId | Kind::WrongLastSequence
        );
        if final_error || tokio::time::Instant::now() >= deadline {
            break;
        }
        // While the connection is down the client holds the first copy already: another
        // would only pile up behind it.
        let client = jetstream.client();
        while client.connection_state() != async_nats::connection::State::Connected {
            if tokio::time::Instant::now() >= deadline {
                return result;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        result = match jetstream.send_publish(subject.clone(), message.clone()).await {
            Ok(ack) => ack.await.map(|ack| ack.sequence),
            Err(e) => Err(e),
        };
        if result.is_err() {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
    result
}

/// Pause between looks at the connection, and after a retry that failed.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Whose claim a node may change: its own session's, on this node. A claim whose
/// session another node took over (its client resumed there) names that node, which
/// alone changes it now: a late change of this node's (a rename made here meanwhile,
/// let go) must not delete it from under that node (which would fence its user).
#[derive(Clone, Copy)]
struct Ours<'a> {
    session: u64,
    node: &'a str,
}

impl Ours<'_> {
    fn holds(&self, claim: &super::presence::Claim) -> bool {
        claim.session == self.session && claim.node == self.node
    }
}

/// Puts `value` on `key`, or deletes it (`None`), if it is `ours`: never anyone else's
/// claim, made since (a nick let go and taken by another node), nor our session's claim
/// that another node took over.
async fn change_claim(
    nicks: &kv::Store,
    key: &str,
    value: Option<Bytes>,
    ours: Ours<'_>,
) -> Result<(), String> {
    let entry = nicks.entry(key).await.map_err(|e| e.to_string())?;
    let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else { return Ok(()) };
    if !super::presence::Claim::from_bytes(&entry.value).is_some_and(|c| ours.holds(&c)) {
        return Ok(());
    }
    match value {
        Some(value) => {
            nicks.update(key, value, entry.revision).await.map(|_| ()).map_err(|e| e.to_string())
        }
        None => {
            nicks.delete_expect_revision(key, Some(entry.revision)).await.map_err(|e| e.to_string())
        }
    }
}

type Acked = Result<(u64, Result<u64, jetstream::context::PublishError>), tokio::task::JoinError>;

/// Takes in one publish's outcome: its stream sequence, or its sender told.
fn report(hub: &Weak<Hub>, window: &Window, acked: Acked) {
    match acked {
        Ok((_, Ok(seq))) => window.acked(Some(seq)),
        Ok((member, Err(e))) => {
            window.acked(None);
            not_sent(hub, member, &e.to_string(), Unsent::Unconfirmed);
        }
        Err(_) => window.acked(None),
    }
}

/// Tells member `member` (0: nobody, a server-made event) that its event was not
/// delivered (`unsent`: whether it may still show), and logs it.
fn not_sent(hub: &Weak<Hub>, member: u64, error: &str, unsent: Unsent) {
    let Some(hub) = hub.upgrade() else { return };
    hub.log.warn(
        "Backbone publish failed",
        json!({"error": error, "dropped": unsent == Unsent::Dropped}),
    );
    if member != 0 {
        hub.backbone_not_sent(member, unsent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::backbone::presence::Claim;

    fn claim(node: &str, session: u64) -> Claim {
        Claim {
            nick: "bob".into(),
            node: node.into(),
            session,
            room: "#lobby".into(),
            away: None,
            since: jiff::Timestamp::UNIX_EPOCH,
            tls: false,
            token: None,
            oper: false,
        }
    }

    #[test]
    fn a_node_changes_only_its_own_sessions_claims_it_still_holds() {
        let ours = Ours { session: 7, node: "a" };
        assert!(ours.holds(&claim("a", 7)));
        // Another session's claim, made since the nick was let go.
        assert!(!ours.holds(&claim("a", 8)));
        // The same session, resumed on node b while a rename was being made here.
        assert!(!ours.holds(&claim("b", 7)));
    }
}
