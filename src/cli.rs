//! Command-line interface: the clap definition shared by the binary, the man pages and
//! the shell completions, so all three describe exactly the same options.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

use crate::fingerprint::Fingerprint;

/// Default TCP port for both `serve` and `join`.
pub const DEFAULT_PORT: u16 = 5555;

/// A multi-user terminal chat over TCP, with TLS on the same port.
#[derive(Debug, Parser)]
#[command(
    name = "tchat",
    version,
    about = "A multi-user terminal chat over TCP, with TLS on the same port",
    long_about = "tchat is a multi-user chat for a LAN, a small VPS or the open internet. \
                  tchat serve runs a hardened chat server with rooms, history, resumable \
                  sessions and moderation; tchat join is a colorized terminal client with \
                  history and Tab completion that reconnects on its own; tchat ctl sends \
                  operator commands to a running server. The protocol is plain text lines, \
                  so a bare nc HOST 5555 can chat too, and TLS runs on the same port, with \
                  trust on first use in the client."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once at start: boxing the big variant would save nothing worth the noise.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the chat server
    Serve(ServeArgs),
    /// Join a chat server with the interactive terminal client
    // Spelt out because clap's error for HOST given twice (as the argument and as
    // `--host`) shows a usage built from the two conflicting arguments alone,
    // `tchat join <HOST>`; a unit test checks it is what clap makes of JoinArgs.
    #[command(override_usage = "tchat join [OPTIONS] [HOST]...")]
    Join(JoinArgs),
    /// Give a running server an operator command through its control socket
    Ctl(CtlArgs),
}

/// When to use ANSI colors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// Color when writing to a terminal and NO_COLOR is not set
    #[default]
    Auto,
    /// Always color
    Always,
    /// Never color
    Never,
}

impl ColorChoice {
    /// Resolves `auto` against the environment: NO_COLOR (any non-empty value) and
    /// whether the stream is a terminal.
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// Networks exempt from `--max-per-ip` by default: loopback, as in ergo. Local
/// connections are an SSH tunnel, a reverse proxy, a bot farm or a test run, each of
/// which carries many users from one address.
pub const DEFAULT_PER_IP_EXEMPT: &str = "127.0.0.0/8,::1/128";

/// How long a registered nick may go unused before it is released; `None`: never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expiry(pub Option<std::time::Duration>);

/// `never`, or a duration as bans take it (90d, 52w).
pub fn parse_expiry(text: &str) -> Result<Expiry, String> {
    if text.eq_ignore_ascii_case("never") {
        return Ok(Expiry(None));
    }
    crate::server::bans::parse_duration(text)
        .map(|d| Expiry(Some(d)))
        .ok_or_else(|| format!("not a duration: {text} (never, or e.g. 90d, 52w)"))
}

/// A list of IP networks, parsed from comma-separated CIDRs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Networks(pub Vec<IpNet>);

impl Networks {
    /// True if `ip` (an IPv4-mapped IPv6 address counting as IPv4) is in one of them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Parses `CIDR,CIDR,…`; a bare address is a network of one, and `none` (or nothing)
/// is the empty list.
pub fn parse_networks(list: &str) -> Result<Networks, String> {
    let list = list.trim();
    if list.is_empty() || list.eq_ignore_ascii_case("none") {
        return Ok(Networks::default());
    }
    list.split(',')
        .map(str::trim)
        .map(|item| {
            item.parse::<IpNet>()
                .map(|net| net.trunc())
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{item:?} is not a network (e.g. 10.0.0.0/8, fd00::/8)"))
        })
        .collect::<Result<_, _>>()
        .map(Networks)
}

/// What the console and the `--save` log keep of a private message (`/msg`, `/reply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PrivateText {
    /// Its text too (a preview on the console), as for a public line
    #[default]
    Log,
    /// Only who sent it to whom, when, its length and its id: never its text
    Omit,
}

/// Which typed-line (non-TLS) connections the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Plaintext {
    /// From anywhere (nc HOST 5555 works)
    #[default]
    Allow,
    /// Only from the loopback address (nc on the server's own machine)
    Loopback,
    /// Never: TLS only
    Deny,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (IPv4 or IPv6, e.g. 0.0.0.0, ::, 127.0.0.1)
    #[arg(long, default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// TCP port to listen on; 0 picks a free port (the console prints the real one)
    #[arg(short, long, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Append every event to FILE as JSON Lines (never truncates)
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,

