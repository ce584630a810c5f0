//! The NATS JetStream backbone: several `tchat serve` nodes sharing one chat.
//!
//! NATS is the one authority; the nodes never talk to each other directly and keep no
//! clustering of their own (no peer links, so no netsplits and no nick collisions to
//! mend afterwards). What each piece holds:
//!
//! - [`wire`]: a conversation event on the backbone (subject, headers, payload).
//! - `link`: the hub's handle for sending events (`Link`, never awaited under the
//!   hub's lock) and the task that publishes them to the stream.
//! - `mirror`: the task that reads the stream back, in order, into the hub: every
//!   node, the sender's included, shows an event only when it comes back from the
//!   stream, with the stream sequence as its id. One order everywhere and no second
//!   path (an id taken on one path and a payload fanned out on another loses or reorders
//!   messages: SignalR #1676).
//! - [`presence`] and [`claims`]: nicks held across nodes (key-value creates only one
//!   node can win) and each node's replica of who is on the others.
//! - [`accounts`]: registered nicks, shared by every node through a key-value bucket.
//! - [`kept`]: bans and mutes, kept in a key-value bucket for every node.
//! - [`bucket`]: what the key-value buckets share: their configuration, opening, reading
//!   whole and watching.
//! - [`window`]: flow control, so that a node's clients never put more in the stream
//!   than the node has read back (the stream drops its oldest events, read or not).
//! - [`auth`]: the `--backbone-auth` file; [`version`]: the oldest nats-server allowed.
//!
//! Without `--backbone` none of this runs: the hub's handle is `None` and the single
//! process works as it always did.

pub mod accounts;
pub mod auth;
pub mod bucket;
pub mod claims;
pub mod kept;
pub mod leases;
pub mod limits;
mod link;
mod mirror;
pub mod presence;
pub mod status;
pub mod version;
pub mod window;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use serde_json::json;

use crate::event_log::EventLog;
pub(crate) use link::{Link, PERSIST, publish};
pub(crate) use mirror::follow;
pub use window::Window;

/// The stream every conversation event goes through.
pub const STREAM: &str = "TCHAT_EV";

/// How long a node waits for one NATS server to answer at start, and for the stream
/// to ack an event (past it, the event is sent again, for up to 90 s).
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// The stream's duplicate window: a publish whose message id the stream saw this
/// recently is not stored again.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// `--backbone` and the options that go with it.
#[derive(Debug, Clone)]
pub struct Options {
    /// `nats://HOST:PORT` or `tls://HOST:PORT`, one or more servers of one NATS system.
    pub urls: Vec<String>,
    /// This node's name, unique among the nodes (see [`valid_node`]).
    pub node: String,
    /// `--backbone-auth`: the file with the secret to connect with.
    pub auth: Option<PathBuf>,
    /// `--backbone-ca`: the CA that signed the NATS servers' certificates.
    pub ca: Option<PathBuf>,
    /// `--backbone-replicas`: copies of the stream and buckets (1, or 3 on a 3-server
    /// NATS cluster so that they survive one server's loss). `None`: one for those this
    /// node makes, as many as they have for those it finds.
    pub replicas: Option<usize>,
    /// `--backbone-persist`: how long a line waits for the stream before its sender is
    /// told it was not delivered (90 s by default, at most 110 s: inside
    /// [`DUPLICATE_WINDOW`]).
    pub persist: Duration,
}

/// Whether `name` may name a node: 1 to 64 ASCII letters, digits, `-` and `_` (it goes
/// into NATS subjects and keys, where `.`, `*`, `>` and spaces have meanings).
pub fn valid_node(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match ok {
        true => Ok(name.to_owned()),
        false => Err("a node name is 1 to 64 ASCII letters, digits, '-' and '_'".into()),
    }
}

/// The default node name: the host's name and the process id (`chat1-4711`), unique
/// per process on a machine, and telling an operator where to look.
pub fn default_node() -> String {
    #[cfg(unix)]
    let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok());
    #[cfg(not(unix))]
    let host: Option<String> = None;
    let host: String = host
        .unwrap_or_else(|| "node".into())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .take(40)
        .collect();
    format!("{host}-{}", std::process::id())
}

