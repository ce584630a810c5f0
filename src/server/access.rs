//! Who may talk to the server, and over what: TLS or plain text on the one port
//! (`--plaintext`), the certificate served, and the server password.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::{AlertDescription, ServerConfig};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::hub::Hub;
use super::tls::Certs;
use super::transport::{Detected, Transport, detect};
use crate::auth::{Failures, PASSWORD_REQUIRED, PASSWORD_WRONG, Password};
use crate::cli::Plaintext;
use crate::event_log::EventLog;

/// How often the certificate files are checked for a renewal.
const CERT_POLL: Duration = Duration::from_secs(2);

/// The server's TLS side: the certificate store and the rustls configuration that asks
/// it at every handshake.
#[derive(Debug)]
pub struct Tls {
    pub certs: Arc<Certs>,
    config: Arc<ServerConfig>,
    /// Notified on SIGHUP: load the certificate files again now.
    pub reload: Notify,
}

impl Tls {
    pub fn new(certs: Certs) -> Tls {
        let certs = Arc::new(certs);
        let config = Certs::server_config(&certs);
        Tls { certs, config, reload: Notify::new() }
    }

    /// The rustls configuration new handshakes use.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// Reloads the certificate when its files change or on [`Tls::reload`], until the
    /// server stops. A failed reload keeps the old certificate and is logged.
    pub async fn watch(self: Arc<Self>, log: EventLog) {
        loop {
            let forced = tokio::select! {
                () = tokio::time::sleep(CERT_POLL) => false,
                () = self.reload.notified() => true,
            };
            if !forced && !self.certs.changed_on_disk() {
                continue;
            }
            let trigger = if forced { "signal" } else { "files changed" };
            match self.certs.reload() {
                Ok(fp) => log.info(
                    "TLS certificate reloaded",
                    json!({"fingerprint": fp.to_string(), "trigger": trigger}),
                ),
                Err(e) => log.error(
                    "TLS certificate reload failed; the old one stays in use",
                    json!({"error": e.to_string(), "trigger": trigger}),
                ),
            }
        }
    }
}

/// Who may connect and how; see `tchat serve --help`.
#[derive(Debug, Default)]
pub struct Access {
    pub plaintext: Plaintext,
    /// `None`: TLS is off and every connection is plain text.
    pub tls: Option<Arc<Tls>>,
    /// `None`: no password.
    pub password: Option<Password>,
    /// Wrong passwords per address, to slow down guessing.
    pub failures: Mutex<Failures>,
}

impl Plaintext {
    /// Whether a typed-line connection from `ip` is accepted. IPv4-mapped IPv6 loopback
    /// (`::ffff:127.0.0.1`, from a dual-stack listener) counts as loopback.
    pub fn permits(self, ip: IpAddr) -> bool {
        match self {
            Plaintext::Allow => true,
            Plaintext::Loopback => ip.to_canonical().is_loopback(),
            Plaintext::Deny => false,
        }
    }
}

impl Access {
    /// Checks the password a client's first line presented (`None`: the line was not
    /// `/pass`). Logs failures without the password; returns the refusal to send.
    pub fn check_password(
        &self,
        log: &EventLog,
        peer: SocketAddr,
        given: Option<&str>,
    ) -> Result<(), &'static str> {
        let (Some(password), Some(given)) = (&self.password, given) else {
            log.warn("Password missing", json!({"peer": peer.to_string()}));
            return Err(PASSWORD_REQUIRED);
        };
        let ip = peer.ip();
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(wait) = failures.check(ip, now) {
            log.warn(
                "Password attempt too soon",
                json!({"peer": peer.to_string(), "wait_ms": wait.as_millis() as u64}),
            );
            return Err(PASSWORD_THROTTLED);
        }
        if password.matches(given) {
            failures.succeed(ip);
            return Ok(());
        }
        let wait = failures.fail(ip, now);
        log.warn(
            "Wrong password",
            json!({"peer": peer.to_string(), "next_try_ms": wait.as_millis() as u64}),
        );
        Err(PASSWORD_WRONG)
    }
}

