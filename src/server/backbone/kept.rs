//! Bans and mutes every node keeps, whenever it started: the `tchat_moderation`
//! key-value bucket, one entry per ban target and per muted nick, watched by every node
//! from its start (so a node started later reads them all, however many lines the
//! stream has carried since). Kicks concern who is online now and go through the
//! stream.
//!
//! An entry's value is the last [`Moderation`] given for its key (a ban or an unban, a
//! mute or an unmute) and the tag of the process that gave it, which applied it when
//! it gave it and skips it when its watch brings it back.

use std::sync::Weak;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::BackboneError;
use super::bucket::Bucket;
use super::wire::Moderation;
use crate::server::bans::Target;
use crate::server::hub::Hub;

/// The bucket of bans and mutes.
pub const BUCKET: Bucket = Bucket {
    name: "tchat_moderation",
    what: "the moderation bucket",
    storage: jetstream::stream::StorageType::File,
    max_age: Duration::ZERO,
};

/// A bucket entry's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    /// The giving process's tag ([`tag`]).
    pub by: u64,
    pub action: Moderation,
}

/// This process's tag: random per process, so a node restarted under the same name
/// applies what it gave in an earlier run.
pub fn tag() -> u64 {
    static TAG: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TAG.get_or_init(|| getrandom::u64().unwrap_or(u64::from(std::process::id())))
}

/// The key `action` is kept under; `None` for a kick (not kept). One key for every case
/// and width of a nick ([`Target::identity`]: `Alice`, `alice` and `ＡＬＩＣＥ` share
/// one), so that the bucket holds the last word on it. A look-alike (`AIice`) has a key
/// of its own; a node applies the entries in the order they were given, so the last
/// word given with any form still wins.
pub fn key(action: &Moderation) -> Option<String> {
    let (kind, name) = match action {
        Moderation::Ban { ban } => ("b", ban.target.identity()),
        Moderation::Unban { target } => {
            ("b", Target::parse(target).map_or_else(|_| target.clone(), |t| t.identity()))
        }
        Moderation::Mute { nick, .. } | Moderation::Unmute { nick, .. } => {
            ("m", crate::nick::key(nick))
        }
        Moderation::Kick { .. } => return None,
    };
    Some(format!("{kind}.{}", URL_SAFE_NO_PAD.encode(name)))
}

/// Keeps `action` for every node (waits for NATS: an operator's command, rare); false
/// when the backbone did not take it.
pub async fn keep(store: &kv::Store, action: &Moderation) -> bool {
    let Some(key) = key(action) else { return false };
    let value = Kept { by: tag(), action: action.clone() };
    let value = serde_json::to_vec(&value).expect("moderation always serialises");
    store.put(key, value.into()).await.is_ok()
}

/// Applies every ban and mute kept, from whichever process (this one has given none
/// yet): at start, before the node serves, so that nobody banned gets in meanwhile.
pub async fn load(store: &kv::Store, hub: &Hub) -> Result<usize, BackboneError> {
    let entries = super::bucket::entries(store)
        .await
        .map_err(|e| BackboneError::Stream(format!("{}: {e}", BUCKET.what)))?;
    let mut applied = 0;
    for kept in entries.iter().filter_map(|(_, v)| serde_json::from_slice::<Kept>(v).ok()) {
        hub.apply_moderation(kept.action, None);
        applied += 1;
    }
    Ok(applied)
}

/// Applies every ban and mute kept, then each one given anywhere, until the hub is gone.
pub async fn watch(store: kv::Store, hub: Weak<Hub>) {
    super::bucket::watch(store, hub, |hub, entry| {
        let kept = Some(entry).filter(|e| e.operation == kv::Operation::Put);
        let kept = kept.and_then(|e| serde_json::from_slice::<Kept>(&e.value).ok());
        if let Some(kept) = kept.filter(|k| k.by != tag()) {
            hub.apply_moderation(kept.action, None);
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ban_and_its_unban_share_a_key_as_a_mute_and_its_unmute_do() {
        let ban = crate::server::bans::Ban {
            target: crate::server::bans::Target::parse("10.0.0.0/24").unwrap(),
            until: None,
            reason: None,
            by: "console".into(),
            at: jiff::Timestamp::UNIX_EPOCH,
        };
        let unban = Moderation::Unban { target: ban.target.to_string() };
        assert_eq!(key(&Moderation::Ban { ban }), key(&unban));
        let by = String::from("ops");
        let ip = Some([192, 0, 2, 1].into());
        let mute = Moderation::Mute { nick: "Bob".into(), until: None, by: by.clone(), ip };
        assert_eq!(key(&mute), key(&Moderation::Unmute { nick: "bob".into(), by, ip: None }));
        assert_ne!(key(&mute), key(&unban));
        // Every form of one nick, as ownership has it, shares one entry.
        let ban_of = |nick: &str| Moderation::Ban {
            ban: crate::server::bans::Ban {
                target: Target::parse(nick).unwrap(),
                until: None,
                reason: None,
                by: "console".into(),
                at: jiff::Timestamp::UNIX_EPOCH,
            },
        };
        let unban_of = |nick: &str| Moderation::Unban { target: nick.into() };
        for (a, b) in [("Alice", "alice"), ("\u{ff21}lice", "ALICE")] {
            assert_eq!(key(&ban_of(a)), key(&unban_of(b)), "{a} {b}");
        }
        assert_ne!(key(&ban_of("alice")), key(&unban_of("bob")));
        assert_eq!(key(&Moderation::Kick { nick: "bob".into(), why: String::new() }), None);
        for k in [key(&mute).unwrap(), key(&unban).unwrap()] {
            assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{k}");
        }
    }
}
