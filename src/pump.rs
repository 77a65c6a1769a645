//! UDP pumps (Event::Lib::UDPPump, done over): threads that block in `recvmmsg` on a
//! datagram socket and hand whole batches of packets to the reactor thread, where the
//! handler's `on_packet` runs and replies go out through the same socket.
//!
//! - Each thread takes up to `batch` datagrams per `recvmmsg` and sends them as one batch
//!   through a bounded crossbeam channel: one channel operation and at most one wakeup (the
//!   [`Waker`]) serve many packets. A batch's payloads share one allocation.
//! - N threads share one socket, or (with `reuse_port`) each has its own `SO_REUSEPORT`
//!   socket bound to the same address, so the kernel spreads flows across them.
//! - Threads run under `SCHED_BATCH` (Linux; [`PumpOptions::batch_scheduling`]): a thread
//!   woken by a packet while the reactor thread holds the CPU waits for it instead of
//!   preempting it, so on a busy core a wakeup takes a batch rather than one or two packets.
//!   What makes the pump cheaper per packet than a blocking loop is batching at both ends
//!   (`recvmmsg` in, `sendmmsg` out, one channel operation per batch, no wakeup while the
//!   reactor is busy).
//! - A full channel blocks the thread (default: nothing is lost in user space; the kernel's
//!   socket buffer absorbs the rest) or drops the batch and counts it.
//! - Closing the pump handle (or dropping the reactor) sets a stop flag, shuts the sockets
//!   down (which wakes threads blocked in `recvmmsg`), drains the channel until every
//!   thread has finished (which frees threads blocked sending) and joins every thread.
//!   Batches still queued are counted as dropped before `on_close`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use socket2::{SockRef, Socket};

use crate::sys;
use crate::waker::Waker;
use crate::Address;

/// What a pump thread does when the channel to the reactor is full.
///
/// ```
/// use eventmux::{PumpOptions, WhenFull};
///
/// assert_eq!(WhenFull::default(), WhenFull::Block);
/// // Telemetry: under overload a fresh sample beats a stale one, so drop (and count).
/// let options = PumpOptions::new().when_full(WhenFull::Drop);
/// # let _ = options;
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Wait for room (default): nothing is dropped in user space; meanwhile the kernel's
    /// socket buffer fills and, past it, the kernel drops (see `netstat -su`).
    #[default]
    Block,
    /// Drop the batch and count it in [`PumpStats::dropped`].
    Drop,
}

/// Options for [`Reactor::pump`](crate::Reactor::pump).
///
/// ```
/// use eventmux::{PumpOptions, WhenFull};
/// let options = PumpOptions::new().threads(4).reuse_port(true).batch(64).when_full(WhenFull::Drop);
/// println!("{options:?}"); // a builder: set, not read back
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PumpOptions {
    threads: usize,
    pub(crate) reuse_port: bool,
    batch: usize,
    buffer_size: usize,
    capacity: usize,
    when_full: WhenFull,
    socket_buffer: Option<usize>,
    batch_scheduling: bool,
}

impl Default for PumpOptions {
    fn default() -> PumpOptions {
        PumpOptions {
            threads: 1,
            reuse_port: false,
            batch: 32,
            buffer_size: 64 * 1024,
            capacity: 64,
            when_full: WhenFull::Block,
            socket_buffer: None,
            batch_scheduling: true,
        }
    }
}

impl PumpOptions {
    /// One thread, one socket, batches of 32, 64 KiB per datagram, 64 batches in flight,
    /// block when full, batch scheduling on.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, PumpOptions, Reactor};
    ///
    /// struct Sink;
    /// impl Handler for Sink {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let pump = reactor.pump("udp://127.0.0.1:0", PumpOptions::new(), Sink)?;
    /// println!("pumping on {}", reactor.local_addr(pump)?);
    /// # Ok(()) }
    /// ```
    pub fn new() -> PumpOptions {
        PumpOptions::default()
    }

