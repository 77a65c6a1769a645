//! UDP echo benchmark: eventmux's pump against a plain blocking `std` socket loop and against
//! eventmux serving the socket on the reactor thread, side by side in one run.
//!
//! # What is measured
//!
//! Five UDP echo servers run at once, each on `127.0.0.1:0` in a thread of its own:
//!
//! - `pump-1-thread`: a `Reactor::pump` with one receive thread; its handler's `on_packet`
//!   sends each packet back with `send_to` (replies leave in one `sendmmsg` per turn);
//! - `pump-2-reuseport`: the same with two receive threads, each on its own `SO_REUSEPORT`
//!   socket;
//! - `pump-1-preempting`: `pump-1-thread` with `PumpOptions::batch_scheduling(false)`: its
//!   thread preempts the reactor thread whenever a packet wakes it, which on a shared CPU
//!   means a context switch every few packets (the row shows what `SCHED_BATCH` buys);
//! - `std-blocking`: a `std::net::UdpSocket` in a loop of blocking `recv_from`/`send_to`;
//! - `reactor-thread`: a UDP socket bound with `Reactor::bind` and served on the reactor
//!   thread, `on_datagram` → `send_to` (as `examples/udp_echo_plain.rs` does).
//!
//! Each server is measured alone while the others idle (blocked in a receive or a wait).
//! Several client threads each own a UDP socket connected to the server and keep a window of
//! datagrams in flight, each carrying the client's id and a sequence number, sent and
//! received in batches so that the load generator is cheap: a client's burst leaves in one
//! `send` cut into datagrams by the kernel (`UDP_SEGMENT`; `sendmmsg` where the kernel
//! refuses it, or with `UDP_BENCH_CLIENT_SENDMMSG`), and echoes come back by `recvmmsg`.
//! With one CPU for all the clients, a load generator that sent by `sendmmsg` set the pace
//! of the fastest servers, and the table then compared clients, not servers. Every echo
//! is checked against what that client sent. Nothing is resent: a datagram that is still
//! unanswered once echoes for datagrams sent two windows later have arrived, or when no echo
//! at all arrives for 20 ms, is written off and replaced by a new one. At the end of a run the
//! clients wait briefly for what is still in flight; `loss` is the share of datagrams sent
//! that never came back (late echoes of written-off datagrams count as echoed).
//!
//! The result is echoes per second. Each server runs in turn for several rounds (the order
//! rotates every round); the table shows, per server:
//!
//! - `pkts/s`: the median round; `loss`: over all rounds;
//! - `srv CPU`: the CPU the server used (share of one CPU: the whole process minus the client
//!   threads, whose own CPU clocks are read), and `ns/pkt`, server CPU per echo. Loopback
//!   delivery is done by the sending thread's kernel code, so each side also pays part of the
//!   other's receive;
//! - `kdrops`: datagrams the kernel dropped for a full socket receive buffer during the
//!   server's runs (`RcvbufErrors` in `/proc/net/snmp`; system-wide, so other processes'
//!   drops would count too): most of `loss`, when there is any;
//! - `cli CPU`: the client threads' CPU (100% on a pinned run: the load generator is the
//!   bottleneck, and the server figures that still mean something are CPU per packet);
//! - `other`: CPU used by other processes during the server's busiest round for them, from
//!   `/proc/stat` (a loaded machine gives noise, not numbers);
//! - every round's pkts/s, in the order run.
//!
//! Below the table: each pump over `std-blocking` and over `reactor-thread`, as ratios of
//! pkts/s (above 1: the pump is faster) and of server CPU per packet (below 1: the pump is
//! cheaper). At the end, each server's own counters are printed.
//!
//! Where the affinity mask allows, server threads are pinned to the first allowed CPU (pump
//! threads inherit it from the reactor thread that starts them, so every thread of a server
//! shares that one CPU) and client threads to the second (`sched_setaffinity`).
//!
//! # Running
//!
//! ```text
//! cargo bench --bench udp                                     # about 35 s
//! UDP_BENCH_SECS=0.3 UDP_BENCH_ROUNDS=1 cargo bench --bench udp   # a quick look
//! ```
//!
//! | variable             | default | meaning                                            |
//! |----------------------|---------|----------------------------------------------------|
//! | `UDP_BENCH_SECS`     | 1.5     | seconds per measured run (one server, one round)   |
//! | `UDP_BENCH_ROUNDS`   | 3       | rounds; the median is reported                     |
//! | `UDP_BENCH_CLIENTS`  | 4       | client threads, one socket each                    |
//! | `UDP_BENCH_WINDOW`   | 64      | datagrams each client keeps in flight              |
//! | `UDP_BENCH_SIZE`     | 64      | datagram size in bytes (at least 12)               |
//! | `UDP_BENCH_NO_PIN`   | unset   | set (to anything) to leave threads unpinned        |
//! | `UDP_BENCH_CLIENT_SENDMMSG` | unset | set to make clients send with `sendmmsg` instead of `UDP_SEGMENT` |
//!
//! Run without the `--bench` argument that `cargo bench` passes (for instance by
//! `cargo test --benches`), it makes one 0.1 s round without warm-up: a smoke test.

