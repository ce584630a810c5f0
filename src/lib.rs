//! tchat: a multi-user terminal chat over TCP, with TLS on the same port.
//!
//! Module map:
//! - [`cli`]: the clap definition, and [`docs`]: the man pages and shell completions
//!   rendered from it;
//! - [`protocol`]: what clients send ([`protocol::Request`]) and what the server sends
//!   back ([`protocol::Event`]) in text or JSON;
//! - [`framing`]: bounded line splitting; [`telnet`]: removing telnet commands;
//!   [`sanitize`]: stripping terminal controls;
//!   [`nick`]: nickname rules; [`room`]: room name rules; [`flood`]: per-client rate
//!   limiting; [`net`]: the TCP
//!   options both ends set;
//! - [`server`]: the accept loop, the hub that owns the nick table and fans events out,
//!   and one task per connection;
//! - [`server::operator`]: the operator's commands (console, control socket, `/oper`),
//!   [`server::bans`]: the ban list, [`ctl`]: `tchat ctl`, the control socket's client,
//!   [`server::console`]: the operator's command line on the server's terminal;
//! - [`event_log`]: the console and `--save` JSON Lines log; [`timestamp`]: how both it
//!   and the structured events write `ts`;
//! - [`client`]: `tchat join`, the terminal client (rendering, completion, line editor,
//!   TLS with trust on first use);
//! - [`fingerprint`]: certificate fingerprints as both ends write them; [`auth`]: the
//!   server password;
//! - [`state_dir`]: where histories and settings are kept between runs;
//!   [`terminal`]: putting the terminal mode back behind a line editor.

pub mod auth;
pub mod cli;
pub mod client;
pub mod ctl;
pub mod docs;
pub mod event_log;
pub mod fingerprint;
pub mod flood;
pub mod framing;
pub mod net;
pub mod nick;
pub mod protocol;
pub mod room;
pub mod sanitize;
pub mod server;
pub mod state_dir;
pub mod telnet;
pub mod terminal;
pub mod timestamp;
