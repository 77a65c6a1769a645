//! TLS on stream handles (feature `tls`), with rustls and its ring crypto provider.
//!
//! A listener with [`Options::tls`](crate::Options::tls) runs the server side of a TLS
//! handshake inside the reactor for every connection it accepts (no extra thread, no
//! blocking); [`Options::tls_client`](crate::Options::tls_client) does the client side for
//! `connect_with`. Framing, deadlines, bounds and callbacks work as over plain TCP:
//! `on_read` sees plaintext, `send` encrypts, a graceful close sends `close_notify`, and a
//! handshake must complete within [`Options::handshake_timeout`](crate::Options::handshake_timeout).
//! rustls's own buffers are limited to 64 KiB each way. A peer TLS refuses (garbage instead
//! of a ClientHello, a bad record, an alert) closes only its connection, with
//! [`Error::Tls`](crate::Error::Tls).
//!
//! The rustls this crate was built with is re-exported as [`rustls`], so configurations are
//! made with the same version.

pub use rustls;

use std::io;
use std::path::Path;
use std::sync::Arc;

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
    crate::handle::tls::server_config(certificates, key)
}
