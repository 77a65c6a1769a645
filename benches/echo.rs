//! Echo benchmark: eventmux on both backends against a single-threaded tokio echo server,
//! driven by a load generator of its own, side by side in one run.
//!
//! # What is measured
//!
//! Three echo servers run at once, each on `127.0.0.1:0` in a thread of its own:
//!
//! - `eventmux-epoll`: a `Reactor` on `Backend::Epoll` (the default);
//! - `eventmux-polling`: the same handlers on `Backend::Polling` (the `polling` crate);
//! - `tokio-current`: tokio on a `current_thread` runtime, single-threaded like the reactor,
//!   one task per connection reading into a 64 KiB buffer and `write_all`-ing it back.
//!
//! The eventmux handler sends back what it reads and, like `write_all` does for tokio,
//! applies backpressure: it pauses reading while more than 1 MiB waits to be written.
//!
//! The load generator uses std threads, blocking sockets and `TCP_NODELAY`. Every connection
//! sends its own pseudo-random byte sequence and every echoed byte is compared with what was
//! sent, so lost, duplicated, reordered or crossed bytes panic the run; a connection that
//! gets no echo for 10 s panics too (a stalled server). Scenarios:
//!
//! - (a) 1 connection, ping-pong of 64 B messages (latency bound);
//! - (b) 50 connections, ping-pong of 64 B messages;
//! - (c) 50 connections, each keeping 16 messages of 64 B in flight (pipelined);
//! - (d) 8 connections, each streaming 16 KiB chunks from one thread and reading the echo
//!   back from another (here a "message" is a 16 KiB chunk).
//!
//! The result is echoed messages per second. Each scenario runs every server in turn for
//! several rounds (the order rotates every round); one table per scenario shows, per server:
//!
//! - `msgs/s`: the median round; `MiB/s`: the bytes echoed per second that makes;
//! - `srv CPU`: how busy the server thread was (share of one CPU, from its thread CPU
//!   clock); `ns/msg`: server CPU time per echoed message, the efficiency figure that still
//!   means something when the load generator, not the server, is the bottleneck;
//! - `cli CPU`: CPU used by the rest of this process, the load threads (100% on a pinned
//!   run: the load generator is saturated);
//! - `other`: CPU used by other processes during the worst round, from `/proc/stat`. A run
//!   during which others used more than 10% of a CPU is repeated (at most twice), since a
//!   shared 2-core machine otherwise gives noise, not numbers;
//! - `fair`: the slowest connection's byte count over the fastest one's in the worst round
//!   (1.0 = even);
//! - every round's msgs/s, in the order run.
//!
//! Below each table: eventmux-epoll / tokio and eventmux-epoll / eventmux-polling, as ratios
//! of msgs/s (above 1: eventmux-epoll is faster) and of server CPU per message (below 1:
//! eventmux-epoll is cheaper). At the end, each server's bookkeeping (connections accepted
//! and closed, errors, abnormal closes) is printed.
//!
//! Where the affinity mask allows, server threads are pinned to the first allowed CPU and load
//! threads to the second (`sched_setaffinity`), so that each server has a core to itself;
//! otherwise a note is printed and the run goes on unpinned.
//!
//! # Running
//!
//! ```text
//! cargo bench --bench echo                                      # about 70 s
//! ECHO_BENCH_SECS=0.3 ECHO_BENCH_ROUNDS=1 cargo bench --bench echo   # a quick look
//! ECHO_BENCH_ONLY=bc cargo bench --bench echo                   # scenarios (b) and (c) only
//! ```
//!
//! | variable               | default | meaning                                           |
//! |------------------------|---------|---------------------------------------------------|
//! | `ECHO_BENCH_SECS`      | 1.5     | seconds per measured run (one server, one round)  |
//! | `ECHO_BENCH_ROUNDS`    | 3       | rounds per scenario; the median is reported       |
//! | `ECHO_BENCH_CONNS`     | 50      | connections in scenarios (b) and (c)              |
//! | `ECHO_BENCH_MSG_SIZE`  | 64      | message size in bytes in scenarios (a) to (c)     |
//! | `ECHO_BENCH_ONLY`      | abcd    | letters of the scenarios to run                   |
//! | `ECHO_BENCH_NO_PIN`    | unset   | set (to anything) to leave threads unpinned       |
//!
//! Run without the `--bench` argument that `cargo bench` passes (for instance by
//! `cargo test --benches`), it makes one 0.1 s round per scenario: a smoke test.

mod common;

