//! The people behind the nicks: since when they are here, whether they are away, muted
//! or operators, whom they last heard from privately; and the operator actions on
//! them (kick, mute, op). Part of the hub: the registry stays the one owner of members.

use std::net::SocketAddr;

use jiff::Timestamp;

use super::{Hub, Member, Registry, encode_for};
use crate::fingerprint::Fingerprint;
use crate::nick;
use crate::protocol::{Event, EventKind};
use crate::server::clock;

/// A member's state beyond its nick and connection.
pub(super) struct Profile {
    /// The full peer address, for `/whois` by operators and for address bans (the
    /// member's `ip` is its `--max-per-ip` origin, a /64 for IPv6).
    peer: Option<SocketAddr>,
    since: Timestamp,
    /// When the member last sent a message: `/whois` shows the idle time from it.
    active: Timestamp,
    pub(super) oper: bool,
    /// Connected over TLS.
    tls: bool,
    /// Kicked or banned: the session ends and is never held for a resume (a kick is not
    /// a lost connection).
    kicked: bool,
    /// What few members have: boxed, made when first set, so that every other member
    /// (an idle connection, say) keeps 8 bytes for it instead of 136.
    rare: Option<Box<Rare>>,
}

/// The parts of a [`Profile`] that few members ever set.
#[derive(Default)]
struct Rare {
    /// Set by `/away`; an empty message is away without one.
    away: Option<String>,
    /// Sessions (see `Member::session`: the same person across resumes) already
    /// answered with the away message during this away spell.
    answered: Vec<u64>,
    muted: Option<Mute>,
    /// The session that sent the last private message here, for `/reply`.
    last_private_from: Option<u64>,
    /// The fingerprint of the client certificate this connection presented (see
    /// `ownership`).
    key: Option<Fingerprint>,
    /// The registered nick (its [`nick::key`]) this person proved with its password.
    identified: Option<String>,
}

/// A mute in force: messages are refused until `until` (`None`: until `/unmute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mute {
    pub until: Option<Timestamp>,
}

impl Mute {
    /// The error the muted member gets for a refused line.
    pub fn describe(&self) -> String {
        match self.until {
            Some(until) => format!(
                "you are muted until {}; your message was not sent",
                until.strftime("%Y-%m-%d %H:%M:%S UTC")
            ),
            None => "you are muted by an operator; your message was not sent".into(),
        }
    }
}

impl Profile {
    pub(super) fn new() -> Profile {
        let now = clock::now();
        Profile {
            peer: None,
            since: now,
            active: now,
            oper: false,
            tls: false,
            kicked: false,
            rare: None,
        }
    }

    /// This profile for a connection that resumed the session `old` had: the person's
    /// state (online since, away, operator, muted, `/reply` target, a nick proven by
    /// password) comes along; how it is connected (address, TLS, key) is the new
    /// connection's.
    pub(super) fn resumed_from(&mut self, old: Profile) {
        let key = self.key();
        *self = Profile { peer: self.peer, tls: self.tls, ..old };
        self.set_key(key);
    }

    fn rare(&self) -> Option<&Rare> {
        self.rare.as_deref()
    }

