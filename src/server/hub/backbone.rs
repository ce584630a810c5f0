//! The hub's side of the backbone: conversation events coming back from the stream,
//! applied under the hub's lock in stream order with the stream sequence as their id.
//!
//! Only on a backbone: a single process delivers its events as it gives them ids
//! (`Registry::publish`), and never comes here.

use serde_json::json;

use super::{Frames, Hub, Joined, NickChange, Registry, Skip, encode_for};
use crate::nick;
use crate::protocol::{Event, EventKind, RoomInfo};
use crate::server::backbone::presence::{self, Claim};
use crate::server::backbone::wire::{Delivered, Echo, Moderation, Origin, Target};
use crate::server::backbone::{self, claims};
use crate::server::history::{Scope, Stored};

impl Hub {
    /// Applies the event `delivered` with the stream sequence `seq` as its id: kept in
    /// the history and sent to this node's members it concerns. An event said on this
    /// node skips whom its origin says (the text-mode sender, say).
    pub fn apply(&self, seq: u64, delivered: Delivered) {
        let Delivered { event, target, origin } = delivered;
        let frames = Frames::new(event, self.json_wanted());
        let mut reg = self.lock();
        let own = |node: &str| reg.link.as_ref().is_some_and(|link| *link.node == *node);
        let said_here = origin.as_ref().is_some_and(|o| own(&o.node) && o.member != 0);
        let said = said_here.then(|| frames.event.kind.clone()).filter(is_line);
        let skip = match origin {
            Some(origin) if own(&origin.node) => match origin.echo {
                Echo::All => Skip::Nobody,
                Echo::NotTo(m) => Skip::Member(m),
                Echo::NotToText(m) => Skip::TextEcho(m),
            },
            _ => Skip::Nobody,
        };
        reg.history.advance_to(seq);
        match target {
            Target::Room(key) => {
                if let EventKind::Topic { topic, by: Some(_), .. } = &frames.event.kind
                    && let Some(room) = reg.rooms.get_mut(&key)
                {
                    room.topic.clone_from(topic);
                }
                reg.deliver(&key, frames, skip, seq);
                if reg.rooms.get(&key).is_none() {
                    // Nobody here is in that room: its ring may go first when rings run short.
                    reg.history.room_closed(&key);
                }
            }
            Target::Private { from, to } => reg.deliver_private(frames.event, from, to, seq),
        }
        drop(reg);
        if let Some(said) = said {
            self.log_said(&said, seq);
        }
    }

    /// Logs line `said`, said on this node, with the id `seq` the stream gave it, as a
    /// single process logs its lines (`--save` keeps the id, for reading the history
    /// back and for the operator).
    fn log_said(&self, said: &EventKind, seq: u64) {
        use crate::server::connection::message_meta;
        use crate::server::journal::Kind;
        match said {
            EventKind::Public { from, text, room } | EventKind::Action { from, text, room } => {
                let mut meta = message_meta(from, text, Some(seq));
                meta["room"] = room.clone().into();
                match said {
                    EventKind::Public { .. } => {
                        self.log.info("Public message", Kind::Public.tag(meta))
                    }
                    _ => self.log.info("Action", Kind::Action.tag(meta)),
                }
            }
            EventKind::Private { from, to, text } => {
                let keep = self.config.private_text;
                let meta = crate::server::privacy::private_meta(keep, (from, to), text, Some(seq));
                self.log.info("Private message", Kind::Private.tag(meta));
            }
            _ => {}
        }
    }

    /// Takes note of sequence `seq`, which held no event this node can read.
    pub fn apply_nothing(&self, seq: u64) {
        self.lock().history.advance_to(seq);
    }

    /// On a backbone, how far this node is behind the stream (see
    /// [`backbone::window`]).
    pub fn backbone_window(&self) -> Option<std::sync::Arc<backbone::Window>> {
        self.window.clone()
    }

