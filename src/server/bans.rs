//! The ban list: who may not connect (by address or network) or take a nick, until
//! when, and why. Pure data and parsing; the hub owns the one list and `--bans FILE`
//! keeps it across restarts as JSON Lines, one ban per line, replaced atomically.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::nick;

/// What a ban matches. Stored as `"kind"` and `"target"`, the target in the form an
/// operator types it (`198.51.100.0/24`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Stored", try_from = "Stored")]
pub enum Target {
    /// A nick, as typed (its enforced form); compared by [`nick::key`] and looks.
    Nick(String),
    /// One address; an IPv4-mapped IPv6 address is stored as IPv4.
    Addr(IpAddr),
    /// A network in CIDR notation (RFC 4632): the address with its host bits cleared.
    Net { addr: IpAddr, prefix: u8 },
}

/// A [`Target`] as the bans file holds it: `{"kind":"net","target":"198.51.100.0/24"}`,
/// the address and network as text, so the file reads and hand-edits as the operator
/// commands do.
#[derive(Serialize, Deserialize)]
struct Stored {
    kind: Kind,
    target: StoredTarget,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Nick,
    Addr,
    Net,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredTarget {
    Text(String),
    /// `{"addr":"203.0.113.0","prefix":24}`: how files written before the text form
    /// held a network; still read.
    Net {
        addr: IpAddr,
        prefix: u8,
    },
}

impl From<Target> for Stored {
    fn from(target: Target) -> Stored {
        let kind = match target {
            Target::Nick(_) => Kind::Nick,
            Target::Addr(_) => Kind::Addr,
            Target::Net { .. } => Kind::Net,
        };
        let text = match target {
            Target::Nick(n) => n,
            other => other.to_string(),
        };
        Stored { kind, target: StoredTarget::Text(text) }
    }
}

impl TryFrom<Stored> for Target {
    type Error = String;

    fn try_from(stored: Stored) -> Result<Target, String> {
        let text = match (stored.kind, stored.target) {
            (Kind::Nick, StoredTarget::Text(nick)) => return Ok(Target::Nick(nick)),
            (Kind::Net, StoredTarget::Net { addr, prefix }) => format!("{addr}/{prefix}"),
            (_, StoredTarget::Text(text)) => text,
            (_, StoredTarget::Net { .. }) => return Err("only a net has a prefix".into()),
        };
        let target = Target::parse(&text).map_err(|e| e.0)?;
        match (stored.kind, &target) {
            (Kind::Addr, Target::Addr(_)) | (Kind::Net, Target::Net { .. }) => Ok(target),
            (Kind::Addr, _) => Err(format!("not an address: {text}")),
            _ => Err(format!("not a network (ADDR/PREFIX): {text}")),
        }
    }
}

/// One entry of the list, as stored in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    #[serde(flatten)]
    pub target: Target,
    /// When the ban lapses; `None` for a ban until `/unban`.
    pub until: Option<Timestamp>,
    pub reason: Option<String>,
    /// Who banned: `console`, `ctl` or an operator's nick, for the record.
    pub by: String,
    pub at: Timestamp,
}

/// Why a ban target or duration was not understood; the text is shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTarget(pub String);

