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

/// Why a fingerprint given by the user was not understood: the text given and what is
/// wrong with it, so that a typo is told as one (a fingerprint of the right length whose
/// last character is mistyped is not "the wrong length").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFingerprint {
    given: String,
    why: Flaw,
}

/// What is wrong with a fingerprint given by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// It does not start with `SHA256:`.
    Prefix,
    /// It has this many base64 characters after the prefix, not 43.
    Length(usize),
    /// The character at this position (1 for the first after the prefix) is no base64.
    NotBase64(usize, char),
    /// The last character is base64 but cannot end a SHA-256 digest: its low bits
    /// would have to be zero (RFC 4648 §3.5, canonical encoding).
    Last(char),
}

/// Characters in a fingerprint after [`PREFIX`], without padding: 32 bytes in base64.
const BASE64_CHARS: usize = 43;

impl fmt::Display for BadFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a fingerprint: {:?}: ", self.given)?;
        match self.why {
            Flaw::Prefix => write!(f, "it must start with {PREFIX}")?,
            Flaw::Length(n) => {
                write!(f, "{n} base64 characters after {PREFIX}, where a fingerprint has 43")?
            }
            Flaw::NotBase64(at, c) => {
                write!(f, "character {at} after {PREFIX}, {c:?}, is not base64")?
            }
            Flaw::Last(c) => write!(f, "its last character, {c:?}, cannot end one (a typo?)")?,
        }
        write!(f, "; copy it again from the server's operator (tchat serve --fingerprint)")
    }
}

impl std::error::Error for BadFingerprint {}

impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    /// Accepts what [`Fingerprint`]'s `Display` writes, with or without base64 padding
    /// (copied from a tool that pads).
    fn from_str(s: &str) -> Result<Fingerprint, BadFingerprint> {
        let bad = |why| BadFingerprint { given: s.to_owned(), why };
        let b64 = s.trim().strip_prefix(PREFIX).ok_or(bad(Flaw::Prefix))?.trim_end_matches('=');
        let not_base64 = |(i, c): (usize, char)| {
            let base64 = c.is_ascii_alphanumeric() || c == '+' || c == '/';
            (!base64).then_some(Flaw::NotBase64(i + 1, c))
        };
        if let Some(flaw) = b64.chars().enumerate().find_map(not_base64) {
            return Err(bad(flaw));
        }
        if b64.len() != BASE64_CHARS {
            return Err(bad(Flaw::Length(b64.chars().count())));
        }
        let last = b64.chars().last().unwrap_or_default();
        let bytes = STANDARD_NO_PAD.decode(b64).map_err(|_| bad(Flaw::Last(last)))?;
        Ok(Fingerprint(bytes.try_into().map_err(|_| bad(Flaw::Length(BASE64_CHARS)))?))
    }
}

/// Written as its text form, so a file that keeps fingerprints (the accounts file)
/// reads as the console and `/keys` show them.
impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fingerprint, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
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

    /// Each flaw is named for what it is, and the message says where to get it right.
    #[test]
    fn a_typo_is_told_for_what_it_is() {
        let good = Fingerprint::of(b"x").to_string();
        let why = |s: &str| s.parse::<Fingerprint>().unwrap_err().to_string();
        // The last character carries 2 bits of the digest and 4 zero bits: most
        // characters cannot stand there, though the length is right.
        let last = good.chars().last().unwrap();
        // Only A, Q, g and w can end one ('B' is 1: a low bit set).
        let typo = format!("{}{}", &good[..good.len() - 1], if last == 'B' { 'C' } else { 'B' });
        let said = why(&typo);
        assert!(said.contains("its last character") && said.contains("a typo?"), "{said}");
        assert!(said.ends_with("(tchat serve --fingerprint)"), "{said}");
        assert!(!said.contains("43"), "{said}");
        assert!(why(&good[..good.len() - 2]).contains("41 base64 characters"), "{}", why(&good));
        assert!(why(&good.replace("SHA256:", "sha256:")).contains("must start with SHA256:"));
        let bang = format!("{}!{}", &good[..10], &good[11..]);
        assert!(
            why(&bang).contains("character 4 after SHA256:, '!', is not base64"),
            "{}",
            why(&bang)
        );
    }
}