/// Why a node cannot join the backbone; each stops the node before it serves.
#[derive(Debug)]
pub enum BackboneError {
    Config(String),
    Unreachable { urls: String, error: String },
    TooOld { version: String },
    Stream(String),
}

impl std::fmt::Display for BackboneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackboneError::Config(e) => f.write_str(e),
            BackboneError::Unreachable { urls, error } => write!(
                f,
                "cannot reach the backbone at {urls}: {error}; not serving (a node never runs \
                 as a chat of its own)"
            ),
            BackboneError::TooOld { version } => write!(
                f,
                "the backbone's nats-server is {version}; tchat needs {} or later",
                version::FLOOR
            ),
            BackboneError::Stream(e) => write!(f, "the backbone's stream: {e}"),
        }
    }
}

impl std::error::Error for BackboneError {}

/// What the stream is made with when no node made it yet. Later nodes use the stream
/// as it is.
pub struct StreamSettings {
    /// `--history`: events kept per room and private messages kept (at least 1: the
    /// stream carries every event, and 0 would mean no limit to NATS).
    pub history: usize,
    /// `--max-rooms`: with `history`, how many events the stream keeps at most.
    pub max_rooms: usize,
}

/// What the hub keeps of the backbone.
pub struct HubSide {
    pub link: Link,
    /// The resume tokens' tag (see [`Backbone::run`]).
    pub run: u32,
    /// The bucket of nick claims, for claiming nicks.
    pub nicks: async_nats::jetstream::kv::Store,
    /// The bucket of bans and mutes ([`kept`]).
    pub moderation: async_nats::jetstream::kv::Store,
    /// The stream and how far this node's mirror of it has got: a session taken over
    /// from another node is caught up only once the mirror has every event the stream
    /// had then ([`Mirror::barrier`]).
    pub mirror: Mirror,
}

/// The stream and this node's progress through it.
#[derive(Clone)]
pub struct Mirror {
    pub stream: jetstream::stream::Stream,
    pub applied: tokio::sync::watch::Receiver<u64>,
}

impl Mirror {
    /// Waits (at most [`TIMEOUT`]) until this node has applied every event the stream
    /// holds now. False when it could not tell or did not get there in time.
    pub async fn barrier(&self) -> bool {
        let wait = async {
            let last = self.stream.get_info().await.ok()?.state.last_sequence;
            self.applied.clone().wait_for(|&seq| seq >= last).await.ok().map(|_| ())
        };
        matches!(tokio::time::timeout(TIMEOUT, wait).await, Ok(Some(())))
    }
}

/// A node connected to the backbone, its stream ready.
pub struct Backbone {
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub stream: jetstream::stream::Stream,
    /// The bucket of nick claims.
    pub nicks: async_nats::jetstream::kv::Store,
    /// Claims an earlier run of this node left (it crashed), deleted: their leaves are
    /// announced once the node serves.
    pub stale: Vec<(String, presence::Claim)>,
    /// The bucket of node leases, on a NATS connection of its own (see [`leases`]).
    pub leases: async_nats::jetstream::kv::Store,
    /// The bucket of registered nicks.
    pub accounts: async_nats::jetstream::kv::Store,
    /// The bucket of bans and mutes.
    pub moderation: async_nats::jetstream::kv::Store,
    pub node: String,
    /// The tag in every resume token a node of this stream gives out: made from the
    /// stream's creation time, so every node gives the same and a token from a stream
    /// made again (its ids starting over) is told apart.
    pub run: u32,
    /// The stream's last sequence when this node started: the mirror is complete once
    /// it has applied it.
    pub last_at_start: u64,
    /// The nats-server release this node is connected to.
    pub server_version: version::Version,
}

