//! TLS (feature `tls`): the handshake inside the reactor, `on_connect` after it, plaintext
//! framing, `close_notify` both ways, and hostile peers (garbage for a ClientHello, a
//! handshake that never comes) closing only their own connection with a typed error. The
//! certificates are made here (rcgen); the clients are rustls over blocking sockets, and one
//! is eventmux's own client side. `.ci/run` runs it with `--features tls`.
#![cfg(feature = "tls")]

mod util;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use eventmux::framing::Framing;
use eventmux::tls::rustls;
use eventmux::{CloseReason, Context, Error, Handler, Incoming, Options, Reactor};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use util::{run_until, DEADLINE};

/// A self-signed certificate for "localhost" and its key.
fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(made.key_pair.serialize_der().into());
    (made.cert.der().clone(), key)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(
    cert: &CertificateDer<'static>,
    key: &PrivateKeyDer<'static>,
) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.clone_key())
        .unwrap();
    config.alpn_protocols = vec![b"echo".to_vec()];
    Arc::new(config)
}

fn client_config(cert: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"echo".to_vec()];
    Arc::new(config)
}

type Client = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn client(addr: SocketAddr, cert: &CertificateDer<'static>) -> Client {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(client_config(cert), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// A rustls client on its own thread sends `message` and gets it back, while the reactor runs.
fn assert_echoes(
    reactor: &mut Reactor,
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
    message: &[u8],
) {
    let (c, sent) = (cert.clone(), message.to_vec());
    let peer = thread::spawn(move || {
        let mut tls = client(addr, &c);
        tls.write_all(&sent).unwrap();
        let mut got = vec![0u8; sent.len()];
        tls.read_exact(&mut got).unwrap();
        got
    });
    run_until(reactor, "an echo over TLS", |_| peer.is_finished());
    assert_eq!(peer.join().unwrap(), message);
}

type Seen = Rc<RefCell<Vec<String>>>;

/// Echoes each record; logs the connect (with ALPN and SNI), errors and the close;
/// "quit" gets "bye" and a graceful close.
struct Echo {
    seen: Seen,
}

impl Handler for Echo {
    fn on_connect(&mut self, ctx: &mut Context<'_>) {
        let alpn = ctx
            .tls_alpn()
            .map(|a| String::from_utf8_lossy(&a).into_owned());
        self.seen.borrow_mut().push(format!(
            "connect:{alpn:?}:{:?}:{}",
            ctx.tls_server_name(),
            ctx.is_tls()
        ));
    }

    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        if data == b"quit" {
            let _ = ctx.send(b"bye\n");
            ctx.close();
            return;
        }
        let _ = ctx.send(data);
    }

    fn on_error(&mut self, _: &mut Context<'_>, error: &Error) {
        let kind = match error {
            Error::Tls(_) => "tls".to_string(),
            Error::Timeout(deadline) => format!("timeout:{deadline:?}"),
            other => other.to_string(),
        };
        self.seen.borrow_mut().push(format!("error:{kind}"));
    }

    fn on_close(&mut self, _: &mut Context<'_>, reason: CloseReason) {
        self.seen.borrow_mut().push(format!("close:{reason:?}"));
    }
}

struct Server(Seen);

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Echo {
            seen: self.0.clone(),
        }))
    }
}

fn serve(reactor: &mut Reactor, options: Options) -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let listener = reactor
        .listen_with("127.0.0.1:0", options, Server(seen.clone()))
        .unwrap();
    (reactor.local_addr(listener).unwrap(), seen)
}

fn entries(seen: &Seen) -> Vec<String> {
    seen.borrow().clone()
}

#[test]
fn echo_over_tls_with_on_connect_after_the_handshake_and_close_notify_both_ways() {
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let (addr, seen) = serve(&mut reactor, Options::new().tls(server_config(&cert, &key)));
    let c = cert.clone();
    let peer = thread::spawn(move || {
        let mut tls = client(addr, &c);
        let message = util::pattern(1 << 20); // many records each way
        let writer_message = message.clone();
        tls.write_all(&writer_message).unwrap();
        let mut got = vec![0u8; message.len()];
        tls.read_exact(&mut got).unwrap();
        assert!(got == message, "the echo differs");
        // Our close_notify: the server ends too, with its own.
        tls.conn.send_close_notify();
        tls.flush().unwrap();
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest)
            .expect("a clean close_notify, not a truncation");
        rest.len()
    });
    run_until(&mut reactor, "the client", |_| peer.is_finished());
    assert_eq!(peer.join().unwrap(), 0);
    run_until(&mut reactor, "the close", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    assert_eq!(
        entries(&seen),
        [
            "connect:Some(\"echo\"):Some(\"localhost\"):true",
            "close:PeerClosed"
        ]
    );
}