mod common;

use common::{env_or, median, pin_to, system_busy_time, thousands};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use eventmux::{Address, Context, Error, Handler, Options, Packet, PumpOptions, Reactor, Remote};

/// Datagrams per `sendmmsg`/`recvmmsg` call of a client.
const CLIENT_BATCH: usize = 64;
/// A client that gets no echo at all for this long writes off everything in flight.
const LOSS_TIMEOUT: Duration = Duration::from_millis(20);
/// How long clients wait for the echoes still in flight when a run ends.
const DRAIN_TIME: Duration = Duration::from_millis(200);
/// Sequence numbers a client remembers (a power of two, far above any window).
const RING: usize = 1 << 16;
/// Bytes of a datagram that carry the client's id and the sequence number.
const HEADER: usize = 12;
/// How often the blocking server checks whether it was asked to stop.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Load run on every server before measuring, to warm caches and the allocator.
const WARM_UP_TIME: Duration = Duration::from_millis(300);

// ----- configuration -------------------------------------------------------------------

/// The knobs of one run, from the environment (see the module docs).
struct Config {
    run_time: Duration,
    rounds: usize,
    clients: usize,
    window: usize,
    size: usize,
    pin: bool,
    client_segmentation: bool,
    smoke_test: bool,
}

impl Config {
    fn from_env() -> Config {
        let smoke_test = !std::env::args().any(|arg| arg == "--bench");
        let default_secs = if smoke_test { 0.1 } else { 1.5 };
        let default_rounds = if smoke_test { 1 } else { 3 };
        let secs: f64 = env_or("UDP_BENCH_SECS", default_secs);
        assert!(
            secs.is_finite() && secs > 0.0,
            "UDP_BENCH_SECS must be positive"
        );
        Config {
            run_time: Duration::from_secs_f64(secs),
            rounds: env_or("UDP_BENCH_ROUNDS", default_rounds).max(1),
            clients: env_or("UDP_BENCH_CLIENTS", 4usize).max(1),
            window: env_or("UDP_BENCH_WINDOW", 64usize).clamp(1, RING / 4),
            size: env_or("UDP_BENCH_SIZE", 64usize).clamp(HEADER, 65_507),
            pin: std::env::var_os("UDP_BENCH_NO_PIN").is_none(),
            client_segmentation: std::env::var_os("UDP_BENCH_CLIENT_SENDMMSG").is_none(),
            smoke_test,
        }
    }
}

// ----- CPU pinning and CPU time --------------------------------------------------------

/// Where server threads and client threads run when pinned.
#[derive(Copy, Clone)]
struct Cpus {
    server: usize,
    client: usize,
}

/// The first two CPUs this process may run on, or `None` (with a note) if pinning is off
/// or impossible.
fn choose_cpus(config: &Config) -> Option<Cpus> {
    common::choose_cpu_pair(config.pin, "UDP_BENCH_NO_PIN")
        .map(|(server, client)| Cpus { server, client })
}

/// UDP datagrams the kernel has dropped for full receive buffers since boot (IPv4,
/// `RcvbufErrors` in `/proc/net/snmp`); `None` if it cannot be read.
fn udp_receive_buffer_drops() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let column = names
        .split_whitespace()
        .position(|name| name == "RcvbufErrors")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

