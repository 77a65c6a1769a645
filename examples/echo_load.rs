//! Load generator for echo servers: N connections, each keeping D messages of B bytes in
//! flight (D = 1 is ping-pong), every echoed byte checked against what was sent.
//!
//!     cargo run --release --example echo_load -- 127.0.0.1:7007 --conns 50 --secs 5 --size 64 --depth 1
//!
//! Prints a summary, then the echoed messages per second alone on the last line (what
//! `scripts/compare.sh` reads). Exits with status 1 if a byte comes back wrong or out of
//! turn, a connection closes early, or no echo arrives for 10 s.
//!
//! One thread drives every connection with non-blocking sockets and edge-triggered epoll
//! (through mio), as redis-benchmark and wrk do, so the client spends its CPU on the
//! traffic and not on switching between 50 threads; pinned to its own core it can then
//! keep a single-threaded server busy. It is not built on eventmux, so it measures
//! eventmux and its peers alike. Options: `--conns N` (50), `--secs S` (5), `--size B` (64),
//! `--depth D` (1), `--warmup S` (0.5: traffic that is not counted).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// No echo at all for this long means the server stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Period of the byte pattern: a prime, so messages of any size land on ever different
/// parts of it.
const PATTERN_PERIOD: usize = 65_521;
/// How far apart in the pattern connections start, so that crossed streams show.
const CONNECTION_STRIDE: u64 = 7_919;

struct Config {
    addr: SocketAddr,
    conns: usize,
    secs: f64,
    size: usize,
    depth: usize,
    warmup: f64,
}

fn parse_args() -> Result<Config, String> {
    let mut config = Config {
        addr: "127.0.0.1:7007".parse().expect("a valid default"),
        conns: 50,
        secs: 5.0,
        size: 64,
        depth: 1,
        warmup: 0.5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, text: String| -> Result<f64, String> {
            text.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or(format!("{name} {text:?} is not a number"))
        };
        match arg.as_str() {
            "--conns" => config.conns = number("--conns", value("--conns")?)? as usize,
            "--secs" => config.secs = number("--secs", value("--secs")?)?,
            "--size" => config.size = number("--size", value("--size")?)? as usize,
            "--depth" => config.depth = number("--depth", value("--depth")?)? as usize,
            "--warmup" => config.warmup = number("--warmup", value("--warmup")?)?,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            addr => config.addr = addr.parse().map_err(|e| format!("address {addr:?}: {e}"))?,
        }
    }
    if config.conns == 0 || config.size == 0 || config.depth == 0 || config.secs <= 0.0 {
        return Err("--conns, --size, --depth and --secs must be positive".into());
    }
    Ok(config)
}

/// A pseudo-random byte sequence repeating every [`PATTERN_PERIOD`] bytes, stored with
/// enough of its start repeated at the end that any window up to `largest_io` bytes is one
/// slice. Byte `p` of connection `c`'s stream is byte `c * CONNECTION_STRIDE + p` of it.
struct Pattern(Vec<u8>);

impl Pattern {
    fn new(largest_io: usize) -> Pattern {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let period: Vec<u8> = (0..PATTERN_PERIOD)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        let bytes = period
            .iter()
            .cycle()
            .take(PATTERN_PERIOD + largest_io)
            .copied()
            .collect();
        Pattern(bytes)
    }

    fn window(&self, connection: usize, position: u64, len: usize) -> &[u8] {
        let start = connection as u64 * CONNECTION_STRIDE + position;
        let start = (start % PATTERN_PERIOD as u64) as usize;
        &self.0[start..start + len]
    }
}

/// One connection: how far its writes and its checked echo have come.
struct Connection {
    stream: TcpStream,
    /// Bytes written so far.
    written: u64,
    /// Bytes that should have been written by now: `depth` messages past the echo.
    target: u64,
    /// Bytes echoed back and checked so far.
    read: u64,
}