use common::{env_or, median, pin_to, system_busy_time, thousands};
use std::fmt::Display;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use eventmux::{Backend, CloseReason, Context, Error, Handler, Incoming, Reactor, TimerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// Messages each connection keeps in flight in the pipelined scenario.
const PIPELINE_DEPTH: usize = 16;
/// Connections in the streaming scenario.
const STREAM_CONNECTIONS: usize = 8;
/// Bytes per write in the streaming scenario.
const STREAM_CHUNK: usize = 16 * 1024;
/// Bytes per read of the streaming scenario's reader threads.
const STREAM_READ_BUFFER: usize = 64 * 1024;
/// Read buffer of each tokio connection task (eventmux's default read size is the same).
const TOKIO_READ_BUFFER: usize = 64 * 1024;
/// The eventmux echo handler stops reading while more than this waits to be written.
const PAUSE_READING_ABOVE: usize = 1024 * 1024;
/// How often the eventmux server checks whether it was asked to stop.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// A client read or write that waits longer than this means the server stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Load run on every server before measuring, to warm caches and the allocator.
const WARM_UP_TIME: Duration = Duration::from_millis(300);
/// Above this share of a CPU used by other processes during a run, the run is noisy.
const NOISY_FOREIGN_BUSY: f64 = 0.1;
/// How often a noisy run is repeated before it is kept anyway.
const NOISY_RETRIES: usize = 2;
/// How long the final bookkeeping check waits for servers to see the last disconnects.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

// ----- configuration -------------------------------------------------------------------

/// The knobs of one run, from the environment (see the module docs).
struct Config {
    run_time: Duration,
    rounds: usize,
    connections: usize,
    message_size: usize,
    only: String,
    pin: bool,
}

impl Config {
    fn from_env() -> Config {
        let smoke_test = !std::env::args().any(|arg| arg == "--bench");
        let default_secs = if smoke_test { 0.1 } else { 1.5 };
        let default_rounds = if smoke_test { 1 } else { 3 };
        let secs: f64 = env_or("ECHO_BENCH_SECS", default_secs);
        assert!(
            secs.is_finite() && secs > 0.0,
            "ECHO_BENCH_SECS must be positive"
        );
        Config {
            run_time: Duration::from_secs_f64(secs),
            rounds: env_or("ECHO_BENCH_ROUNDS", default_rounds).max(1),
            connections: env_or("ECHO_BENCH_CONNS", 50usize).max(1),
            message_size: env_or("ECHO_BENCH_MSG_SIZE", 64usize).max(1),
            only: env_or("ECHO_BENCH_ONLY", "abcd".to_string()).to_lowercase(),
            pin: std::env::var_os("ECHO_BENCH_NO_PIN").is_none(),
        }
    }
}

// ----- scenarios -----------------------------------------------------------------------

/// How each connection of a scenario talks to the server.
#[derive(Copy, Clone)]
enum Traffic {
    /// Send one message, wait for its echo, repeat.
    PingPong,
    /// Keep `depth` messages in flight: send a new one for each echo that completes.
    Pipelined { depth: usize },
    /// One thread writes chunks back to back while another reads the echo.
    Stream,
}

struct Scenario {
    letter: char,
    title: String,
    connections: usize,
    message_size: usize,
    traffic: Traffic,
}

impl Scenario {
    /// The longest slice of the byte pattern one write or read of this scenario may need.
    fn largest_io(&self) -> usize {
        match self.traffic {
            Traffic::PingPong => self.message_size,
            Traffic::Pipelined { depth } => depth * self.message_size,
            Traffic::Stream => self.message_size.max(STREAM_READ_BUFFER),
        }
    }
}

/// The scenarios selected by `ECHO_BENCH_ONLY`, in order.
fn scenarios(config: &Config) -> Vec<Scenario> {
    let (n, m) = (config.connections, config.message_size);
    let all = [
        Scenario {
            letter: 'a',
            title: format!("1 connection, ping-pong, {m} B messages"),
            connections: 1,
            message_size: m,
            traffic: Traffic::PingPong,
        },
        Scenario {
            letter: 'b',
            title: format!("{n} connections, ping-pong, {m} B messages"),
            connections: n,
            message_size: m,
            traffic: Traffic::PingPong,
        },
        Scenario {
            letter: 'c',
            title: format!(
                "{n} connections, {PIPELINE_DEPTH} messages of {m} B in flight each (pipelined)"
            ),
            connections: n,
            message_size: m,
            traffic: Traffic::Pipelined {
                depth: PIPELINE_DEPTH,
            },
        },
        Scenario {
            letter: 'd',
            title: format!(
                "{STREAM_CONNECTIONS} connections streaming {} KiB chunks (msg = 1 chunk)",
                STREAM_CHUNK / 1024
            ),
            connections: STREAM_CONNECTIONS,
            message_size: STREAM_CHUNK,
            traffic: Traffic::Stream,
        },
    ];
    all.into_iter()
        .filter(|scenario| config.only.contains(scenario.letter))
        .collect()
}

// ----- CPU pinning ---------------------------------------------------------------------

/// Where server threads and load threads run when pinned.
#[derive(Copy, Clone)]
struct Cpus {
    server: usize,
    load: usize,
}

/// The first two CPUs this process may run on, or `None` (with a note) if pinning is off
/// or impossible.
fn choose_cpus(config: &Config) -> Option<Cpus> {
    common::choose_cpu_pair(config.pin, "ECHO_BENCH_NO_PIN")
        .map(|(server, load)| Cpus { server, load })
}

// ----- CPU time ------------------------------------------------------------------------

extern "C" {
    /// POSIX; glibc and musl export it, the `libc` crate does not declare it on Linux.
    fn pthread_getcpuclockid(thread: libc::pthread_t, clock: *mut libc::clockid_t) -> libc::c_int;
}

/// A clock that advances with the CPU time used by one thread, or by the whole process.
#[derive(Copy, Clone)]
struct CpuClock(libc::clockid_t);

impl CpuClock {
    fn of_thread<T>(thread: &JoinHandle<T>) -> io::Result<CpuClock> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: the thread is alive (its JoinHandle is not joined) and `clock` is writable.
        match unsafe { pthread_getcpuclockid(thread.as_pthread_t(), &mut clock) } {
            0 => Ok(CpuClock(clock)),
            code => Err(io::Error::from_raw_os_error(code)),
        }
    }

    fn process() -> CpuClock {
        CpuClock(libc::CLOCK_PROCESS_CPUTIME_ID)
    }

    /// CPU time used so far (zero if the clock cannot be read, e.g. its thread ended).
    fn read(self) -> Duration {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a writable timespec.
        if unsafe { libc::clock_gettime(self.0, &mut now) } != 0 {
            return Duration::ZERO;
        }
        Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
    }
}

