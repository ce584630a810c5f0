//! Reading the `HOST` argument of `tchat join`: `HOST`, `HOST:PORT`, `[V6]:PORT`, `[V6]`
//! or a bare IPv6 address.

use std::fmt;
use std::net::Ipv6Addr;

/// Where to connect: a host name or address, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    /// Parses `arg`; `default_port` applies when `arg` names no port.
    pub fn parse(arg: &str, default_port: u16) -> Result<Target, TargetError> {
        let arg = arg.trim();
        let bad = || TargetError(arg.to_owned());
        if arg.is_empty() {
            return Err(bad());
        }
        let target = |host: &str, port: u16| Target { host: host.to_owned(), port };
        if let Some(rest) = arg.strip_prefix('[') {
            let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
            addr.parse::<Ipv6Addr>().map_err(|_| bad())?;
            return match after {
                "" => Ok(target(addr, default_port)),
                _ => {
                    let port = after.strip_prefix(':').ok_or_else(bad)?;
                    Ok(target(addr, parse_port(port).ok_or_else(bad)?))
                }
            };
        }
        if arg.parse::<Ipv6Addr>().is_ok() {
            return Ok(target(arg, default_port));
        }
        match arg.split_once(':') {
            None => Ok(target(arg, default_port)),
            Some((host, port)) if !host.is_empty() && !port.contains(':') => {
                Ok(target(host, parse_port(port).ok_or_else(bad)?))
            }
            Some(_) => Err(bad()),
        }
    }
}

fn parse_port(port: &str) -> Option<u16> {
    port.parse().ok()
}

/// `host:port`, with brackets around an IPv6 address so the port stays readable.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A `HOST` argument that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError(pub String);

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid server address '{}' (expected HOST, HOST:PORT, [IPv6]:PORT or an IPv6 address)",
            self.0
        )
    }
}

impl std::error::Error for TargetError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(arg: &str) -> Result<(String, u16), TargetError> {
        Target::parse(arg, 5555).map(|t| (t.host, t.port))
    }

    #[test]
    fn accepts_every_documented_form() {
        assert_eq!(p("127.0.0.1"), Ok(("127.0.0.1".into(), 5555)));
        assert_eq!(p("chat.example"), Ok(("chat.example".into(), 5555)));
        assert_eq!(p("chat.example:6000"), Ok(("chat.example".into(), 6000)));
        assert_eq!(p("10.0.0.1:1"), Ok(("10.0.0.1".into(), 1)));
        assert_eq!(p("[::1]:7000"), Ok(("::1".into(), 7000)));
        assert_eq!(p("[fe80::1]"), Ok(("fe80::1".into(), 5555)));
        assert_eq!(p("::1"), Ok(("::1".into(), 5555)));
        assert_eq!(p("2001:db8::2"), Ok(("2001:db8::2".into(), 5555)));
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in ["", "host:", "host:port", "host:70000", ":5555", "[::1", "[::1]x", "[nope]:1"] {
            assert!(p(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(p("a:b:c").is_err());
    }

    #[test]
    fn displays_with_brackets_for_ipv6() {
        assert_eq!(Target::parse("::1", 5).unwrap().to_string(), "[::1]:5");
        assert_eq!(Target::parse("h:6", 5).unwrap().to_string(), "h:6");
    }
}