    /// Receive threads (at least 1).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, PumpOptions, Reactor};
    ///
    /// struct Sink;
    /// impl Handler for Sink {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// // One receive thread per core, at most four; they share one socket.
    /// let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// let options = PumpOptions::new().threads(cores.min(4));
    /// reactor.pump("udp://127.0.0.1:0", options, Sink)?;
    /// # Ok(()) }
    /// ```
    pub fn threads(mut self, n: usize) -> PumpOptions {
        self.threads = n.max(1);
        self
    }

    /// Give each thread its own `SO_REUSEPORT` socket bound to the same address (UDP only).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, PumpOptions, Reactor};
    ///
    /// struct Sink;
    /// impl Handler for Sink {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// // Four sockets on one port (0 picks it once for all four); the kernel spreads flows
    /// // across them.
    /// let options = PumpOptions::new().threads(4).reuse_port(true);
    /// let pump = reactor.pump("udp://127.0.0.1:0", options, Sink)?;
    /// assert_ne!(reactor.local_addr(pump)?.port(), 0);
    /// # Ok(()) }
    /// ```
    pub fn reuse_port(mut self, on: bool) -> PumpOptions {
        self.reuse_port = on;
        self
    }

    /// Datagrams taken per `recvmmsg` and handed over per batch (1 to 256).
    ///
    /// ```
    /// use eventmux::PumpOptions;
    ///
    /// // Many small packets (DNS, statsd): up to 128 per recvmmsg and per handover. With
    /// // 2 KiB buffers that is 256 KiB of receive buffer per thread.
    /// let options = PumpOptions::new().batch(128).buffer_size(2048);
    /// # let _ = options;
    /// ```
    pub fn batch(mut self, n: usize) -> PumpOptions {
        self.batch = n.clamp(1, 256);
        self
    }

    /// Receive buffer per datagram (default 64 KiB, UDP's maximum); a larger datagram is
    /// delivered truncated and flagged.
    ///
    /// ```
    /// use eventmux::PumpOptions;
    ///
    /// // Datagrams are at most one Ethernet frame here; a larger one arrives cut and flagged
    /// // (`Packet::is_truncated`), and is counted in `PumpStats::truncated`.
    /// let options = PumpOptions::new().buffer_size(1500);
    /// # let _ = options;
    /// ```
    pub fn buffer_size(mut self, bytes: usize) -> PumpOptions {
        self.buffer_size = bytes.max(1);
        self
    }

    /// Batches the channel holds (at least 1): the bound on memory between the threads
    /// and the reactor.
    ///
    /// ```
    /// use eventmux::PumpOptions;
    ///
    /// // Ride out longer reactor stalls: up to 256 batches of 32 packets in flight.
    /// let options = PumpOptions::new().capacity(256).batch(32);
    /// # let _ = options;
    /// ```
    pub fn capacity(mut self, batches: usize) -> PumpOptions {
        self.capacity = batches.max(1);
        self
    }

    /// What a thread does when the channel is full.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, PumpOptions, Reactor, WhenFull};
    ///
    /// struct Metrics;
    /// impl Handler for Metrics {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// // A metrics sink: drop what the reactor cannot keep up with, and count it.
    /// let options = PumpOptions::new().when_full(WhenFull::Drop);
    /// let pump = reactor.pump("udp://127.0.0.1:0", options, Metrics)?;
    /// assert_eq!(reactor.pump_stats(pump).unwrap().dropped(), 0);
    /// # Ok(()) }
    /// ```
    pub fn when_full(mut self, policy: WhenFull) -> PumpOptions {
        self.when_full = policy;
        self
    }

