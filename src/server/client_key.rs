//! Client certificates as keys, not as credentials from an authority: the server asks
//! every TLS client for a certificate, accepts any (self-signed, expired, from any
//! issuer) and checks only that the client holds its private key (the handshake
//! signature). A client without one connects as before. The certificate's fingerprint,
//! in the form server fingerprints take, then names the client's key, as an ssh public
//! key names a user: accounts bind nicks to it (`/register`).

use std::sync::Arc;

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};

/// A [`ClientCertVerifier`] that offers client authentication, does not require it,
/// and trusts no authority: any certificate passes, and the handshake signature made
/// with its key is verified with the provider's algorithms.
#[derive(Debug)]
pub struct AnyClientKey {
    provider: Arc<CryptoProvider>,
}

impl AnyClientKey {
    pub fn new(provider: Arc<CryptoProvider>) -> AnyClientKey {
        AnyClientKey { provider }
    }
}

impl ClientCertVerifier for AnyClientKey {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// None: an empty list tells the client any certificate will do (RFC 8446
    /// §4.2.4), so it sends the one it has.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        // No authority: the key is the identity. Its possession is proven by the
        // signature checked below.
        Ok(ClientCertVerified::assertion())
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
