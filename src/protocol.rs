//! The wire protocol: what a client may send (parsed by [`Request::parse`]) and what the
//! server sends back ([`Event`]), in either of its two encodings.
//!
//! Client-to-server lines are always what a person types, so `nc` and `telnet` can chat.
//! Server-to-client lines are human-readable text by default; a client that sends
//! [`HELLO`] as its first line gets one JSON object per line instead. docs/protocol.md
//! documents both for client authors.

mod commands;
mod event;
mod request;
mod text;

pub use commands::{
    ALIASES, COMMANDS, OPERATOR_COMMANDS, canonical, help_entries, help_entries_for,
};
pub use event::{Event, EventKind, FloodLimit, HelpEntry, KICK_CODES, RoomInfo, UserRoom};
pub use request::{
    HELLO, HELLO_MODE_JSON, HELLO_REPLAY, HELLO_RESUME, HISTORY_USAGE, ParseError, Request, Resume,
    Secret,
};
pub use text::span;