    /// The rare parts, made if not yet.
    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_default()
    }

    /// Frees the rare parts once nothing is set in them any more.
    fn tidy(&mut self) {
        if self.rare.as_deref().is_some_and(Rare::is_empty) {
            self.rare = None;
        }
    }

    /// The away message, if away (an empty one: away without a message).
    fn away(&self) -> Option<&str> {
        self.rare()?.away.as_deref()
    }

    fn set_away(&mut self, away: Option<String>) -> Option<String> {
        let rare = self.rare_mut();
        rare.answered = Vec::new();
        let was = std::mem::replace(&mut rare.away, away);
        self.tidy();
        was
    }

    fn muted(&self) -> Option<Mute> {
        self.rare()?.muted
    }

    fn set_muted(&mut self, mute: Option<Mute>) {
        self.rare_mut().muted = mute;
        self.tidy();
    }

    /// The fingerprint of the client certificate this connection presented.
    pub(super) fn key(&self) -> Option<Fingerprint> {
        self.rare()?.key
    }

    pub(super) fn set_key(&mut self, key: Option<Fingerprint>) {
        self.rare_mut().key = key;
        self.tidy();
    }

    /// The registered nick (its [`nick::key`]) this person proved with its password.
    pub(super) fn identified(&self) -> Option<&str> {
        self.rare()?.identified.as_deref()
    }

    pub(super) fn set_identified(&mut self, nick_key: String) {
        self.rare_mut().identified = Some(nick_key);
    }

    pub(super) fn kicked(&self) -> bool {
        self.kicked
    }

    /// This profile for a session taken over from another node: its away message and
    /// when it first connected come with it (the rest stays with the node it left).
    pub(super) fn adopted(&mut self, away: Option<String>, since: Timestamp) {
        self.set_away(away);
        self.since = since;
    }

    /// The away message, if away (for the backbone's claim).
    pub(super) fn away_message(&self) -> Option<String> {
        self.away().map(str::to_owned)
    }

    /// When the member connected and whether over TLS (for the backbone's claim).
    pub(super) fn since_and_tls(&self) -> (Timestamp, bool) {
        (self.since, self.tls)
    }

    /// Session `from` (on another node, say) sent this member a private message: its
    /// `/reply` goes there.
    pub(super) fn written_by(&mut self, from: u64) {
        self.rare_mut().last_private_from = Some(from);
    }

    /// Whether the away message is still to be sent to `session` in this away spell;
    /// notes that it is sent. `None` when not away.
    fn answer_once(&mut self, session: u64) -> Option<String> {
        let rare = self.rare.as_deref_mut()?;
        let message = rare.away.clone()?;
        if rare.answered.contains(&session) {
            return None;
        }
        rare.answered.push(session);
        Some(message)
    }
}

impl Rare {
    fn is_empty(&self) -> bool {
        let Rare { away, answered, muted, last_private_from, key, identified } = self;
        away.is_none()
            && answered.is_empty()
            && muted.is_none()
            && last_private_from.is_none()
            && key.is_none()
            && identified.is_none()
    }
}

/// Records who wrote to `target_id` (for its `/reply`), and answers the sender with
/// the target's away message, once per away spell.
pub(super) fn after_private(reg: &mut Registry, from_id: u64, target_id: u64) {
    if from_id == target_id {
        return;
    }
    let Some(from_session) = reg.members.get(&from_id).map(|m| m.session) else { return };
    let Some(target) = reg.members.get_mut(&target_id) else { return };
    target.profile.written_by(from_session);
    let Some(message) = target.profile.answer_once(from_session) else { return };
    let event = Event::now(EventKind::Away { nick: target.nick.clone(), message });
    if let Some(sender) = reg.members.get(&from_id) {
        sender.outbox.push(encode_for(&event, sender.json, &sender.nick).as_bytes());
    }
}

impl Hub {
    /// Records that member `id` connected over TLS, for `/whois`.
    pub fn note_tls(&self, id: u64) {
        if let Some(m) = self.lock().members.get_mut(&id) {
            m.profile.tls = true;
        }
    }

    /// Records the full peer address of member `id`.
    pub fn note_peer(&self, id: u64, peer: SocketAddr) {
        if let Some(m) = self.lock().members.get_mut(&id) {
            m.profile.peer = Some(peer);
        }
    }

    /// The mute in force for member `id`, if any (a lapsed one is not).
    pub fn muted(&self, id: u64) -> Option<Mute> {
        let reg = self.lock();
        let m = reg.members.get(&id)?;
        m.profile.muted().filter(|mute| mute.until.is_none_or(|until| until > clock::now()))
    }

    /// Whether member `id` may send a message now; marks it active if so. A lapsed
    /// mute is lifted here.
    pub fn speak(&self, id: u64) -> Result<(), Mute> {
        let mut reg = self.lock();
        let Some(m) = reg.members.get_mut(&id) else { return Ok(()) };
        let now = clock::now();
        match m.profile.muted() {
            Some(mute) if mute.until.is_none_or(|until| until > now) => return Err(mute),
            Some(_) => m.profile.set_muted(None),
            None => {}
        }
        m.profile.active = now;
        Ok(())
    }