// ----- servers -------------------------------------------------------------------------

#[derive(Copy, Clone, PartialEq, Eq)]
enum ServerKind {
    EventmuxEpoll,
    EventmuxPolling,
    TokioCurrentThread,
}

impl ServerKind {
    const ALL: [ServerKind; 3] = [
        ServerKind::EventmuxEpoll,
        ServerKind::EventmuxPolling,
        ServerKind::TokioCurrentThread,
    ];

    fn name(self) -> &'static str {
        match self {
            ServerKind::EventmuxEpoll => "eventmux-epoll",
            ServerKind::EventmuxPolling => "eventmux-polling",
            ServerKind::TokioCurrentThread => "tokio-current",
        }
    }
}

/// What a server saw of its connections, shared with the main thread.
#[derive(Default)]
struct ServerStats {
    accepted: AtomicU64,
    closed: AtomicU64,
    /// Closes for another reason than the peer's end of stream.
    abnormal_closes: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// How often backpressure paused reading (eventmux only).
    read_pauses: AtomicU64,
}

impl ServerStats {
    fn record_error(&self, error: impl Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| error.to_string());
    }

    fn record_close(&self, normal: bool) {
        self.closed.fetch_add(1, Ordering::Relaxed);
        if !normal {
            self.abnormal_closes.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn all_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed) == self.accepted.load(Ordering::Relaxed)
    }
}

/// How to ask a server thread to finish.
enum StopSignal {
    Flag(Arc<AtomicBool>),
    Tokio(oneshot::Sender<()>),
}

/// A server listening on `addr` in its own thread.
struct RunningServer {
    kind: ServerKind,
    addr: SocketAddr,
    stats: Arc<ServerStats>,
    stop: StopSignal,
    thread: JoinHandle<io::Result<()>>,
    /// The server thread's CPU time, if it can be read.
    cpu_clock: Option<CpuClock>,
}

impl RunningServer {
    /// Starts a server of `kind` (pinned to `cpu` if given) and waits until it listens.
    fn start(kind: ServerKind, cpu: Option<usize>) -> RunningServer {
        let stats = Arc::new(ServerStats::default());
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, body) = server_body(kind, ready_tx, stats.clone());
        let thread = thread::Builder::new()
            .name(kind.name().into())
            .spawn(move || {
                pin_to(cpu);
                body()
            })
            .expect("spawning a server thread");
        let addr = match ready_rx.recv() {
            Ok(addr) => addr,
            Err(_) => panic!("{} did not start: {:?}", kind.name(), thread.join()),
        };
        let cpu_clock = CpuClock::of_thread(&thread)
            .inspect_err(|e| println!("note: no CPU clock for {}: {e}", kind.name()))
            .ok();
        RunningServer {
            kind,
            addr,
            stats,
            stop,
            thread,
            cpu_clock,
        }
    }

    /// Asks the server to finish and waits for its thread.
    fn stop(self) -> io::Result<()> {
        match self.stop {
            StopSignal::Flag(flag) => flag.store(true, Ordering::Relaxed),
            StopSignal::Tokio(sender) => {
                let _ = sender.send(());
            }
        }
        self.thread.join().expect("server thread panicked")
    }
}

/// What a server thread runs.
type ServerBody = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// The code of a server of `kind`, which reports its address on `ready`, and how to stop it.
fn server_body(
    kind: ServerKind,
    ready: mpsc::Sender<SocketAddr>,
    stats: Arc<ServerStats>,
) -> (StopSignal, ServerBody) {
    let backend = match kind {
        ServerKind::EventmuxEpoll => Backend::Epoll,
        ServerKind::EventmuxPolling => Backend::Polling,
        ServerKind::TokioCurrentThread => {
            let (stop_tx, stop_rx) = oneshot::channel();
            let body = move || run_tokio_server(ready, stop_rx, stats);
            return (StopSignal::Tokio(stop_tx), Box::new(body));
        }
    };
    let flag = Arc::new(AtomicBool::new(false));
    let stop = flag.clone();
    let body = move || run_eventmux_server(backend, ready, stop, stats);
    (StopSignal::Flag(flag), Box::new(body))
}