/// The refusal while an address must wait after wrong passwords.
const PASSWORD_THROTTLED: &str = "too many wrong passwords from your address; wait and try again";

/// The refusal of a plain connection that `--plaintext` does not allow.
pub const PLAINTEXT_REFUSED: &str = "this server only accepts TLS: use tchat join, or \
    openssl s_client -quiet -connect HOST:PORT, or ncat --ssl HOST PORT";

/// Why a connection did not get as far as the line reader.
pub enum Rejected {
    /// Tell the client this line, then close gracefully.
    Refuse(TcpStream, String),
    /// Close; already logged.
    Drop,
}

/// Logs a failed handshake: a client that refused the certificate is INFO, the normal
/// first step of trust on first use (`tchat join` aborts while its user has not yet
/// accepted the fingerprint, and after a change); anything else is WARN.
fn log_handshake_failure(log: &EventLog, peer: SocketAddr, e: &io::Error) {
    match certificate_refused(e) {
        Some(alert) => log.info(
            "TLS handshake aborted by the client",
            json!({"peer": peer.to_string(), "reason": "certificate not trusted yet",
                   "alert": format!("{alert:?}")}),
        ),
        None => log.warn(
            "TLS handshake failed",
            json!({"peer": peer.to_string(), "error": e.to_string()}),
        ),
    }
}

/// The alert, when the client ended the handshake because it does not trust our
/// certificate: `access_denied` is what rustls sends for the application's verifier
/// saying no (tchat join's known hosts), `unknown_ca`, `bad_certificate` and
/// `certificate_unknown` what clients checking against a CA store send for a
/// self-signed one (RFC 8446 §6.2).
pub fn certificate_refused(e: &io::Error) -> Option<AlertDescription> {
    let alert = match e.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => *alert,
        _ => return None,
    };
    matches!(
        alert,
        AlertDescription::AccessDenied
            | AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
    )
    .then_some(alert)
}

/// Tells TLS from plain text within the hello window ending at `hello_by`, runs the TLS
/// handshake, and applies `--plaintext`.
pub async fn establish(
    hub: &Hub,
    stream: TcpStream,
    peer: SocketAddr,
    hello_by: Instant,
) -> Result<Transport, Rejected> {
    let access = &hub.config.access;
    let detected = match &access.tls {
        Some(_) => detect(&stream, hello_by).await.unwrap_or(Detected::Plain),
        None => Detected::Plain,
    };
    match (detected, &access.tls) {
        (Detected::Tls, Some(tls)) => {
            Transport::accept_tls(stream, tls.config.clone()).await.map_err(|e| {
                log_handshake_failure(&hub.log, peer, &e);
                Rejected::Drop
            })
        }
        _ if access.plaintext.permits(peer.ip()) => Ok(Transport::plain(stream)),
        _ => {
            hub.log.warn(
                "Connection refused",
                json!({"peer": peer.to_string(), "reason": "plain text not allowed"}),
            );
            Err(Rejected::Refuse(stream, format!("!!! {PLAINTEXT_REFUSED}\n")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(a: AlertDescription) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, rustls::Error::AlertReceived(a))
    }

    #[test]
    fn a_client_refusing_the_certificate_is_told_from_a_failure() {
        let denied = alert(AlertDescription::AccessDenied);
        assert_eq!(certificate_refused(&denied), Some(AlertDescription::AccessDenied));
        assert!(certificate_refused(&alert(AlertDescription::UnknownCA)).is_some());
        assert!(certificate_refused(&alert(AlertDescription::HandshakeFailure)).is_none());
        let timed_out = io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out");
        assert!(certificate_refused(&timed_out).is_none());
        let garbage = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        assert!(certificate_refused(&garbage).is_none());
    }
}
