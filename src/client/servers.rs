//! The servers of one chat. `tchat join a.example b.example:5555` names the nodes of one
//! chat (tchat serve nodes sharing a backbone), and each name may resolve to several
//! addresses. [`Servers`] keeps the names as given; [`Servers::resolve`] turns them into
//! [`Endpoint`]s at each attempt (DNS may have changed), and [`rotation`] orders them:
//! after the loss of one endpoint the others come first and it comes last, so the client
//! moves on to the next server when its own goes away (refused, lost, shut down) and
//! resumes there with its token and last id.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::ClientError;
use super::connect::Opened;
use super::target::{Target, TargetError};

/// The names given for one chat, in the order given; never empty.
#[derive(Debug, Clone)]
pub struct Servers {
    targets: Vec<Target>,
}

/// One address to connect to: the name as given (for TLS, the known hosts file and what
/// the user reads) and one address it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub target: Target,
    pub addr: SocketAddr,
}

/// The name, and the address when the name is not one: `chat.example:5555 (192.0.2.7)`.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.target.host.parse::<IpAddr>().is_ok() {
            write!(f, "{}", self.target)
        } else {
            write!(f, "{} ({})", self.target, self.addr.ip())
        }
    }
}

/// A session opened at `endpoint`, one of `tried_from` endpoints the chat had then.
pub struct Reached {
    pub opened: Opened,
    pub endpoint: Endpoint,
    pub tried_from: usize,
}

impl Servers {
    /// Parses each `HOST` argument (the forms of [`Target::parse`]); `default_port` for
    /// those that name none. Duplicates are kept once.
    pub fn parse<'a>(
        args: impl IntoIterator<Item = &'a str>,
        default_port: u16,
    ) -> Result<Servers, TargetError> {
        let mut targets: Vec<Target> = Vec::new();
        for arg in args {
            let target = Target::parse(arg, default_port)?;
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
        match targets.is_empty() {
            true => Err(TargetError(String::new())),
            false => Ok(Servers { targets }),
        }
    }

    /// The first name given: the chat's name for what the client keeps per server.
    pub fn first(&self) -> &Target {
        &self.targets[0]
    }

    /// Every address of every name, in the order given, and one error per name that
    /// did not resolve (a [`ClientError::Connect`], as a failed connection to it).
    pub async fn resolve(&self) -> (Vec<Endpoint>, Vec<ClientError>) {
        let mut endpoints = Vec::new();
        let mut failed = Vec::new();
        for target in &self.targets {
            match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
                Ok(addrs) => {
                    for addr in addrs {
                        let endpoint = Endpoint { target: target.clone(), addr };
                        if !endpoints.contains(&endpoint) {
                            endpoints.push(endpoint);
                        }
                    }
                }
                Err(source) => failed.push(ClientError::Connect { target: target.clone(), source }),
            }
        }
        (endpoints, failed)
    }

    /// Opens a session at the first endpoint that answers, trying them in [`rotation`]
    /// after `lost` (the endpoint whose session ended; `None` for the first connection).
    /// `open` opens one. An error that is no fault of one server (the certificate is not
    /// trusted, a local file cannot be read) ends the search at once; otherwise, when
    /// every endpoint failed, the error is the only one, or [`ClientError::NoServer`]
    /// with each.
    pub async fn open_any(
        &self,
        lost: Option<&Endpoint>,
        mut open: impl AsyncFnMut(&Endpoint) -> Result<Opened, ClientError>,
    ) -> Result<Reached, ClientError> {
        let (endpoints, mut errors) = self.resolve().await;
        let tried_from = endpoints.len();
        for endpoint in rotation(endpoints, lost) {
            match open(&endpoint).await {
                Ok(opened) => return Ok(Reached { opened, endpoint, tried_from }),
                Err(e) if !moves_on(&e) => return Err(e),
                Err(e) => errors.push(e),
            }
        }
        Err(match errors.len() {
            1 => errors.remove(0),
            _ => ClientError::NoServer(errors),
        })
    }
}

/// Whether the failure of one endpoint lets the client try the next: yes for what one
/// server's trouble explains (refused, lost, no answer, TLS broken), no for a trust
/// decision or a local error, which another server would meet the same way.
fn moves_on(error: &ClientError) -> bool {
    !matches!(
        error,
        ClientError::Trust(_)
            | ClientError::Identity(_)
            | ClientError::Io(_)
            | ClientError::BadTarget(_)
    )
}