/// Connects to the backbone, checks the server's version and opens (or makes) the
/// stream. Logs "Backbone connected" with the server and the node; no secret.
pub async fn connect(
    options: &Options,
    settings: &StreamSettings,
    log: &EventLog,
) -> Result<Backbone, BackboneError> {
    let client = connect_client(options, log, Connection::Main).await?;
    let info = client.server_info();
    let server_version = version::Version::parse(&info.version)
        .filter(|v| v.supported())
        .ok_or_else(|| BackboneError::TooOld { version: display_version(&info.version) })?;
    if !info.jetstream {
        return Err(BackboneError::Stream(format!(
            "the nats-server at {} runs without JetStream (start it with -js)",
            options.urls.join(",")
        )));
    }
    let jetstream = jetstream::ContextBuilder::new().timeout(TIMEOUT).build(client.clone());
    let mut stream = open_stream(&jetstream, options.replicas, settings, log).await?;
    let info = stream.info().await.map_err(|e| BackboneError::Stream(e.to_string()))?;
    let created = info.created.unix_timestamp_nanos();
    let run = (created ^ (created >> 32)) as u32;
    let last_at_start = info.state.last_sequence;
    let nicks = claims::BUCKET.open(&jetstream, options.replicas, log).await?;
    let stale = claims::drop_stale(&nicks, &options.node).await?;
    let liveness = connect_client(options, log, Connection::Liveness).await?;
    let liveness = jetstream::ContextBuilder::new().timeout(TIMEOUT).build(liveness);
    let leases = leases::BUCKET.open(&liveness, options.replicas, log).await?;
    let accounts = accounts::BUCKET.open(&jetstream, options.replicas, log).await?;
    let moderation = kept::BUCKET.open(&jetstream, options.replicas, log).await?;
    log.info(
        "Backbone connected",
        json!({"server": info_server(&client), "version": server_version.to_string(),
               "node": options.node, "stream": STREAM, "last_id": last_at_start}),
    );
    Ok(Backbone {
        client,
        jetstream,
        stream,
        nicks,
        stale,
        leases,
        accounts,
        moderation,
        node: options.node.clone(),
        run,
        last_at_start,
        server_version,
    })
}

fn display_version(v: &str) -> String {
    if v.is_empty() { "of an unknown version".into() } else { v.to_owned() }
}

fn info_server(client: &async_nats::Client) -> String {
    let info = client.server_info();
    format!("{} ({}:{})", info.server_name, info.host, info.port)
}

/// A node's two NATS connections.
///
/// Node leases travel on a connection of their own: on the main one, a heartbeat queued
/// behind thousands of nick claims (a connect storm: each claim a key-value create
/// awaiting its ack, and at most 5,000 acks awaited at once per JetStream context, in
/// order) arrived seconds late, and the other nodes declared a busy node dead. Alone on
/// its connection, a heartbeat waits for nothing of the chat's, in the client or in the
/// nats-server's reading of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connection {
    /// The stream, nick claims, accounts, bans and mutes. Its losses and returns are
    /// logged (`Backbone lost`, `Backbone reconnected`).
    Main,
    /// Heartbeats and the watch of the node leases. Not logged: it goes to the same
    /// servers as the main one, whose log tells the story.
    Liveness,
}