    /// What the console and the --save log keep of private messages (/msg, /reply):
    /// "omit" keeps who, to whom, when and how long, never the text, for a server that
    /// promises privacy (a restart never replays private messages either way)
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = PrivateText::Log)]
    pub private_text: PrivateText,

    /// Color the console output
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Longest accepted input line in bytes; longer lines are rejected with an error
    #[arg(long, value_name = "BYTES", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    pub max_line: u32,

    /// Most clients connected at once (at least 1); further connections are refused
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_clients: u32,

    /// Most connections from one IPv4 address or IPv6 /64 network; 0 means no limit
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_per_ip: u32,

    /// Networks --max-per-ip does not limit, as comma-separated CIDRs (a bare address is
    /// one host); replaces the default, loopback; "none" exempts nothing
    #[arg(long, value_name = "CIDR,...", default_value = DEFAULT_PER_IP_EXEMPT,
          value_parser = parse_networks)]
    pub max_per_ip_exempt: Networks,

    /// Sustained lines per second allowed from one client; 0 disables flood control
    #[arg(long, value_name = "LINES", default_value_t = 5.0)]
    pub rate: f64,

    /// Lines a client may send in a burst before the rate applies; beyond it, lines are
    /// delayed to the rate, not dropped
    #[arg(long, value_name = "LINES", default_value_t = 20)]
    pub burst: u32,

    /// Ignored: a client over the rate is slowed, never disconnected for it. Still
    /// accepted, with a warning, so that command lines written for older versions start.
    #[arg(long, value_name = "SECONDS", hide = true)]
    pub flood_kick_after: Option<u32>,

    /// Bytes queued for a client that does not read before it is disconnected
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    pub send_queue: u32,

    /// Announce joins and leaves only while at most N users are online; 0 means always
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub announce_limit: u32,

    /// Room every connection starts in and /part returns to: '#' and 1 to 32 characters
    #[arg(long, value_name = "NAME", default_value = crate::room::DEFAULT_ROOM,
          value_parser = crate::room::parse_arg)]
    pub default_room: String,

    /// Most rooms at once, the default room included (2 allows one room besides it)
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rooms: u32,

    /// Server name shown in the welcome message
    #[arg(long, value_name = "NAME", default_value = "tchat")]
    pub name: String,

    /// TLS certificate chain (PEM, leaf first), reloaded when the file changes (checked every
    /// 2 s) or on SIGHUP
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Where the generated TLS key and certificate and the console's history live [default: $XDG_STATE_HOME/tchat or ~/.local/state/tchat]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Print the TLS certificate's SHA-256 fingerprint and exit (generating the certificate if needed)
    #[arg(long)]
    pub fingerprint: bool,

    /// Accept typed-line (non-TLS) connections from anywhere, only from loopback, or never
    #[arg(long, value_enum, value_name = "WHO", default_value_t = Plaintext::Allow)]
    pub plaintext: Plaintext,

    /// Require the password on the first line of FILE from every client (/pass PASSWORD)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// With --password-file: close a connection that has not given the password this many
    /// seconds after connecting
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub password_timeout: u32,

    /// Keep the ban list in FILE (JSON Lines, rewritten atomically on every change)
    #[arg(long, value_name = "FILE")]
    pub bans: Option<PathBuf>,

    /// Message of the day (16 KiB at most): sent to everyone who joins, re-read on reload
    #[arg(long, value_name = "FILE")]
    pub motd: Option<PathBuf>,

    /// Operator password (the file's first line) for /oper; without it, no operators in chat
    #[arg(long, value_name = "FILE")]
    pub oper_password_file: Option<PathBuf>,

    /// Keep registered nicks (/register) in FILE (JSON Lines, 0600, rewritten atomically) [default: accounts.jsonl in the state directory]
    #[arg(long, value_name = "FILE")]
    pub accounts: Option<PathBuf>,

    /// Release a registered nick its owner has not used for this long (90d, 52w), or never
    #[arg(long, value_name = "DURATION", default_value = "never", value_parser = parse_expiry)]
    pub account_expiry: Expiry,

    // Help attributes, not doc comments, here and below: rustdoc would read `[…]` as links.
    #[arg(
        long,
        value_name = "PATH",
        help = "Control socket for tchat ctl [default: $RUNTIME_DIRECTORY/control.sock, \
                else $XDG_RUNTIME_DIR/tchat/control.sock]"
    )]
    pub control_socket: Option<PathBuf>,

    /// Recent conversation events kept in memory per room, and as many private messages
    /// (reloaded from --save on start), for replay, /history and resuming; 0 keeps none
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub history: u32,

    /// Lines, actions and topics of the room a joining client gets before the live
    /// stream, marked as history (not joins or leaves)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub replay: u32,

    /// Seconds a structured client's lost connection keeps its nick, unannounced, for it
    /// to resume; 0 announces the leave at once
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub resume_grace: u32,

    /// Share one chat with the other tchat nodes on this NATS JetStream system: one or
    /// more servers of it, comma-separated (nats://HOST:PORT, tls://HOST:PORT); without
    /// it, this process is the whole chat
    #[arg(long, value_name = "URL,...", value_delimiter = ',')]
    pub backbone: Vec<String>,

    /// This node's name on the backbone, unique among its nodes [default: HOST-PID]
    #[arg(long, value_name = "NAME", requires = "backbone",
          value_parser = crate::server::backbone::valid_node)]
    pub node: Option<String>,

    /// File with the secret for the backbone (user and password, token, NKey seed, or a
    /// NATS credentials file), so that none is on the command line
    #[arg(long, value_name = "FILE", requires = "backbone")]
    pub backbone_auth: Option<PathBuf>,

    /// CA certificate (PEM) the backbone's NATS servers are checked against; implies TLS
    #[arg(long, value_name = "FILE", requires = "backbone")]
    pub backbone_ca: Option<PathBuf>,

    /// Copies of the backbone's stream and buckets: 3 on a 3-server NATS cluster
    /// (survives one server's loss), 1 on a single server. Without it, a node makes them
    /// with 1 and leaves those it finds as they are; with it, it changes those it finds
    #[arg(long, value_name = "N", requires = "backbone",
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub backbone_replicas: Option<u8>,

    /// Seconds a line waits for the backbone (away, or not confirming it) before its
    /// sender is told it was not delivered; a line not yet handed to NATS is then dropped
    /// and never shows. At most 110, inside the stream's 120 s duplicate window
    #[arg(long, value_name = "SECONDS", requires = "backbone",
          default_value_t = crate::server::backbone::PERSIST.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=110))]
    pub backbone_persist: u64,
}

