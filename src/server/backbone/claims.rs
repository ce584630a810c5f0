//! Nick claims in the `tchat_nicks` bucket (see [`super::presence`]): claiming a nick
//! across nodes, and the watch that keeps this node's replica of the others' claims.
//!
//! A claim is two creates, `k.` then `s.`; a key-value create succeeds for exactly one
//! writer, so of two nodes claiming one nick (or a nick and its look-alike) at the same
//! moment exactly one gets it, and the other rolls back what it made.

use std::sync::Weak;
use std::time::Duration;

use async_nats::jetstream::{self, kv};

use super::BackboneError;
use super::bucket::Bucket;
use super::presence::{self, Claim};
use crate::server::hub::Hub;

/// The bucket of nick claims ([`presence::BUCKET`]).
pub const BUCKET: Bucket = Bucket {
    name: presence::BUCKET,
    what: "the nick bucket",
    storage: jetstream::stream::StorageType::File,
    max_age: Duration::ZERO,
};

/// Why a nick could not be claimed across nodes.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Held by someone else (named as shown).
    Taken(String),
    /// A look-alike is held by someone else (named).
    LooksLike(String),
    /// The backbone did not answer: nick claims wait until it is back.
    Unavailable(String),
}

/// Deletes the claims node `node` (this one, by its name) left in the bucket from an
/// earlier run that ended without letting them go (killed, say); returns those, whose
/// leaves are still to be announced.
pub async fn drop_stale(
    store: &kv::Store,
    node: &str,
) -> Result<Vec<(String, Claim)>, BackboneError> {
    let failed = |e: &dyn std::fmt::Display| BackboneError::Stream(format!("{}: {e}", BUCKET.what));
    let entries = super::bucket::entries(store).await.map_err(|e| failed(&e))?;
    let mut stale: Vec<(String, Claim)> = (entries.into_iter())
        .filter_map(|(key, value)| Some((key, Claim::from_bytes(&value)?)))
        .filter(|(_, claim)| claim.node == node)
        .collect();
    for (key, _) in &stale {
        store.delete(key).await.map_err(|e| failed(&e))?;
    }
    // One leave per user: its `k.` key (the `s.` key holds the same claim).
    stale.retain(|(key, _)| key.starts_with("k."));
    Ok(stale)
}

/// Claims `claim.nick` for `claim.session`: both keys made, or neither. A key that
/// already holds this same session's claim counts as made (a resume, or a rename that
/// only changes case).
pub async fn claim(store: &kv::Store, claim: &Claim) -> Result<(), Refused> {
    let value = claim.to_bytes();
    let k = presence::nick_key(&claim.nick);
    let made_k = match create(store, &k, &value, claim.session).await? {
        Made::New(revision) => Some(revision),
        Made::Ours => None,
        Made::Held(owner) => return Err(Refused::Taken(owner)),
    };
    let s = presence::skeleton_key(&claim.nick);
    let outcome = create(store, &s, &value, claim.session).await;
    if let Ok(Made::New(_) | Made::Ours) = outcome {
        return Ok(());
    }
    if let Some(revision) = made_k {
        // Best effort: a key left behind is freed when this node next starts.
        let _ = store.delete_expect_revision(&k, Some(revision)).await;
    }
    match outcome {
        Ok(Made::Held(owner)) => Err(Refused::LooksLike(owner)),
        Err(e) => Err(e),
        Ok(_) => unreachable!("handled above"),
    }
}

/// Who holds the look-alike skeleton of `nick` across nodes, if anyone: for a nick the
/// hub refuses anyway (mixed scripts), which is named after the nick it looks like
/// without claiming anything.
pub async fn looks_like(store: &kv::Store, nick: &str) -> Result<Option<Claim>, Refused> {
    let held = store.get(presence::skeleton_key(nick)).await;
    let held = held.map_err(|e| Refused::Unavailable(e.to_string()))?;
    Ok(held.and_then(|v| Claim::from_bytes(&v)))
}

/// Takes over the session of `nick` whose resume token is `token`, held on another
/// node: its claim moves to node `node` (same session, nick and room), by a
/// compare-and-set, so of two nodes taking it over, or a node taking it over while
/// another lets it go, one wins. `None`: no such session (a wrong token, or gone).
pub async fn adopt(
    store: &kv::Store,
    nick: &str,
    token: &str,
    node: &str,
) -> Result<Option<Claim>, Refused> {
    let unavailable = |e: &dyn std::fmt::Display| Refused::Unavailable(e.to_string());
    let key = presence::nick_key(nick);
    let Some(entry) = store.entry(&key).await.map_err(|e| unavailable(&e))? else {
        return Ok(None);
    };
    let held = (entry.operation == kv::Operation::Put)
        .then(|| Claim::from_bytes(&entry.value))
        .flatten()
        .filter(|c| c.node != node && c.token_matches(token));
    let Some(mut claim) = held else { return Ok(None) };
    claim.node = node.to_owned();
    match store.update(&key, claim.to_bytes(), entry.revision).await {
        Ok(_) => {
            // The look-alike key names the holder's node too; best effort.
            let _ = store.put(presence::skeleton_key(nick), claim.to_bytes()).await;
            Ok(Some(claim))
        }
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
        Err(e) => Err(unavailable(&e)),
    }
}

/// Deletes the claim under `key` of a node declared dead, if it is still at
/// `revision` (not resumed elsewhere, not swept by another node), and its look-alike
/// key. True when this node deleted it: only that node announces the leave.
pub async fn sweep(store: &kv::Store, key: &str, revision: u64, claim: &Claim) -> bool {
    if store.delete_expect_revision(key, Some(revision)).await.is_err() {
        return false;
    }
    let s = presence::skeleton_key(&claim.nick);
    if let Ok(Some(entry)) = store.entry(&s).await
        && Claim::from_bytes(&entry.value).is_some_and(|c| c.session == claim.session)
    {
        let _ = store.delete_expect_revision(&s, Some(entry.revision)).await;
    }
    true
}

enum Made {
    New(u64),
    Ours,
    Held(String),
}

async fn create(
    store: &kv::Store,
    key: &str,
    value: &bytes::Bytes,
    session: u64,
) -> Result<Made, Refused> {
    let unavailable = |e: &dyn std::fmt::Display| Refused::Unavailable(e.to_string());
    match store.create(key, value.clone()).await {
        Ok(revision) => Ok(Made::New(revision)),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
            let held = store.get(key).await.map_err(|e| unavailable(&e))?;
            match held.and_then(|v| Claim::from_bytes(&v)) {
                Some(owner) if owner.session == session => {
                    store.put(key, value.clone()).await.map_err(|e| unavailable(&e))?;
                    Ok(Made::Ours)
                }
                Some(owner) => Ok(Made::Held(owner.nick)),
                // Let go between the create and the read: try once more.
                None => match store.create(key, value.clone()).await {
                    Ok(revision) => Ok(Made::New(revision)),
                    Err(e) => Err(unavailable(&e)),
                },
            }
        }
        Err(e) => Err(unavailable(&e)),
    }
}

/// Keeps the hub's replica of the other nodes' claims (`Hub::presence_change`) until
/// the hub is gone.
pub async fn watch(store: kv::Store, hub: Weak<Hub>) {
    super::bucket::watch(store, hub, |hub, entry| {
        let claim = match entry.operation {
            kv::Operation::Put => Claim::from_bytes(&entry.value),
            kv::Operation::Delete | kv::Operation::Purge => None,
        };
        hub.presence_change(&entry.key, claim, entry.revision);
    })
    .await
}