    /// The mirror jumped from sequence `before` to `next`: the events between were
    /// dropped by the stream before this node read them (it fell further behind than
    /// the stream keeps). Logged, and every member here is told: those lines are lost
    /// to them, and silence would pass that off as a quiet chat.
    pub fn backbone_missed(&self, before: u64, next: u64) {
        let missed = next - before - 1;
        self.log.warn(
            "Backbone events missed",
            json!({"after_id": before, "next_id": next, "missed": missed}),
        );
        let message = format!(
            "{missed} lines or events (ids {} to {}) did not reach this server: it fell \
             behind the backbone; users of other servers got them",
            before + 1,
            next - 1
        );
        self.broadcast(&crate::protocol::Event::now(EventKind::Info { message }));
    }

    /// Tells member `member` that the backbone did not take what it said.
    pub fn backbone_not_sent(&self, member: u64, unsent: super::Unsent) {
        self.lock().not_sent(member, unsent);
    }
}

impl Registry {
    /// A new member's session number: its member id in a single process; on a backbone,
    /// where every node counts its own member ids, a random one, so that a private
    /// message's two sessions name the same people on every node.
    pub(super) fn new_session(&self, id: u64) -> u64 {
        match &self.link {
            None => id,
            Some(_) => getrandom::u64().ok().filter(|&s| s != 0).unwrap_or(id),
        }
    }

    /// Sends the private message `event` (id `seq`) between sessions `from` and `to` to
    /// this node's members of those sessions, and keeps it.
    fn deliver_private(&mut self, mut event: Event, from: u64, to: u64, seq: u64) {
        event.id = Some(seq);
        for m in self.members.values_mut().filter(|m| !m.held) {
            if m.session == to || m.session == from {
                m.outbox.push(encode_for(&event, m.json, &m.nick).as_bytes());
            }
            if m.session == to && from != to {
                m.profile.written_by(from);
            }
        }
        if self.history.keeps() {
            self.history.push_private(Stored { event, scope: Scope::Private { from, to } });
        }
    }
}

/// Nick claims across nodes and the replica of who is on the others.
impl Hub {
    /// Whether this hub is one node of several.
    pub fn on_backbone(&self) -> bool {
        self.nicks.is_some()
    }

    /// Takes in a change of the bucket of nick claims (`None`: a claim let go). A
    /// session of this node that another node took over (its client resumed there)
    /// ends here silently: no leave, its claim is the other node's now.
    pub fn presence_change(&self, key: &str, claim: Option<Claim>, revision: u64) {
        let mut reg = self.lock();
        let Some(own) = reg.link.as_ref().map(|l| l.node.clone()) else { return };
        if let Some(claim) = claim.as_ref().filter(|c| *c.node != *own) {
            let moved = reg.holder(&nick::key(&claim.nick));
            if let Some(id) = moved.filter(|id| reg.members[id].session == claim.session) {
                let nick = reg.members[&id].nick.clone();
                self.log.info("Resumed elsewhere", json!({"nick": nick}));
                self.drop_moved(&mut reg, id);
            }
        }
        if claim.is_none() {
            self.fence(&mut reg, key);
        }
        reg.presence.change(key, claim, revision, &own);
    }