impl fmt::Display for BadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Target {
    /// Parses `NICK`, `ADDR` or `ADDR/PREFIX`. A network is normalised (host bits
    /// cleared), so `192.0.2.7/24` bans `192.0.2.0/24`.
    pub fn parse(s: &str) -> Result<Target, BadTarget> {
        if let Some((addr, prefix)) = s.split_once('/') {
            let addr: IpAddr =
                addr.parse().map_err(|_| BadTarget(format!("not a network address: {s}")))?;
            let addr = unmap(addr);
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| BadTarget(format!("bad prefix length in {s} (0 to {max})")))?;
            return Ok(Target::Net { addr: mask(addr, prefix), prefix });
        }
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Target::Addr(unmap(addr)));
        }
        let n = nick::validate(s)
            .map_err(|e| BadTarget(format!("not a nick, address or network: {e}")))?;
        Ok(Target::Nick(n))
    }

    /// Whether a connection from `ip` falls under this target.
    pub fn matches_ip(&self, ip: IpAddr) -> bool {
        let ip = unmap(ip);
        match *self {
            Target::Nick(_) => false,
            Target::Addr(a) => a == ip,
            Target::Net { addr, prefix } => {
                addr.is_ipv4() == ip.is_ipv4() && mask(ip, prefix) == addr
            }
        }
    }

    /// The widest network an operator in chat may ban, as `(IPv4, IPv6)` prefix
    /// lengths: a shorter prefix is [`Target::is_wide`]. An IPv4 /16 is 65,536
    /// addresses, a large campus or a whole provider's pool; an IPv6 /48 is one site
    /// (RFC 6177 assigns a /48 to an end site; a /56 or /64 to a home). Wider than that
    /// a ban reaches whole providers or countries, or everyone (`0.0.0.0/0`, `::/0`),
    /// and, written to `--bans`, outlives a restart. IRC servers draw the same line:
    /// ergo refuses such a ban from a chat operator and UnrealIRCd asks for an override.
    pub const WIDEST_FROM_CHAT: (u8, u8) = (16, 48);

    /// Whether this is a network wider than [`Target::WIDEST_FROM_CHAT`]: refused from
    /// operators in chat, and made by the console and `tchat ctl` only when confirmed.
    pub fn is_wide(&self) -> bool {
        let (v4, v6) = Self::WIDEST_FROM_CHAT;
        match *self {
            Target::Net { addr: IpAddr::V4(_), prefix } => prefix < v4,
            Target::Net { addr: IpAddr::V6(_), prefix } => prefix < v6,
            Target::Nick(_) | Target::Addr(_) => false,
        }
    }

    /// Whether the nick `wanted` falls under this target: the same nick, or one that
    /// looks like it ([`nick::skeleton`], as the hub compares online nicks), so a ban
    /// on `bob` is not dodged with a Cyrillic `о`.
    pub fn matches_nick(&self, wanted: &str) -> bool {
        matches!(self, Target::Nick(n)
            if nick::key(n) == nick::key(wanted) || nick::skeleton(n) == nick::skeleton(wanted))
    }

    /// Whether two targets name the same thing: nicks as nick ownership compares them
    /// (the same [`nick::key`] or [`nick::skeleton`]: of `Alice`, `alice` and `AIice`
    /// one holder at a time), so an unban or a second ban of any of them is of the ban
    /// that refuses them all.
    pub fn same_as(&self, other: &Target) -> bool {
        match (self, other) {
            (Target::Nick(a), Target::Nick(_)) => other.matches_nick(a),
            _ => self == other,
        }
    }

    /// The text every form of this target shares, for keying it (the backbone keeps an
    /// entry per ban): a nick's [`nick::key`] (every case and width of it), an address
    /// or network as it displays. Look-alikes, which [`Target::same_as`] counts as the
    /// same too, may have other keys: one is no canonical form of the other.
    pub fn identity(&self) -> String {
        match self {
            Target::Nick(n) => nick::key(n),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Nick(n) => f.write_str(n),
            Target::Addr(a) => write!(f, "{a}"),
            Target::Net { addr, prefix } => write!(f, "{addr}/{prefix}"),
        }
    }
}

impl Ban {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.until.is_none_or(|until| until > now)
    }

    /// The refusal text the banned client gets: why, and until when.
    pub fn describe(&self) -> String {
        let mut s = String::from("you are banned from this server");
        if let Some(until) = self.until {
            s.push_str(&format!(" until {}", until.strftime("%Y-%m-%d %H:%M:%S UTC")));
        }
        if let Some(reason) = &self.reason {
            s.push_str(&format!(": {reason}"));
        }
        s
    }
}

/// The bans in force, in the order they were made.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BanList {
    bans: Vec<Ban>,
}

impl BanList {
    /// The active ban covering a connection from `ip`, if any.
    pub fn for_ip(&self, ip: IpAddr, now: Timestamp) -> Option<&Ban> {
        self.bans.iter().find(|b| b.is_active(now) && b.target.matches_ip(ip))
    }

    /// The active ban covering the nick `wanted`, if any.
    pub fn for_nick(&self, wanted: &str, now: Timestamp) -> Option<&Ban> {
        self.bans.iter().find(|b| b.is_active(now) && b.target.matches_nick(wanted))
    }

    /// Adds `ban`, replacing an earlier ban of the same target (a re-ban changes its
    /// duration or reason).
    pub fn add(&mut self, ban: Ban) {
        self.bans.retain(|b| !b.target.same_as(&ban.target));
        self.bans.push(ban);
    }

    /// Removes the ban of `target`; false if there was none.
    pub fn remove(&mut self, target: &Target) -> bool {
        let before = self.bans.len();
        self.bans.retain(|b| !b.target.same_as(target));
        self.bans.len() != before
    }

    /// Forgets lapsed bans; true if any was.
    pub fn expire(&mut self, now: Timestamp) -> bool {
        let before = self.bans.len();
        self.bans.retain(|b| b.is_active(now));
        self.bans.len() != before
    }

    pub fn iter(&self) -> impl Iterator<Item = &Ban> {
        self.bans.iter()
    }