/// CPU time used so far by the calling thread or by the whole process (zero if unknown).
fn cpu_time(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a writable timespec.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

// ----- servers -------------------------------------------------------------------------

#[derive(Copy, Clone, PartialEq, Eq)]
enum ServerKind {
    Pump,
    PumpReusePort,
    PumpPreempting,
    StdBlocking,
    ReactorThread,
}

impl ServerKind {
    const ALL: [ServerKind; 5] = [
        ServerKind::Pump,
        ServerKind::PumpReusePort,
        ServerKind::PumpPreempting,
        ServerKind::StdBlocking,
        ServerKind::ReactorThread,
    ];

    fn name(self) -> &'static str {
        match self {
            ServerKind::Pump => "pump-1-thread",
            ServerKind::PumpReusePort => "pump-2-reuseport",
            ServerKind::PumpPreempting => "pump-1-preempting",
            ServerKind::StdBlocking => "std-blocking",
            ServerKind::ReactorThread => "reactor-thread",
        }
    }
}

/// Errors a server's handler saw, shared with the main thread.
#[derive(Default)]
struct ServerErrors {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl ServerErrors {
    fn record(&self, error: impl std::fmt::Display) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| error.to_string());
    }

    fn describe(&self) -> String {
        let count = self.count.load(Ordering::Relaxed);
        match &*self.first.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(first) => format!("{count} errors (first: {first})"),
            None => format!("{count} errors"),
        }
    }
}

/// How to ask a server thread to finish.
enum StopSignal {
    Remote(Remote),
    Flag(Arc<AtomicBool>),
}

/// What a server thread hands back once it is listening.
struct Ready {
    addr: SocketAddr,
    stop: StopSignal,
}

/// A server in its own thread; the thread returns a line of bookkeeping when it ends.
struct RunningServer {
    kind: ServerKind,
    addr: SocketAddr,
    stop: StopSignal,
    thread: JoinHandle<io::Result<String>>,
}

impl RunningServer {
    /// Starts a server of `kind` (pinned to `cpu` if given) and waits until it listens.
    fn start(kind: ServerKind, cpu: Option<usize>) -> RunningServer {
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(kind.name().into())
            .spawn(move || {
                // Before the reactor starts its pump threads: they inherit the affinity.
                pin_to(cpu);
                match kind {
                    ServerKind::Pump => run_pump_server(PumpOptions::new(), ready_tx),
                    ServerKind::PumpReusePort => {
                        run_pump_server(PumpOptions::new().threads(2).reuse_port(true), ready_tx)
                    }
                    ServerKind::PumpPreempting => {
                        run_pump_server(PumpOptions::new().batch_scheduling(false), ready_tx)
                    }
                    ServerKind::StdBlocking => run_std_server(ready_tx),
                    ServerKind::ReactorThread => run_reactor_thread_server(ready_tx),
                }
            })
            .expect("spawning a server thread");
        let ready = match ready_rx.recv() {
            Ok(ready) => ready,
            Err(_) => panic!("{} did not start: {:?}", kind.name(), thread.join()),
        };
        RunningServer {
            kind,
            addr: ready.addr,
            stop: ready.stop,
            thread,
        }
    }

    /// Asks the server to finish; returns its bookkeeping.
    fn stop(self) -> String {
        match &self.stop {
            StopSignal::Remote(remote) => {
                let _ = remote.stop();
            }
            StopSignal::Flag(flag) => flag.store(true, Ordering::Relaxed),
        }
        match self.thread.join().expect("server thread panicked") {
            Ok(line) => line,
            Err(e) => format!("stopped with an error: {e}"),
        }
    }
}

/// The pump's handler: every packet goes back to its sender.
struct PumpEcho {
    errors: Arc<ServerErrors>,
}

impl Handler for PumpEcho {
    fn on_packet(&mut self, ctx: &mut Context<'_>, packet: &Packet) {
        match packet.from() {
            Some(from) => {
                if let Err(e) = ctx.send_to(from, packet.data()) {
                    self.errors.record(e);
                }
            }
            None => self
                .errors
                .record(io::Error::from_raw_os_error(packet.errno())),
        }
    }

    fn on_error(&mut self, _: &mut Context<'_>, error: &Error) {
        self.errors.record(error);
    }
}

fn run_pump_server(options: PumpOptions, ready: mpsc::Sender<Ready>) -> io::Result<String> {
    let errors = Arc::new(ServerErrors::default());
    let mut reactor = Reactor::new()?;
    let pump = reactor.pump(
        "udp://127.0.0.1:0",
        options,
        PumpEcho {
            errors: errors.clone(),
        },
    )?;
    let addr = reactor.handle(pump).expect("just opened").local_addr()?;
    let stop = StopSignal::Remote(reactor.remote()?);
    let _ = ready.send(Ready { addr, stop });
    reactor.run()?;
    let stats = reactor.pump_stats(pump).unwrap_or_default();
    Ok(format!(
        "pump received {}, delivered {}, dropped {}, truncated {}, failed receives {}; {}",
        stats.received(),
        stats.delivered(),
        stats.dropped(),
        stats.truncated(),
        stats.errors(),
        errors.describe()
    ))
}