    /// Fencing: the claim under `key` was deleted by another node while a member of this
    /// node still holds the nick. Only a node that declared this one dead does that
    /// (this node lets a claim go only after its member is gone): this node was cut
    /// off, its users were announced gone, and keeping them would split the chat. The
    /// member's connection ends without a word (the others saw it leave already); its
    /// client connects again and takes the nick afresh, here or on another node.
    fn fence(&self, reg: &mut Registry, key: &str) {
        let Some(nick_key) = key.strip_prefix("k.") else { return };
        let decoded =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, nick_key);
        let Some(nick_key) = decoded.ok().and_then(|b| String::from_utf8(b).ok()) else { return };
        let Some(id) = reg.holder(&nick_key) else { return };
        let nick = reg.members[&id].nick.clone();
        self.log.warn("Backbone fenced", json!({"nick": nick}));
        self.drop_moved(reg, id);
    }

    /// Ends member `id`, whose session another node took over (or announced gone):
    /// removed without a leave and without letting its claim go; its task ends without
    /// a word.
    fn drop_moved(&self, reg: &mut Registry, id: u64) {
        let Some(old) = reg.members.remove(&id) else { return };
        reg.release(&old.nick, id);
        reg.forget_ip(old.ip);
        if old.registered && old.json {
            self.json_members.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        if old.announced {
            reg.online -= 1;
        }
        if old.registered && reg.rooms.leave(&old.room, id) {
            reg.history.room_closed(&old.room);
        }
        if old.held {
            old.outbox.wake();
        } else {
            old.outbox.supersede();
        }
    }

    /// A heartbeat of node `node` (`alive`), or its lease deleted, was seen (this node's
    /// own: its view of the others is current).
    pub fn lease_seen(&self, node: &str, alive: bool) {
        let mut reg = self.lock();
        let now = tokio::time::Instant::now();
        if reg.link.as_ref().is_some_and(|l| *l.node == *node) {
            if alive {
                reg.leases.saw_own(now);
            }
            return;
        }
        if reg.leases.saw(node, alive, now) {
            self.log.info("Backbone node back", json!({"node": node}));
        }
    }

    /// The claims of dead nodes due for sweeping at `now`: those of text users at once,
    /// those of structured users (a token) once `--resume-grace` has passed since the
    /// node died. Logs each node's death once.
    pub fn sweep_due(&self, now: tokio::time::Instant) -> Vec<(String, Claim, u64)> {
        let mut reg = self.lock();
        let grace = self.config.resume_grace;
        let mut due = Vec::new();
        let mut dead_nodes = Vec::new();
        for (key, claim, revision) in reg.presence.entries() {
            let Some(dead) = reg.leases.dead_since(&claim.node, now) else { continue };
            dead_nodes.push(claim.node.clone());
            let wait = if claim.token.is_some() { grace } else { std::time::Duration::ZERO };
            if now >= dead + wait {
                due.push((key.clone(), claim.clone(), revision));
            }
        }
        let vanished = reg.leases.vanished(now);
        let silent = dead_nodes.into_iter().map(|node| (node, false));
        for (node, stopped) in vanished.into_iter().chain(silent) {
            if !reg.leases.newly_dead(&node) {
                continue;
            }
            match stopped {
                true => self.log.info("Backbone node stopped", json!({"node": node})),
                false => self.log.warn(
                    "Backbone node dead",
                    json!({"node": node, "silent_s": backbone::leases::LEASE.as_secs()}),
                ),
            }
        }
        due
    }

    /// This node deleted the claim under `key` of a dead node's user: it announces the
    /// leave, once for all nodes, in the user's room, under the same `--announce-limit`
    /// as any leave.
    pub fn announce_swept(&self, key: &str, claim: &Claim) {
        let mut reg = self.lock();
        let Some(own) = reg.link.as_ref().map(|l| l.node.clone()) else { return };
        reg.presence.change(key, None, 0, &own);
        let online = reg.online_everywhere();
        let room_key = crate::room::key(&claim.room);
        let here = reg.here(&room_key);
        let leave = EventKind::Leave {
            nick: claim.nick.clone(),
            reason: SWEPT.into(),
            online,
            room: claim.room.clone(),
            here,
        };
        // As a leave on the user's own node would have been: not announced while more
        // are online than --announce-limit (a node stopping with tens of thousands of
        // users announced none of them itself).
        if self.announces(online + 1) {
            let frames = Frames::new(Event::now(leave), self.json_wanted());
            reg.publish(&room_key, frames, Skip::Nobody, 0);
        }
        self.log.info(
            "Left with its node",
            json!({"nick": claim.nick, "node": claim.node, "room": claim.room}),
        );
    }

    /// On a backbone, claims the enforced form of `wanted` for member `id` across nodes,
    /// before the hub gives it (`register`, `rename`), or takes over the session of
    /// another node that `resume_token` is for (see [`Across`]). Nothing, without asking
    /// the backbone, when the hub will refuse the nick anyway (invalid, banned, held on
    /// this node) or there is no backbone.
    ///
    /// The claim is a round trip to NATS (two key-value creates), awaited by the
    /// connection's task, never under the hub's lock and never blocking a worker thread:
    /// thousands of clients connecting at once wait on their claims side by side. The
    /// hub decides afterwards, on what the claim found; bounded by twice
    /// [`backbone::TIMEOUT`], past which the backbone counts as unavailable.
    pub async fn claim_across(
        &self,
        id: u64,
        wanted: &str,
        resume_token: Option<&str>,
    ) -> Result<Across, NickChange> {
        let Some(store) = &self.nicks else { return Ok(Across::No) };
        let Ok(nick) = nick::enforce(wanted) else { return Ok(Across::No) };
        if self.moderation.banned_nick(&nick).is_some() {
            return Ok(Across::No);
        }
        if let Some(token) = resume_token
            && let Some(adopted) = self.adopt_across(store, &nick, token).await?
        {
            return Ok(Across::Adopted(adopted));
        }
        if nick::check_scripts(&nick).is_err() {
            // Refused by the hub, unless it looks like a nick held elsewhere: then
            // named after it, as in a single process.
            return match bounded(claims::looks_like(store, &nick)).await {
                Ok(Some(owner)) => Err(NickChange::LooksLike(owner.nick)),
                Ok(None) | Err(_) => Ok(Across::No),
            };
        }
        let claim = match self.claim_to_make(id, &nick, resume_token) {
            Ok(claim) => claim,
            Err(NoClaim::Resumed) => return Ok(Across::Claimed),
            Err(NoClaim::Refused) => return Ok(Across::No),
        };
        match bounded(claims::claim(store, &claim)).await {
            Ok(()) => Ok(Across::Claimed),
            Err(claims::Refused::Taken(owner)) => Err(NickChange::Taken(owner)),
            Err(claims::Refused::LooksLike(owner)) => Err(NickChange::LooksLike(owner)),
            Err(claims::Refused::Unavailable(e)) => {
                self.log.warn("Backbone publish failed", json!({"error": e}));
                Err(NickChange::Unavailable)
            }
        }
    }

    /// The session of another node that `token` resumes, taken over here (its claim
    /// moved to this node) and caught up from this node's mirror once it holds all the
    /// stream had: what the session missed, exactly; the rest comes live. `None` when
    /// the token is for a session of this node, or for none.
    async fn adopt_across(
        &self,
        store: &async_nats::jetstream::kv::Store,
        nick: &str,
        token: &str,
    ) -> Result<Option<Claim>, NickChange> {
        let node = {
            let reg = self.lock();
            if reg.resumable(nick, token).is_some() {
                return Ok(None);
            }
            reg.link.as_ref().map(|l| l.node.to_string()).unwrap_or_default()
        };
        match bounded(claims::adopt(store, nick, token, &node)).await {
            Ok(Some(claim)) => {
                if let Some(mirror) = &self.mirror {
                    mirror.barrier().await;
                }
                Ok(Some(claim))
            }
            Ok(None) => Ok(None),
            Err(_) => Err(NickChange::Unavailable),
        }
    }

    /// The claim member `id` makes for `nick` across nodes, or why it makes none.
    fn claim_to_make(
        &self,
        id: u64,
        nick: &str,
        resume_token: Option<&str>,
    ) -> Result<Claim, NoClaim> {
        let reg = self.lock();
        if resume_token.is_some_and(|token| reg.resumable(nick, token).is_some()) {
            return Err(NoClaim::Resumed);
        }
        let held_here = reg.other_holder(reg.holder(&nick::key(nick)), id).is_some()
            || reg.other_holder(reg.look_holder(&nick::skeleton(nick)), id).is_some();
        if held_here {
            return Err(NoClaim::Refused);
        }
        reg.claim_of(id, nick).ok_or(NoClaim::Refused)
    }

    /// On a backbone, claims member `id`'s guest nick across nodes before it is
    /// welcomed under it, drawing another guest nick while the one it has is taken.
    pub async fn claim_guest_across(&self, id: u64) {
        if self.nicks.is_none() {
            return;
        }
        for _ in 0..GUEST_DRAWS {
            let Some(nick) = self.lock().members.get(&id).map(|m| m.nick.clone()) else { return };
            match self.claim_across(id, &nick, None).await {
                Ok(_) | Err(NickChange::Unavailable) => return,
                Err(_) => {
                    let mut reg = self.lock();
                    let guest = reg.new_guest();
                    let _ = reg.claim(id, &guest);
                }
            }
        }
    }

    /// Lets go of the claim of `nick` by member `id`'s session across nodes, keeping the
    /// keys `kept` (a nick of the same session that shares them) holds.
    pub fn release_across(&self, id: u64, nick: &str, kept: Option<&str>) {
        if let Some(session) = self.session_of(id) {
            self.release_session(session, nick, kept);
        }
    }

    /// [`Hub::release_across`] by the session the claim was made for: also once its
    /// member is gone from this node (its client resumed the session on another node
    /// while the claim was in flight), so that the nick is not left held by nobody. Only
    /// keys that still name this node are deleted: the node that took the session over
    /// keeps what it holds.
    pub fn release_session(&self, session: u64, nick: &str, kept: Option<&str>) {
        if let Some(link) = &self.lock().link {
            link.release(claim_keys(nick, kept), session);
        }
    }

    /// The session of member `id`, while it is a member of this node.
    pub fn session_of(&self, id: u64) -> Option<u64> {
        self.lock().members.get(&id).map(|m| m.session)
    }
}

