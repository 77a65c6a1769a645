//! Endpoints: what `listen`, `connect` and `bind` take. A URL (`tcp://HOST:PORT`,
//! `tls://HOST:PORT`, `udp://HOST:PORT`, `unix:///path`, `unix_dgram:///path`), a bare
//! `HOST:PORT` (TCP), an IPv6 literal in brackets (`[::1]:7007`), a [`SocketAddr`], or a
//! [`Path`] (Unix stream).
//!
//! Host names are resolved with the system resolver, which blocks the calling thread; the
//! first address returned is used. Use an IP literal on a reactor thread that must not block.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// A parsed endpoint: the transport and where.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// TCP at an address.
    Tcp(SocketAddr),
    /// TLS over TCP at an address (feature `tls`), with the host name as written: the
    /// name a client sends (SNI) and verifies the server's certificate against. A client
    /// uses the configuration of [`Options::tls_client_config`](crate::Options), or the
    /// system's trust store; a listener needs a server configuration, `Options::tls`.
    Tls {
        /// Where.
        addr: SocketAddr,
        /// The host part of the URL (without brackets for an IPv6 literal).
        host: String,
    },
    /// UDP at an address.
    Udp(SocketAddr),
    /// A Unix stream socket at a path.
    Unix(PathBuf),
    /// A Unix datagram socket at a path.
    UnixDatagram(PathBuf),
}

/// What is wrong with an endpoint string; names the part at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is not one of `tcp`, `tls`, `udp`, `unix`, `unix_dgram`.
    Scheme(String),
    /// The host part is empty or does not resolve.
    Host(String),
    /// The port is missing or not a number from 0 to 65535.
    Port(String),
    /// A Unix URL without a path (`unix:///path`).
    Path(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Scheme(s) => {
                write!(
                    f,
                    "unknown scheme in {s:?} (tcp, tls, udp, unix, unix_dgram)"
                )
            }
            UrlError::Host(s) => write!(f, "bad host in {s:?}"),
            UrlError::Port(s) => write!(f, "bad or missing port in {s:?}"),
            UrlError::Path(s) => write!(f, "missing path in {s:?} (unix:///path)"),
        }
    }
}

impl std::error::Error for UrlError {}

impl From<UrlError> for io::Error {
    fn from(e: UrlError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// Resolves `host:port` (IPv6 in brackets), naming the part at fault.
fn inet(text: &str, whole: &str) -> Result<SocketAddr, UrlError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = host_and_port(text, whole)?;
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| UrlError::Host(whole.into()))
}

/// Splits `host:port`, taking the brackets off an IPv6 literal.
fn host_and_port<'a>(text: &'a str, whole: &str) -> Result<(&'a str, u16), UrlError> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| UrlError::Port(whole.into()))?;
    let port: u16 = port.parse().map_err(|_| UrlError::Port(whole.into()))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(['/', '[', ']']) {
        return Err(UrlError::Host(whole.into()));
    }
    Ok((host, port))
}

impl Endpoint {
    /// Parses a URL or a bare `HOST:PORT` (taken as TCP).
    ///
    /// ```
    /// use eventmux::Endpoint;
    /// assert_eq!(Endpoint::parse("udp://127.0.0.1:7008").unwrap(),
    ///            Endpoint::Udp("127.0.0.1:7008".parse().unwrap()));
    /// assert_eq!(Endpoint::parse("[::1]:7007").unwrap(), Endpoint::Tcp("[::1]:7007".parse().unwrap()));
    /// assert!(Endpoint::parse("tcp://127.0.0.1:http").is_err()); // names the port
    /// // The host name is kept for TLS: what the client verifies the certificate against.
    /// assert!(matches!(Endpoint::parse("tls://localhost:7443").unwrap(),
    ///                  Endpoint::Tls { host, .. } if host == "localhost"));
    /// ```
    pub fn parse(text: &str) -> Result<Endpoint, UrlError> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return inet(text, text).map(Endpoint::Tcp);
        };
        let path = || -> Result<PathBuf, UrlError> {
            // unix:///tmp/x.sock has rest "/tmp/x.sock"; unix://relative is taken as written.
            if rest.is_empty() || rest == "/" {
                Err(UrlError::Path(text.into()))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        match scheme {
            "tcp" => inet(rest, text).map(Endpoint::Tcp),
            "tls" => {
                let addr = inet(rest, text)?;
                let (host, _) = host_and_port(rest, text)?;
                Ok(Endpoint::Tls {
                    addr,
                    host: host.to_string(),
                })
            }
            "udp" => inet(rest, text).map(Endpoint::Udp),
            "unix" => path().map(Endpoint::Unix),
            "unix_dgram" => path().map(Endpoint::UnixDatagram),
            _ => Err(UrlError::Scheme(text.into())),
        }
    }
}