#[test]
fn framing_sees_plaintext_records_however_the_records_are_cut() {
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let options = Options::new()
        .tls(server_config(&cert, &key))
        .framing(Framing::lines());
    let (addr, seen) = serve(&mut reactor, options);
    let c = cert.clone();
    let peer = thread::spawn(move || {
        let mut tls = client(addr, &c);
        // One TLS record per byte: lines cross records everywhere.
        for &b in b"one\ntwo\nquit\n" {
            tls.write_all(&[b]).unwrap();
            tls.flush().unwrap();
        }
        let mut got = Vec::new();
        tls.read_to_end(&mut got).expect("close_notify after bye");
        got
    });
    run_until(&mut reactor, "the client", |_| peer.is_finished());
    assert_eq!(peer.join().unwrap(), b"onetwobye\n");
    run_until(&mut reactor, "the close", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    assert_eq!(entries(&seen).last().unwrap(), "close:Closed");
}

#[test]
fn garbage_instead_of_a_client_hello_closes_that_connection_only_with_a_tls_error() {
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let (addr, seen) = serve(&mut reactor, Options::new().tls(server_config(&cert, &key)));
    let mut garbage = TcpStream::connect(addr).unwrap();
    garbage.set_read_timeout(Some(DEADLINE)).unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    run_until(&mut reactor, "the refusal", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    assert_eq!(entries(&seen), ["error:tls", "close:Error"]);
    // Its alert, then the end of the stream.
    let mut answer = Vec::new();
    let _ = garbage.read_to_end(&mut answer);
    assert_eq!(answer.first(), Some(&21), "a TLS alert record");
    // The listener serves the next client as ever.
    assert_echoes(&mut reactor, addr, &cert, b"fine");
}

#[test]
fn a_handshake_that_never_comes_is_cut_off_at_its_deadline() {
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let options = Options::new()
        .tls(server_config(&cert, &key))
        .handshake_timeout(Some(Duration::from_millis(200)));
    let (addr, seen) = serve(&mut reactor, options);
    let _silent = TcpStream::connect(addr).unwrap();
    run_until(&mut reactor, "the deadline", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    assert_eq!(
        entries(&seen),
        ["error:timeout:Handshake", "close:Timeout(Handshake)"]
    );
}

/// Sends "ping" once connected (over TLS) and keeps what comes back.
struct Pinger {
    got: Rc<RefCell<Vec<u8>>>,
    connected: Rc<RefCell<bool>>,
}

impl Handler for Pinger {
    fn on_connect(&mut self, ctx: &mut Context<'_>) {
        *self.connected.borrow_mut() = ctx.is_tls();
        let _ = ctx.send(b"ping");
    }

    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.got.borrow_mut().extend_from_slice(data);
        if self.got.borrow().len() >= 4 {
            ctx.close();
        }
    }
}

#[test]
fn eventmux_s_client_side_talks_to_its_server_side() {
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let (addr, seen) = serve(&mut reactor, Options::new().tls(server_config(&cert, &key)));
    let got = Rc::new(RefCell::new(Vec::new()));
    let connected = Rc::new(RefCell::new(false));
    let name = ServerName::try_from("localhost").unwrap();
    let options = Options::new().tls_client(client_config(&cert), name);
    reactor
        .connect_with(
            addr,
            options,
            Pinger {
                got: got.clone(),
                connected: connected.clone(),
            },
        )
        .unwrap();
    run_until(&mut reactor, "the echo", |_| got.borrow().len() >= 4);
    assert_eq!(&*got.borrow(), b"ping");
    assert!(*connected.borrow(), "on_connect came after the handshake");
    run_until(&mut reactor, "the server side's close", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    assert_eq!(entries(&seen).last().unwrap(), "close:PeerClosed");
}

#[test]
fn pem_files_load_into_a_server_config_and_errors_name_the_file() {
    let (cert, key) = certificate();
    let dir = std::env::temp_dir().join(format!("eventmux-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = |label: &str, der: &[u8]| {
        use std::fmt::Write as _;
        let b64 = base64(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            let _ = writeln!(out, "{}", std::str::from_utf8(line).unwrap());
        }
        let _ = writeln!(out, "-----END {label}-----");
        out
    };
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, pem("CERTIFICATE", &cert)).unwrap();
    std::fs::write(&key_path, pem("PRIVATE KEY", key.secret_der())).unwrap();
    assert!(eventmux::tls::server_config(&cert_path, &key_path).is_ok());
    let error = eventmux::tls::server_config(&key_path, &key_path).unwrap_err();
    assert!(
        error.to_string().contains("key.pem"),
        "names the file: {error}"
    );
    let missing = dir.join("missing.pem");
    let error = eventmux::tls::server_config(&cert_path, &missing).unwrap_err();
    assert!(error.to_string().contains("missing.pem"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Standard base64 with padding (for writing PEM files in the test).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn a_truncated_client_hello_is_cut_off_at_the_handshake_deadline() {
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let options = Options::new()
        .tls(server_config(&cert, &key))
        .handshake_timeout(Some(Duration::from_millis(200)));
    let (addr, seen) = serve(&mut reactor, options);
    // A real ClientHello, cut after 20 bytes.
    let name = ServerName::try_from("localhost").unwrap();
    let mut hello = Vec::new();
    rustls::ClientConnection::new(client_config(&cert), name)
        .unwrap()
        .write_tls(&mut hello)
        .unwrap();
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(&hello[..20]).unwrap();
    run_until(&mut reactor, "the deadline", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    assert_eq!(
        entries(&seen),
        ["error:timeout:Handshake", "close:Timeout(Handshake)"]
    );
}

#[test]
fn a_record_that_does_not_decrypt_mid_stream_closes_with_a_tls_error() {
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let (addr, seen) = serve(&mut reactor, Options::new().tls(server_config(&cert, &key)));
    let c = cert.clone();
    let peer = thread::spawn(move || {
        let mut tls = client(addr, &c);
        tls.write_all(b"fine").unwrap();
        let mut got = [0u8; 4];
        tls.read_exact(&mut got).unwrap();
        // An application-data record of garbage, past rustls, on the socket itself.
        tls.sock
            .write_all(&[
                23, 3, 3, 0, 24, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                20, 21, 22, 23, 24,
            ])
            .unwrap();
        // The server's alert (encrypted, under TLS 1.3), then its end of the stream.
        let mut rest = Vec::new();
        tls.sock.read_to_end(&mut rest).is_ok()
    });
    run_until(&mut reactor, "the client", |_| peer.is_finished());
    assert!(peer.join().unwrap(), "the server closed the connection");
    run_until(&mut reactor, "the close", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    let seen = entries(&seen);
    assert_eq!(seen[1..], ["error:tls", "close:Error"], "{seen:?}");
}

// ----- real clients, unmodified ----------------------------------------------------------

#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../examples/http_hello.rs"]
mod http_hello;

/// The certificate as a PEM file, for command-line clients.
fn pem_file(cert: &CertificateDer<'static>, name: &str) -> std::path::PathBuf {
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in base64(cert).as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    let path = std::env::temp_dir().join(format!("eventmux-{name}-{}.pem", std::process::id()));
    std::fs::write(&path, pem).unwrap();
    path
}

/// `http_hello` over TLS on a reactor thread of its own; its address.
fn https_hello(cert: &CertificateDer<'static>, key: &PrivateKeyDer<'static>) -> SocketAddr {
    // HTTP/1.1 by ALPN, as curl offers it (beside h2, which this server does not speak).
    let mut config = (*server_config(cert, key)).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = Arc::new(config);
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut reactor = Reactor::new().unwrap();
        let options = http_hello::options(&http_hello::Config::default()).tls(config);
        let listener = http_hello::start_with(&mut reactor, "127.0.0.1:0", options).unwrap();
        tx.send(reactor.local_addr(listener).unwrap()).unwrap();
        reactor.run().unwrap();
    });
    rx.recv().unwrap()
}

fn installed(tool: &str) -> bool {
    let found = std::process::Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("{tool} is not installed: this test checks nothing (apt-get install {tool})");
    }
    found
}

#[test]
fn curl_gets_https_from_http_hello_twice_on_one_connection() {
    if !installed("curl") {
        return;
    }
    let (cert, key) = certificate();
    let addr = https_hello(&cert, &key);
    let ca = pem_file(&cert, "curl");
    let url = format!("https://localhost:{}/", addr.port());
    let out = std::process::Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(&ca)
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())])
        .args([&url, &url])
        .args(["-w", "%{http_code} %{num_connects}\n"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&ca);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl failed: {text}");
    // Each body, then the status and how many new connections the request needed.
    assert_eq!(
        text, "Hello, world!\n200 1\nHello, world!\n200 0\n",
        "{text}"
    );
}

#[test]
fn wrk_over_https_gets_only_successes_on_kept_alive_connections() {
    if !installed("wrk") {
        return;
    }
    let (cert, key) = certificate();
    let addr = https_hello(&cert, &key);
    let out = std::process::Command::new("wrk")
        .args(["-t1", "-c8", "-d1s"])
        .arg(format!("https://localhost:{}/", addr.port()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    // "N requests in 1.00s, ...": far more requests than the 8 connections.
    let requests: u64 = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in ")
                .map(|(n, _)| n.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no request count: {text}"));
    assert!(requests >= 100, "{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
    assert!(!text.contains("Socket errors"), "{text}");
}

#[test]
fn openssl_s_client_pipelines_two_requests_over_tls() {
    if !installed("openssl") {
        return;
    }
    let (cert, key) = certificate();
    let addr = https_hello(&cert, &key);
    let ca = pem_file(&cert, "s_client");
    let mut child = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-servername",
            "localhost",
        ])
        .args(["-connect", &addr.to_string(), "-CAfile"])
        .arg(&ca)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Two requests in one write: pipelined; the second closes the connection.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&ca);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert_eq!(text.matches("Hello, world!").count(), 2, "{text}");
}

#[test]
fn application_data_before_the_handshake_ends_closes_with_a_tls_error() {
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let (addr, seen) = serve(&mut reactor, Options::new().tls(server_config(&cert, &key)));
    let name = ServerName::try_from("localhost").unwrap();
    let mut hello = Vec::new();
    rustls::ClientConnection::new(client_config(&cert), name)
        .unwrap()
        .write_tls(&mut hello)
        .unwrap();
    // The ClientHello, then at once an application-data record, before any answer.
    hello.extend_from_slice(&[23, 3, 3, 0, 5, b'h', b'e', b'l', b'l', b'o']);
    let mut eager = TcpStream::connect(addr).unwrap();
    eager.write_all(&hello).unwrap();
    run_until(&mut reactor, "the refusal", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    assert_eq!(entries(&seen), ["error:tls", "close:Error"]);
}

#[test]
fn a_renegotiation_attempt_is_refused_and_ends_only_that_connection() {
    if !installed("openssl") {
        return;
    }
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let (addr, seen) = serve(&mut reactor, Options::new().tls(server_config(&cert, &key)));
    let ca = pem_file(&cert, "renegotiate");
    // TLS 1.2 (1.3 has no renegotiation); "R" on its own line makes s_client renegotiate.
    let mut child = std::process::Command::new("openssl")
        .args(["s_client", "-tls1_2", "-servername", "localhost"])
        .args(["-connect", &addr.to_string(), "-CAfile"])
        .arg(&ca)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Each step waits for the one before it, not for a time: s_client must have echoed
    // "before" (so the session is up and "R" arrives as a line of its own).
    let mut stdout = child.stdout.take().unwrap();
    let (echoed, before_seen) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let mut told = false;
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if !told && out.windows(7).any(|w| w == b"before\n") {
                told = echoed.send(()).is_ok();
            }
        }
        out
    });
    stdin.write_all(b"before\n").unwrap();
    run_until(&mut reactor, "the echo of before", |_| {
        before_seen.try_recv().is_ok()
    });
    stdin.write_all(b"R\n").unwrap();
    run_until(
        &mut reactor,
        "the end of the renegotiated connection",
        |_| entries(&seen).iter().any(|e| e.starts_with("close:")),
    );
    let _ = stdin.write_all(b"after\n");
    drop(stdin);
    let stdout = reader.join().unwrap();
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&ca);
    run_until(&mut reactor, "the close", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    // s_client reports on stderr, echoes on stdout.
    let text =
        String::from_utf8_lossy(&stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("RENEGOTIATING"), "{text}");
    assert!(
        text.contains("before"),
        "the echo before the attempt: {text}"
    );
    assert!(!text.contains("\nafter"), "no renegotiated session: {text}");
    // The server refused it (rustls's no_renegotiation warning), the client answered with a
    // fatal alert: that connection ends with a TLS error, and nothing else is touched.
    let seen = entries(&seen);
    assert!(seen[0].starts_with("connect:"), "{seen:?}");
    assert_eq!(seen[1..], ["error:tls", "close:Error"], "{seen:?}");
    // The listener serves the next client as ever.
    assert_echoes(&mut reactor, addr, &cert, b"next");
}

/// Pauses reading at its first record and resumes on a timer; counts on_sent.
struct Pausing {
    got: Rc<RefCell<Vec<u8>>>,
    sent: Rc<RefCell<usize>>,
}

impl Handler for Pausing {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let first = self.got.borrow().is_empty();
        self.got.borrow_mut().extend_from_slice(data);
        if first {
            ctx.pause_reading().unwrap();
            ctx.set_timer(Duration::from_millis(100)).unwrap();
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _: eventmux::TimerId) {
        ctx.resume_reading().unwrap();
    }

    fn on_sent(&mut self, _: &mut Context<'_>) {
        *self.sent.borrow_mut() += 1;
    }
}

struct PausingServer(Rc<RefCell<Vec<u8>>>, Rc<RefCell<usize>>);

impl Handler for PausingServer {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Pausing {
            got: self.0.clone(),
            sent: self.1.clone(),
        }))
    }
}

