//! TLS echo load: N connections, each on a thread of its own with a blocking rustls client
//! (ring provider), sending a B-byte message and waiting for its echo (depth 1), every
//! byte checked, for S seconds after a 0.5 s warm-up.
//!
//!     cargo run --release -p loadgen --bin tls_load -- ADDR CA_CERT --conns N --secs S --size B
//!
//! Prints a summary, then the echoed messages per second alone on the last line. Exits 1 if
//! an echo comes back wrong or a connection fails. `scripts/tls_bench.sh` drives it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

fn client_config(ca: &str) -> io::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(io::Error::other)? {
        roots
            .add(cert.map_err(io::Error::other)?)
            .map_err(io::Error::other)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One connection's ping-pong until `stop`; counts echoed messages into `counted` while
/// `counting` is set.
fn connection(
    addr: &str,
    config: Arc<rustls::ClientConfig>,
    size: usize,
    stop: &AtomicBool,
    counting: &AtomicBool,
    counted: &AtomicU64,
) -> io::Result<()> {
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut message: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut echo = vec![0u8; size];
    let mut round: u8 = 0;
    while !stop.load(Ordering::Relaxed) {
        message[0] = round;
        tls.write_all(&message)?;
        tls.read_exact(&mut echo)?;
        if echo != message {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an echo came back wrong",
            ));
        }
        round = round.wrapping_add(1);
        if counting.load(Ordering::Relaxed) {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: tls_load ADDR CA_CERT [--conns N] [--secs S] [--size B]";
    if args.len() < 2 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let (addr, ca) = (args[0].clone(), args[1].clone());
    let (mut conns, mut secs, mut size) = (50usize, 5f64, 64usize);
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().and_then(|v| v.parse::<f64>().ok());
        match (flag.as_str(), value) {
            ("--conns", Some(v)) if v >= 1.0 => conns = v as usize,
            ("--secs", Some(v)) if v > 0.0 => secs = v,
            ("--size", Some(v)) if v >= 1.0 => size = v as usize,
            _ => {
                eprintln!("tls_load: bad option {flag}\n{usage}");
                std::process::exit(2);
            }
        }
    }
    let config = match client_config(&ca) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tls_load: {ca}: {e}");
            std::process::exit(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let counted = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (addr, config) = (addr.clone(), config.clone());
            let (stop, counting, counted) = (stop.clone(), counting.clone(), counted.clone());
            std::thread::spawn(move || connection(&addr, config, size, &stop, &counting, &counted))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    counting.store(true, Ordering::Relaxed);
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    counting.store(false, Ordering::Relaxed);
    let elapsed = began.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut failed = false;
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("tls_load: {e}");
                failed = true;
            }
            Err(_) => {
                eprintln!("tls_load: a connection thread panicked");
                failed = true;
            }
        }
    }
    let messages = counted.load(Ordering::Relaxed);
    println!("tls_load: {addr}, {conns} connections, {size} B messages, depth 1, {elapsed:.1} s");
    println!("echoed {messages} messages, every byte checked");
    if failed {
        std::process::exit(1);
    }
    println!("{:.0}", messages as f64 / elapsed);
}