impl ServeArgs {
    /// The backbone options, if `--backbone` was given.
    pub fn backbone_options(&self) -> Option<crate::server::backbone::Options> {
        (!self.backbone.is_empty()).then(|| crate::server::backbone::Options {
            urls: self.backbone.clone(),
            node: self.node.clone().unwrap_or_else(crate::server::backbone::default_node),
            auth: self.backbone_auth.clone(),
            ca: self.backbone_ca.clone(),
            replicas: self.backbone_replicas.map(usize::from),
            persist: std::time::Duration::from_secs(self.backbone_persist),
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct CtlArgs {
    #[arg(
        long,
        value_name = "PATH",
        help = "The server's control socket [default: as for tchat serve, else \
                /run/tchat/control.sock]"
    )]
    pub control_socket: Option<PathBuf>,

    #[arg(
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND",
        help = "The command and its arguments: kick NICK [REASON], ban NICK|ADDR|CIDR \
                [--wide] [DURATION] [REASON] (--wide: a network wider than an IPv4 /16 or \
                an IPv6 /48), unban, bans, mute NICK [DURATION], unmute, say TEXT, \
                motd [TEXT], list, whois NICK, op NICK, deop NICK, accounts, unregister NICK, reload, \
                shutdown [REASON], help"
    )]
    pub command: Vec<String>,
}