/// One NATS connection: one attempt over every URL at start (a node that cannot reach
/// the backbone does not serve), then reconnecting forever while it runs.
async fn connect_client(
    options: &Options,
    log: &EventLog,
    role: Connection,
) -> Result<async_nats::Client, BackboneError> {
    for url in &options.urls {
        auth::refuse_secret_in_url(url).map_err(BackboneError::Config)?;
    }
    let addrs = options
        .urls
        .iter()
        .map(|u| u.parse::<async_nats::ServerAddr>().map_err(|e| format!("{u}: {e}")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BackboneError::Config(format!("bad backbone URL {e}")))?;
    let events = log.clone();
    let reporter = std::sync::Arc::new(std::sync::Mutex::new(status::Reporter::default()));
    let name = match role {
        Connection::Main => format!("tchat {}", options.node),
        Connection::Liveness => format!("tchat {} liveness", options.node),
    };
    let mut connect = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(TIMEOUT)
        .max_reconnects(None)
        .event_callback(move |event| {
            if role == Connection::Main {
                let seen = match event {
                    async_nats::Event::Connected => status::Seen::Connected,
                    async_nats::Event::Disconnected => status::Seen::Disconnected,
                    other => status::Seen::Other(other.to_string()),
                };
                let mut reporter = reporter.lock().unwrap_or_else(|e| e.into_inner());
                log_event(&events, reporter.take(seen, tokio::time::Instant::now()));
            }
            async {}
        });
    if let Some(path) = &options.auth {
        let secret = auth::Auth::read(path).map_err(BackboneError::Config)?;
        connect = secret.apply(connect).map_err(|e| {
            BackboneError::Config(format!("the backbone auth file {}: {e}", path.display()))
        })?;
    }
    if let Some(ca) = &options.ca {
        connect = connect.add_root_certificates(ca.clone()).require_tls(true);
    }
    connect.connect(addrs).await.map_err(|e| BackboneError::Unreachable {
        urls: options.urls.join(","),
        error: e.to_string(),
    })
}

/// Logs what the NATS connection went through ([`status::Reporter`]): lost and back,
/// and other events once in a while.
fn log_event(log: &EventLog, report: status::Report) {
    use status::Report;
    match report {
        Report::Lost => log.warn("Backbone lost", json!({"retrying": true})),
        Report::Back { down, errors } => log.info(
            "Backbone reconnected",
            json!({"down_ms": down.as_millis() as u64, "errors_not_logged": errors}),
        ),
        Report::Event(event) => log.warn("Backbone event", json!({"event": event})),
        Report::Quiet => {}
    }
}

/// Events the stream keeps of each room (and of private messages) beyond `--history`:
/// room for a node to fall behind a burst without missing events the stream has already
/// dropped. Eight [`window::WINDOW`]s: a node's own clients stop at one (see
/// [`window`]), the rest is for bursts of other nodes' clients.
pub const RETAINED_BEYOND_HISTORY: u64 = 8 * window::WINDOW;

/// Opens the stream, making it if no node did yet (in `replicas` copies, `None`: one);
/// one made otherwise (an older tchat, other `--history`, `--max-rooms` or `replicas`)
/// is brought to this node's settings ([`limits::update`]).
async fn open_stream(
    jetstream: &jetstream::Context,
    replicas: Option<usize>,
    settings: &StreamSettings,
    log: &EventLog,
) -> Result<stream::Stream, BackboneError> {
    let ours = stream_config(settings, replicas.unwrap_or(1));
    let stream = jetstream
        .get_or_create_stream(ours.clone())
        .await
        .map_err(|e| BackboneError::Stream(e.to_string()))?;
    let current = &stream.cached_info().config;
    let num_replicas = replicas.unwrap_or(current.num_replicas);
    // What tchat sets, over what it leaves to NATS (or to an operator's own tuning).
    let wanted = stream::Config {
        subjects: ours.subjects,
        max_messages_per_subject: ours.max_messages_per_subject,
        max_messages: ours.max_messages,
        discard: ours.discard,
        storage: ours.storage,
        num_replicas,
        allow_direct: ours.allow_direct,
        duplicate_window: ours.duplicate_window,
        ..current.clone()
    };
    limits::update(jetstream, current, wanted, log).await?;
    Ok(stream)
}

fn stream_config(settings: &StreamSettings, replicas: usize) -> stream::Config {
    let history = settings.history.max(1) as i64;
    let margin = RETAINED_BEYOND_HISTORY as i64;
    stream::Config {
        name: STREAM.into(),
        subjects: vec![wire::ALL.into()],
        max_messages_per_subject: history + margin,
        // The rooms' rings and the private ring, as one server keeps at most, and the
        // margin once.
        max_messages: history * (settings.max_rooms as i64 + 1) + margin,
        discard: stream::DiscardPolicy::Old,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        allow_direct: true,
        // A publish retried after a lost ack is stored once (its message id is kept).
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        assert!(valid_node("chat-1_a").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", "é", &"x".repeat(65)] {
            assert!(valid_node(bad).is_err(), "{bad:?}");
        }
        let default = default_node();
        assert!(valid_node(&default).is_ok(), "{default}");
        assert!(default.ends_with(&format!("-{}", std::process::id())));
    }
}