/// Anything `listen`, `connect` and `bind` accept as an endpoint.
pub trait IntoEndpoint {
    /// The endpoint, or why it is not one.
    fn into_endpoint(self) -> io::Result<Endpoint>;
}

impl IntoEndpoint for Endpoint {
    fn into_endpoint(self) -> io::Result<Endpoint> {
        Ok(self)
    }
}

impl IntoEndpoint for &str {
    fn into_endpoint(self) -> io::Result<Endpoint> {
        Ok(Endpoint::parse(self)?)
    }
}

impl IntoEndpoint for &String {
    fn into_endpoint(self) -> io::Result<Endpoint> {
        self.as_str().into_endpoint()
    }
}

impl IntoEndpoint for String {
    fn into_endpoint(self) -> io::Result<Endpoint> {
        self.as_str().into_endpoint()
    }
}

impl IntoEndpoint for SocketAddr {
    fn into_endpoint(self) -> io::Result<Endpoint> {
        Ok(Endpoint::Tcp(self))
    }
}

impl IntoEndpoint for &Path {
    fn into_endpoint(self) -> io::Result<Endpoint> {
        Ok(Endpoint::Unix(self.to_path_buf()))
    }
}

impl IntoEndpoint for PathBuf {
    fn into_endpoint(self) -> io::Result<Endpoint> {
        Ok(Endpoint::Unix(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_and_bare_forms_parse() {
        let v4: SocketAddr = "127.0.0.1:7007".parse().unwrap();
        let v6: SocketAddr = "[::1]:7007".parse().unwrap();
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:7007"),
            Ok(Endpoint::Tcp(v4))
        );
        assert_eq!(Endpoint::parse("127.0.0.1:7007"), Ok(Endpoint::Tcp(v4)));
        assert_eq!(Endpoint::parse("tcp://[::1]:7007"), Ok(Endpoint::Tcp(v6)));
        assert_eq!(
            Endpoint::parse("tls://[::1]:7007"),
            Ok(Endpoint::Tls {
                addr: v6,
                host: "::1".into()
            })
        );
        assert_eq!(
            Endpoint::parse("tls://127.0.0.1:7007"),
            Ok(Endpoint::Tls {
                addr: v4,
                host: "127.0.0.1".into()
            })
        );
        assert_eq!(Endpoint::parse("udp://[::1]:7007"), Ok(Endpoint::Udp(v6)));
        assert_eq!(
            Endpoint::parse("unix:///tmp/a.sock"),
            Ok(Endpoint::Unix("/tmp/a.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("unix_dgram:///tmp/b.sock"),
            Ok(Endpoint::UnixDatagram("/tmp/b.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://localhost:80").map(|e| matches!(e, Endpoint::Tcp(_))),
            Ok(true)
        );
    }

    #[test]
    fn errors_name_the_part_at_fault() {
        assert!(matches!(
            Endpoint::parse("sctp://1.2.3.4:5"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            Endpoint::parse("tcp://127.0.0.1"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            Endpoint::parse("tcp://127.0.0.1:99999"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            Endpoint::parse("tcp://:80"),
            Err(UrlError::Host(_))
        ));
        assert!(matches!(
            Endpoint::parse("udp://no.such.host.invalid:80"),
            Err(UrlError::Host(_))
        ));
        assert!(matches!(Endpoint::parse("unix://"), Err(UrlError::Path(_))));
        assert!(matches!(
            Endpoint::parse("tls://example.com"),
            Err(UrlError::Port(_))
        ));
        let message = io::Error::from(Endpoint::parse("tcp://1.2.3.4:x").unwrap_err()).to_string();
        assert!(message.contains("port"), "{message}");
    }
}