    /// Parses the file's JSON Lines; blank lines are skipped, any other bad line is an
    /// error naming it (a typo must not silently lift a ban).
    pub fn parse(text: &str) -> Result<BanList, String> {
        let mut list = BanList::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let ban: Ban =
                serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
            list.add(ban);
        }
        Ok(list)
    }

    /// Reads `path`; a missing file is an empty list (the first ban creates it), but a
    /// missing directory is an error now, not at the first ban, which could then not be
    /// kept.
    pub fn load(path: &Path) -> Result<BanList, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => BanList::parse(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                    Err(format!("no directory {} to keep it in", dir.display()))
                }
                _ => Ok(BanList::default()),
            },
            Err(e) => Err(e.to_string()),
        }
        .map_err(|e| format!("cannot read bans file {}: {e}", path.display()))
    }

    /// The file's contents: one JSON object per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for ban in &self.bans {
            out.push_str(&serde_json::to_string(ban).expect("bans always serialise"));
            out.push('\n');
        }
        out
    }

    /// Writes the list to `path` atomically: a temporary file in the same directory,
    /// synced, then renamed over the old one, so a crash leaves the old list or the new
    /// one, never half of either. A new file is mode 0600 (it names who was banned and
    /// from which address); one that exists keeps its mode, the admin's choice.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let result = crate::private_file::write_keeping_mode(path, self.render().as_bytes());
        result.map_err(|e| {
            io::Error::new(e.kind(), format!("cannot write bans file {}: {e}", path.display()))
        })
    }
}

/// Parses a duration as operators type it: a number and a unit, `s`, `m`, `h`, `d` or
/// `w` (`90s`, `10m`, `2h`, `7d`), as ssh-chat and most IRC services accept.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let unit_at = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(unit_at);
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    n.checked_mul(secs).filter(|s| *s <= 100 * 365 * 86_400).map(Duration::from_secs)
}