/// The reactor-thread server's handler: every datagram goes back to its sender.
struct DatagramEcho {
    errors: Arc<ServerErrors>,
    echoed: u64,
}

impl Handler for DatagramEcho {
    fn on_datagram(&mut self, ctx: &mut Context<'_>, data: &[u8], from: &Address) {
        match ctx.send_to(from, data) {
            Ok(()) => self.echoed += 1,
            Err(e) => self.errors.record(e),
        }
    }

    fn on_error(&mut self, _: &mut Context<'_>, error: &Error) {
        self.errors.record(error);
    }
}

fn run_reactor_thread_server(ready: mpsc::Sender<Ready>) -> io::Result<String> {
    let errors = Arc::new(ServerErrors::default());
    let mut reactor = Reactor::new()?;
    let socket = reactor.bind(
        "udp://127.0.0.1:0",
        Options::new(),
        DatagramEcho {
            errors: errors.clone(),
            echoed: 0,
        },
    )?;
    let addr = reactor.handle(socket).expect("just opened").local_addr()?;
    let stop = StopSignal::Remote(reactor.remote()?);
    let _ = ready.send(Ready { addr, stop });
    reactor.run()?;
    let echoed = reactor
        .handler_mut::<DatagramEcho>(socket)
        .map_or("?".into(), |echo| echo.echoed.to_string());
    Ok(format!("echoed {echoed}; {}", errors.describe()))
}

fn run_std_server(ready: mpsc::Sender<Ready>) -> io::Result<String> {
    let errors = ServerErrors::default();
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(STOP_POLL_INTERVAL))?;
    let flag = Arc::new(AtomicBool::new(false));
    let addr = socket.local_addr()?;
    let _ = ready.send(Ready {
        addr,
        stop: StopSignal::Flag(flag.clone()),
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut echoed = 0u64;
    while !flag.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => match socket.send_to(&buf[..n], from) {
                Ok(_) => echoed += 1,
                Err(e) => errors.record(e),
            },
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => errors.record(e),
        }
    }
    Ok(format!("echoed {echoed}; {}", errors.describe()))
}

// ----- batched datagram I/O for the clients --------------------------------------------