// ----- the eventmux server -------------------------------------------------------------

fn run_eventmux_server(
    backend: Backend,
    ready: mpsc::Sender<SocketAddr>,
    stop: Arc<AtomicBool>,
    stats: Arc<ServerStats>,
) -> io::Result<()> {
    let mut reactor = Reactor::with_backend(backend)?;
    let listener = reactor.listen("127.0.0.1:0", EchoListener { stats })?;
    let addr = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    let watcher = reactor.add_handler(StopWatcher { stop });
    reactor
        .handle(watcher)
        .expect("just added")
        .set_interval(STOP_POLL_INTERVAL)?;
    let _ = ready.send(addr);
    reactor.run()
}

/// The listener's handler: every accepted connection gets an [`EchoConnection`].
struct EchoListener {
    stats: Arc<ServerStats>,
}

impl Handler for EchoListener {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Some(Box::new(EchoConnection {
            stats: self.stats.clone(),
            paused: false,
        }))
    }

    fn on_error(&mut self, _: &mut Context<'_>, error: &Error) {
        self.stats.record_error(format_args!("listener: {error}"));
    }
}

/// Sends back what it reads; stops reading while too much waits to be written.
struct EchoConnection {
    stats: Arc<ServerStats>,
    paused: bool,
}

impl Handler for EchoConnection {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        // A failed send (output bound) reaches on_error and kills the connection.
        if ctx.send(data).is_ok()
            && ctx.buflen() > PAUSE_READING_ABOVE
            && ctx.pause_reading().is_ok()
        {
            self.paused = true;
            self.stats.read_pauses.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_sent(&mut self, ctx: &mut Context<'_>) {
        if self.paused && ctx.resume_reading().is_ok() {
            self.paused = false;
        }
    }

    fn on_error(&mut self, _: &mut Context<'_>, error: &Error) {
        self.stats.record_error(error);
    }

    fn on_close(&mut self, _: &mut Context<'_>, reason: CloseReason) {
        self.stats.record_close(reason == CloseReason::PeerClosed);
    }
}

/// A handle without a descriptor whose timer stops the reactor once `stop` is set.
struct StopWatcher {
    stop: Arc<AtomicBool>,
}

impl Handler for StopWatcher {
    fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
        if self.stop.load(Ordering::Relaxed) {
            ctx.stop();
        }
    }
}

// ----- the tokio server ----------------------------------------------------------------

fn run_tokio_server(
    ready: mpsc::Sender<SocketAddr>,
    stop: oneshot::Receiver<()>,
    stats: Arc<ServerStats>,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let _ = ready.send(listener.local_addr()?);
        tokio::spawn(tokio_accept_loop(listener, stats));
        let _ = stop.await;
        Ok(())
    })
    // Dropping the runtime cancels the accept loop and every connection task.
}

async fn tokio_accept_loop(listener: tokio::net::TcpListener, stats: Arc<ServerStats>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                let stats = stats.clone();
                tokio::spawn(async move {
                    let result = tokio_echo_connection(stream).await;
                    if let Err(e) = &result {
                        stats.record_error(e);
                    }
                    stats.record_close(result.is_ok());
                });
            }
            Err(e) => stats.record_error(format_args!("listener: {e}")),
        }
    }
}

async fn tokio_echo_connection(mut stream: tokio::net::TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buffer = vec![0; TOKIO_READ_BUFFER];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buffer[..n]).await?;
    }
}

// ----- the byte pattern ----------------------------------------------------------------

/// Period of the byte pattern: a prime, so that messages of any power-of-two size land on
/// ever different parts of it.
const PATTERN_PERIOD: usize = 65_521;
/// How far apart in the pattern connections start, so that crossed streams show.
const CONNECTION_STRIDE: u64 = 7_919;

/// A pseudo-random byte sequence that repeats every [`PATTERN_PERIOD`] bytes, stored with
/// enough of its start repeated at the end that any window up to `largest_io` bytes is one
/// contiguous slice. Byte `p` of connection `c`'s stream is the pattern's byte
/// `c * CONNECTION_STRIDE + p`.
struct Pattern {
    bytes: Vec<u8>,
}

impl Pattern {
    fn new(largest_io: usize) -> Pattern {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let period: Vec<u8> = (0..PATTERN_PERIOD)
            .map(|_| {
                // xorshift64
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
        Pattern { bytes }
    }

    fn window(&self, position: u64, len: usize) -> &[u8] {
        let start = (position % PATTERN_PERIOD as u64) as usize;
        &self.bytes[start..start + len]
    }
}

/// Writes one connection's share of the pattern.
struct PatternWriter<'a> {
    stream: TcpStream,
    pattern: &'a Pattern,
    connection: usize,
    /// Bytes written so far.
    written: u64,
}

impl PatternWriter<'_> {
    fn write(&mut self, len: usize) {
        let position = self.connection as u64 * CONNECTION_STRIDE + self.written;
        let bytes = self.pattern.window(position, len);
        if let Err(e) = self.stream.write_all(bytes) {
            panic!(
                "connection {}: write failed after {} bytes: {e}{}",
                self.connection,
                self.written,
                stall_hint(&e)
            );
        }
        self.written += len as u64;
    }