/// An IPv4-mapped IPv6 address as IPv4: a dual-stack listener reports IPv4 peers so.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nick_targets_are_one_as_nick_ownership_has_them() {
        let alice = Target::parse("AIice").unwrap();
        // The same key (case, width) or the same skeleton (looks), as ownership has it.
        for same in ["alice", "AIICE", "Alice", "\u{ff21}Iice"] {
            let other = Target::parse(same).unwrap();
            assert!(alice.same_as(&other) && other.same_as(&alice), "{same}");
        }
        for (a, b) in [("Alice", "ALICE"), ("AIice", "\u{ff41}iice")] {
            let (a, b) = (Target::parse(a).unwrap(), Target::parse(b).unwrap());
            assert_eq!(a.identity(), b.identity(), "{a} {b}");
        }
        assert!(!alice.same_as(&Target::parse("alicia").unwrap()));
        let mut list = BanList::default();
        let ban = |target: &Target| Ban {
            target: target.clone(),
            until: None,
            reason: None,
            by: "console".into(),
            at: Timestamp::UNIX_EPOCH,
        };
        list.add(ban(&alice));
        list.add(ban(&Target::parse("Alice").unwrap()));
        assert_eq!(list.iter().count(), 1, "a second ban of the same nick replaces the first");
        assert!(list.remove(&Target::parse("alice").unwrap()));
        assert_eq!(list.for_nick("AIice", Timestamp::UNIX_EPOCH), None);
    }

    #[test]
    fn a_network_wider_than_a_v4_16_or_a_v6_48_is_wide() {
        let wide = |s: &str| Target::parse(s).unwrap().is_wide();
        for s in ["0.0.0.0/0", "::/0", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/15"] {
            assert!(wide(s), "{s}");
        }
        for s in ["2000::/3", "2001:db8::/32", "2001:db8::/47"] {
            assert!(wide(s), "{s}");
        }
        for s in ["192.168.0.0/16", "198.51.100.0/24", "10.0.0.1", "2001:db8::/48"] {
            assert!(!wide(s), "{s}");
        }
        for s in ["2001:db8::/64", "2001:db8::1", "::", "bob"] {
            assert!(!wide(s), "{s}");
        }
    }

    fn ban(target: &str, until: Option<Timestamp>) -> Ban {
        Ban {
            target: Target::parse(target).unwrap(),
            until,
            reason: Some("spam".into()),
            by: "console".into(),
            at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn targets_parse_as_nick_address_or_network() {
        assert_eq!(Target::parse("Bob").unwrap(), Target::Nick("Bob".into()));
        assert_eq!(Target::parse("192.0.2.7").unwrap().to_string(), "192.0.2.7");
        assert_eq!(Target::parse("::ffff:192.0.2.7").unwrap().to_string(), "192.0.2.7");
        assert_eq!(Target::parse("192.0.2.7/24").unwrap().to_string(), "192.0.2.0/24");
        assert_eq!(Target::parse("2001:db8::1/32").unwrap().to_string(), "2001:db8::/32");
        assert_eq!(Target::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert!(Target::parse("192.0.2.7/33").is_err());
        assert!(Target::parse("nope/8").is_err());
        assert!(Target::parse("").is_err());
    }

    #[test]
    fn networks_match_their_addresses_only() {
        let net = Target::parse("192.0.2.0/24").unwrap();
        assert!(net.matches_ip("192.0.2.200".parse().unwrap()));
        assert!(net.matches_ip("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!net.matches_ip("192.0.3.1".parse().unwrap()));
        assert!(!net.matches_ip("::1".parse().unwrap()));
        assert!(Target::parse("::/0").unwrap().matches_ip("2001:db8::5".parse().unwrap()));
        assert!(!Target::parse("::/0").unwrap().matches_ip("127.0.0.1".parse().unwrap()));
        let nick = Target::parse("bob").unwrap();
        assert!(nick.matches_nick("BOB") && !nick.matches_nick("bobby"));
        assert!(nick.matches_nick("b\u{43e}b"), "a Cyrillic o dodges no ban");
        assert!(Target::parse("Mallory").unwrap().matches_nick("mallory"));
        assert!(!nick.matches_ip("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn expired_bans_do_not_match_and_are_forgotten() {
        let now = Timestamp::now();
        let past = now - jiff::SignedDuration::from_secs(1);
        let mut list = BanList::default();
        list.add(ban("127.0.0.1", Some(past)));
        list.add(ban("bob", None));
        assert!(list.for_ip("127.0.0.1".parse().unwrap(), now).is_none());
        assert!(list.for_nick("Bob", now).is_some());
        assert!(list.expire(now));
        assert_eq!(list.iter().count(), 1);
        assert!(!list.expire(now));
    }

    #[test]
    fn a_reban_replaces_and_unban_removes() {
        let mut list = BanList::default();
        list.add(ban("bob", None));
        list.add(ban("BOB", Some(Timestamp::MAX)));
        assert_eq!(list.iter().count(), 1);
        assert_eq!(list.iter().next().unwrap().until, Some(Timestamp::MAX));
        assert!(list.remove(&Target::parse("bob").unwrap()));
        assert!(!list.remove(&Target::parse("bob").unwrap()));
    }

    #[test]
    fn the_file_round_trips_and_bad_lines_are_errors() {
        let mut list = BanList::default();
        list.add(ban("bob", None));
        list.add(ban("10.0.0.0/8", Some(Timestamp::UNIX_EPOCH)));
        let text = list.render();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains(r#""kind":"net""#), "{text}");
        assert_eq!(BanList::parse(&format!("\n{text}\n")).unwrap(), list);
        let err = BanList::parse("{\"kind\":\"nick\"}\n").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
        let err = BanList::parse(r#"{"kind":"net","target":"10.0.0.1","until":null,"reason":null,"by":"x","at":"2026-01-01T00:00:00Z"}"#).unwrap_err();
        assert!(err.contains("not a network"), "{err}");
    }

    #[test]
    fn the_file_holds_targets_as_operators_type_them() {
        let text = concat!(
            r#"{"kind":"net","target":"198.51.100.0/24","until":null,"reason":"spam","by":"console","at":"2026-01-01T00:00:00Z"}"#,
            "\n",
            r#"{"kind":"addr","target":"203.0.113.9","until":null,"reason":null,"by":"ctl","at":"2026-01-01T00:00:00Z"}"#,
            "\n",
            // The form written before: still read.
            r#"{"kind":"net","target":{"addr":"192.0.2.0","prefix":24},"until":null,"reason":null,"by":"ctl","at":"2026-01-01T00:00:00Z"}"#,
        );
        let list = BanList::parse(text).unwrap();
        let targets: Vec<String> = list.iter().map(|b| b.target.to_string()).collect();
        assert_eq!(targets, ["198.51.100.0/24", "203.0.113.9", "192.0.2.0/24"]);
        let rendered = list.render();
        assert!(rendered.contains(r#""kind":"net","target":"198.51.100.0/24""#), "{rendered}");
        assert!(rendered.contains(r#""kind":"net","target":"192.0.2.0/24""#), "{rendered}");
        assert!(rendered.contains(r#""kind":"addr","target":"203.0.113.9""#), "{rendered}");
        assert_eq!(BanList::parse(&rendered).unwrap(), list);
    }

    #[test]
    fn saving_replaces_the_file_whole() {
        let dir = std::env::temp_dir().join(format!("tchat-bans-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bans.jsonl");
        let mut list = BanList::default();
        list.add(ban("bob", None));
        list.save(&path).unwrap();
        assert_eq!(BanList::load(&path).unwrap(), list);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "temporary file left");
        assert_eq!(BanList::load(&dir.join("absent")).unwrap(), BanList::default());
        let err = BanList::load(&dir.join("no-such-dir/bans.jsonl")).unwrap_err();
        assert!(err.contains("no directory"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn durations_take_one_unit() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1w"), Some(Duration::from_secs(604_800)));
        for bad in ["", "10", "m", "0m", "-1m", "10x", "1h30m", "spam"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
