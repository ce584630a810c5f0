//! Who is on the other nodes: nick claims in the `tchat_nicks` key-value bucket, and each
//! node's replica of them. Pure, so it is tested without NATS.
//!
//! A nick is held across nodes by two keys, made with a create that only one writer can
//! win: `k.<nick key>` ([`crate::nick::key`]) and `s.<skeleton>`
//! ([`crate::nick::skeleton`]), each in unpadded base64url (key-value keys allow only
//! `-/_=.a-zA-Z0-9`, nicks are Unicode). The `k.` key's value is a [`Claim`]: who holds
//! the nick, on which node, in which room, away or not. Every node watches the bucket
//! into a [`Presence`] replica for `/list`, `/whois`, `/msg` and room counts.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The bucket of nick claims.
pub const BUCKET: &str = "tchat_nicks";

/// The key that holds nick key `key` (see [`crate::nick::key`]).
pub fn nick_key(nick: &str) -> String {
    format!("k.{}", URL_SAFE_NO_PAD.encode(crate::nick::key(nick)))
}

/// The key that holds the look-alike skeleton of `nick` (see [`crate::nick::skeleton`]).
pub fn skeleton_key(nick: &str) -> String {
    format!("s.{}", URL_SAFE_NO_PAD.encode(crate::nick::skeleton(nick)))
}

/// Who holds a nick: the value of its `k.` key (and, for naming the holder of a
/// look-alike, of its `s.` key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The nick as shown.
    pub nick: String,
    pub node: String,
    /// The session ([`crate::server`]'s random session number on a backbone), for
    /// private messages.
    pub session: u64,
    /// The name of the room the holder is in.
    pub room: String,
    /// The away message, if away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<String>,
    /// When the holder connected, and whether over TLS: for `/whois`.
    pub since: jiff::Timestamp,
    #[serde(default)]
    pub tls: bool,
    /// The SHA-256 of the session's resume token ([`token_hash`]; never the token
    /// itself): the node a structured client resumes on checks the token with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Whether the holder is an operator: for `/whois`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oper: bool,
}

/// The hash of resume token `token` (as the client presents it) kept in a claim: hex
/// SHA-256 of its lowercase form. A token is 128 random bits, so a hash without salt
/// cannot be reversed or guessed.
pub fn token_hash(token: &str) -> String {
    use std::fmt::Write as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, token.to_ascii_lowercase().as_bytes());
    digest.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Claim {
    /// Whether `token`, presented by a resuming client, is this session's.
    pub fn token_matches(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        let presented = token_hash(token);
        self.token.as_ref().is_some_and(|t| bool::from(t.as_bytes().ct_eq(presented.as_bytes())))
    }
}

impl Claim {
    pub fn to_bytes(&self) -> bytes::Bytes {
        serde_json::to_vec(self).expect("a claim always serialises").into()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Claim> {
        serde_json::from_slice(bytes).ok()
    }
}

/// This node's replica of the other nodes' claims (its own members are in the hub),
/// by `k.` key, with each one's revision (for deleting exactly that claim), and how many
/// of them are in each room (by room key), so that counting a room's users over all
/// nodes at every join and leave does not walk every claim.
#[derive(Debug, Default)]
pub struct Presence {
    others: HashMap<String, (Claim, u64)>,
    rooms: HashMap<String, usize>,
}

impl Presence {
    /// Takes in a change of key `key` seen by the watch: `Some(claim)` put, `None`
    /// deleted. `s.` keys and this node's own claims (`own`) are not kept.
    pub fn change(&mut self, key: &str, claim: Option<Claim>, revision: u64, own: &str) {
        if !key.starts_with("k.") {
            return;
        }
        let room = claim.as_ref().filter(|c| c.node != own).map(|c| crate::room::key(&c.room));
        let old = match claim.filter(|c| c.node != own) {
            Some(claim) => self.others.insert(key.to_owned(), (claim, revision)),
            None => self.others.remove(key),
        };
        if let Some((old, _)) = old {
            self.left_room(&crate::room::key(&old.room));
        }
        if let Some(room) = room {
            *self.rooms.entry(room).or_default() += 1;
        }
    }

    fn left_room(&mut self, room: &str) {
        if let Some(n) = self.rooms.get_mut(room) {
            *n -= 1;
            if *n == 0 {
                self.rooms.remove(room);
            }
        }
    }

    /// How many users of other nodes are in the room of key `room` ([`crate::room::key`]).
    pub fn count_in(&self, room: &str) -> usize {
        self.rooms.get(room).copied().unwrap_or(0)
    }

    /// The keys of the rooms users of other nodes are in.
    pub fn room_keys(&self) -> impl Iterator<Item = &String> {
        self.rooms.keys()
    }