    /// Tells the server that nothing more will come.
    fn finish(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Reads one connection's echo and checks every byte against the pattern.
struct PatternReader<'a> {
    stream: TcpStream,
    pattern: &'a Pattern,
    connection: usize,
    /// Bytes read (and checked) so far.
    read: u64,
    buffer: Vec<u8>,
}

impl PatternReader<'_> {
    /// Reads once, at most `max` bytes, and checks them; returns 0 at end of stream.
    fn read_some(&mut self, max: usize) -> usize {
        let max = max.min(self.buffer.len());
        let n = loop {
            match self.stream.read(&mut self.buffer[..max]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!(
                    "connection {}: read failed after {} bytes: {e}{}",
                    self.connection,
                    self.read,
                    stall_hint(&e)
                ),
            }
        };
        self.check(n);
        self.read += n as u64;
        n
    }

    /// Reads exactly `len` more bytes; the server closing first is a failure.
    fn read_exact(&mut self, mut len: u64) {
        while len > 0 {
            let max = usize::try_from(len).unwrap_or(usize::MAX);
            match self.read_some(max) {
                0 => panic!(
                    "connection {}: the server closed the connection with {len} bytes owed",
                    self.connection
                ),
                n => len -= n as u64,
            }
        }
    }

    /// Reads (and checks) until the server closes the connection.
    fn read_to_end(&mut self) {
        while self.read_some(usize::MAX) > 0 {}
    }

    fn check(&self, n: usize) {
        let position = self.connection as u64 * CONNECTION_STRIDE + self.read;
        let expected = self.pattern.window(position, n);
        let received = &self.buffer[..n];
        if received != expected {
            let at = received
                .iter()
                .zip(expected)
                .position(|(r, e)| r != e)
                .expect("slices of equal length differ somewhere");
            panic!(
                "connection {}: echoed byte {} is {:#04x}, but {:#04x} was sent",
                self.connection,
                self.read + at as u64,
                received[at],
                expected[at]
            );
        }
    }
}

fn stall_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => " (no progress for 10 s: stalled?)",
        _ => "",
    }
}

// ----- the load generator --------------------------------------------------------------

/// One measured run of one scenario against one server.
struct RunOutcome {
    /// Bytes echoed back to each connection before the run ended.
    echoed_bytes: Vec<u64>,
    elapsed: Duration,
    /// CPU time the server thread used during the run.
    server_cpu: Option<Duration>,
    /// CPU time the whole process used during the run (servers, load threads, main).
    process_cpu: Duration,
    /// CPU time the whole machine was busy during the run, if known.
    system_busy: Option<Duration>,
}

impl RunOutcome {
    /// The share of one CPU the server thread kept busy.
    fn server_busy(&self) -> Option<f64> {
        self.server_cpu
            .map(|cpu| cpu.as_secs_f64() / self.elapsed.as_secs_f64())
    }

    /// The share of one CPU everything but the server used: load threads, mostly.
    fn client_busy(&self) -> f64 {
        let client = self
            .process_cpu
            .saturating_sub(self.server_cpu.unwrap_or_default());
        client.as_secs_f64() / self.elapsed.as_secs_f64()
    }

    /// The share of one CPU that other processes (and the kernel on their behalf) used.
    fn foreign_busy(&self) -> Option<f64> {
        let foreign = self.system_busy?.saturating_sub(self.process_cpu);
        Some(foreign.as_secs_f64() / self.elapsed.as_secs_f64())
    }

    /// Server CPU time per echoed message, in nanoseconds.
    fn server_ns_per_message(&self, message_size: usize) -> Option<f64> {
        let messages = self.messages_per_sec(message_size) * self.elapsed.as_secs_f64();
        self.server_cpu
            .map(|cpu| cpu.as_nanos() as f64 / messages.max(1.0))
    }

    fn messages_per_sec(&self, message_size: usize) -> f64 {
        let bytes: u64 = self.echoed_bytes.iter().sum();
        bytes as f64 / message_size as f64 / self.elapsed.as_secs_f64()
    }

    /// The slowest connection's bytes over the fastest one's (1.0 = even).
    fn fairness(&self) -> f64 {
        let most = self.echoed_bytes.iter().copied().max().unwrap_or(0);
        let least = self.echoed_bytes.iter().copied().min().unwrap_or(0);
        if most == 0 {
            0.0
        } else {
            least as f64 / most as f64
        }
    }
}