impl Hub {
    /// Takes in as member `id` the session `claim` of another node, whose resume token
    /// its new connection presented (`claim_across` moved the claim here): same nick,
    /// same session, its room, and the events after `last_id` sent again, as a resume
    /// on the same node does. Nobody is told: no leave, no join.
    pub fn adopt(&self, id: u64, claim: Claim, token: &str, last_id: u64) -> Joined {
        let mut reg = self.lock();
        let guest = reg.members[&id].nick.clone();
        reg.release(&guest, id);
        reg.hold(&claim.nick, id);
        let current = reg.members[&id].room.clone();
        let key = match reg.rooms.open(&claim.room, &current) {
            Ok((key, created)) => {
                if created {
                    reg.adopt_room(&key);
                }
                key
            }
            Err(_) => current,
        };
        reg.rooms.enter(&key, id);
        self.json_members.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        reg.online += 1;
        let token_now = self.new_token();
        let m = reg.members.get_mut(&id).expect("adopting member exists");
        m.nick = claim.nick.clone();
        m.room = key.clone();
        m.json = true;
        m.registered = true;
        m.announced = true;
        m.session = claim.session;
        m.token = token_now;
        m.profile.adopted(claim.away.clone(), claim.since);
        self.welcome(&reg, id);
        let same_run = crate::server::resume::run_of(token) == Some(self.run);
        let last_id = reg.history.comparable(last_id, same_run);
        let missed = self.catch_up(&reg, id, last_id, true);
        reg.update_claim(id);
        let room = reg.room_name(&key);
        Joined::Resumed { nick: claim.nick, room, missed, took_over: true }
    }
}