    /// The kernel's receive buffer per socket (`SO_RCVBUF`; capped by
    /// `net.core.rmem_max`). Bursts beyond it are dropped by the kernel before any thread
    /// sees them (`UdpRcvbufErrors` in `nstat`); the system default is about 200 KiB.
    ///
    /// ```
    /// use eventmux::PumpOptions;
    ///
    /// // Let the kernel absorb bursts of a few MiB (raise net.core.rmem_max to get all of it).
    /// let options = PumpOptions::new().socket_buffer(4 << 20);
    /// # let _ = options;
    /// ```
    pub fn socket_buffer(mut self, bytes: usize) -> PumpOptions {
        self.socket_buffer = Some(bytes);
        self
    }

    /// Run the receive threads under the `SCHED_BATCH` policy (default on; Linux only,
    /// ignored elsewhere).
    ///
    /// On by default because it is what batching needs when the threads share a CPU with
    /// the reactor thread: a normal thread woken by an arriving packet preempts the reactor
    /// at once, takes the one or two packets there are, hands them over and sleeps again,
    /// so the two threads switch every few packets. Under `SCHED_BATCH` the woken thread
    /// waits until the reactor blocks (or its time slice ends) and then takes everything
    /// that arrived meanwhile. How much that buys depends on the load: with
    /// `cargo bench --bench udp` (all server threads on one CPU) it measured 1.6 times the
    /// packets per second before the waker stopped signalling a busy reactor and the load
    /// generator moved to `UDP_SEGMENT`; now both settings are within noise of each other
    /// (77 against 67 packets per pump-thread context switch, and packets per second within
    /// 5% either way from run to run). An idle CPU still runs the thread at once, so
    /// latency is only traded on a busy CPU, and the kernel's socket buffer (see
    /// [`socket_buffer`](Self::socket_buffer)) holds what arrives in the wait. Turn it off
    /// when a pump must preempt a busy reactor as soon as a packet lands.
    ///
    /// ```
    /// use eventmux::PumpOptions;
    ///
    /// // Latency first: a pump thread may preempt a busy reactor as soon as a packet lands.
    /// let options = PumpOptions::new().batch_scheduling(false);
    /// # let _ = options;
    /// ```
    pub fn batch_scheduling(mut self, on: bool) -> PumpOptions {
        self.batch_scheduling = on;
        self
    }
}

/// One received datagram (UDPPump's `from`, `buffer`, `len` and `errno`), given to
/// [`Handler::on_packet`](crate::Handler::on_packet).
#[derive(Clone, Debug)]
pub struct Packet {
    from: Option<Address>,
    data: Bytes,
    len: usize,
    truncated: bool,
    errno: i32,
}

impl Packet {
    /// A failed receive: no sender, no data, its errno.
    pub(crate) fn failed(errno: i32) -> Packet {
        Packet {
            from: None,
            data: Bytes::new(),
            len: 0,
            truncated: false,
            errno,
        }
    }

    /// The sender (`None` for a failed receive).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::net::SocketAddr;
    /// use eventmux::{Context, Handler, Packet};
    ///
    /// /// Counts packets per sender, e.g. to rate-limit them.
    /// #[derive(Default)]
    /// struct PerSender { counts: HashMap<SocketAddr, u64> }
    /// impl Handler for PerSender {
    ///     fn on_packet(&mut self, _: &mut Context<'_>, packet: &Packet) {
    ///         if let Some(sender) = packet.from().and_then(|from| from.as_inet()) {
    ///             *self.counts.entry(sender).or_default() += 1;
    ///         }
    ///     }
    /// }
    /// ```
    pub fn from(&self) -> Option<&Address> {
        self.from.as_ref()
    }