/// Opens the scenario's connections to `addr`, runs its traffic for `run_time` and
/// collects what each connection got back.
fn run_load(
    scenario: &Scenario,
    server: &RunningServer,
    run_time: Duration,
    load_cpu: Option<usize>,
) -> RunOutcome {
    let addr = server.addr;
    let pattern = Pattern::new(scenario.largest_io());
    let streams: Vec<TcpStream> = (0..scenario.connections).map(|_| connect(addr)).collect();
    let start = Barrier::new(scenario.connections + 1);
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        let workers: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(connection, stream)| {
                let (pattern, start, stop) = (&pattern, &start, &stop);
                scope.spawn(move || {
                    pin_to(load_cpu);
                    let (writer, reader) = split(stream, connection, pattern, scenario);
                    start.wait();
                    drive_connection(scenario, writer, reader, stop, load_cpu)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        let server_cpu_before = server.cpu_clock.map(CpuClock::read);
        let process_cpu_before = CpuClock::process().read();
        let system_busy_before = system_busy_time();
        thread::sleep(run_time);
        stop.store(true, Ordering::Relaxed);
        let elapsed = began.elapsed();
        let server_cpu = server
            .cpu_clock
            .zip(server_cpu_before)
            .map(|(clock, before)| clock.read().saturating_sub(before));
        let process_cpu = CpuClock::process()
            .read()
            .saturating_sub(process_cpu_before);
        let system_busy = system_busy_time()
            .zip(system_busy_before)
            .map(|(after, before)| after.saturating_sub(before));
        let echoed_bytes = workers
            .into_iter()
            .map(|worker| {
                worker.join().unwrap_or_else(|p| {
                    let first = server.stats.first_error.lock().map(|e| e.clone());
                    eprintln!(
                        "load against {} failed; the server's first error: {:?}",
                        server.kind.name(),
                        first.unwrap_or_default()
                    );
                    std::panic::resume_unwind(p)
                })
            })
            .collect();
        RunOutcome {
            echoed_bytes,
            elapsed,
            server_cpu,
            process_cpu,
            system_busy,
        }
    })
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    stream.set_nodelay(true).expect("setting TCP_NODELAY");
    stream
        .set_read_timeout(Some(STALL_TIMEOUT))
        .expect("setting a read timeout");
    stream
        .set_write_timeout(Some(STALL_TIMEOUT))
        .expect("setting a write timeout");
    stream
}

/// The two directions of one connection (two descriptors of the same socket).
fn split<'a>(
    stream: TcpStream,
    connection: usize,
    pattern: &'a Pattern,
    scenario: &Scenario,
) -> (PatternWriter<'a>, PatternReader<'a>) {
    let reader = PatternReader {
        stream: stream.try_clone().expect("duplicating a socket"),
        pattern,
        connection,
        read: 0,
        buffer: vec![0; scenario.largest_io()],
    };
    let writer = PatternWriter {
        stream,
        pattern,
        connection,
        written: 0,
    };
    (writer, reader)
}

/// Runs one connection's traffic until `stop`; returns the bytes echoed before it.
fn drive_connection(
    scenario: &Scenario,
    writer: PatternWriter<'_>,
    reader: PatternReader<'_>,
    stop: &AtomicBool,
    load_cpu: Option<usize>,
) -> u64 {
    let size = scenario.message_size;
    match scenario.traffic {
        Traffic::PingPong => ping_pong(writer, reader, size, stop),
        Traffic::Pipelined { depth } => pipelined(writer, reader, size, depth, stop),
        Traffic::Stream => stream(writer, reader, size, stop, load_cpu),
    }
}

fn ping_pong(
    mut writer: PatternWriter<'_>,
    mut reader: PatternReader<'_>,
    size: usize,
    stop: &AtomicBool,
) -> u64 {
    while !stop.load(Ordering::Relaxed) {
        writer.write(size);
        reader.read_exact(size as u64);
    }
    reader.read
}

fn pipelined(
    mut writer: PatternWriter<'_>,
    mut reader: PatternReader<'_>,
    size: usize,
    depth: usize,
    stop: &AtomicBool,
) -> u64 {
    let size = size as u64;
    writer.write((depth as u64 * size) as usize);
    while !stop.load(Ordering::Relaxed) {
        let in_flight = writer.written - reader.read;
        if reader.read_some(in_flight as usize) == 0 {
            panic!("connection {}: the server closed early", reader.connection);
        }
        // Replace every message whose echo is now complete.
        let wanted = (reader.read / size + depth as u64) * size;
        if wanted > writer.written {
            writer.write((wanted - writer.written) as usize);
        }
    }
    let echoed = reader.read;
    reader.read_exact(writer.written - reader.read);
    echoed
}

fn stream(
    mut writer: PatternWriter<'_>,
    mut reader: PatternReader<'_>,
    chunk: usize,
    stop: &AtomicBool,
    load_cpu: Option<usize>,
) -> u64 {
    thread::scope(|scope| {
        let writing = scope.spawn(move || {
            pin_to(load_cpu);
            while !stop.load(Ordering::Relaxed) {
                writer.write(chunk);
            }
            writer.finish();
            writer.written
        });
        while !stop.load(Ordering::Relaxed) {
            if reader.read_some(usize::MAX) == 0 {
                panic!("connection {}: the server closed early", reader.connection);
            }
        }
        let echoed = reader.read;
        reader.read_to_end();
        let written = writing
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        assert_eq!(
            reader.read, written,
            "connection {}: bytes echoed back != bytes sent",
            reader.connection
        );
        echoed
    })
}

