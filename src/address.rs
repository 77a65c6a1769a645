//! [`Address`]: where a datagram came from or goes, or who a peer is — an IP address and
//! port, a Unix socket path, or an unnamed Unix socket. It wraps the kernel's `sockaddr`
//! as received, so reporting a sender costs no allocation.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use socket2::SockAddr;

/// A socket address of any family the reactor handles.
///
/// ```
/// use eventmux::Address;
/// let addr = Address::from("127.0.0.1:7007".parse::<std::net::SocketAddr>().unwrap());
/// assert_eq!(addr.as_inet().unwrap().port(), 7007);
/// assert_eq!(addr.to_string(), "127.0.0.1:7007");
/// let path = Address::unix("/tmp/x.sock").unwrap();
/// assert_eq!(path.as_path().unwrap().to_str(), Some("/tmp/x.sock"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Address(SockAddr);

impl Address {
    /// A Unix socket path (fails if it is longer than `sun_path` allows).
    pub fn unix(path: impl AsRef<Path>) -> std::io::Result<Address> {
        SockAddr::unix(path).map(Address)
    }

    /// The IP address and port, for IP sockets.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        self.0.as_socket()
    }

    /// The path, for Unix sockets bound to one.
    pub fn as_path(&self) -> Option<&Path> {
        self.0.as_pathname()
    }

    /// Whether this is a Unix socket bound to no name (e.g. an unbound datagram sender).
    pub fn is_unnamed(&self) -> bool {
        // Linux reports an unbound Unix sender with a zero-length address (no family at all).
        let family_only = std::mem::size_of::<libc::sa_family_t>();
        self.0.is_unnamed() || usize::try_from(self.0.len()).is_ok_and(|len| len <= family_only)
    }

    pub(crate) fn from_sockaddr(addr: SockAddr) -> Address {
        Address(addr)
    }

    pub(crate) fn as_sockaddr(&self) -> &SockAddr {
        &self.0
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Address {
        Address(addr.into())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(inet) = self.as_inet() {
            write!(f, "{inet}")
        } else if let Some(path) = self.as_path() {
            write!(f, "{}", path.display())
        } else if let Some(name) = self.0.as_abstract_namespace() {
            write!(f, "@{}", String::from_utf8_lossy(name))
        } else {
            f.write_str("(unnamed)")
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}