    /// The claim of `nick` on another node, if any.
    pub fn get(&self, nick: &str) -> Option<&Claim> {
        self.others.get(&nick_key(nick)).map(|(c, _)| c)
    }

    /// The claim of session `session` on another node, if any.
    pub fn by_session(&self, session: u64) -> Option<&Claim> {
        self.all().find(|c| c.session == session)
    }

    /// Every claim on other nodes.
    pub fn all(&self) -> impl Iterator<Item = &Claim> {
        self.others.values().map(|(c, _)| c)
    }

    /// Every claim on other nodes with its key and revision.
    pub fn entries(&self) -> impl Iterator<Item = (&String, &Claim, u64)> {
        self.others.iter().map(|(k, (c, r))| (k, c, *r))
    }

    /// The claims on other nodes in the room named `room` (compared by room key).
    pub fn in_room(&self, room: &str) -> impl Iterator<Item = &Claim> {
        let key = crate::room::key(room);
        self.all().filter(move |c| crate::room::key(&c.room) == key)
    }

    pub fn len(&self) -> usize {
        self.others.len()
    }

    pub fn is_empty(&self) -> bool {
        self.others.is_empty()
    }

    /// Forgets every claim of node `node` (declared dead, say).
    pub fn forget_node(&mut self, node: &str) {
        let gone: Vec<String> = self
            .others
            .iter()
            .filter(|(_, (c, _))| c.node == node)
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.change(&key, None, 0, "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(nick: &str, node: &str, room: &str) -> Claim {
        let (session, room, since) = (7, room.into(), jiff::Timestamp::UNIX_EPOCH);
        let (away, token) = (None, Some(token_hash("00ff")));
        let tls = true;
        Claim {
            nick: nick.into(),
            node: node.into(),
            session,
            room,
            away,
            since,
            tls,
            token,
            oper: false,
        }
    }

    #[test]
    fn keys_are_valid_kv_keys_and_fold_case_and_look_alikes() {
        for nick in ["alice", "Ålice", "名前", "a-b_c"] {
            for key in [nick_key(nick), skeleton_key(nick)] {
                assert!(
                    key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b)),
                    "{key}"
                );
            }
        }
        assert_eq!(nick_key("Alice"), nick_key("alice"));
        // Cyrillic а looks like Latin a: another nick key, the same skeleton.
        assert_ne!(nick_key("аlice"), nick_key("alice"));
        assert_eq!(skeleton_key("аlice"), skeleton_key("alice"));
    }

    #[test]
    fn the_replica_keeps_other_nodes_claims() {
        let mut p = Presence::default();
        p.change(&nick_key("bob"), Some(claim("bob", "b", "#lobby")), 1, "a");
        p.change(&nick_key("me"), Some(claim("me", "a", "#lobby")), 2, "a");
        p.change(&skeleton_key("bob"), Some(claim("bob", "b", "#lobby")), 3, "a");
        assert_eq!(p.len(), 1, "own claims and skeleton keys are not kept");
        assert_eq!(p.get("BOB").map(|c| c.node.as_str()), Some("b"));
        assert_eq!(p.in_room("#Lobby").count(), 1);
        assert_eq!(p.count_in(&crate::room::key("#Lobby")), 1);
        // Moving room: counted in the new one only.
        p.change(&nick_key("bob"), Some(claim("bob", "b", "#dev")), 4, "a");
        assert_eq!((p.count_in("#lobby"), p.count_in("#dev")), (0, 1));
        p.change(&nick_key("bob"), Some(claim("bob", "b", "#lobby")), 5, "a");
        assert_eq!(p.by_session(7).map(|c| c.nick.as_str()), Some("bob"));
        p.change(&nick_key("bob"), None, 4, "a");
        assert!(p.is_empty());
        p.change(&nick_key("cy"), Some(claim("cy", "c", "#x")), 5, "a");
        p.forget_node("c");
        assert!(p.is_empty());
        assert_eq!(p.room_keys().count(), 0, "no room counted for claims gone");
    }

    #[test]
    fn a_claim_knows_its_token_by_hash() {
        let c = claim("ana", "n1", "#dev");
        assert!(c.token_matches("00FF") && c.token_matches("00ff"));
        assert!(!c.token_matches("00fe") && !c.token_matches(""));
        assert_eq!(token_hash("abc").len(), 64);
        assert!(!c.to_bytes().windows(4).any(|w| w == b"00ff"), "never the token itself");
    }

    #[test]
    fn claims_round_trip() {
        let mut c = claim("ana", "n1", "#dev");
        c.away = Some("lunch".into());
        assert_eq!(Claim::from_bytes(&c.to_bytes()), Some(c));
        assert_eq!(Claim::from_bytes(b"junk"), None);
    }
}