// ----- measuring and reporting ---------------------------------------------------------

/// Runs `scenario` against every server, `rounds` times, rotating the order each round.
/// Returns the outcomes per server, in the order of `servers`.
fn measure(
    scenario: &Scenario,
    servers: &[RunningServer],
    config: &Config,
    load_cpu: Option<usize>,
) -> Vec<Vec<RunOutcome>> {
    let mut outcomes: Vec<Vec<RunOutcome>> = servers.iter().map(|_| Vec::new()).collect();
    for round in 0..config.rounds {
        for offset in 0..servers.len() {
            let index = (round + offset) % servers.len();
            let outcome = run_quietly(scenario, &servers[index], config.run_time, load_cpu);
            outcomes[index].push(outcome);
        }
    }
    outcomes
}

/// [`run_load`], repeated up to [`NOISY_RETRIES`] times while other processes were busy
/// during the run.
fn run_quietly(
    scenario: &Scenario,
    server: &RunningServer,
    run_time: Duration,
    load_cpu: Option<usize>,
) -> RunOutcome {
    let mut outcome = run_load(scenario, server, run_time, load_cpu);
    for _ in 0..NOISY_RETRIES {
        if outcome.foreign_busy().unwrap_or(0.0) <= NOISY_FOREIGN_BUSY {
            break;
        }
        outcome = run_load(scenario, server, run_time, load_cpu);
    }
    outcome
}

/// A short ping-pong run on every server whose results are thrown away.
fn warm_up(servers: &[RunningServer], config: &Config, load_cpu: Option<usize>) {
    let scenario = Scenario {
        letter: 'w',
        title: "warm-up".into(),
        connections: config.connections,
        message_size: config.message_size,
        traffic: Traffic::PingPong,
    };
    for server in servers {
        run_load(&scenario, server, WARM_UP_TIME, load_cpu);
    }
}

/// One server's figures in one scenario: medians over the rounds, except where noted.
struct Summary {
    messages_per_sec: f64,
    /// Every round's messages per second, in the order run.
    rounds: Vec<f64>,
    server_busy: Option<f64>,
    server_ns_per_message: Option<f64>,
    client_busy: f64,
    /// The most CPU other processes used in any round.
    worst_foreign_busy: Option<f64>,
    /// The worst round's fairness.
    worst_fairness: f64,
}

impl Summary {
    fn of(outcomes: &[RunOutcome], message_size: usize) -> Summary {
        let rounds: Vec<f64> = outcomes
            .iter()
            .map(|outcome| outcome.messages_per_sec(message_size))
            .collect();
        let server_busy: Option<Vec<f64>> = outcomes.iter().map(RunOutcome::server_busy).collect();
        let server_ns_per_message: Option<Vec<f64>> = outcomes
            .iter()
            .map(|outcome| outcome.server_ns_per_message(message_size))
            .collect();
        let client_busy: Vec<f64> = outcomes.iter().map(RunOutcome::client_busy).collect();
        let worst_foreign_busy = outcomes
            .iter()
            .map(RunOutcome::foreign_busy)
            .collect::<Option<Vec<f64>>>()
            .map(|busy| busy.into_iter().fold(0.0, f64::max));
        let worst_fairness = outcomes
            .iter()
            .map(RunOutcome::fairness)
            .fold(f64::INFINITY, f64::min);
        Summary {
            messages_per_sec: median(&rounds),
            rounds,
            server_busy: server_busy.as_deref().map(median),
            server_ns_per_message: server_ns_per_message.as_deref().map(median),
            client_busy: median(&client_busy),
            worst_foreign_busy,
            worst_fairness,
        }
    }
}

fn print_table(
    scenario: &Scenario,
    config: &Config,
    servers: &[RunningServer],
    outcomes: &[Vec<RunOutcome>],
) {
    println!();
    println!(
        "({}) {}: median of {} x {:.1} s",
        scenario.letter,
        scenario.title,
        config.rounds,
        config.run_time.as_secs_f64()
    );
    println!(
        "  {:<17} {:>11} {:>8} {:>8} {:>7} {:>8} {:>6} {:>5}   every round (msgs/s)",
        "server", "msgs/s", "MiB/s", "srv CPU", "ns/msg", "cli CPU", "other", "fair"
    );
    let summaries: Vec<Summary> = outcomes
        .iter()
        .map(|runs| Summary::of(runs, scenario.message_size))
        .collect();
    for (server, summary) in servers.iter().zip(&summaries) {
        print_row(server.kind, summary, scenario.message_size);
    }
    let summary_of = |kind: ServerKind| {
        servers
            .iter()
            .zip(&summaries)
            .find(|(server, _)| server.kind == kind)
            .map(|(_, summary)| summary)
    };
    for (numerator, denominator) in [
        (ServerKind::EventmuxEpoll, ServerKind::TokioCurrentThread),
        (ServerKind::EventmuxEpoll, ServerKind::EventmuxPolling),
    ] {
        if let (Some(a), Some(b)) = (summary_of(numerator), summary_of(denominator)) {
            print_ratio(numerator, denominator, a, b);
        }
    }
    let foreign = summaries
        .iter()
        .filter_map(|summary| summary.worst_foreign_busy)
        .fold(0.0, f64::max);
    if foreign > NOISY_FOREIGN_BUSY {
        println!(
            "  note: other processes kept up to {} of a CPU busy in a run kept after retries",
            percent(Some(foreign))
        );
    }
}

