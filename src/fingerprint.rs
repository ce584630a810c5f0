//! Certificate fingerprints: the SHA-256 of the certificate's DER bytes, written as ssh
//! writes key fingerprints (`SHA256:` and unpadded standard base64, 43 characters).
//!
//! One format everywhere: the server console, `tchat serve --fingerprint`, the client's
//! prompts and messages, `tchat join --fingerprint` and the known hosts file.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

/// The prefix that names the hash, as in `ssh-keygen -l`.
const PREFIX: &str = "SHA256:";

/// The SHA-256 digest of one DER-encoded certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD_NO_PAD.encode(self.0))
    }
}

/// Why a fingerprint given by the user was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFingerprint(String);

impl fmt::Display for BadFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a fingerprint: {:?} (expected SHA256: and 43 base64 characters)", self.0)
    }
}

impl std::error::Error for BadFingerprint {}

impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    /// Accepts what [`Fingerprint`]'s `Display` writes, with or without base64 padding
    /// (copied from a tool that pads).
    fn from_str(s: &str) -> Result<Fingerprint, BadFingerprint> {
        let bad = || BadFingerprint(s.to_owned());
        let b64 = s.trim().strip_prefix(PREFIX).ok_or_else(bad)?.trim_end_matches('=');
        let bytes = STANDARD_NO_PAD.decode(b64).map_err(|_| bad())?;
        Ok(Fingerprint(bytes.try_into().map_err(|_| bad())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_ssh_writes_it_and_read_back() {
        let fp = Fingerprint::of(b"");
        // sha256("") = e3b0c442…, in base64 without padding.
        assert_eq!(fp.to_string(), "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU");
        assert_eq!(fp.to_string().parse::<Fingerprint>(), Ok(fp));
        let padded = format!("{fp}=");
        assert_eq!(padded.parse::<Fingerprint>(), Ok(fp));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "SHA256:", "MD5:47DEQpj8HBSa", "SHA256:not base64!", "SHA256:AAAA"] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad}");
        }
    }
}
