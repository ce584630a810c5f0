//! The key-value buckets the nodes share (nick claims, node leases, accounts, bans and
//! mutes): what each is made with, opening it, reading it whole and watching it into a
//! node's memory. Each bucket's module says only what differs ([`Bucket`]) and what
//! its entries mean to the hub.

use std::sync::Weak;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream::StorageType};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;

use super::{BackboneError, limits};
use crate::event_log::EventLog;
use crate::server::hub::Hub;

/// What sets one bucket apart from the others. Every bucket keeps one value a key (a
/// claim, a lease, an account, the last ban or mute of a target): no history.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    /// The bucket's name in NATS (`tchat_nicks`); its stream is `KV_` and the name.
    pub name: &'static str,
    /// How errors name it (`the nick bucket`).
    pub what: &'static str,
    /// File, or memory for what is worthless after a NATS restart (leases).
    pub storage: StorageType,
    /// Entries older than this go; [`Duration::ZERO`]: kept until deleted.
    pub max_age: Duration,
}

impl Bucket {
    /// The configuration the bucket is made with, in `replicas` copies.
    pub fn config(&self, replicas: usize) -> kv::Config {
        kv::Config {
            bucket: self.name.into(),
            history: 1,
            max_age: self.max_age,
            storage: self.storage,
            num_replicas: replicas,
            ..Default::default()
        }
    }

    /// Opens the bucket, making it if no node did yet, in `replicas` copies (`None`:
    /// one). Two nodes making it at once is fine: NATS takes a second create with the
    /// same configuration as the first. A bucket made otherwise (by an older tchat, or
    /// with other `replicas`) is brought to this configuration ([`limits::update`]).
    pub async fn open(
        &self,
        jetstream: &jetstream::Context,
        replicas: Option<usize>,
        log: &EventLog,
    ) -> Result<kv::Store, BackboneError> {
        let store = match jetstream.get_key_value(self.name).await {
            Ok(store) => store,
            Err(_) => {
                let config = self.config(replicas.unwrap_or(1));
                return jetstream
                    .create_key_value(config)
                    .await
                    .map_err(|e| BackboneError::Stream(format!("{}: {e}", self.what)));
            }
        };
        let current = &store.stream.cached_info().config;
        let wanted = async_nats::jetstream::stream::Config {
            max_messages_per_subject: 1,
            max_age: self.max_age,
            storage: self.storage,
            num_replicas: replicas.unwrap_or(current.num_replicas),
            ..current.clone()
        };
        limits::update(jetstream, current, wanted, log).await?;
        Ok(store)
    }
}

/// Every key of `store` with its value, as the bucket holds them now (a key deleted
/// between the listing and the read is left out).
pub async fn entries(store: &kv::Store) -> Result<Vec<(String, Bytes)>, async_nats::Error> {
    let mut keys = store.keys().await?;
    let mut entries = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key?;
        if let Some(value) = store.get(&key).await? {
            entries.push((key, value));
        }
    }
    Ok(entries)
}

/// Pause before watching a bucket again after its watch ended (NATS lost, say).
const RETRY: Duration = Duration::from_secs(1);

/// Hands `take` every entry of `store` (the last value of each key, then each change)
/// until the hub is gone. A watch that fails or ends is made again a second later,
/// from the bucket's whole content again: `take` sees a value more than once and must
/// take it as the latest, not as news.
pub async fn watch(store: kv::Store, hub: Weak<Hub>, mut take: impl FnMut(&Hub, kv::Entry)) {
    loop {
        let error = match store.watch_with_history(">").await {
            Ok(mut changes) => loop {
                let Some(change) = changes.next().await else {
                    break "the watch ended".to_owned();
                };
                let Some(hub) = hub.upgrade() else { return };
                match change {
                    Ok(entry) => take(&hub, entry),
                    Err(e) => hub.log.warn("Backbone stream", json!({"error": e.to_string()})),
                }
            },
            Err(e) => e.to_string(),
        };
        let Some(hub) = hub.upgrade() else { return };
        hub.log.warn(
            "Backbone stream",
            json!({"error": error, "bucket": store.name, "retry_ms": RETRY.as_millis() as u64}),
        );
        drop(hub);
        tokio::time::sleep(RETRY).await;
    }
}