/// Whether `kind` is a line someone said (logged with its id: [`Hub::apply`]).
fn is_line(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Public { .. } | EventKind::Action { .. } | EventKind::Private { .. })
}

/// What [`Hub::claim_across`] did.
#[derive(Debug)]
pub enum Across {
    /// Nothing: no backbone, or the hub refuses the nick anyway.
    No,
    /// The nick is this session's across nodes (claimed now, or held by the session
    /// its resume takes back on this node).
    Claimed,
    /// The resume token is that of a session held on another node, whose claim is now
    /// this node's: [`Hub::adopt`] takes the session in.
    Adopted(Claim),
}

/// Why [`Hub::claim_to_make`] makes no claim.
enum NoClaim {
    /// The session that the resume token takes back on this node holds the nick already.
    Resumed,
    /// The hub refuses the nick anyway (another member here holds it or a look-alike), or
    /// the member is gone.
    Refused,
}

/// The leave reason of a text-mode user of a node that stops on a backbone (a
/// structured one resumes on another node, unseen).
pub(super) const STOPPING: &str = "server restarting";

/// The leave reason of a user of a node declared dead.
const SWEPT: &str = "connection lost (its server stopped answering)";

/// How many guest nicks a new connection draws before it keeps one unclaimed (a clash
/// of random 6-digit guest numbers is already rare).
const GUEST_DRAWS: usize = 5;

/// The keys of `nick`'s claim, without those `kept`'s claim also uses.
pub(super) fn claim_keys(nick: &str, kept: Option<&str>) -> Vec<String> {
    let keep: Vec<String> =
        kept.map(|k| vec![presence::nick_key(k), presence::skeleton_key(k)]).unwrap_or_default();
    [presence::nick_key(nick), presence::skeleton_key(nick)]
        .into_iter()
        .filter(|key| !keep.contains(key))
        .collect()
}

