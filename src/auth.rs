//! The server password: reading it, the `/pass` line that presents it, comparing it in
//! constant time, and slowing down an address that keeps guessing ([`Failures`], which
//! the operator password's `/oper` uses too).
//!
//! Wire order (see docs/protocol.md): `/pass SECRET` is the first line of a
//! connection, before `/hello json` or anything typed; the server answers a wrong or
//! missing password with one `!!!` line and closes.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use subtle::ConstantTimeEq;

use crate::net::origin;

/// The command that presents the password.
pub const PASS: &str = "/pass";

/// Told to a plain client at the end of the hello window, before it may chat.
pub const PASSWORD_PROMPT: &str = "this server needs a password: type /pass PASSWORD";

/// The refusal for a first line that is not `/pass`; the client recognises it by this
/// text to ask for the password and try again.
pub const PASSWORD_REQUIRED: &str = "this server needs a password (send /pass PASSWORD first)";

/// The answer to a `/pass` line the server does not need: it has no password, or the
/// connection gave it already. `tchat join` sends its password before it knows which
/// kind of server it talks to, and recognises this answer by its text to keep quiet.
pub const PASSWORD_NOT_NEEDED: &str =
    "no password needed now: this server has none, or you have already given the password";

/// The refusal for a wrong password.
pub const PASSWORD_WRONG: &str = "wrong password";

/// The password of a server, or of a client connecting to one. Its `Debug` hides it, so
/// it cannot reach a log through a `{:?}`.
#[derive(Clone)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<hidden>)")
    }
}

impl Password {
    /// The first line of `path`, without its line end. An empty password is an error:
    /// it would protect nothing.
    pub fn read_file(path: &Path) -> io::Result<Password> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Password::new(text.lines().next().unwrap_or("")).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: the first line (the password) is empty", path.display()),
            )
        })
    }

    /// A password typed at a prompt or read from a file; `None` when empty.
    pub fn new(text: &str) -> Option<Password> {
        let text = text.trim_end_matches(['\r', '\n']);
        (!text.is_empty()).then(|| Password(text.to_owned()))
    }

    /// Compares in constant time. The digests are compared, not the texts, so that
    /// neither the time nor an early length check tells a guesser the password's length.
    pub fn matches(&self, given: &str) -> bool {
        let digest = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
        digest(&self.0).as_ref().ct_eq(digest(given).as_ref()).into()
    }

    /// The line that presents this password, without the line end.
    pub fn pass_line(&self) -> String {
        format!("{PASS} {}", self.0)
    }
}

/// The password a `/pass` line presents (possibly empty), or `None` for any other line.
/// The command word is matched without regard to case, as every other command is.
pub fn parse_pass(line: &str) -> Option<&str> {
    let rest = line.trim_end_matches(['\r', '\n']);
    let word = rest.get(..PASS.len())?;
    let after = &rest[PASS.len()..];
    if !word.eq_ignore_ascii_case(PASS) || !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    Some(after.strip_prefix(' ').unwrap_or(after))
}

/// Wrong passwords an address may give before the waits begin: with the one after
/// them, a person gets three tries in a row, as ssh gives (its
/// `NumberOfPasswordPrompts` is 3), however fast they retype.
pub const FREE_MISSES: u32 = 2;

/// The wait after the first wrong password beyond [`FREE_MISSES`]; it doubles with each
/// further one, up to [`MAX_DELAY`].
const BASE_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(300);

/// Addresses remembered at most; beyond, the one whose wait ends first is forgotten, so
/// a flood of addresses cannot grow the table without end.
const MAX_TRACKED: usize = 4096;

/// Wrong passwords per address: the first [`FREE_MISSES`] cost nothing (three honest
/// tries), then after each the address must wait (1 s, 2 s, 4 s … up to 5 min) before
/// its next attempt is even checked: 20 guesses take about 50 minutes, 100 about 7.5
/// hours. One table for the server password
/// (`/pass`) and another for the operator password (`/oper`): the same rule, counted
/// apart, so a user who mistypes `/oper` can still reconnect. An IPv6 address counts as
/// its /64 network, since one host usually holds a whole /64 (as `--max-per-ip` counts).
#[derive(Debug, Default)]
pub struct Failures {
    by_addr: HashMap<IpAddr, Strikes>,
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    until: Instant,
}