/// Server `join` connects to when no HOST is given.
pub const DEFAULT_JOIN_HOST: &str = "127.0.0.1";

#[derive(Debug, Clone, Args)]
pub struct JoinArgs {
    // The help is an attribute, not a doc comment: rustdoc would read `[IPv6]` as a link.
    #[arg(
        value_name = "HOST",
        default_value = DEFAULT_JOIN_HOST,
        num_args = 1..,
        help = "Server to connect to: HOST, HOST:PORT, [IPv6]:PORT, [IPv6] or a bare IPv6 address",
        long_help = "Server to connect to: HOST, HOST:PORT, [IPv6]:PORT, [IPv6] or a bare IPv6 \
                     address. Several name the servers of one chat (tchat serve nodes on one \
                     backbone): the client connects to the first that answers, trying every \
                     address each name resolves to, and when its server goes away it moves \
                     on to the next and resumes there"
    )]
    host: Vec<String>,

    /// The original design's spelling: `--host HOST` works in place of the positional
    /// HOST (one or the other, not both).
    #[arg(
        long = "host",
        value_name = "HOST",
        conflicts_with = "host",
        help = "Server to connect to, as an option (same forms as HOST)"
    )]
    host_option: Option<String>,

    /// Server port, unless HOST names one
    #[arg(short, long, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Nickname to ask for (otherwise the server assigns a guest name)
    #[arg(short, long, value_name = "NAME")]
    pub nick: Option<String>,

    /// Color the output
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Do not read or write the input history file
    #[arg(long)]
    pub no_history: bool,

    /// Ask the server not to replay a room's recent lines on joining it and on /join
    /// (for scripts and bots: only live lines); /history still works
    #[arg(long)]
    pub no_replay: bool,

    /// Keep the terminal bell quiet for this run, whatever the /bell setting, until /bell sets it
    #[arg(long)]
    pub no_bell: bool,

    /// Connect without TLS (to an older server, or on a trusted network)
    #[arg(long, conflicts_with = "fingerprint")]
    pub plain: bool,

    /// Trust the server's certificate if it has this fingerprint (SHA256:..., from the operator)
    #[arg(long, value_name = "SHA256")]
    pub fingerprint: Option<Fingerprint>,

    /// Send the server password from the first line of FILE
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Your identity: a PEM file with a certificate and its private key, presented over
    /// TLS to prove your registered nicks (made on first use) [default: identity.pem in $XDG_STATE_HOME/tchat or ~/.local/state/tchat]
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,

    /// Exit when the connection is lost instead of reconnecting (interactive mode
    /// reconnects by default)
    #[arg(long, conflicts_with = "reconnect")]
    pub no_reconnect: bool,

    /// Reconnect and resume after a lost connection also when input is piped (a script)
    #[arg(long)]
    pub reconnect: bool,
}