#[test]
fn plaintext_held_over_a_pause_is_delivered_on_resume_and_handshakes_are_no_on_sent() {
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let sent = Rc::new(RefCell::new(0));
    // Reads of 2 bytes: after the first, the rest of the record's plaintext waits in
    // rustls (not in the input buffer) through the pause.
    let options = Options::new().tls(server_config(&cert, &key)).read_size(2);
    let listener = reactor
        .listen_with(
            "127.0.0.1:0",
            options,
            PausingServer(got.clone(), sent.clone()),
        )
        .unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let c = cert.clone();
    let peer = thread::spawn(move || {
        let mut tls = client(addr, &c);
        tls.write_all(b"a\nb\nc\n").unwrap(); // one record, three lines
        tls.flush().unwrap();
        thread::sleep(Duration::from_millis(500));
        tls
    });
    run_until(&mut reactor, "every byte, after the resume", |_| {
        got.borrow().as_slice() == b"a\nb\nc\n"
    });
    assert_eq!(
        *sent.borrow(),
        0,
        "the handshake's own records are no on_sent"
    );
    drop(peer.join().unwrap());
}

/// Pauses reading after every record and resumes on a 1 ms timer, keeping all it got.
struct Stutter {
    got: Rc<RefCell<Vec<u8>>>,
}