/// Sends `count` datagrams of `size` bytes, laid out back to back in `buf`, on a connected
/// socket, in as few `sendmmsg` calls as it takes.
fn send_datagrams(fd: RawFd, buf: &[u8], size: usize, count: usize) -> io::Result<()> {
    assert!(count <= CLIENT_BATCH && buf.len() >= count * size);
    // SAFETY: all-zero iovec and mmsghdr values are valid empty ones.
    let mut iovecs: [libc::iovec; CLIENT_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut headers: [libc::mmsghdr; CLIENT_BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..count {
        iovecs[i] = libc::iovec {
            iov_base: buf[i * size..].as_ptr() as *mut libc::c_void,
            iov_len: size,
        };
        headers[i].msg_hdr.msg_iov = &mut iovecs[i];
        headers[i].msg_hdr.msg_iovlen = 1;
    }
    let mut sent = 0;
    while sent < count {
        // SAFETY: every header points at an iovec over `buf`, valid for reads for the call;
        // the socket is connected, so no names are needed.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                headers[sent..].as_mut_ptr(),
                (count - sent) as libc::c_uint,
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        sent += n as usize;
    }
    Ok(())
}

/// `UDP_SEGMENT` from `linux/udp.h` (not in the `libc` crate for this target).
const UDP_SEGMENT: libc::c_int = 103;

/// Makes every send of more than `size` bytes on `fd` leave as datagrams of `size` bytes
/// (UDP generic segmentation offload); false if the kernel refuses.
fn segment_sends(fd: RawFd, size: usize) -> bool {
    let size = size as libc::c_int;
    // SAFETY: UDP_SEGMENT reads one c_int from a pointer valid for its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            UDP_SEGMENT,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// Sends `count` datagrams of `size` bytes, back to back in `buf`, on a connected socket
/// set up by [`segment_sends`]: one `send` per 64 datagrams (the kernel's segment limit) or
/// per 64 KB.
fn send_segmented(fd: RawFd, buf: &[u8], size: usize, count: usize) -> io::Result<()> {
    let per_send = (65_000 / size).clamp(1, 64);
    let mut sent = 0;
    while sent < count {
        let n = (count - sent).min(per_send);
        let chunk = &buf[sent * size..][..n * size];
        // SAFETY: `chunk` is valid for reads of its length for the call.
        let rc = unsafe { libc::send(fd, chunk.as_ptr().cast(), chunk.len(), 0) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        sent += n;
    }
    Ok(())
}

/// Waits (up to the socket's read timeout) for a datagram, then takes up to
/// [`CLIENT_BATCH`] of those waiting in one `recvmmsg`: datagram `i` lands in
/// `buf[i * size..][..size]` and its length (`usize::MAX` if it was cut) in `lens[i]`.
fn receive_datagrams(
    fd: RawFd,
    buf: &mut [u8],
    size: usize,
    lens: &mut [usize; CLIENT_BATCH],
) -> io::Result<usize> {
    assert!(buf.len() >= CLIENT_BATCH * size);
    // SAFETY: all-zero iovec and mmsghdr values are valid empty ones.
    let mut iovecs: [libc::iovec; CLIENT_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut headers: [libc::mmsghdr; CLIENT_BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..CLIENT_BATCH {
        iovecs[i] = libc::iovec {
            iov_base: buf[i * size..].as_mut_ptr().cast(),
            iov_len: size,
        };
        headers[i].msg_hdr.msg_iov = &mut iovecs[i];
        headers[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: every header points at an iovec over a distinct slot of `buf`, valid for
    // writes for the whole call. MSG_WAITFORONE: wait for the first, take what is there.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            headers.as_mut_ptr(),
            CLIENT_BATCH as libc::c_uint,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for (len, header) in lens.iter_mut().zip(&headers[..n]) {
        *len = if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            usize::MAX
        } else {
            header.msg_len as usize
        };
    }
    Ok(n)
}

// ----- the load generator --------------------------------------------------------------

/// What a client knows about one sequence number (modulo [`RING`]).
#[derive(Copy, Clone, PartialEq, Eq)]
enum Slot {
    Free,
    InFlight,
    WrittenOff,
}

/// What one client saw in one run.
#[derive(Default, Clone, Copy)]
struct ClientOutcome {
    /// Echoes received while the run was measured.
    measured: u64,
    sent: u64,
    /// Echoes received in all, including the drain at the end and late ones.
    echoed: u64,
    /// Echoes of datagrams already written off as lost.
    late: u64,
    /// Echoes of datagrams never sent, sent twice, cut or not ours.
    bogus: u64,
    /// The client thread's CPU time while measured.
    cpu: Duration,
}

/// One client: a socket connected to the server and a window of datagrams in flight.
struct Client {
    id: u32,
    socket: UdpSocket,
    size: usize,
    window: usize,
    slots: Vec<Slot>,
    next_seq: u64,
    /// No datagram below this one is still in flight.
    low: u64,
    in_flight: usize,
    outcome: ClientOutcome,
    send_buf: Vec<u8>,
    receive_buf: Vec<u8>,
    lens: [usize; CLIENT_BATCH],
    /// Whether sends go out segmented ([`segment_sends`]) rather than by `sendmmsg`.
    segmented: bool,
}

impl Client {
    fn new(id: u32, server: SocketAddr, config: &Config) -> Client {
        let (window, size) = (config.window, config.size);
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a client socket");
        socket.connect(server).expect("connecting a client socket");
        let segmented = config.client_segmentation && segment_sends(socket.as_raw_fd(), size);
        socket
            .set_read_timeout(Some(LOSS_TIMEOUT))
            .expect("setting a read timeout");
        Client {
            id,
            socket,
            size,
            window,
            slots: vec![Slot::Free; RING],
            next_seq: 0,
            low: 0,
            in_flight: 0,
            outcome: ClientOutcome::default(),
            send_buf: vec![0; CLIENT_BATCH * size],
            receive_buf: vec![0; CLIENT_BATCH * size],
            lens: [0; CLIENT_BATCH],
            segmented,
        }
    }

    /// Sends new datagrams until the window is full.
    fn fill_window(&mut self) {
        while self.in_flight < self.window {
            let count = (self.window - self.in_flight).min(CLIENT_BATCH);
            for i in 0..count {
                let seq = self.next_seq + i as u64;
                let datagram = &mut self.send_buf[i * self.size..][..self.size];
                datagram[..4].copy_from_slice(&self.id.to_le_bytes());
                datagram[4..HEADER].copy_from_slice(&seq.to_le_bytes());
                // A datagram written off a whole ring ago is forgotten: it stays lost.
                self.slots[seq as usize % RING] = Slot::InFlight;
            }
            let fd = self.socket.as_raw_fd();
            if self.segmented {
                send_segmented(fd, &self.send_buf, self.size, count)
            } else {
                send_datagrams(fd, &self.send_buf, self.size, count)
            }
            .unwrap_or_else(|e| panic!("client {}: send failed: {e}", self.id));
            self.next_seq += count as u64;
            self.in_flight += count;
            self.outcome.sent += count as u64;
        }
    }

    /// Receives what has come back (waiting up to [`LOSS_TIMEOUT`] for the first); false if
    /// nothing came.
    fn receive(&mut self) -> bool {
        let fd = self.socket.as_raw_fd();
        let n = match receive_datagrams(fd, &mut self.receive_buf, self.size, &mut self.lens) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return true,
            Err(e) => panic!("client {}: receive failed: {e}", self.id),
        };
        for i in 0..n {
            let datagram = &self.receive_buf[i * self.size..][..self.size];
            let id = u32::from_le_bytes(datagram[..4].try_into().expect("4 bytes"));
            let seq = u64::from_le_bytes(datagram[4..HEADER].try_into().expect("8 bytes"));
            self.take_echo(self.lens[i] == self.size && id == self.id, seq);
        }
        true
    }

    fn take_echo(&mut self, well_formed: bool, seq: u64) {
        if !well_formed || seq >= self.next_seq || self.next_seq - seq > RING as u64 {
            self.outcome.bogus += 1;
            return;
        }
        let slot = &mut self.slots[seq as usize % RING];
        match *slot {
            Slot::InFlight => {
                self.in_flight -= 1;
                self.outcome.echoed += 1;
            }
            Slot::WrittenOff => {
                self.outcome.echoed += 1;
                self.outcome.late += 1;
            }
            Slot::Free => {
                self.outcome.bogus += 1;
                return;
            }
        }
        *slot = Slot::Free;
        // Echoes come back in order on one flow: what is still in flight two windows before
        // this one is lost.
        let slack = 2 * self.window as u64;
        while self.low + slack < seq {
            let slot = &mut self.slots[self.low as usize % RING];
            if *slot == Slot::InFlight {
                *slot = Slot::WrittenOff;
                self.in_flight -= 1;
            }
            self.low += 1;
        }
    }

    /// Nothing came back for a while: everything in flight is lost.
    fn write_off_in_flight(&mut self) {
        for seq in self.low..self.next_seq {
            let slot = &mut self.slots[seq as usize % RING];
            if *slot == Slot::InFlight {
                *slot = Slot::WrittenOff;
            }
        }
        self.in_flight = 0;
        self.low = self.next_seq;
    }

    /// Keeps the window full until `stop`, then waits briefly for what is in flight.
    fn run(mut self, start: &Barrier, stop: &AtomicBool) -> ClientOutcome {
        start.wait();
        let cpu_before = cpu_time(libc::CLOCK_THREAD_CPUTIME_ID);
        self.fill_window();
        while !stop.load(Ordering::Relaxed) {
            if !self.receive() {
                self.write_off_in_flight();
            }
            self.fill_window();
        }
        self.outcome.measured = self.outcome.echoed;
        self.outcome.cpu = cpu_time(libc::CLOCK_THREAD_CPUTIME_ID).saturating_sub(cpu_before);
        let drain_until = Instant::now() + DRAIN_TIME;
        while self.in_flight > 0 && Instant::now() < drain_until && self.receive() {}
        self.outcome
    }
}

/// One measured run of one server.
struct RunOutcome {
    clients: Vec<ClientOutcome>,
    elapsed: Duration,
    /// CPU time the whole process used during the run.
    process_cpu: Duration,
    /// CPU time the whole machine was busy during the run, if known.
    system_busy: Option<Duration>,
    /// Datagrams the kernel dropped for full receive buffers during the run, if known.
    kernel_drops: Option<u64>,
}

impl RunOutcome {
    fn packets_per_sec(&self) -> f64 {
        let echoed: u64 = self.clients.iter().map(|c| c.measured).sum();
        echoed as f64 / self.elapsed.as_secs_f64()
    }

    fn client_cpu(&self) -> Duration {
        self.clients.iter().map(|c| c.cpu).sum()
    }

    /// The share of one CPU the server (everything but the clients) kept busy.
    fn server_busy(&self) -> f64 {
        let server = self.process_cpu.saturating_sub(self.client_cpu());
        server.as_secs_f64() / self.elapsed.as_secs_f64()
    }

    fn client_busy(&self) -> f64 {
        self.client_cpu().as_secs_f64() / self.elapsed.as_secs_f64()
    }

    /// The share of one CPU that other processes (and the kernel on their behalf) used.
    fn foreign_busy(&self) -> Option<f64> {
        let foreign = self.system_busy?.saturating_sub(self.process_cpu);
        Some(foreign.as_secs_f64() / self.elapsed.as_secs_f64())
    }

    fn server_ns_per_packet(&self) -> f64 {
        let server = self.process_cpu.saturating_sub(self.client_cpu());
        let packets = self.packets_per_sec() * self.elapsed.as_secs_f64();
        server.as_nanos() as f64 / packets.max(1.0)
    }
}

/// Runs the clients against `server` for `run_time`.
fn run_load(
    server: &RunningServer,
    config: &Config,
    run_time: Duration,
    cpu: Option<usize>,
) -> RunOutcome {
    let clients: Vec<Client> = (0..config.clients)
        .map(|id| Client::new(id as u32, server.addr, config))
        .collect();
    let start = Barrier::new(config.clients + 1);
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        let workers: Vec<_> = clients
            .into_iter()
            .map(|client| {
                let (start, stop) = (&start, &stop);
                scope.spawn(move || {
                    pin_to(cpu);
                    client.run(start, stop)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        let process_before = cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID);
        let system_busy_before = system_busy_time();
        let drops_before = udp_receive_buffer_drops();
        thread::sleep(run_time);
        stop.store(true, Ordering::Relaxed);
        let elapsed = began.elapsed();
        let process_cpu = cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID).saturating_sub(process_before);
        let system_busy = system_busy_time()
            .zip(system_busy_before)
            .map(|(after, before)| after.saturating_sub(before));
        let clients = workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
            .collect();
        // After the drain: what was dropped at the very end counts too.
        let kernel_drops = udp_receive_buffer_drops()
            .zip(drops_before)
            .map(|(after, before)| after.saturating_sub(before));
        RunOutcome {
            clients,
            elapsed,
            process_cpu,
            system_busy,
            kernel_drops,
        }
    })
}

// ----- measuring and reporting ---------------------------------------------------------

/// Runs every server `rounds` times, rotating the order each round. Returns the outcomes
/// per server, in the order of `servers`.
fn measure(servers: &[RunningServer], config: &Config, cpu: Option<usize>) -> Vec<Vec<RunOutcome>> {
    let mut outcomes: Vec<Vec<RunOutcome>> = servers.iter().map(|_| Vec::new()).collect();
    for round in 0..config.rounds {
        for offset in 0..servers.len() {
            let index = (round + offset) % servers.len();
            outcomes[index].push(run_load(&servers[index], config, config.run_time, cpu));
        }
    }
    outcomes
}

/// One server's figures: medians over the rounds, loss over all of them.
struct Summary {
    packets_per_sec: f64,
    rounds: Vec<f64>,
    loss: f64,
    kernel_drops: Option<u64>,
    worst_foreign_busy: Option<f64>,
    late: u64,
    bogus: u64,
    server_busy: f64,
    server_ns_per_packet: f64,
    client_busy: f64,
}

impl Summary {
    fn of(outcomes: &[RunOutcome]) -> Summary {
        let rounds: Vec<f64> = outcomes.iter().map(RunOutcome::packets_per_sec).collect();
        let all = || outcomes.iter().flat_map(|o| &o.clients);
        let sent: u64 = all().map(|c| c.sent).sum();
        let echoed: u64 = all().map(|c| c.echoed).sum();
        let busy: Vec<f64> = outcomes.iter().map(RunOutcome::server_busy).collect();
        let cost: Vec<f64> = outcomes
            .iter()
            .map(RunOutcome::server_ns_per_packet)
            .collect();
        let client: Vec<f64> = outcomes.iter().map(RunOutcome::client_busy).collect();
        Summary {
            packets_per_sec: median(&rounds),
            rounds,
            loss: sent.saturating_sub(echoed) as f64 / sent.max(1) as f64,
            kernel_drops: outcomes.iter().map(|o| o.kernel_drops).sum(),
            worst_foreign_busy: outcomes
                .iter()
                .map(RunOutcome::foreign_busy)
                .collect::<Option<Vec<f64>>>()
                .map(|busy| busy.into_iter().fold(0.0, f64::max)),
            late: all().map(|c| c.late).sum(),
            bogus: all().map(|c| c.bogus).sum(),
            server_busy: median(&busy),
            server_ns_per_packet: median(&cost),
            client_busy: median(&client),
        }
    }
}

fn print_table(config: &Config, servers: &[RunningServer], outcomes: &[Vec<RunOutcome>]) {
    println!();
    println!(
        "{} clients x {} datagrams of {} B in flight: median of {} x {:.1} s",
        config.clients,
        config.window,
        config.size,
        config.rounds,
        config.run_time.as_secs_f64()
    );
    println!(
        "  {:<18} {:>10} {:>7} {:>7} {:>8} {:>7} {:>8} {:>6}   every round (pkts/s)",
        "server", "pkts/s", "loss", "kdrops", "srv CPU", "ns/pkt", "cli CPU", "other"
    );
    let summaries: Vec<Summary> = outcomes.iter().map(|runs| Summary::of(runs)).collect();
    for (server, s) in servers.iter().zip(&summaries) {
        let rounds: Vec<String> = s.rounds.iter().map(|&r| thousands(r)).collect();
        println!(
            "  {:<18} {:>10} {:>6.2}% {:>7} {:>7.0}% {:>7.0} {:>7.0}% {:>6}   {}",
            server.kind.name(),
            thousands(s.packets_per_sec),
            s.loss * 100.0,
            s.kernel_drops.map_or("?".into(), |d| thousands(d as f64)),
            s.server_busy * 100.0,
            s.server_ns_per_packet,
            s.client_busy * 100.0,
            s.worst_foreign_busy
                .map_or("?".into(), |busy| format!("{:.0}%", busy * 100.0)),
            rounds.join("  ")
        );
    }
    let summary_of = |kind: ServerKind| {
        servers
            .iter()
            .zip(&summaries)
            .find(|(server, _)| server.kind == kind)
            .map(|(_, summary)| summary)
    };
    for pump in [
        ServerKind::Pump,
        ServerKind::PumpReusePort,
        ServerKind::PumpPreempting,
    ] {
        for other in [ServerKind::StdBlocking, ServerKind::ReactorThread] {
            if let (Some(a), Some(b)) = (summary_of(pump), summary_of(other)) {
                let label = format!("{} / {}", pump.name(), other.name());
                println!(
                    "  {label:<37} pkts/s {:>5.2}   server CPU per pkt {:>5.2}",
                    a.packets_per_sec / b.packets_per_sec,
                    a.server_ns_per_packet / b.server_ns_per_packet
                );
            }
        }
    }
    for (server, s) in servers.iter().zip(&summaries) {
        if s.late > 0 || s.bogus > 0 {
            println!(
                "  note: {}: {} late echoes (after being written off), {} unexpected",
                server.kind.name(),
                s.late,
                s.bogus
            );
        }
    }
}

fn main() {
    let config = Config::from_env();
    let cpus = choose_cpus(&config);
    let runs = config.rounds * ServerKind::ALL.len();
    println!(
        "udp echo benchmark: {} round(s) x {} servers x {:.1} s (~{:.0} s)",
        config.rounds,
        ServerKind::ALL.len(),
        config.run_time.as_secs_f64(),
        runs as f64 * config.run_time.as_secs_f64()
    );
    if let Some(cpus) = cpus {
        println!(
            "pinning: server threads (pump threads included) on CPU {}, client threads on CPU {}",
            cpus.server, cpus.client
        );
    }
    let (server_cpu, client_cpu) = (cpus.map(|c| c.server), cpus.map(|c| c.client));
    let servers: Vec<RunningServer> = ServerKind::ALL
        .into_iter()
        .map(|kind| RunningServer::start(kind, server_cpu))
        .collect();
    if !config.smoke_test {
        for server in &servers {
            run_load(server, &config, WARM_UP_TIME, client_cpu);
        }
    }
    let outcomes = measure(&servers, &config, client_cpu);
    print_table(&config, &servers, &outcomes);
    println!();
    println!("server bookkeeping after all runs:");
    for server in servers {
        let name = server.kind.name();
        println!("  {name:<18} {}", server.stop());
    }
}