    /// The payload. Cheap to clone and keep: it shares its batch's allocation.
    ///
    /// ```
    /// use std::collections::VecDeque;
    /// use bytes::Bytes;
    /// use eventmux::{Context, Handler, Packet};
    ///
    /// /// Keeps the last 100 payloads for replay, without copying them.
    /// struct Recent { kept: VecDeque<Bytes> }
    /// impl Handler for Recent {
    ///     fn on_packet(&mut self, _: &mut Context<'_>, packet: &Packet) {
    ///         if self.kept.len() == 100 {
    ///             self.kept.pop_front();
    ///         }
    ///         self.kept.push_back(packet.data().clone());
    ///     }
    /// }
    /// ```
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The datagram's length as received: larger than `data().len()` if truncated, 0 for a
    /// failed receive.
    ///
    /// ```
    /// use eventmux::{Context, Handler, Packet};
    ///
    /// /// Counts traffic as it was sent, including what truncation cut off.
    /// struct Volume { bytes: u64 }
    /// impl Handler for Volume {
    ///     fn on_packet(&mut self, _: &mut Context<'_>, packet: &Packet) {
    ///         self.bytes += packet.len() as u64;
    ///     }
    /// }
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the datagram was empty (or the receive failed).
    ///
    /// ```
    /// use eventmux::{Context, Handler, Packet};
    ///
    /// /// Answers an empty datagram (a keepalive) with an empty one.
    /// struct Keepalive;
    /// impl Handler for Keepalive {
    ///     fn on_packet(&mut self, ctx: &mut Context<'_>, packet: &Packet) {
    ///         let Some(from) = packet.from() else {
    ///             return; // a failed receive is empty too
    ///         };
    ///         if packet.is_empty() {
    ///             let _ = ctx.send_to(from, b"");
    ///         }
    ///     }
    /// }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the datagram was larger than the pump's buffer size and was cut.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::net::UdpSocket;
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, Packet, PumpOptions, Reactor};
    ///
    /// /// Refuses an oversized request rather than act on part of it.
    /// struct Strict;
    /// impl Handler for Strict {
    ///     fn on_packet(&mut self, ctx: &mut Context<'_>, packet: &Packet) {
    ///         if let (Some(from), true) = (packet.from(), packet.is_truncated()) {
    ///             let _ = ctx.send_to(from, format!("too large: {}", packet.len()).as_bytes());
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let pump = reactor.pump("udp://127.0.0.1:0", PumpOptions::new().buffer_size(512), Strict)?;
    /// let client = UdpSocket::bind("127.0.0.1:0")?;
    /// # client.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// client.send_to(&[0; 2000], reactor.local_addr(pump)?)?;
    /// reactor.run_once(Some(Duration::from_secs(5)))?; // the packet arrives, the answer leaves
    /// let mut answer = [0; 32];
    /// let n = client.recv(&mut answer)?;
    /// assert_eq!(&answer[..n], b"too large: 2000");
    /// # Ok(()) }
    /// ```
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The receive's errno (0 when it succeeded), e.g. `ECONNREFUSED` on a connected socket.
    ///
    /// ```
    /// use eventmux::{Context, Handler, Packet};
    ///
    /// /// Logs failed receives (on a connected socket, ECONNREFUSED: the peer is not there).
    /// struct Watchful;
    /// impl Handler for Watchful {
    ///     fn on_packet(&mut self, ctx: &mut Context<'_>, packet: &Packet) {
    ///         if packet.errno() != 0 {
    ///             let error = std::io::Error::from_raw_os_error(packet.errno());
    ///             eprintln!("{}: receive failed: {error}", ctx.token());
    ///         }
    ///     }
    /// }
    /// ```
    pub fn errno(&self) -> i32 {
        self.errno
    }
}

/// A pump's counters, read with [`Reactor::pump_stats`](crate::Reactor::pump_stats) or,
/// from its own handler, [`Context::pump_stats`](crate::Context::pump_stats); in `on_close`
/// the latter gives the final counts, after the threads have stopped.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PumpStats {
    received: u64,
    delivered: u64,
    dropped: u64,
    truncated: u64,
    errors: u64,
}

