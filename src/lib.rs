//! tchat: a multi-user terminal chat over TCP, with TLS on the same port.
//!
//! Module map:
//! - [`cli`]: the clap definition (the man pages, completions and `docs/reference/cli.md`
//!   are rendered from it by `tests/generated.rs`, `TCHAT_BLESS=1` regenerating them);
//! - [`protocol`]: what clients send ([`protocol::Request`]) and what the server sends
//!   back ([`protocol::Event`]) in text or JSON;
//! - input rules, pure and shared by both ends: [`framing`] (bounded line splitting and
//!   line ends), [`telnet`] (removing telnet commands), [`sanitize`] (terminal controls
//!   and invisible text), [`nick`] and [`room`] (RFC 8266 identity and TR39 look-alikes),
//!   [`flood`] (fakelag);
//! - [`server`]: the accept loop, the hub that owns nicks, rooms, history and moderation
//!   and fans events out, one task per connection, TLS, the control socket and the
//!   operator's console; [`auth`]: the server password; [`ctl`]: `tchat ctl`;
//! - [`event_log`]: the console and `--save` JSON Lines log; [`timestamp`]: how both it
//!   and the structured events write `ts`;
//! - [`client`]: `tchat join`, the terminal client (connection core with reconnect and
//!   resume, rendering, completion, line editor, TLS with trust on first use);
//! - shared plumbing: [`net`] (the TCP options both ends set), [`fingerprint`]
//!   (certificate fingerprints as both ends write them), [`state_dir`] (the XDG state
//!   and data directories), [`private_file`] (0600 files written atomically, in 0700
//!   directories), [`terminal`] (the line editor's set-up, restoring the terminal mode).

pub mod auth;
pub mod cli;
pub mod client;
pub mod ctl;
pub mod event_log;
pub mod fingerprint;
pub mod flood;
pub mod framing;
pub mod local_time;
pub mod net;
pub mod nick;
pub mod private_file;
pub mod protocol;
pub mod room;
pub mod sanitize;
pub mod server;
pub mod state_dir;
pub mod telnet;
pub mod terminal;
pub mod timestamp;