impl Handler for Stutter {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.got.borrow_mut().extend_from_slice(data);
        ctx.pause_reading().unwrap();
        ctx.set_timer(Duration::from_millis(1)).unwrap();
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _: eventmux::TimerId) {
        ctx.resume_reading().unwrap();
    }
}

struct StutterServer(Rc<RefCell<Vec<u8>>>);

impl Handler for StutterServer {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Stutter {
            got: self.0.clone(),
        }))
    }
}

#[test]
fn a_pause_in_the_middle_of_a_read_of_many_records_loses_no_ciphertext() {
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let shared = got.clone();
    let listener = reactor
        .listen_with(
            "127.0.0.1:0",
            Options::new().tls(server_config(&cert, &key)),
            StutterServer(shared),
        )
        .unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    // 1 MiB in one write: many 16 KiB records, several to each 64 KiB read of ciphertext.
    let sent: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let (c, data) = (cert.clone(), sent.clone());
    let peer = thread::spawn(move || {
        let mut tls = client(addr, &c);
        tls.write_all(&data).unwrap();
        tls.flush().unwrap();
        thread::sleep(Duration::from_secs(2));
    });
    run_until(
        &mut reactor,
        "every byte, through a pause per record",
        |_| got.borrow().len() >= sent.len(),
    );
    assert!(
        got.borrow().as_slice() == sent.as_slice(),
        "bytes lost or reordered"
    );
    peer.join().unwrap();
}