fn print_row(kind: ServerKind, summary: &Summary, message_size: usize) {
    let mib_per_sec = summary.messages_per_sec * message_size as f64 / (1024.0 * 1024.0);
    let rounds: Vec<String> = summary.rounds.iter().map(|&r| thousands(r)).collect();
    println!(
        "  {:<17} {:>11} {:>8.1} {:>8} {:>7} {:>8} {:>6} {:>5.2}   {}",
        kind.name(),
        thousands(summary.messages_per_sec),
        mib_per_sec,
        percent(summary.server_busy),
        summary
            .server_ns_per_message
            .map_or("?".into(), |ns| format!("{ns:.0}")),
        percent(Some(summary.client_busy)),
        percent(summary.worst_foreign_busy),
        summary.worst_fairness,
        rounds.join("  ")
    );
}

/// A share of one CPU as a percentage, or `?` if unknown.
fn percent(share: Option<f64>) -> String {
    share.map_or("?".into(), |share| format!("{:.0}%", share * 100.0))
}

/// Prints `a / b` for throughput, and for server CPU per message (below 1: `a` is cheaper).
fn print_ratio(numerator: ServerKind, denominator: ServerKind, a: &Summary, b: &Summary) {
    let label = format!("{} / {}", numerator.name(), denominator.name());
    let cost = a
        .server_ns_per_message
        .zip(b.server_ns_per_message)
        .map_or("?".into(), |(a, b)| format!("{:.2}", a / b));
    println!(
        "  {label:<34} msgs/s {:>5.2}   server CPU per msg {cost:>5}",
        a.messages_per_sec / b.messages_per_sec
    );
}

/// Waits briefly for every server to have closed what it accepted, then prints each
/// server's bookkeeping; returns whether every server looks healthy.
fn report_server_health(servers: &[RunningServer]) -> bool {
    let deadline = Instant::now() + CLOSE_GRACE;
    while !servers.iter().all(|s| s.stats.all_closed()) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    println!();
    println!("server bookkeeping after all runs:");
    let mut healthy = true;
    for server in servers {
        let stats = &server.stats;
        let accepted = stats.accepted.load(Ordering::Relaxed);
        let closed = stats.closed.load(Ordering::Relaxed);
        let abnormal = stats.abnormal_closes.load(Ordering::Relaxed);
        let errors = stats.errors.load(Ordering::Relaxed);
        let pauses = stats.read_pauses.load(Ordering::Relaxed);
        println!(
            "  {:<18} accepted {accepted}, closed {closed} ({abnormal} abnormally), \
             {errors} errors, reading paused {pauses} times",
            server.kind.name()
        );
        if let Some(first) = stats
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            println!("  {:<18} first error: {first}", "");
        }
        healthy &= accepted == closed && abnormal == 0 && errors == 0;
    }
    healthy
}

fn print_setup(config: &Config, cpus: Option<Cpus>, scenarios: &[Scenario]) {
    let runs = scenarios.len() * config.rounds * ServerKind::ALL.len();
    println!(
        "echo benchmark: {} scenario(s) x {} round(s) x {} servers x {:.1} s (~{:.0} s)",
        scenarios.len(),
        config.rounds,
        ServerKind::ALL.len(),
        config.run_time.as_secs_f64(),
        runs as f64 * config.run_time.as_secs_f64()
    );
    if let Some(cpus) = cpus {
        println!(
            "pinning: server threads on CPU {}, load threads on CPU {}",
            cpus.server, cpus.load
        );
    }
}

fn main() {
    let config = Config::from_env();
    let scenarios = scenarios(&config);
    let cpus = choose_cpus(&config);
    print_setup(&config, cpus, &scenarios);
    let (server_cpu, load_cpu) = (cpus.map(|c| c.server), cpus.map(|c| c.load));
    let servers: Vec<RunningServer> = ServerKind::ALL
        .into_iter()
        .map(|kind| RunningServer::start(kind, server_cpu))
        .collect();
    warm_up(&servers, &config, load_cpu);
    for scenario in &scenarios {
        let outcomes = measure(scenario, &servers, &config, load_cpu);
        print_table(scenario, &config, &servers, &outcomes);
    }
    let healthy = report_server_health(&servers);
    for server in servers {
        let name = server.kind.name();
        if let Err(e) = server.stop() {
            println!("  {name} stopped with an error: {e}");
        }
    }
    if !healthy {
        println!("note: some server closed connections abnormally or reported errors");
    }
}
