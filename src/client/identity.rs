//! The client's identity: a key pair and a self-signed certificate in one PEM file,
//! made on first use as ssh-keygen would be, and presented as a TLS client certificate
//! on every TLS connection. The server keeps no authority over it: the key is the
//! identity, and a nick registered to its fingerprint (`/register`) is given back to
//! whoever presents it again. Kept in the state directory (`identity.pem`, 0600) unless
//! `tchat join --identity FILE` names another; copying the file moves the identity.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::fingerprint::Fingerprint;

/// File name of the identity inside the state directory.
pub const IDENTITY_FILE: &str = "identity.pem";

/// The subject common name of a generated identity's certificate. The certificate's
/// names mean nothing (no authority checks them); its fingerprint is what counts.
const IDENTITY_CN: &str = "tchat user";

/// A certificate and its private key, read from one PEM file. Its `Debug` shows the
/// fingerprint only, so the key cannot reach a log through a `{:?}`.
pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub fingerprint: Fingerprint,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("fingerprint", &self.fingerprint.to_string()).finish()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
            fingerprint: self.fingerprint,
        }
    }
}

/// Why the identity could not be read or made; one line for the user.
#[derive(Debug)]
pub enum IdentityError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    /// The file holds no usable certificate or key.
    Pem {
        path: PathBuf,
        what: &'static str,
    },
    Generate(rcgen::Error),
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::Io { path, source } => {
                write!(f, "identity {}: {source}", path.display())
            }
            IdentityError::Pem { path, what } => write!(
                f,
                "identity {}: no usable {what} (the file holds a PEM certificate and its \
                 private key; move it away to make a new identity)",
                path.display()
            ),
            IdentityError::Generate(e) => write!(f, "making an identity: {e}"),
        }
    }
}

impl std::error::Error for IdentityError {}

/// The identity file to use: `given` (`--identity`), else `identity.pem` in the state
/// directory; `None` when there is no state directory (no home directory).
pub fn path(given: Option<&Path>) -> Option<PathBuf> {
    given.map(Path::to_owned).or_else(|| crate::state_dir::file(IDENTITY_FILE))
}

impl Identity {
    /// Reads the identity in `path`, making it first if the file does not exist.
    /// Returns it and whether it was made now. A file that exists but is not a usable
    /// identity is an error, never replaced: it may be the only copy of someone's key.
    pub fn load_or_create(path: &Path) -> Result<(Identity, bool), IdentityError> {
        let io_err = |source| IdentityError::Io { path: path.to_owned(), source };
        let created = match std::fs::read(path) {
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let pem = generate().map_err(IdentityError::Generate)?;
                crate::private_file::write(path, pem.as_bytes()).map_err(io_err)?;
                true
            }
            Err(e) => return Err(io_err(e)),
        };
        Ok((Identity::load(path)?, created))
    }

    /// Reads a PEM file holding a certificate (the first one is presented) and a
    /// private key, in either order: what `load_or_create` writes, or
    /// `cat cert.pem key.pem` of a pair made by openssl.
    pub fn load(path: &Path) -> Result<Identity, IdentityError> {
        let pem = std::fs::read(path)
            .map_err(|source| IdentityError::Io { path: path.to_owned(), source })?;
        let bad = |what| IdentityError::Pem { path: path.to_owned(), what };
        let cert = CertificateDer::pem_slice_iter(&pem)
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| bad("certificate"))?;
        let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| bad("private key"))?;
        let fingerprint = Fingerprint::of(&cert);
        Ok(Identity { cert, key, fingerprint })
    }
}

/// A new key pair (ECDSA P-256, rcgen's default) and a self-signed certificate for it,
/// as one PEM text: the key, then the certificate.
fn generate() -> Result<String, rcgen::Error> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, IDENTITY_CN);
    // Valid for as long as the key is used: nobody checks the dates, but a client
    // that does should not find it expired.
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(9999, 12, 31);
    let cert = params.self_signed(&key)?;
    Ok(format!("{}{}", key.serialize_pem(), cert.pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tchat-id-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn an_identity_is_made_once_private_and_then_read_back() {
        let dir = temp("once");
        let path = dir.join("sub").join(IDENTITY_FILE);
        let (first, created) = Identity::load_or_create(&path).unwrap();
        assert!(created);
        let (again, created) = Identity::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.fingerprint, again.fingerprint);
        assert!(!format!("{first:?}").contains("PRIVATE"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        let other = dir.join("other.pem");
        let (other, _) = Identity::load_or_create(&other).unwrap();
        assert_ne!(other.fingerprint, first.fingerprint);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_broken_identity_is_an_error_and_stays() {
        let dir = temp("broken");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(IDENTITY_FILE);
        std::fs::write(&path, "not pem").unwrap();
        let e = Identity::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("no usable certificate"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not pem");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