impl Connection {
    /// Writes towards `target` until done or the socket is full.
    fn flush(&mut self, index: usize, pattern: &Pattern, largest_io: usize) -> Result<(), String> {
        while self.written < self.target {
            let len = ((self.target - self.written) as usize).min(largest_io);
            match self.stream.write(pattern.window(index, self.written, len)) {
                Ok(n) => self.written += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("connection {index}: write: {e}")),
            }
        }
        Ok(())
    }

    /// Reads what has arrived, checks it, and sends a new message for every completed echo.
    fn on_ready(
        &mut self,
        index: usize,
        pattern: &Pattern,
        buffer: &mut [u8],
        config: &Config,
    ) -> Result<u64, String> {
        let largest_io = config.size * config.depth;
        let mut got = 0;
        loop {
            let n = match self.stream.read(buffer) {
                Ok(0) => {
                    return Err(format!(
                        "connection {index}: the server closed it after {} bytes",
                        self.read
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("connection {index}: read: {e}")),
            };
            if self.read + n as u64 > self.written {
                return Err(format!(
                    "connection {index}: {} bytes echoed, only {} sent",
                    self.read + n as u64,
                    self.written
                ));
            }
            let expected = pattern.window(index, self.read, n);
            if let Some(at) = buffer[..n].iter().zip(expected).position(|(a, b)| a != b) {
                return Err(format!(
                    "connection {index}: echoed byte {} is {:#04x}, {:#04x} was sent",
                    self.read + at as u64,
                    buffer[at],
                    expected[at]
                ));
            }
            self.read += n as u64;
            got += n as u64;
            // A short read drained the socket: everything in flight fits in the buffer, so
            // a full one is impossible, and epoll reports the next arrival as a new edge.
            if n < buffer.len() {
                break;
            }
        }
        let size = config.size as u64;
        self.target = (self.read / size + config.depth as u64) * size;
        self.flush(index, pattern, largest_io)?;
        Ok(got)
    }
}

fn run(config: &Config) -> Result<(), String> {
    let largest_io = config.size * config.depth;
    let pattern = Pattern::new(largest_io);
    let mut poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let mut connections = Vec::with_capacity(config.conns);
    for index in 0..config.conns {
        let stream = std::net::TcpStream::connect(config.addr)
            .map_err(|e| format!("connecting to {}: {e}", config.addr))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut stream = TcpStream::from_std(stream);
        poll.registry()
            .register(
                &mut stream,
                Token(index),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        connections.push(Connection {
            stream,
            written: 0,
            target: largest_io as u64,
            read: 0,
        });
    }
    for (index, connection) in connections.iter_mut().enumerate() {
        connection.flush(index, &pattern, largest_io)?;
    }

    // Larger than anything that can be in flight, so that every complete read is short.
    let mut buffer = vec![0; largest_io + 4096];
    let mut events = Events::with_capacity(1024);
    let began = Instant::now();
    let counting_from = began + Duration::from_secs_f64(config.warmup);
    let end = counting_from + Duration::from_secs_f64(config.secs);
    let mut counted_since: Option<(Instant, u64)> = None;
    let mut echoed: u64 = 0;
    let mut last_progress = began;
    loop {
        let now = Instant::now();
        if counted_since.is_none() && now >= counting_from {
            counted_since = Some((now, echoed));
        }
        if now >= end {
            break;
        }
        if now.duration_since(last_progress) > STALL_TIMEOUT {
            return Err(format!("no echo for {STALL_TIMEOUT:?}: the server stalled"));
        }
        let wake = if counted_since.is_none() {
            counting_from
        } else {
            end
        };
        let timeout = wake.saturating_duration_since(now).min(STALL_TIMEOUT);
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("epoll_wait: {e}")),
        }
        for event in &events {
            let index = event.token().0;
            let got = connections[index].on_ready(index, &pattern, &mut buffer, config)?;
            if got > 0 {
                echoed += got;
                last_progress = Instant::now();
            }
        }
    }
    let finished = Instant::now();
    let (started, echoed_before) = counted_since.expect("set before the end");
    let elapsed = finished.duration_since(started).as_secs_f64();
    let messages = (echoed - echoed_before) / config.size as u64;
    let per_connection: Vec<u64> = connections
        .iter()
        .map(|c| c.read / config.size as u64)
        .collect();
    let (least, most) = (
        per_connection.iter().min().copied().unwrap_or(0),
        per_connection.iter().max().copied().unwrap_or(0),
    );
    println!(
        "echo_load: {}, {} connections, {} B messages, depth {}, {:.1} s after a {:.1} s warm-up",
        config.addr, config.conns, config.size, config.depth, elapsed, config.warmup
    );
    println!(
        "echoed {messages} messages, every byte checked; per connection (warm-up included) \
         {least} to {most}"
    );
    if least == 0 {
        return Err("a connection got no echo at all".into());
    }
    println!("{:.0}", messages as f64 / elapsed);
    Ok(())
}

fn main() {
    let result = parse_args().and_then(|config| run(&config));
    if let Err(e) = result {
        eprintln!("echo_load: {e}");
        std::process::exit(1);
    }
}