    /// The nick to `/reply` to: the last member who sent `id` a private message, if
    /// still online (by session, so through its resumes).
    pub fn reply_target(&self, id: u64) -> Result<String, &'static str> {
        let reg = self.lock();
        let from = reg.members.get(&id).and_then(|m| m.profile.rare()?.last_private_from);
        let from = from.ok_or("nobody has sent you a private message yet")?;
        let sender = reg.members.values().find(|m| m.session == from).map(|m| m.nick.clone());
        let sender = sender.or_else(|| reg.presence.by_session(from).map(|c| c.nick.clone()));
        sender.ok_or("who wrote to you last has left")
    }

    /// Marks member `id` away with `message`, or back with `None`; returns whether it
    /// was away before.
    pub fn set_away(&self, id: u64, message: Option<String>) -> bool {
        let mut reg = self.lock();
        let Some(m) = reg.members.get_mut(&id) else { return false };
        let was_away = m.profile.set_away(message).is_some();
        reg.update_claim(id);
        was_away
    }

    /// The `/whois` answer about `nick`; the address only if `with_addr`.
    pub fn whois(&self, nick: &str, with_addr: bool) -> Option<EventKind> {
        let reg = self.lock();
        let Some(m) = reg.find(nick).map(|id| &reg.members[&id]) else {
            return reg.whois_other_node(nick, |n| self.config.accounts.covering(n).is_some());
        };
        let account = self.config.accounts.covering(&m.nick);
        let idle = clock::now().duration_since(m.profile.active).as_secs().max(0);
        Some(EventKind::Whois {
            nick: m.nick.clone(),
            room: reg.room_name(&m.room),
            since: m.profile.since,
            idle_secs: Some(idle as u64),
            away: m.profile.away_message(),
            oper: m.profile.oper,
            tls: m.profile.tls,
            addr: m.profile.peer.filter(|_| with_addr).map(|p| p.to_string()),
            registered: account.is_some(),
            proven_by: account.and_then(|a| super::ownership::proof(&m.profile, &a)),
        })
    }

    /// Registered nicks with their room and a mark for operators, muted and away
    /// members: the operator's `/list`.
    pub fn roster(&self) -> Vec<String> {
        let reg = self.lock();
        let now = clock::now();
        let mut members: Vec<&Member> =
            reg.members.values().map(|m| &**m).filter(|m| m.announced).collect();
        members.sort_by_cached_key(|m| nick::key(&m.nick));
        let row = |m: &&Member| {
            let p = &m.profile;
            let mut row = format!("{} in {}", m.nick, reg.room_name(&m.room));
            if let Some(node) = reg.node_name() {
                row.push_str(&format!(" on {node}"));
            }
            if p.oper {
                row.push_str(" (operator)");
            }
            if p.muted().is_some_and(|mu| mu.until.is_none_or(|u| u > now)) {
                row.push_str(" (muted)");
            }
            if p.away().is_some() {
                row.push_str(" (away)");
            }
            row
        };
        let mut rows: Vec<(String, String)> =
            members.iter().map(|m| (nick::key(&m.nick), row(m))).collect();
        rows.extend(reg.roster_elsewhere());
        rows.sort();
        rows.into_iter().map(|(_, row)| row).collect()
    }

    pub fn is_oper(&self, id: u64) -> bool {
        self.lock().members.get(&id).is_some_and(|m| m.profile.oper)
    }

    /// Makes the holder of `nick` an operator (or not); returns its nick as registered.
    pub fn set_oper(&self, nick: &str, oper: bool, by: &str) -> Option<String> {
        let mut reg = self.lock();
        let id = reg.find(nick)?;
        let m = reg.members.get_mut(&id).expect("found");
        m.profile.oper = oper;
        let message = if oper {
            format!("you are now an operator (made so by {by}); /help lists your commands")
        } else {
            format!("you are no longer an operator (by {by})")
        };
        let event = Event::now(EventKind::Info { message });
        m.outbox.push(encode_for(&event, m.json, &m.nick).as_bytes());
        let nick = m.nick.clone();
        // Other nodes' `/whois` shows it.
        reg.update_claim(id);
        Some(nick)
    }

    /// Makes member `id` an operator after a right `/oper`.
    pub fn grant_oper(&self, id: u64) {
        let mut reg = self.lock();
        if let Some(m) = reg.members.get_mut(&id) {
            m.profile.oper = true;
            reg.update_claim(id);
        }
    }

    /// Mutes (`Some`) or unmutes (`None`) the holder of `nick`, telling them; returns
    /// its nick as registered and the address it connected from (the mute holds for
    /// that address too).
    pub fn mute(
        &self,
        nick: &str,
        mute: Option<Mute>,
        by: &str,
    ) -> Option<(String, Option<std::net::IpAddr>)> {
        let mut reg = self.lock();
        let id = reg.find(nick)?;
        let m = reg.members.get_mut(&id).expect("found");
        m.profile.set_muted(mute);
        let ip = m.profile.peer.map(|p| p.ip().to_canonical());
        self.moderation.remember_mute(&m.nick, ip, mute);
        let message = match mute {
            Some(Mute { until: Some(until) }) => format!(
                "you have been muted by {by} until {}",
                until.strftime("%Y-%m-%d %H:%M:%S UTC")
            ),
            Some(Mute { until: None }) => format!("you have been muted by {by}"),
            None => format!("you may speak again (unmuted by {by})"),
        };
        let event = Event::now(EventKind::Info { message });
        m.outbox.push(encode_for(&event, m.json, &m.nick).as_bytes());
        Some((m.nick.clone(), ip))
    }

    /// Disconnects the holder of `nick`: it gets an error saying `why`, everyone else
    /// its leave with `why` as the reason. Returns its nick as registered.
    pub fn kick(&self, nick: &str, why: &str) -> Option<String> {
        let mut reg = self.lock();
        let id = reg.find(nick)?;
        eject(&mut reg, id, why);
        Some(reg.members[&id].nick.clone())
    }

    /// Disconnects every member a ban covers (by its address or its nick), as
    /// [`Hub::kick`] does; returns their nicks. A member already kicked (by an earlier
    /// ban of the same reload, say) is left to the leave it has: told once, listed once.
    pub fn kick_banned(&self, target: &crate::server::bans::Target, why: &str) -> Vec<String> {
        let mut reg = self.lock();
        let ids: Vec<u64> = (reg.members.iter())
            .filter(|(_, m)| !m.profile.kicked)
            .filter(|(_, m)| {
                target.matches_nick(&m.nick)
                    || m.profile.peer.is_some_and(|p| target.matches_ip(p.ip()))
            })
            .map(|(id, _)| *id)
            .collect();
        ids.iter()
            .map(|id| {
                eject(&mut reg, *id, why);
                reg.members[id].nick.clone()
            })
            .collect()
    }

    /// Sends a notice from the server to every registered member, whatever their room.
    pub fn notice(&self, text: &str) {
        let event = Event::now(EventKind::Notice {
            from: self.config.server_name.clone(),
            text: text.to_owned(),
        });
        self.broadcast(&event);
    }

    /// Sends the MOTD, if there is one, to member `id`.
    pub(super) fn send_motd(&self, reg: &Registry, id: u64) {
        if let (Some(text), Some(m)) = (self.moderation.motd(), reg.members.get(&id)) {
            let event = Event::now(EventKind::Motd { text });
            m.outbox.push(encode_for(&event, m.json, &m.nick).as_bytes());
        }
    }
}

