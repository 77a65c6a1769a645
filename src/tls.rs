//! TLS on stream handles (feature `tls`), with rustls and its ring crypto provider: the
//! configurations a server and a client need, from PEM files or the system's trust store.
//!
//! A listener with [`Options::tls`](crate::Options::tls) runs the server side of a TLS
//! handshake inside the reactor for every connection it accepts (no extra thread, no
//! blocking); a connect to a `tls://HOST:PORT` URL, or with
//! [`Options::tls_client`](crate::Options::tls_client), runs the client side. Framing,
//! deadlines, bounds and callbacks work as over plain TCP: `on_read` sees plaintext, `send`
//! encrypts, a graceful close sends `close_notify`, and a handshake must complete within
//! [`Options::handshake_timeout`](crate::Options::handshake_timeout). rustls's own buffers
//! are limited to 64 KiB each way. A peer TLS refuses (garbage instead of a ClientHello, a
//! bad record, an alert) closes only its connection, with [`Error::Tls`](crate::Error::Tls).
//!
//! The rustls this crate was built with is re-exported as [`rustls`], so configurations are
//! made with the same version.

pub use rustls;

use std::fmt::Display;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where Linux distributions keep their bundle of trusted CA certificates, in the order
/// tried (Debian and Ubuntu, Fedora and RHEL, openSUSE, Alpine).
const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A server configuration from a PEM certificate chain (leaf first) and a PEM private key
/// (PKCS#8, PKCS#1 or SEC1), with the ring provider, TLS 1.2 and 1.3, and no client
/// authentication. An error names the file at fault and what is wrong with it.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let config = eventmux::tls::server_config("cert.pem".as_ref(), "key.pem".as_ref())?;
/// # let _ = config;
/// # Ok(()) }
/// ```
pub fn server_config(certificates: &Path, key: &Path) -> io::Result<Arc<rustls::ServerConfig>> {
    let chain = certificates_in(certificates)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| named(key, "no private key (PKCS#8, PKCS#1 or SEC1 PEM)", &e))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| named(certificates, "the key does not fit the certificate", &e))?;
    Ok(Arc::new(config))
}

/// A client configuration that trusts the CA certificates of a PEM file (a self-signed
/// server certificate is its own CA), with the ring provider, TLS 1.2 and 1.3, and no client
/// certificate. An error names the file and what is wrong with it.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use eventmux::{Handler, Options, Reactor};
///
/// struct Client;
/// impl Handler for Client {}
///
/// let config = eventmux::tls::client_config("ca.pem".as_ref())?;
/// let mut reactor = Reactor::new()?;
/// reactor.connect_with("tls://localhost:7443", Options::new().tls_client_config(config), Client)?;
/// # Ok(()) }
/// ```
pub fn client_config(trusted: &Path) -> io::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates_in(trusted)? {
        roots
            .add(certificate)
            .map_err(|e| named(trusted, "a certificate that is no trust anchor", &e))?;
    }
    client_trusting(roots)
}

/// The client configuration a `tls://` connect uses when its options name none: the
/// system's trusted CAs, from the PEM bundle `SSL_CERT_FILE` names or else the first of the
/// distributions' usual places (`/etc/ssl/certs/ca-certificates.crt` on Debian). Certificates
/// in the bundle that rustls cannot use are skipped. Loaded once per process, on first use
/// (a blocking read of the file, on the thread that connects); an error says where it
/// looked.
pub fn system_client_config() -> io::Result<Arc<rustls::ClientConfig>> {
    static SYSTEM: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(config) = SYSTEM.get() {
        return Ok(config.clone());
    }
    let bundle = system_bundle()?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, skipped) = roots.add_parsable_certificates(certificates_in(&bundle)?);
    if added == 0 {
        return Err(named(
            &bundle,
            "no usable CA certificate",
            &format!("{skipped} skipped"),
        ));
    }
    log::debug!(
        "{}: {added} trusted CAs ({skipped} skipped)",
        bundle.display()
    );
    let config = client_trusting(roots)?;
    Ok(SYSTEM.get_or_init(|| config).clone())
}

/// The bundle of trusted CAs: `SSL_CERT_FILE`, or the first usual place that exists.
fn system_bundle() -> io::Result<PathBuf> {
    if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
        return Ok(PathBuf::from(file));
    }
    SYSTEM_BUNDLES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no trusted CA bundle: SSL_CERT_FILE is not set and none of {} exists \
                     (install ca-certificates, or give Options::tls_client_config)",
                    SYSTEM_BUNDLES.join(", ")
                ),
            )
        })
}

fn client_trusting(roots: rustls::RootCertStore) -> io::Result<Arc<rustls::ClientConfig>> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate of a PEM file; at least one.
fn certificates_in(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| named(path, "not a PEM certificate file", &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| named(path, "a certificate that does not parse", &e))?;
    if certificates.is_empty() {
        return Err(named(path, "no certificate", &"no CERTIFICATE block"));
    }
    Ok(certificates)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An error that names the file and what is wrong with it.
fn named(path: &Path, what: &str, e: &dyn Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}: {e}", path.display()),
    )
}
