//! The server's TLS identity: a certificate and key generated once and kept in the state
//! directory, or a real chain and key given with `--tls-cert/--tls-key`; reloaded when the
//! files change or on SIGHUP, so renewed certificates are served without a restart.
//!
//! New handshakes ask [`Certs`] (a rustls [`ResolvesServerCert`]) for the current
//! certificate, so a reload never touches connections already established.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::client_key::AnyClientKey;
use crate::fingerprint::Fingerprint;

/// File names of the generated identity inside the state directory.
const GENERATED_CERT: &str = "tls-cert.pem";
const GENERATED_KEY: &str = "tls-key.pem";

/// Where the certificate and key come from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// Generated on first start and kept in this directory (0700, files 0600).
    Generated(PathBuf),
    /// A PEM chain (leaf first) and a PEM private key, e.g. from Let's Encrypt.
    Files { cert: PathBuf, key: PathBuf },
}

impl CertSource {
    fn paths(&self) -> (PathBuf, PathBuf) {
        match self {
            CertSource::Generated(dir) => (dir.join(GENERATED_CERT), dir.join(GENERATED_KEY)),
            CertSource::Files { cert, key } => (cert.clone(), key.clone()),
        }
    }
}

/// Why the identity could not be loaded or created; one line for the operator.
#[derive(Debug)]
pub enum TlsError {
    Io { path: PathBuf, source: io::Error },
    Pem { path: PathBuf, what: &'static str, detail: String },
    Rustls(rustls::Error),
    Generate(rcgen::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            TlsError::Pem { path, what, detail } => {
                write!(f, "{}: no usable {what} ({detail})", path.display())
            }
            TlsError::Rustls(e) => write!(f, "TLS certificate and key: {e}"),
            TlsError::Generate(e) => write!(f, "generating a TLS certificate: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// The certificate in use, and where to reload it from.
pub struct Certs {
    source: CertSource,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
    /// The files' modification times at the last load, to notice a renewal by polling.
    stamp: Mutex<Option<(SystemTime, SystemTime)>>,
}

#[derive(Clone)]
struct Loaded {
    key: Arc<CertifiedKey>,
    fingerprint: Fingerprint,
}

impl fmt::Debug for Certs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certs").field("fingerprint", &self.fingerprint().to_string()).finish()
    }
}

impl Certs {
    /// Loads the identity, generating it first if it is the generated kind and missing.
    pub fn open(source: CertSource) -> Result<Certs, TlsError> {
        if let CertSource::Generated(dir) = &source {
            ensure_generated(dir)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (loaded, stamp) = load(&source, &provider)?;
        Ok(Certs { source, provider, current: RwLock::new(loaded), stamp: Mutex::new(stamp) })
    }

    /// The leaf certificate's fingerprint, as clients see it.
    pub fn fingerprint(&self) -> Fingerprint {
        self.current.read().unwrap_or_else(|e| e.into_inner()).fingerprint
    }

    /// Whether the files changed since the last load (by modification time).
    pub fn changed_on_disk(&self) -> bool {
        let (cert, key) = self.source.paths();
        let now = mtimes(&cert, &key);
        now.is_some() && now != *self.stamp.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the files again. On failure the current certificate stays in use. Returns
    /// the new fingerprint.
    pub fn reload(&self) -> Result<Fingerprint, TlsError> {
        let (loaded, stamp) = load(&self.source, &self.provider)?;
        let fingerprint = loaded.fingerprint;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
        Ok(fingerprint)
    }

    /// A rustls server configuration that asks `certs` at every handshake, and asks
    /// clients for a certificate, any (`client_key::AnyClientKey`).
    pub fn server_config(certs: &Arc<Certs>) -> Arc<ServerConfig> {
        let config = ServerConfig::builder_with_provider(certs.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .with_client_cert_verifier(Arc::new(AnyClientKey::new(certs.provider.clone())))
            .with_cert_resolver(certs.clone());
        Arc::new(config)
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).key.clone())
    }
}

fn mtimes(cert: &Path, key: &Path) -> Option<(SystemTime, SystemTime)> {
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((mtime(cert)?, mtime(key)?))
}

fn load(
    source: &CertSource,
    provider: &CryptoProvider,
) -> Result<(Loaded, Option<(SystemTime, SystemTime)>), TlsError> {
    let (cert_path, key_path) = source.paths();
    // Taken before reading, so a write during the load is noticed at the next poll.
    let stamp = mtimes(&cert_path, &key_path);
    let cert_pem = read(&cert_path)?;
    let key_pem = read(&key_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&cert_path, "certificate", e))?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cert_path,
            what: "certificate",
            detail: "no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| pem_error(&key_path, "private key", e))?;
    let fingerprint = Fingerprint::of(&chain[0]);
    let key = CertifiedKey::from_der(chain, key, provider).map_err(TlsError::Rustls)?;
    Ok((Loaded { key: Arc::new(key), fingerprint }, stamp))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Io { path: path.to_owned(), source })
}

fn pem_error(path: &Path, what: &'static str, e: rustls::pki_types::pem::Error) -> TlsError {
    TlsError::Pem { path: path.to_owned(), what, detail: format!("{e:?}") }
}

/// Creates the state directory and a self-signed identity in it, unless both files are
/// already there.
fn ensure_generated(dir: &Path) -> Result<(), TlsError> {
    let (cert_path, key_path) = (dir.join(GENERATED_CERT), dir.join(GENERATED_KEY));
    if cert_path.exists() && key_path.exists() {
        return Ok(());
    }
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Io { path, source }
    };
    crate::private_file::create_dir(dir).map_err(io_err(dir))?;
    let key = rcgen::KeyPair::generate().map_err(TlsError::Generate)?;
    let host = host_name();
    let cert = generated_params(host.as_deref()).self_signed(&key).map_err(TlsError::Generate)?;
    // The key first: a certificate without its key would be loaded and fail.
    crate::private_file::write(&key_path, key.serialize_pem().as_bytes())
        .map_err(io_err(&key_path))?;
    crate::private_file::write(&cert_path, cert.pem().as_bytes()).map_err(io_err(&cert_path))
}