/// A claim's `future`, bounded by twice [`backbone::TIMEOUT`] (a create and, if it
/// exists, a read): past that the backbone is unavailable.
async fn bounded<T>(
    future: impl std::future::Future<Output = Result<T, claims::Refused>>,
) -> Result<T, claims::Refused> {
    match tokio::time::timeout(backbone::TIMEOUT * 2, future).await {
        Ok(result) => result,
        Err(_) => Err(claims::Refused::Unavailable("timed out".into())),
    }
}

impl Registry {
    /// The claim member `id` would make for `nick`: its session, room and away message.
    pub(super) fn claim_of(&self, id: u64, nick: &str) -> Option<Claim> {
        let link = self.link.as_ref()?;
        let m = self.members.get(&id)?;
        let (since, tls) = m.profile.since_and_tls();
        Some(Claim {
            nick: nick.to_owned(),
            node: link.node.to_string(),
            session: m.session,
            room: self.room_name(&m.room),
            away: m.profile.away_message(),
            since,
            tls,
            token: m.token.as_ref().map(|t| presence::token_hash(&t.to_hex())),
            oper: m.profile.oper,
        })
    }

    /// Tells the other nodes member `id`'s room or away message changed.
    pub(super) fn update_claim(&self, id: u64) {
        let (Some(link), Some(m)) = (&self.link, self.members.get(&id)) else { return };
        if let Some(claim) = self.claim_of(id, &m.nick) {
            link.update_claim(presence::nick_key(&m.nick), &claim);
        }
    }

    /// A guest nick for a new connection: `guestN` counting up in a single process; on
    /// a backbone, where every node counts, a random 6-digit `N`, claimed across nodes
    /// before the welcome ([`Hub::claim_guest_across`]).
    pub(super) fn new_guest(&mut self) -> String {
        loop {
            let n = match &self.link {
                None => {
                    self.next_guest += 1;
                    self.next_guest
                }
                Some(_) => 100_000 + getrandom::u64().unwrap_or(self.next_id) % 900_000,
            };
            let candidate = format!("guest{n}");
            if self.is_free(&candidate) {
                return candidate;
            }
        }
    }

    /// On a backbone, room `key`, just opened here, may exist on other nodes: it takes
    /// the name their users see and its last topic from the stream.
    pub(super) fn adopt_room(&mut self, key: &str) {
        if self.link.is_none() {
            return;
        }
        let same = |c: &&Claim| crate::room::key(&c.room) == key;
        let name = self.presence.all().find(same).map(|c| c.room.clone());
        let topic = self.history.last_topic(key);
        if let Some(room) = self.rooms.get_mut(key) {
            if let Some(name) = name {
                room.name = name;
            }
            if let Some(topic) = topic {
                room.topic = topic;
            }
        }
    }

    /// This node's name, on a backbone.
    pub(super) fn node_name(&self) -> Option<&str> {
        self.link.as_ref().map(|l| &*l.node)
    }

    /// The operator's `/list` rows of other nodes' users (`NICK in ROOM on NODE`, and
    /// `(away)`), each with its nick key for sorting.
    pub(super) fn roster_elsewhere(&self) -> Vec<(String, String)> {
        let row = |c: &Claim| {
            let away = if c.away.is_some() { " (away)" } else { "" };
            (nick::key(&c.nick), format!("{} in {} on {}{away}", c.nick, c.room, c.node))
        };
        self.presence.all().map(row).collect()
    }

    /// The nicks of other nodes' users in room `name`.
    pub(super) fn remote_in_room(&self, name: &str) -> Vec<String> {
        self.presence.in_room(name).map(|c| c.nick.clone()).collect()
    }

    /// Whether `nick`, of another node, is away.
    pub(super) fn remote_away(&self, nick: &str) -> bool {
        self.presence.get(nick).is_some_and(|c| c.away.is_some())
    }
}