/// The order to try `endpoints` in: after `lost`, those that follow it, then those
/// before it, and it last (a server that just went away is the least likely to answer).
/// Without `lost`, or when it is no longer among them, the order given.
pub fn rotation(mut endpoints: Vec<Endpoint>, lost: Option<&Endpoint>) -> Vec<Endpoint> {
    if let Some(at) = lost.and_then(|lost| endpoints.iter().position(|e| e == lost)) {
        endpoints.rotate_left(at + 1);
    }
    endpoints
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(arg: &str, addr: &str) -> Endpoint {
        Endpoint { target: Target::parse(arg, 5555).unwrap(), addr: addr.parse().unwrap() }
    }

    #[test]
    fn after_a_loss_the_others_come_first_and_the_lost_one_last() {
        let all = vec![
            endpoint("a", "192.0.2.1:5555"),
            endpoint("a", "192.0.2.2:5555"),
            endpoint("b:6000", "192.0.2.3:6000"),
        ];
        let order = |lost: Option<&Endpoint>| {
            rotation(all.clone(), lost).iter().map(|e| e.addr.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(order(None), ["192.0.2.1:5555", "192.0.2.2:5555", "192.0.2.3:6000"]);
        assert_eq!(order(Some(&all[0])), ["192.0.2.2:5555", "192.0.2.3:6000", "192.0.2.1:5555"]);
        assert_eq!(order(Some(&all[2])), ["192.0.2.1:5555", "192.0.2.2:5555", "192.0.2.3:6000"]);
        // Gone from DNS since: from the start.
        let gone = endpoint("a", "192.0.2.9:5555");
        assert_eq!(order(Some(&gone)), order(None));
    }

    #[test]
    fn names_parse_in_order_once_each() {
        let servers = Servers::parse(["a.example", "b.example:6000", "a.example:5555"], 5555);
        let targets = servers.unwrap().targets;
        let shown: Vec<String> = targets.iter().map(Target::to_string).collect();
        assert_eq!(shown, ["a.example:5555", "b.example:6000"]);
        let bad = Servers::parse(["a.example", "b:x"], 5555).unwrap_err();
        assert_eq!(bad, TargetError("b:x".into()));
    }

    #[test]
    fn an_endpoint_shows_the_address_a_name_resolved_to() {
        assert_eq!(
            endpoint("chat.example", "192.0.2.7:5555").to_string(),
            "chat.example:5555 (192.0.2.7)"
        );
        assert_eq!(endpoint("[::1]:7", "[::1]:7").to_string(), "[::1]:7");
    }

    #[tokio::test]
    async fn every_address_of_every_name_is_tried_until_one_answers() {
        let servers = Servers::parse(["127.0.0.1:1", "localhost:2", "127.0.0.1:3"], 5555).unwrap();
        let (endpoints, failed) = servers.resolve().await;
        assert!(failed.is_empty(), "{failed:?}");
        let ports: Vec<u16> = endpoints.iter().map(|e| e.addr.port()).collect();
        assert_eq!((ports[0], ports[ports.len() - 1]), (1, 3), "{endpoints:?}");
        assert!(endpoints.iter().any(|e| e.target.host == "localhost"));

        // Each refuses but the last: the session is the last one's, after every other.
        let mut tried = Vec::new();
        let reached = servers
            .open_any(None, async |e: &Endpoint| {
                tried.push(e.addr.port());
                match e.addr.port() {
                    3 => Err(ClientError::Trust("stop".into())),
                    _ => Err(ClientError::Lost(std::io::ErrorKind::ConnectionRefused.into())),
                }
            })
            .await;
        assert!(matches!(reached, Err(ClientError::Trust(_))));
        assert_eq!(tried.first(), Some(&1));
        assert_eq!(tried.last(), Some(&3));

        // All refuse: one error naming each.
        let failed = servers
            .open_any(Some(&endpoints[0]), async |e: &Endpoint| {
                Err(ClientError::Connect {
                    target: e.target.clone(),
                    source: std::io::ErrorKind::ConnectionRefused.into(),
                })
            })
            .await;
        match failed {
            Err(ClientError::NoServer(errors)) => {
                assert_eq!(errors.len(), endpoints.len());
                assert!(errors[0].to_string().contains("localhost:2"), "{}", errors[0]);
            }
            other => panic!("{:?}", other.err()),
        }
    }
}