impl PumpStats {
    /// Datagrams the threads received.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::net::UdpSocket;
    /// use eventmux::{Context, Handler, Packet, PumpOptions, Reactor};
    ///
    /// /// Stops the reactor after three packets.
    /// struct Three(u32);
    /// impl Handler for Three {
    ///     fn on_packet(&mut self, ctx: &mut Context<'_>, _: &Packet) {
    ///         self.0 += 1;
    ///         if self.0 == 3 {
    ///             ctx.stop();
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let pump = reactor.pump("udp://127.0.0.1:0", PumpOptions::new(), Three(0))?;
    /// let client = UdpSocket::bind("127.0.0.1:0")?;
    /// for _ in 0..3 {
    ///     client.send_to(b"tick", reactor.local_addr(pump)?)?;
    /// }
    /// reactor.run()?;
    /// assert_eq!(reactor.pump_stats(pump).unwrap().received(), 3);
    /// # Ok(()) }
    /// ```
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets handed to `on_packet`.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, PumpOptions, Reactor, TimerId};
    ///
    /// /// Logs its counters every ten seconds.
    /// struct Metered;
    /// impl Handler for Metered {
    ///     fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
    ///         if let Some(stats) = ctx.pump_stats() {
    ///             println!("{} of {} delivered", stats.delivered(), stats.received());
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let pump = reactor.pump("udp://127.0.0.1:0", PumpOptions::new(), Metered)?;
    /// reactor.handle(pump).unwrap().set_interval(Duration::from_secs(10))?;
    /// # Ok(()) }
    /// ```
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Datagrams dropped in user space: a full channel under [`WhenFull::Drop`], or still
    /// queued when the pump closed (counted before `on_close`).
    ///
    /// ```
    /// use eventmux::{CloseReason, Context, Handler};
    ///
    /// /// Says at close what overload cost (with `WhenFull::Drop`, or batches left queued).
    /// struct Telemetry;
    /// impl Handler for Telemetry {
    ///     fn on_close(&mut self, ctx: &mut Context<'_>, _: CloseReason) {
    ///         match ctx.pump_stats() {
    ///             Some(stats) if stats.dropped() > 0 => eprintln!("{} dropped", stats.dropped()),
    ///             _ => {}
    ///         }
    ///     }
    /// }
    /// ```
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Datagrams larger than the buffer size (delivered cut).
    ///
    /// ```
    /// use eventmux::{CloseReason, Context, Handler};
    ///
    /// /// Warns when the pump's buffer size was set too small.
    /// struct Buffers;
    /// impl Handler for Buffers {
    ///     fn on_close(&mut self, ctx: &mut Context<'_>, _: CloseReason) {
    ///         if let Some(stats) = ctx.pump_stats().filter(|stats| stats.truncated() > 0) {
    ///             eprintln!("{} datagrams cut: raise buffer_size", stats.truncated());
    ///         }
    ///     }
    /// }
    /// ```
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    /// Receives that failed (delivered as packets with an errno).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, PumpOptions, Reactor, Token};
    ///
    /// struct Sink;
    /// impl Handler for Sink {}
    ///
    /// /// A health check: healthy while the pump runs and no receive has failed.
    /// fn healthy(reactor: &Reactor, pump: Token) -> bool {
    ///     reactor.pump_stats(pump).is_some_and(|stats| stats.errors() == 0)
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let pump = reactor.pump("udp://127.0.0.1:0", PumpOptions::new(), Sink)?;
    /// assert!(healthy(&reactor, pump));
    /// # Ok(()) }
    /// ```
    pub fn errors(&self) -> u64 {
        self.errors
    }
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    truncated: AtomicU64,
    errors: AtomicU64,
}

/// Packets received by one `recvmmsg`, handed over together.
pub(crate) struct Batch {
    pub(crate) packets: Vec<Packet>,
}