/// Records the client side's errors and its close.
struct Rejected(Seen);

impl Handler for Rejected {
    fn on_connect(&mut self, _: &mut Context<'_>) {
        self.0.borrow_mut().push("connect".into());
    }

    fn on_error(&mut self, _: &mut Context<'_>, error: &Error) {
        self.0.borrow_mut().push(match error {
            Error::Tls(e) => format!("tls:{e}"),
            other => other.to_string(),
        });
    }

    fn on_close(&mut self, _: &mut Context<'_>, reason: CloseReason) {
        self.0.borrow_mut().push(format!("close:{reason:?}"));
    }
}

/// Connects to `url` with a `Rejected` client and runs until it closes; what it saw.
fn client_outcome(reactor: &mut Reactor, url: String, options: Options) -> Vec<String> {
    let seen = Seen::default();
    reactor
        .connect_with(url, options, Rejected(seen.clone()))
        .unwrap();
    run_until(reactor, "the client's close", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    entries(&seen)
}

#[test]
fn a_tls_url_connects_as_its_host_with_the_cas_of_a_pem_file() {
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let (addr, seen) = {
        let seen = Seen::default();
        let options = Options::new().tls(server_config(&cert, &key));
        let listener = reactor
            .listen_with("tls://localhost:0", options, Server(seen.clone()))
            .unwrap();
        (reactor.local_addr(listener).unwrap(), seen)
    };
    let ca = pem_file(&cert, "ca");
    let config = eventmux::tls::client_config(&ca).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let connected = Rc::new(RefCell::new(false));
    let url = format!("tls://localhost:{}", addr.port());
    reactor
        .connect_with(
            url.as_str(),
            Options::new().tls_client_config(config.clone()),
            Pinger {
                got: got.clone(),
                connected: connected.clone(),
            },
        )
        .unwrap();
    run_until(&mut reactor, "the echo over tls://", |_| {
        got.borrow().len() >= 4
    });
    assert_eq!(&*got.borrow(), b"ping");
    assert!(*connected.borrow());
    run_until(&mut reactor, "the server side's close", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    // The name sent and verified is the URL's host.
    assert!(
        entries(&seen)[0].contains("Some(\"localhost\")"),
        "{:?}",
        entries(&seen)
    );

    // The same CA, but a name the certificate is not for: refused by the client.
    let refused = client_outcome(
        &mut reactor,
        format!("tls://127.0.0.1:{}", addr.port()),
        Options::new().tls_client_config(config),
    );
    assert!(
        refused[0].starts_with("tls:") && refused[0].contains("certificate"),
        "{refused:?}"
    );
    assert_eq!(refused[1..], ["close:Error"]);
    let _ = std::fs::remove_file(ca);
}

#[test]
fn a_tls_url_without_a_configuration_verifies_the_server_against_the_system_store() {
    if let Err(e) = eventmux::tls::system_client_config() {
        eprintln!("no system trust store here ({e}): this test checks nothing");
        return;
    }
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let (addr, _) = serve(&mut reactor, Options::new().tls(server_config(&cert, &key)));
    // No configuration: the system's trust store.
    let seen = client_outcome(
        &mut reactor,
        format!("tls://localhost:{}", addr.port()),
        Options::new(),
    );
    // A self-signed certificate no system CA vouches for: no on_connect, a typed error.
    assert!(
        seen[0].starts_with("tls:") && seen[0].contains("UnknownIssuer"),
        "{seen:?}"
    );
    assert_eq!(seen[1..], ["close:Error"]);
}

#[test]
fn tls_endpoints_and_configurations_that_do_not_fit_are_refused_with_a_reason() {
    let (cert, key) = certificate();
    let mut reactor = Reactor::new().unwrap();
    let error = reactor
        .listen("tls://127.0.0.1:0", Server(Seen::default()))
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("Options::tls"), "{error}");
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let error = reactor
        .connect_with(
            server.local_addr().unwrap(),
            Options::new().tls(server_config(&cert, &key)),
            Rejected(Seen::default()),
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("server configuration"),
        "{error}"
    );

    let ca = pem_file(&cert, "client-config");
    assert!(eventmux::tls::client_config(&ca).is_ok());
    let missing = std::env::temp_dir().join("eventmux-no-such-ca.pem");
    let error = eventmux::tls::client_config(&missing).unwrap_err();
    assert!(
        error.to_string().contains("eventmux-no-such-ca.pem"),
        "{error}"
    );
    let not_pem = std::env::temp_dir().join(format!("eventmux-not-pem-{}.txt", std::process::id()));
    std::fs::write(&not_pem, "hello\n").unwrap();
    let error = eventmux::tls::client_config(&not_pem).unwrap_err();
    assert!(error.to_string().contains("no certificate"), "{error}");
    let _ = std::fs::remove_file(ca);
    let _ = std::fs::remove_file(not_pem);
}