/// Queues the error for member `id` and asks its task to close with `why` as the
/// leave reason; the session can no longer be held or resumed. A held member's task,
/// waiting for a resume, is woken by the close and leaves at once.
fn eject(reg: &mut Registry, id: u64, why: &str) {
    let m = reg.members.get_mut(&id).expect("ejected member exists");
    m.profile.kicked = true;
    let event =
        Event::now(EventKind::Error { code: "kicked".into(), message: format!("you were {why}") });
    m.outbox.push(encode_for(&event, m.json, &m.nick).as_bytes());
    m.outbox.close(why.to_owned());
}

impl Hub {
    /// Mutes member `id` again if its nick or its address is under a mute in force
    /// (it reconnected, or took a muted nick): a mute lasts its time, not a connection.
    pub(super) fn apply_standing_mute(&self, reg: &mut Registry, id: u64) {
        let Some(m) = reg.members.get_mut(&id) else { return };
        let ip = m.profile.peer.map(|p| p.ip().to_canonical());
        if let Some(mute) = self.moderation.standing_mute(&m.nick, ip) {
            m.profile.set_muted(Some(mute));
        }
    }
}

impl Registry {
    /// Those of `users` who are away, in the same order: the `away` of a `/list`.
    pub(super) fn away_among(&self, users: &[String]) -> Vec<String> {
        let away = |n: &&String| {
            let id = self.holder(&nick::key(n));
            id.and_then(|id| self.members.get(&id)).is_some_and(|m| m.profile.away().is_some())
                || self.remote_away(n)
        };
        users.iter().filter(away).cloned().collect()
    }

    /// The member holding `nick` ([`nick::key`]), if the others know of it (announced).
    pub(super) fn find(&self, nick: &str) -> Option<u64> {
        let id = self.holder(&nick::key(nick))?;
        self.members.get(&id).filter(|m| m.announced).map(|_| id)
    }
}