/// The threads of one pump handle, owned by its entry.
pub(crate) struct Pump {
    batches: Option<Receiver<Batch>>,
    threads: Vec<JoinHandle<()>>,
    sockets: Vec<Arc<Socket>>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl Pump {
    /// Starts `options.threads` threads over `sockets` (shared round-robin).
    pub(crate) fn start(
        sockets: Vec<Socket>,
        options: &PumpOptions,
        waker: Arc<Waker>,
    ) -> io::Result<Pump> {
        let (sender, receiver) = crossbeam_channel::bounded(options.capacity);
        let sockets: Vec<Arc<Socket>> = sockets.into_iter().map(Arc::new).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut pump = Pump {
            batches: Some(receiver),
            threads: Vec::new(),
            sockets,
            stop,
            counters,
        };
        for i in 0..options.threads {
            let thread = PumpThread {
                socket: pump.sockets[i % pump.sockets.len()].clone(),
                batches: sender.clone(),
                waker: waker.clone(),
                stop: pump.stop.clone(),
                counters: pump.counters.clone(),
                options: *options,
            };
            let handle = std::thread::Builder::new()
                .name(format!("eventmux-pump-{i}"))
                .spawn(move || thread.run())?;
            pump.threads.push(handle);
        }
        Ok(pump)
    }

    /// Up to `max` batches that are ready, without waiting.
    pub(crate) fn take(&self, max: usize) -> impl Iterator<Item = Batch> + '_ {
        self.batches.iter().flat_map(|r| r.try_iter()).take(max)
    }

    /// Whether batches are still waiting.
    pub(crate) fn has_more(&self) -> bool {
        self.batches.as_ref().is_some_and(|r| !r.is_empty())
    }

    pub(crate) fn count_delivered(&self, n: u64) {
        self.counters.delivered.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn count_error(&self) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_dropped(&self, n: u64) {
        self.counters.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Stops and joins the threads (see `Drop`); the final counters.
    pub(crate) fn finish(self) -> PumpStats {
        let counters = self.counters.clone();
        drop(self);
        counters.snapshot()
    }

    pub(crate) fn stats(&self) -> PumpStats {
        self.counters.snapshot()
    }
}

impl Counters {
    /// The counters as they stand.
    fn snapshot(&self) -> PumpStats {
        PumpStats {
            received: self.received.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            truncated: self.truncated.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Pump {
    /// Stops the threads and joins them, counting every batch still queued as dropped,
    /// including those a thread was still blocked sending when the stop came.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for socket in &self.sockets {
            // Wakes threads blocked in recvmmsg (it returns at once after a shutdown).
            let _ = socket.shutdown(std::net::Shutdown::Read);
        }
        let Some(batches) = self.batches.take() else {
            return;
        };
        // Drain while threads finish: a thread blocked on a full channel gets room, sends,
        // sees the stop flag and exits. Receiving with a timeout sleeps rather than spins.
        let mut queued = 0;
        while !self.threads.iter().all(JoinHandle::is_finished) {
            let pause = std::time::Duration::from_millis(1);
            if let Ok(batch) = batches.recv_timeout(pause) {
                queued += batch.packets.len();
            }
        }
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                log::error!("a pump thread panicked");
            }
        }
        // Every sender is gone now: this is the last of it.
        queued += batches.try_iter().map(|b| b.packets.len()).sum::<usize>();
        self.count_dropped(queued as u64);
    }
}

/// What one pump thread owns.
struct PumpThread {
    socket: Arc<Socket>,
    batches: Sender<Batch>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    options: PumpOptions,
}

impl PumpThread {
    fn run(self) {
        // A signal meant for the reactor's signalfd must never land here instead.
        sys::signal::block_all();
        if self.options.batch_scheduling {
            set_batch_scheduling();
        }
        let slot = self.options.buffer_size;
        let mut buf = vec![0u8; slot * self.options.batch];
        let mut received = Vec::with_capacity(self.options.batch);
        let mut failures = 0u32;
        while !self.stop.load(Ordering::SeqCst) {
            let fd = self.socket.as_fd();
            let batch = match sys::fd::recv_datagrams(fd, &mut buf, slot, &mut received) {
                Ok(()) => {
                    failures = 0;
                    if self.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    self.collect(&buf, slot, &received)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) if self.stop.load(Ordering::SeqCst) => break,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EBADF | libc::ENOTSOCK | libc::EINVAL)
                    ) =>
                {
                    log::error!("pump thread: the socket is unusable ({e}); stopping");
                    break;
                }
                Err(e) => {
                    failures += 1;
                    if failures > 1 {
                        // A persistent error must not spin a core.
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    Batch {
                        packets: vec![Packet::failed(e.raw_os_error().unwrap_or(0))],
                    }
                }
            };
            if !self.hand_over(batch) {
                break;
            }
        }
    }