impl Failures {
    /// `Err(wait)` while `addr` must wait before trying again.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        match self.by_addr.get(&origin(addr)) {
            Some(s) if s.until > now => Err(s.until - now),
            _ => Ok(()),
        }
    }

    /// Records a wrong password; returns how long `addr` must now wait (zero for the
    /// first [`FREE_MISSES`]).
    pub fn fail(&mut self, addr: IpAddr, now: Instant) -> Duration {
        let addr = origin(addr);
        if !self.by_addr.contains_key(&addr) && self.by_addr.len() >= MAX_TRACKED {
            self.by_addr.retain(|_, s| s.until > now);
            if self.by_addr.len() >= MAX_TRACKED {
                let first = self.by_addr.iter().min_by_key(|(_, s)| s.until).map(|(a, _)| *a);
                first.map(|a| self.by_addr.remove(&a));
            }
        }
        let strikes = self.by_addr.entry(addr).or_insert(Strikes { count: 0, until: now });
        strikes.count = strikes.count.saturating_add(1);
        let Some(doublings) = strikes.count.checked_sub(FREE_MISSES + 1) else {
            return Duration::ZERO;
        };
        let delay = BASE_DELAY.saturating_mul(1 << doublings.min(16)).min(MAX_DELAY);
        strikes.until = now + delay;
        delay
    }

    /// Forgets `addr`'s failures after a right password.
    pub fn succeed(&mut self, addr: IpAddr) {
        self.by_addr.remove(&origin(addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_lines_are_recognised_and_nothing_else() {
        assert_eq!(parse_pass("/pass s3cret"), Some("s3cret"));
        assert_eq!(parse_pass("/PASS two words\r\n"), Some("two words"));
        assert_eq!(parse_pass("/pass"), Some(""));
        assert_eq!(parse_pass("/password x"), None);
        assert_eq!(parse_pass("/hello json"), None);
        assert_eq!(parse_pass("pass x"), None);
        assert_eq!(parse_pass("/pa"), None);
        assert_eq!(parse_pass("/pasé"), None);
    }

    #[test]
    fn the_password_matches_only_itself_and_hides_in_debug() {
        let p = Password::new("s3cret\n").unwrap();
        assert!(p.matches("s3cret"));
        assert!(!p.matches("s3cre"));
        assert!(!p.matches("s3cret "));
        assert!(!p.matches(""));
        assert!(!format!("{p:?}").contains("s3cret"));
        assert_eq!(p.pass_line(), "/pass s3cret");
        assert!(Password::new("\n").is_none());
    }

    #[test]
    fn three_tries_are_free_then_each_failure_doubles_the_wait_and_a_success_forgets() {
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let mut f = Failures::default();
        let t0 = Instant::now();
        for _ in 0..FREE_MISSES {
            assert_eq!(f.check(a, t0), Ok(()));
            assert_eq!(f.fail(a, t0), Duration::ZERO);
        }
        assert_eq!(f.check(a, t0), Ok(()), "the third try is checked at once");
        assert_eq!(f.fail(a, t0), Duration::from_secs(1));
        assert_eq!(f.check(a, t0), Err(Duration::from_secs(1)));
        assert_eq!(f.check(b, t0), Ok(()));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(f.check(a, t1), Ok(()));
        assert_eq!(f.fail(a, t1), Duration::from_secs(2));
        assert_eq!(f.fail(a, t1), Duration::from_secs(4));
        for _ in 0..40 {
            f.fail(a, t1);
        }
        assert_eq!(f.check(a, t1), Err(MAX_DELAY));
        f.succeed(a);
        assert_eq!(f.check(a, t1), Ok(()));
    }

    #[test]
    fn an_ipv6_network_counts_as_one_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut f = Failures::default();
        let now = Instant::now();
        for _ in 0..=FREE_MISSES {
            f.fail(ip("2001:db8::1"), now);
        }
        assert!(f.check(ip("2001:db8::2:3"), now).is_err(), "same /64");
        assert!(f.check(ip("2001:db8:0:1::1"), now).is_ok(), "another /64");
        for _ in 0..=FREE_MISSES {
            f.fail(ip("::ffff:192.0.2.7"), now);
        }
        assert!(f.check(ip("192.0.2.7"), now).is_err(), "IPv4-mapped is IPv4");
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut f = Failures::default();
        let now = Instant::now();
        // Each address past its free misses: waiting, so none is let go as done.
        for i in 0..(MAX_TRACKED as u32 + 100) {
            for _ in 0..=FREE_MISSES {
                f.fail(IpAddr::from(i.to_be_bytes()), now);
            }
        }
        assert_eq!(f.by_addr.len(), MAX_TRACKED);
    }
}
