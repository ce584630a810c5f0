//! A stream or bucket an earlier node made keeps the limits it was made with, whatever
//! tchat or options made it: a node that starts brings it to its own (the stream's
//! sizes from `--history` and `--max-rooms`, the duplicate window, a bucket's age limit,
//! `--backbone-replicas` when given), logging what it changed, and refuses to serve
//! when NATS does not allow the change (a stream's storage, or more copies than the
//! NATS cluster has servers), naming it. Without this, an upgrade or a bigger
//! `--history` would silently keep the old limits for as long as the stream lives.

use async_nats::jetstream::{self, stream};
use serde_json::json;

use super::BackboneError;
use crate::event_log::EventLog;

/// What tchat sets in its streams and buckets that differs between `current` and
/// `wanted`, each as `setting old -> new` in NATS's names for them.
pub fn differences(current: &stream::Config, wanted: &stream::Config) -> Vec<String> {
    let mut found = Vec::new();
    let mut compare = |name: &str, old: String, new: String| {
        if old != new {
            found.push(format!("{name} {old} -> {new}"));
        }
    };
    compare("subjects", current.subjects.join(","), wanted.subjects.join(","));
    compare("max_msgs", current.max_messages.to_string(), wanted.max_messages.to_string());
    compare(
        "max_msgs_per_subject",
        current.max_messages_per_subject.to_string(),
        wanted.max_messages_per_subject.to_string(),
    );
    compare("max_age", secs(current.max_age), secs(wanted.max_age));
    compare("discard", format!("{:?}", current.discard), format!("{:?}", wanted.discard));
    compare("storage", format!("{:?}", current.storage), format!("{:?}", wanted.storage));
    compare("num_replicas", current.num_replicas.to_string(), wanted.num_replicas.to_string());
    compare("duplicate_window", secs(current.duplicate_window), secs(wanted.duplicate_window));
    compare("allow_direct", current.allow_direct.to_string(), wanted.allow_direct.to_string());
    found
}

fn secs(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs())
}

/// Brings the stream `current.name` from `current` to `wanted` if they differ
/// ([`differences`]), and logs `Backbone stream updated` with what changed. An error
/// names the stream, the differences and NATS's refusal: the node does not serve on
/// limits other than its own.
pub async fn update(
    jetstream: &jetstream::Context,
    current: &stream::Config,
    wanted: stream::Config,
    log: &EventLog,
) -> Result<(), BackboneError> {
    let changes = differences(current, &wanted);
    if changes.is_empty() {
        return Ok(());
    }
    let changes = changes.join(", ");
    if let Err(e) = jetstream.update_stream(&wanted).await {
        return Err(BackboneError::Stream(format!(
            "{} was made with other settings than this node's ({changes}) and NATS refused \
             to change them: {e}; start this node with the settings the stream has, or \
             remove the stream (its history goes with it) so that it is made again",
            current.name
        )));
    }
    log.info("Backbone stream updated", json!({"stream": current.name, "changes": changes}));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_the_settings_that_differ_are_named_old_then_new() {
        let current = stream::Config {
            name: "TCHAT_EV".into(),
            subjects: vec!["tchat.ev.>".into()],
            max_messages: 30,
            max_messages_per_subject: 30,
            duplicate_window: Duration::from_secs(60),
            ..Default::default()
        };
        assert_eq!(differences(&current, &current.clone()), Vec::<String>::new());
        let wanted = stream::Config {
            max_messages: 45_146,
            max_messages_per_subject: 4_196,
            storage: stream::StorageType::Memory,
            ..current.clone()
        };
        assert_eq!(
            differences(&current, &wanted),
            ["max_msgs 30 -> 45146", "max_msgs_per_subject 30 -> 4196", "storage File -> Memory"]
        );
    }
}