/// Answers about the users of other nodes, from the replica of their claims.
impl Registry {
    /// Everyone online: announced members here and the claims of other nodes.
    pub(super) fn online_everywhere(&self) -> usize {
        self.online + self.presence.len()
    }

    /// On a backbone, `--max-rooms` holds over the whole chat: a room open on no node
    /// is refused while `max` rooms are open over all nodes (a room open on several
    /// counts once). Two nodes opening rooms at the same moment may each pass it by one.
    pub(super) fn room_limit_everywhere(
        &self,
        name: &str,
        max: usize,
    ) -> Result<(), crate::server::rooms::JoinRefusal> {
        if self.link.is_none() {
            return Ok(());
        }
        let key = crate::room::key(name);
        if self.rooms.get(&key).is_some() || self.presence.count_in(&key) > 0 {
            return Ok(());
        }
        let elsewhere = self.presence.room_keys().filter(|k| self.rooms.get(k).is_none()).count();
        match self.rooms.keys().count() + elsewhere >= max.max(1) {
            true => Err(crate::server::rooms::JoinRefusal::TooMany(max.max(1))),
            false => Ok(()),
        }
    }

    /// `/rooms` over every node: this node's rooms with their topics, the users of
    /// other nodes counted in, and the rooms only other nodes' users are in.
    pub(super) fn rooms_everywhere(&self) -> Vec<RoomInfo> {
        let mut rooms = self.rooms.list();
        for claim in self.presence.all() {
            let key = crate::room::key(&claim.room);
            match rooms.iter_mut().find(|r| crate::room::key(&r.room) == key) {
                Some(room) => room.here += 1,
                None => {
                    // Open on other nodes only: its topic is the last the stream gave.
                    let topic = self.history.last_topic(&key).unwrap_or_default();
                    rooms.push(RoomInfo { room: claim.room.clone(), here: 1, topic })
                }
            }
        }
        rooms.sort_by_cached_key(|r| crate::room::key(&r.room));
        rooms
    }

    /// `/whois` about `nick` on another node: what its claim says (no idle time, no
    /// address: only the node that holds it knows them, so they are left out), and
    /// whether `registered` says its nick is registered.
    pub(super) fn whois_other_node(
        &self,
        nick: &str,
        registered: impl Fn(&str) -> bool,
    ) -> Option<EventKind> {
        let claim = self.presence.get(nick)?;
        Some(EventKind::Whois {
            nick: claim.nick.clone(),
            room: claim.room.clone(),
            since: claim.since,
            idle_secs: None,
            away: claim.away.clone(),
            oper: claim.oper,
            tls: claim.tls,
            addr: None,
            // How it was proven is known to the node that holds it.
            registered: registered(&claim.nick),
            proven_by: None,
        })
    }

    /// `/msg` to `to`, a user of another node: published with the two sessions, and
    /// delivered to both when it comes back from the stream. Returns the target's nick.
    pub(super) fn private_to_other_node(
        &self,
        from_id: u64,
        to: &str,
        text: &str,
    ) -> Option<(String, Option<u64>)> {
        let (link, claim) = (self.link.as_ref()?, self.presence.get(to)?);
        let sender = self.members.get(&from_id)?;
        let event = Event::now(EventKind::Private {
            from: sender.nick.clone(),
            to: claim.nick.clone(),
            text: text.to_owned(),
        });
        let origin = super::said_by(link, from_id, Skip::Nobody);
        let json = event.json_line();
        if link.private(json.trim_end(), origin, sender.session, claim.session).is_err() {
            self.not_sent(from_id, super::Unsent::Dropped);
        }
        Some((claim.nick.clone(), None))
    }
}