/// The generated certificate's subject common name, what `openssl s_client` and
/// browsers show for it (rcgen's default is `rcgen self signed cert`).
const GENERATED_CN: &str = "tchat";

/// The generated certificate's fields: subject `CN = tchat`, and as DNS names the
/// host's name (what users most likely type to connect) and `localhost`. The names
/// matter little, since clients that cannot verify them (tchat join, with its known
/// hosts) pin the fingerprint, but a client that checks them then has a chance. A host
/// name that is no valid DNS name (not ASCII) is left out.
fn generated_params(host: Option<&str>) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, GENERATED_CN);
    let mut names: Vec<&str> = host.into_iter().filter(|h| *h != "localhost").collect();
    names.push("localhost");
    params.subject_alt_names = names
        .into_iter()
        .filter_map(|name| Some(rcgen::SanType::DnsName(name.try_into().ok()?)))
        .collect();
    params
}

/// This host's name (gethostname(2)), if it has a usable one.
fn host_name() -> Option<String> {
    #[cfg(unix)]
    {
        let name = nix::unistd::gethostname().ok()?.into_string().ok()?;
        Some(name).filter(|n| !n.is_empty() && n != "(none)")
    }
    #[cfg(not(unix))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tchat-tls-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_generated_identity_is_private_and_stable() {
        let dir = temp_dir("stable");
        let first = Certs::open(CertSource::Generated(dir.clone())).unwrap().fingerprint();
        let again = Certs::open(CertSource::Generated(dir.clone())).unwrap().fingerprint();
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join(GENERATED_KEY)), 0o600);
            assert_eq!(mode(&dir.join(GENERATED_CERT)), 0o600);
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_generated_certificate_names_tchat_and_the_host() {
        let names = |params: &rcgen::CertificateParams| -> Vec<String> {
            (params.subject_alt_names.iter())
                .map(|san| match san {
                    rcgen::SanType::DnsName(name) => name.as_str().to_owned(),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let params = generated_params(Some("chat-box"));
        let cn = params.distinguished_name.get(&rcgen::DnType::CommonName);
        assert_eq!(cn, Some(&rcgen::DnValue::Utf8String("tchat".into())));
        assert_eq!(names(&params), ["chat-box", "localhost"]);
        assert_eq!(names(&generated_params(Some("localhost"))), ["localhost"]);
        assert_eq!(names(&generated_params(Some("café"))), ["localhost"]);
        assert_eq!(names(&generated_params(None)), ["localhost"]);
    }

    #[test]
    fn a_broken_file_is_a_clear_error_and_keeps_the_old_certificate() {
        let dir = temp_dir("broken");
        let certs = Certs::open(CertSource::Generated(dir.clone())).unwrap();
        let before = certs.fingerprint();
        fs::write(dir.join(GENERATED_CERT), "not pem").unwrap();
        let err = certs.reload().unwrap_err().to_string();
        assert!(err.contains("tls-cert.pem: no usable certificate"), "{err}");
        assert_eq!(certs.fingerprint(), before);
        fs::remove_dir_all(&dir).unwrap();
    }
}