impl JoinArgs {
    /// The servers to connect to, as given: `--host`, else the HOST arguments (which
    /// default to [`DEFAULT_JOIN_HOST`]; clap lets the two conflict only when both are
    /// given).
    pub fn hosts(&self) -> Vec<&str> {
        match &self.host_option {
            Some(host) => vec![host.as_str()],
            None => self.host.iter().map(String::as_str).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, CommandFactory};

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults_match_the_documented_ones() {
        let cli = Cli::try_parse_from(["tchat", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else { panic!("not serve") };
        assert_eq!(args.host.to_string(), "0.0.0.0");
        assert_eq!(args.port, 5555);
        assert_eq!(args.max_line, 4096);
        assert!(args.save.is_none());
    }

    #[test]
    fn serve_accepts_ipv6_and_rejects_garbage_hosts() {
        assert!(Cli::try_parse_from(["tchat", "serve", "--host", "::1"]).is_ok());
        assert!(Cli::try_parse_from(["tchat", "serve", "--host", "nope"]).is_err());
    }

    #[test]
    fn join_takes_the_host_as_an_argument_or_as_host_but_not_both() {
        let host = |args: &[&str]| match Cli::try_parse_from(args) {
            Ok(Cli { command: Command::Join(a) }) => Ok((a.hosts().join(" "), a.port)),
            Ok(_) => panic!("not join"),
            Err(e) => Err(e.kind()),
        };
        assert_eq!(host(&["tchat", "join"]), Ok(("127.0.0.1".into(), 5555)));
        assert_eq!(host(&["tchat", "join", "chat.lan:6000"]), Ok(("chat.lan:6000".into(), 5555)));
        // The original design's exact command.
        let design =
            ["tchat", "join", "--host", "127.0.0.1", "--port", "5555", "--nick", "MrLaction"];
        assert_eq!(host(&design), Ok(("127.0.0.1".into(), 5555)));
        assert_eq!(host(&["tchat", "join", "--host", "::1"]), Ok(("::1".into(), 5555)));
        // The servers of one chat.
        assert_eq!(
            host(&["tchat", "join", "a.lan", "b.lan:6000"]),
            Ok(("a.lan b.lan:6000".into(), 5555))
        );
        assert_eq!(
            host(&["tchat", "join", "a.lan", "--host", "b.lan"]),
            Err(clap::error::ErrorKind::ArgumentConflict)
        );
    }

    #[test]
    fn giving_host_twice_shows_the_real_usage() {
        let usage = |args: &[&str]| {
            let e = Cli::try_parse_from(args).unwrap_err();
            let text = e.render().to_string();
            text.lines().find(|l| l.starts_with("Usage:")).map(str::to_owned).unwrap_or(text)
        };
        // What clap makes of the arguments alone: the usage `--help` shows.
        let real = JoinArgs::augment_args(clap::Command::new("join"))
            .bin_name("tchat join")
            .render_usage()
            .to_string();
        assert_eq!(real, "Usage: tchat join [OPTIONS] [HOST]...");
        assert_eq!(usage(&["tchat", "join", "127.0.0.1", "--host", "127.0.0.1"]), real);
        assert_eq!(usage(&["tchat", "join", "--host", "a.lan", "b.lan"]), real);
    }

    #[test]
    fn per_ip_exemptions_parse_as_cidrs() {
        let nets = |s: &str| {
            parse_networks(s).map(|n| n.0.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(nets(DEFAULT_PER_IP_EXEMPT).unwrap(), ["127.0.0.0/8", "::1/128"]);
        assert_eq!(
            nets(" 10.1.2.3/8 , fd00::/8,192.0.2.7 ").unwrap(),
            ["10.0.0.0/8", "fd00::/8", "192.0.2.7/32"]
        );
        assert_eq!(nets("none").unwrap(), Vec::<String>::new());
        assert_eq!(nets("").unwrap(), Vec::<String>::new());
        assert!(nets("10.0.0.0/33").is_err());
        assert!(nets("10.0.0.0/8,,").is_err());
        assert!(nets("localhost").unwrap_err().contains("\"localhost\" is not a network"));

        let loopback = parse_networks(DEFAULT_PER_IP_EXEMPT).unwrap();
        for ip in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert!(loopback.contains(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["128.0.0.1", "192.0.2.7", "::2", "::ffff:192.0.2.7"] {
            assert!(!loopback.contains(ip.parse().unwrap()), "{ip}");
        }
        let cli = Cli::try_parse_from(["tchat", "serve", "--max-per-ip-exempt", "none"]).unwrap();
        let Command::Serve(args) = cli.command else { panic!("not serve") };
        assert!(args.max_per_ip_exempt.0.is_empty());
        assert!(Cli::try_parse_from(["tchat", "serve", "--max-per-ip-exempt", "x"]).is_err());
    }
}