/// Moderation across nodes: a kick, mute or ban given on any node takes effect where
/// its target is, through the stream (so a node that starts later takes the bans in as
/// well, in order).
impl Hub {
    /// On a backbone, hands `action` to the other nodes: a ban or a mute (and their
    /// undoing) kept in the bucket every node reads ([`backbone::kept`]), a kick through
    /// the stream. False without a backbone, or when the backbone did not take it
    /// (within twice [`backbone::TIMEOUT`]).
    ///
    /// The bucket's answer is awaited by the task that gives the command (a
    /// connection's, the control socket's, the console's own), never blocking a worker
    /// thread: a thread blocked on NATS is one fewer to read NATS's answers, and enough
    /// of them stall the node. Without a backbone it is ready when first polled.
    pub async fn moderate_across(&self, action: &Moderation) -> bool {
        if let Some(store) = &self.kept
            && backbone::kept::key(action).is_some()
        {
            let kept = backbone::kept::keep(store, action);
            return tokio::time::timeout(backbone::TIMEOUT * 2, kept).await.unwrap_or(false);
        }
        let reg = self.lock();
        let Some(link) = &reg.link else { return false };
        link.moderation(action, super::said_by(link, 0, Skip::Nobody)).is_ok()
    }

    /// Mutes or unmutes `nick` on this node: its holder if here, else the nick and `ip`
    /// for whoever comes. Returns the address the holder here connected from, if any.
    fn mute_here(
        &self,
        nick: &str,
        ip: Option<std::net::IpAddr>,
        mute: Option<super::Mute>,
        by: &str,
    ) -> Option<std::net::IpAddr> {
        match self.mute(nick, mute, by) {
            Some((_, addr)) => addr,
            None => {
                self.moderation.remember_mute(nick, ip, mute);
                None
            }
        }
    }

    /// A mute (or unmute) of a user of this node that another node gave without the
    /// address, which only this node knows: kept again with it (`action` has it), so
    /// that every node holds it for the address as well. Nothing when `had` was
    /// already the address or the user is not here.
    fn keep_with_address(&self, action: Moderation, had: Option<std::net::IpAddr>) {
        let addr = match &action {
            Moderation::Mute { ip, .. } | Moderation::Unmute { ip, .. } => *ip,
            _ => None,
        };
        if let (Some(store), Some(_), None) = (&self.kept, addr, had) {
            let store = store.clone();
            tokio::spawn(async move { backbone::kept::keep(&store, &action).await });
        }
    }

    /// Another node changed whether `account` gives operator rights: a member of this
    /// node that holds its nick and proves it gets them now (or loses them), and is told.
    pub fn account_oper_changed(&self, account: &crate::server::accounts::Account) {
        let holder = {
            let reg = self.lock();
            let Some(id) = reg.find(&account.nick) else { return };
            let m = &reg.members[&id];
            let proven = super::ownership::proof(&m.profile, account).is_some();
            (proven && m.profile.oper != account.oper).then(|| m.nick.clone())
        };
        if let Some(nick) = holder {
            self.set_oper(&nick, account.oper, "an operator on another node");
        }
    }

    /// The nick as shown of `nick`'s holder on another node, if any.
    pub fn elsewhere(&self, nick: &str) -> Option<String> {
        self.lock().presence.get(nick).map(|c| c.nick.clone())
    }

    /// Applies moderation another node gave (its own was applied when given): to this
    /// node's users it concerns, and bans to this node's list.
    pub fn apply_moderation(&self, action: Moderation, origin: Option<Origin>) {
        let own = self.lock().link.as_ref().map(|l| l.node.to_string());
        if origin.is_some_and(|o| Some(o.node) == own) {
            return;
        }
        match action {
            Moderation::Kick { nick, why } => {
                self.kick(&nick, &why);
            }
            // A user not on this node is remembered by nick and address: muted here
            // too if they come, under that nick or from that address.
            Moderation::Mute { nick, until, by, ip } => {
                let mute = Some(super::Mute { until });
                let addr = self.mute_here(&nick, ip, mute, &by);
                self.keep_with_address(Moderation::Mute { nick, until, by, ip: addr }, ip);
            }
            Moderation::Unmute { nick, by, ip } => {
                let addr = self.mute_here(&nick, ip, None, &by);
                self.keep_with_address(Moderation::Unmute { nick, by, ip: addr }, ip);
            }
            Moderation::Ban { ban } => {
                if let Err(e) = self.moderation.ban(ban.clone()) {
                    self.log.error("Ban not saved", json!({"error": e}));
                }
                crate::server::operator::enforce(self, &ban);
            }
            Moderation::Unban { target } => {
                if let Ok(target) = crate::server::bans::Target::parse(&target) {
                    let _ = self.moderation.unban(&target);
                }
            }
        }
    }
}
