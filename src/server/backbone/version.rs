//! The oldest nats-server a node agrees to run on, and reading the version a server
//! announces.

use std::fmt;

/// The oldest nats-server tchat runs on: 2.10.23.
///
/// - 2.9 lacks or silently ignores what the backbone relies on: its `$JS.API.INFO`
///   answer does not parse as async-nats expects (so key-value buckets cannot be made),
///   and a consumer's several filter subjects or a stream's first sequence are accepted
///   and ignored, which would deliver the wrong events without an error.
/// - 2.10 before 2.10.23 could lose writes it had acknowledged when a server crashed
///   (nats-server issues 6888 and 7564, found by Jepsen's NATS analysis): an
///   acknowledged line must not vanish.
pub const FLOOR: Version = Version { major: 2, minor: 10, patch: 23 };

/// A nats-server release number, as its INFO announces it (`2.15.1`; a suffix such as
/// `-beta.2` is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// Parses `MAJOR.MINOR.PATCH[-SUFFIX]`; `None` for anything else (an empty string: a
    /// server that announced no version).
    pub fn parse(text: &str) -> Option<Version> {
        let core = text.trim().split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(Version { major, minor, patch })
    }

    /// Whether this release is at least [`FLOOR`].
    pub fn supported(self) -> bool {
        self >= FLOOR
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_releases_and_prereleases() {
        assert_eq!(Version::parse("2.15.1"), Some(Version { major: 2, minor: 15, patch: 1 }));
        assert_eq!(
            Version::parse("2.11.0-beta.2"),
            Some(Version { major: 2, minor: 11, patch: 0 })
        );
        assert_eq!(Version::parse(" 2.10.23 "), Some(FLOOR));
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for bad in ["", "2.10", "2.10.x", "2.10.1.4", "v2.10.1", "2..1"] {
            assert_eq!(Version::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_floor_is_2_10_23() {
        let v = |s| Version::parse(s).unwrap().supported();
        assert!(!v("2.9.10"), "Debian bookworm's server");
        assert!(!v("2.10.22"));
        assert!(v("2.10.23"));
        assert!(v("2.11.0"));
        assert!(v("2.15.1"));
        assert!(v("3.0.0"));
        assert!(!v("1.99.99"));
    }
}
