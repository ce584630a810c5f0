//! The client's side of TLS: a certificate that verifies against the system's roots is
//! used as is; any other one is trusted only if its fingerprint is the one expected (from
//! `--fingerprint` or the known hosts file). Either way the server must prove it holds
//! the certificate's key: the handshake signature is always checked. The client presents
//! its own identity ([`super::identity`]) as a client certificate when it has one.

use std::io;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::identity::Identity;
use crate::fingerprint::Fingerprint;

/// How the server's certificate came to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trusted {
    /// It verifies against the system's roots for the name connected to.
    ByAuthority,
    /// Its fingerprint is the one expected.
    ByFingerprint(Fingerprint),
}

/// How a TLS connection attempt ended.
pub enum Outcome<S> {
    Connected(Box<TlsStream<S>>, Trusted),
    /// The certificate is neither verified nor the expected one; it has this fingerprint.
    Untrusted(Fingerprint),
    Failed(io::Error),
}

/// A TLS client set up for one server: the system's roots loaded, the identity parsed,
/// the name checked. Made before the TCP connection, since a server takes a connection
/// that says nothing for its hello window (300 ms) for a plain-text one, and loading a
/// few hundred roots on a busy machine can take that long.
pub struct Prepared {
    verifier: Arc<Verifier>,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

/// Sets up the handshake with `host`, trusting a certificate with fingerprint
/// `expected` as well as any the system's roots vouch for, and presenting `identity`
/// if the server asks for a client certificate. Errors: a host that is no server name,
/// an identity rustls cannot use.
pub fn prepare(
    host: &str,
    expected: Option<Fingerprint>,
    identity: Option<&Identity>,
) -> io::Result<Prepared> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Verifier {
        roots: system_roots(&provider),
        expected,
        seen: Mutex::new(None),
        provider,
    });
    let config = Arc::new(config_with(verifier.clone(), identity)?);
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    Ok(Prepared { verifier, config, name })
}

/// Runs the TLS handshake set up by [`prepare`] over `tcp` (a TCP stream, or one that
/// notes what it reads).
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    prepared: Prepared,
    tcp: S,
) -> Outcome<S> {
    let Prepared { verifier, config, name } = prepared;
    let result = TlsConnector::from(config).connect(name, tcp).await;
    let seen = *verifier.seen.lock().unwrap_or_else(|e| e.into_inner());
    match (result, seen) {
        (Ok(stream), Some(seen)) => {
            let how = match seen {
                Seen::Authority => Trusted::ByAuthority,
                Seen::Untrusted(fp) | Seen::Expected(fp) => Trusted::ByFingerprint(fp),
            };
            Outcome::Connected(Box::new(stream), how)
        }
        (Err(_), Some(Seen::Untrusted(fp))) => Outcome::Untrusted(fp),
        (Ok(_), None) => Outcome::Failed(io::Error::other("no certificate checked")),
        (Err(e), _) => Outcome::Failed(e),
    }
}

/// A client configuration that trusts exactly the certificate with `fingerprint`, and
/// no authority, as `--fingerprint` does for a server that has no real certificate; the
/// handshake signature is still verified. For programs that drive rustls themselves
/// (the benchmark's load generator).
pub fn pinned_config(fingerprint: Fingerprint) -> io::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Verifier {
        roots: None,
        expected: Some(fingerprint),
        seen: Mutex::new(None),
        provider,
    });
    config_with(verifier, None).map(Arc::new)
}

/// TLS 1.2 and 1.3 with the ring provider, certificates checked by `verifier`, and
/// `identity` as the client certificate.
fn config_with(verifier: Arc<Verifier>, identity: Option<&Identity>) -> io::Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some(id) => builder
            .with_client_auth_cert(vec![id.cert.clone()], id.key.clone_key())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("identity: {e}"))),
    }
}

/// The system's trusted roots as a verifier; `None` when there are none to load (a
/// minimal container): then only fingerprints are trusted.
fn system_roots(provider: &Arc<CryptoProvider>) -> Option<Arc<WebPkiServerVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return None;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().ok()
}

/// What the verifier made of the certificate.
#[derive(Debug, Clone, Copy)]
enum Seen {
    Authority,
    Expected(Fingerprint),
    Untrusted(Fingerprint),
}

#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<WebPkiServerVerifier>>,
    expected: Option<Fingerprint>,
    seen: Mutex<Option<Seen>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let fp = Fingerprint::of(end_entity);
        let by_authority = self.roots.as_ref().is_some_and(|roots| {
            roots.verify_server_cert(end_entity, intermediates, server_name, ocsp, now).is_ok()
        });
        let seen = match () {
            _ if by_authority => Seen::Authority,
            _ if self.expected == Some(fp) => Seen::Expected(fp),
            _ => Seen::Untrusted(fp),
        };
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(seen);
        match seen {
            Seen::Untrusted(_) => {
                Err(Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
