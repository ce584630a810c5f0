//! Registered nicks shared by every node: the `tchat_accounts` key-value bucket is the
//! backing of each node's accounts
//! ([`Accounts::share`](crate::server::accounts::Accounts::share)), and a watch keeps
//! each node's index current
//! ([`Accounts::replicate`](crate::server::accounts::Accounts::replicate)), as nick
//! claims are.
//!
//! An account is kept under `a.<nick key>` ([`crate::nick::key`], in unpadded
//! base64url): registering is a key-value create, which exactly one writer wins. Only
//! the holder of a nick registers it, and nick claims already give a nick and its
//! look-alikes to one connection across nodes ([`super::claims`]). The value is the account as the
//! accounts file holds it (keys, the password's Argon2id hash, operator, dates): the
//! bucket is as secret as that file, and nothing of it is logged.

use std::future::Future;
use std::io;
use std::sync::Weak;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;

use super::bucket::Bucket;
use crate::server::accounts::{Account, Backing, Change, Pending};
use crate::server::hub::Hub;

/// The bucket of registered nicks: every account is kept (no age limit:
/// `--account-expiry` is each node's own reading of an account's last use).
pub const BUCKET: Bucket = Bucket {
    name: "tchat_accounts",
    what: "the accounts bucket",
    storage: jetstream::stream::StorageType::File,
    max_age: Duration::ZERO,
};

/// The key of the account of `nick`.
pub fn key(nick: &str) -> String {
    format!("a.{}", URL_SAFE_NO_PAD.encode(crate::nick::key(nick)))
}

/// The nick key a bucket key holds the account of (the inverse of [`key`]).
fn nick_key_of(key: &str) -> Option<String> {
    let encoded = key.strip_prefix("a.")?;
    String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()
}

/// The bucket as the [`Backing`] of a node's accounts. Each call is a NATS round trip
/// that the asking task awaits (a connection's, a control client's), bounded by twice
/// [`super::TIMEOUT`]: while NATS is away a registration fails with an error, as a nick
/// claim does, and no worker thread waits for it.
pub struct SharedAccounts {
    pub store: kv::Store,
}

impl Backing for SharedAccounts {
    fn load(&self) -> Pending<Vec<Account>> {
        let store = self.store.clone();
        Box::pin(bounded(async move { load(&store).await }))
    }

    fn store(&self, change: Change<'_>, _all: &[&Account]) -> Pending<()> {
        let (store, change) = (self.store.clone(), Owned::from(change));
        Box::pin(bounded(async move { write(&store, change).await }))
    }
}

/// `future`, past twice [`super::TIMEOUT`] an error: the bucket is unavailable.
async fn bounded<T>(future: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(super::TIMEOUT * 2, future)
        .await
        .unwrap_or_else(|_| Err(unavailable("timed out")))
}

/// A [`Change`], owned so that it outlives the accounts' lock while it is written.
enum Owned {
    Created(Account),
    Stored(Account),
    Removed(Account),
}

impl From<Change<'_>> for Owned {
    fn from(change: Change<'_>) -> Owned {
        match change {
            Change::Created(a) => Owned::Created(a.clone()),
            Change::Stored(a) => Owned::Stored(a.clone()),
            Change::Removed(a) => Owned::Removed(a.clone()),
        }
    }
}

fn unavailable(why: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("the backbone's accounts bucket: {why}"))
}

async fn load(store: &kv::Store) -> io::Result<Vec<Account>> {
    let entries = super::bucket::entries(store).await.map_err(unavailable)?;
    // An entry that is no account (a newer tchat's, say) is skipped, not fatal: the
    // other nodes use the bucket meanwhile.
    Ok(entries.iter().filter_map(|(_, v)| serde_json::from_slice::<Account>(v).ok()).collect())
}

async fn write(store: &kv::Store, change: Owned) -> io::Result<()> {
    let value = |a: &Account| serde_json::to_vec(a).map(Bytes::from).map_err(io::Error::other);
    match change {
        Owned::Created(a) => match store.create(key(&a.nick), value(&a)?).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                Err(io::Error::new(io::ErrorKind::AlreadyExists, "registered on another node"))
            }
            Err(e) => Err(unavailable(e)),
        },
        Owned::Stored(a) => {
            store.put(key(&a.nick), value(&a)?).await.map(|_| ()).map_err(unavailable)
        }
        Owned::Removed(a) => store.delete(key(&a.nick)).await.map_err(unavailable),
    }
}

/// Keeps this node's accounts as the bucket has them (every node's registrations,
/// changes and removals) until the hub is gone.
pub async fn watch(store: kv::Store, hub: Weak<Hub>) {
    super::bucket::watch(store, hub, |hub, entry| take_in(hub, &entry)).await
}

fn take_in(hub: &Hub, entry: &kv::Entry) {
    let accounts = &hub.config.accounts;
    match entry.operation {
        kv::Operation::Put => {
            let Ok(account) = serde_json::from_slice::<Account>(&entry.value) else { return };
            let old = accounts.replicate(account.clone());
            if old.is_none_or(|old| old.oper != account.oper) {
                hub.account_oper_changed(&account);
            }
        }
        kv::Operation::Delete | kv::Operation::Purge => {
            if let Some(key) = nick_key_of(&entry.key) {
                accounts.replicate_removal(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_valid_and_fold_case() {
        for nick in ["alice", "Ålice", "名前", "a-b_c"] {
            let k = key(nick);
            assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b)), "{k}");
            assert_eq!(nick_key_of(&k), Some(crate::nick::key(nick)));
        }
        assert_eq!(key("Alice"), key("alice"));
        assert_eq!(nick_key_of("k.abc"), None);
    }
}