    /// Copies a batch's payloads into one shared allocation and makes its packets.
    fn collect(&self, buf: &[u8], slot: usize, received: &[sys::fd::Received]) -> Batch {
        let total: usize = received.iter().map(|r| r.len.min(slot)).sum();
        let mut arena = Vec::with_capacity(total);
        for (i, r) in received.iter().enumerate() {
            arena.extend_from_slice(&buf[i * slot..][..r.len.min(slot)]);
        }
        let arena = Bytes::from(arena);
        let mut at = 0;
        let mut truncated = 0;
        let packets = received
            .iter()
            .map(|r| {
                let kept = r.len.min(slot);
                truncated += u64::from(r.truncated);
                let packet = Packet {
                    from: Some(Address::from_sockaddr(r.from.clone())),
                    data: arena.slice(at..at + kept),
                    len: r.len,
                    truncated: r.truncated,
                    errno: 0,
                };
                at += kept;
                packet
            })
            .collect();
        self.counters
            .received
            .fetch_add(received.len() as u64, Ordering::Relaxed);
        self.counters
            .truncated
            .fetch_add(truncated, Ordering::Relaxed);
        Batch { packets }
    }

    /// Sends a batch to the reactor and wakes it; false when the pump is closing.
    fn hand_over(&self, batch: Batch) -> bool {
        let count = batch.packets.len() as u64;
        let sent = match self.options.when_full {
            WhenFull::Block => self.batches.send(batch).is_ok(),
            WhenFull::Drop => match self.batches.try_send(batch) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    self.counters.dropped.fetch_add(count, Ordering::Relaxed);
                    return true;
                }
                Err(TrySendError::Disconnected(_)) => false,
            },
        };
        if sent {
            self.waker.wake();
        }
        sent
    }
}

/// Moves the calling pump thread to `SCHED_BATCH`; a failure (a sandbox that forbids
/// `sched_setscheduler`) only costs batching, so it is logged, not reported.
fn set_batch_scheduling() {
    if let Err(e) = sys::sched::set_batch_policy() {
        log::debug!("pump thread: SCHED_BATCH refused ({e}); running under the default policy");
    }
}

/// Creates the sockets of a pump bound to `addr`: one, or one per thread with
/// `SO_REUSEPORT`.
pub(crate) fn bind_sockets(
    addr: &socket2::SockAddr,
    options: &PumpOptions,
) -> io::Result<Vec<Socket>> {
    let domain = socket2::Domain::from(i32::from(addr.family()));
    let count = if options.reuse_port {
        options.threads
    } else {
        1
    };
    let mut sockets = Vec::with_capacity(count);
    let mut bind_to = addr.clone();
    for _ in 0..count {
        let socket = Socket::new(domain, socket2::Type::DGRAM, None)?;
        if options.reuse_port {
            socket.set_reuse_port(true)?;
        }
        if let Some(bytes) = options.socket_buffer {
            socket.set_recv_buffer_size(bytes)?;
        }
        socket.bind(&bind_to)?;
        // Port 0: every further socket joins the port the first one got.
        bind_to = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// The descriptor the reactor sends replies through: a duplicate of the first socket (the
/// same open socket, still blocking for the threads; the reactor sends with MSG_DONTWAIT).
pub(crate) fn reply_fd(sockets: &[Socket]) -> io::Result<OwnedFd> {
    Ok(SockRef::from(&sockets[0]).try_clone()?.into())
}
