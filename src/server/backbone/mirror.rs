//! Reading the stream back into the hub: the one delivery path of conversation events.
//!
//! One ordered consumer per node reads every event of the stream from the first it
//! keeps, in sequence order, and the hub applies each under its lock ([`Hub::apply`]):
//! kept in the node's history (a mirror of the stream, for replay, `/history` and
//! resuming) and sent to the node's members it concerns. An ordered consumer that sees a
//! gap (a lost connection, a slow link) makes itself again from the last sequence it
//! delivered, so the mirror has no hole; if it ends anyway, this task makes a new one
//! after the last event applied.
//!
//! The stream itself drops its oldest events past its limits, read or not: a node that
//! falls further behind than the stream keeps (see [`super::window`], which keeps a
//! node's own clients from getting it there) would skip events. Sequences are
//! consecutive, so the mirror sees such a hole: it is logged (`Backbone events
//! missed`) and this node's users are told, never skipped in silence.

use std::sync::Weak;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, push};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::watch;

use super::wire;
use crate::server::hub::Hub;

/// Pause before making the consumer again after it ended.
const RETRY: Duration = Duration::from_secs(1);

/// How long the consumer may deliver nothing before the stream is asked whether it has
/// moved on without it (see [`behind`]).
const QUIET: Duration = Duration::from_secs(2);

/// Applies the stream's events to `hub` from the first kept on, forever (until the hub
/// is gone). `applied` follows the last sequence applied: the node serves once it has
/// reached `last_at_start`, the stream's last sequence at start. Holes before it are
/// the stream's own (old events dropped by its limits); after it, events this node
/// missed.
pub async fn follow(
    stream: async_nats::jetstream::stream::Stream,
    client: async_nats::Client,
    hub: Weak<Hub>,
    applied: watch::Sender<u64>,
    last_at_start: u64,
) {
    loop {
        let next = *applied.borrow() + 1;
        let deliver_policy = match next {
            1 => DeliverPolicy::All,
            start_sequence => DeliverPolicy::ByStartSequence { start_sequence },
        };
        let config = push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: wire::ALL.into(),
            deliver_policy,
            ..Default::default()
        };
        let messages = match stream.create_consumer(config).await {
            Ok(consumer) => consumer.messages().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match messages {
            Ok(mut messages) => {
                let why = loop {
                    let item = match tokio::time::timeout(QUIET, messages.next()).await {
                        Ok(Some(item)) => item,
                        Ok(None) => break "the consumer ended; made again",
                        Err(_) if behind(&stream, &applied).await => {
                            break "the consumer fell silent behind the stream; made again";
                        }
                        Err(_) => continue,
                    };
                    let Some(hub) = hub.upgrade() else { return };
                    match item {
                        Ok(message) => apply(&hub, &message, &applied, last_at_start),
                        Err(e) => hub.log.warn("Backbone stream", json!({"error": e.to_string()})),
                    }
                };
                let Some(hub) = hub.upgrade() else { return };
                hub.log.warn("Backbone stream", json!({"error": why}));
            }
            Err(e) => {
                let Some(hub) = hub.upgrade() else { return };
                hub.log.warn("Backbone stream", json!({"error": e}));
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Whether the stream holds events past the last one applied, asked when the consumer
/// has been quiet for [`QUIET`]. An ordered consumer lives on one NATS server: when that
/// server goes away, async-nats notices only after two missed idle heartbeats (10 s, its
/// fixed `ORDERED_IDLE_HEARTBEAT` of 5 s), and the node's users would wait that long for
/// every line. A stream that has moved on while its consumer is silent means the
/// consumer is gone: it is made again at once. Unanswered (the stream's leader is
/// being elected) counts as not behind: asked again after the next quiet spell.
async fn behind(
    stream: &async_nats::jetstream::stream::Stream,
    applied: &watch::Sender<u64>,
) -> bool {
    match tokio::time::timeout(QUIET, stream.get_info()).await {
        Ok(Ok(info)) => info.state.last_sequence > *applied.borrow(),
        _ => false,
    }
}

/// Applies one stream message (or, if it is not a tchat event, only its sequence).
fn apply(
    hub: &Hub,
    message: &async_nats::jetstream::Message,
    applied: &watch::Sender<u64>,
    last_at_start: u64,
) {
    let Ok(info) = message.info() else {
        let reason = "no stream sequence";
        hub.log.warn("Backbone event skipped", json!({"id": null, "reason": reason}));
        return;
    };
    let seq = info.stream_sequence;
    let before = *applied.borrow();
    if seq <= before {
        return;
    }
    if before >= last_at_start && seq > before + 1 {
        hub.backbone_missed(before, seq);
    }
    let header = |name: &str| {
        let headers = message.headers.as_ref()?;
        headers.get(name).map(|v| v.as_str().to_owned())
    };
    match wire::read(message.subject.as_str(), header, &message.payload) {
        Ok(wire::Incoming::Event(delivered)) => hub.apply(seq, delivered),
        Ok(wire::Incoming::Moderation(action, origin)) => {
            hub.apply_nothing(seq);
            hub.apply_moderation(action, origin);
        }
        Err(wire::Unreadable(why)) => {
            hub.log.warn("Backbone event skipped", json!({"id": seq, "reason": why}));
            hub.apply_nothing(seq);
        }
    }
    applied.send_replace(seq);
    if let Some(window) = hub.backbone_window() {
        window.applied(seq);
    }
}
