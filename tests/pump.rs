//! UDP pumps (`Reactor::pump`, Event::Lib::UDPPump): receive threads hand packets to the
//! reactor thread, where `on_packet` sees each one with its sender, length, truncation flag
//! and errno; replies leave through the pumped socket; `WhenFull::Block` loses nothing in
//! user space and `WhenFull::Drop` counts exactly what it drops; closing a pump handle, or
//! dropping the reactor, stops and joins its threads.
//!
//! The reactor stays on the test thread; senders are `std` sockets, on the test thread or in
//! threads of their own. Pump threads are counted by name (`eventmux-pump-N`) in
//! `/proc/self/task`, which is process-wide: the tests that count them hold [`PUMPS`]
//! exclusively, every other test that starts a pump holds it shared.

mod util;

use util::udp_peer;

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

use eventmux::{
    Address, CloseReason, Context, Error, Handler, IntoHandler, Packet, PumpOptions, PumpStats,
    Reactor, Token, WhenFull,
};
use util::{run_until, DEADLINE};

// ----- helpers ---------------------------------------------------------------------------

/// Held shared by every test that starts a pump, and exclusively by the tests that count
/// pump threads (or that need no other `SO_REUSEPORT` group in the process).
static PUMPS: RwLock<()> = RwLock::new(());

fn shared_pumps() -> RwLockReadGuard<'static, ()> {
    PUMPS.read().unwrap_or_else(PoisonError::into_inner)
}

/// Exclusive access, once the pump threads of earlier tests are gone: from here on, every
/// pump thread in the process is the caller's.
fn exclusive_pumps() -> RwLockWriteGuard<'static, ()> {
    let guard = PUMPS.write().unwrap_or_else(PoisonError::into_inner);
    wait_for_pump_threads(0, "the pump threads of earlier tests");
    guard
}

/// Thread ids of this process's threads named `eventmux-pump-*`.
fn pump_thread_ids() -> Vec<libc::pid_t> {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with("eventmux-pump-"))
        })
        .filter_map(|task| task.file_name().to_string_lossy().parse().ok())
        .collect()
}

fn pump_threads() -> usize {
    pump_thread_ids().len()
}

/// The scheduling policy of every pump thread.
fn pump_thread_policies() -> Vec<i32> {
    pump_thread_ids()
        .into_iter()
        // SAFETY: sched_getscheduler only reads the policy of the thread `tid`.
        .map(|tid| unsafe { libc::sched_getscheduler(tid) })
        .collect()
}

/// Waits until exactly `expected` pump threads exist. A thread names itself once it runs,
/// and a joined thread leaves the task list a moment after `join` returns, so both
/// directions are awaited rather than read once.
fn wait_for_pump_threads(expected: usize, what: &str) {
    let start = Instant::now();
    loop {
        let now = pump_threads();
        if now == expected {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: {now} pump threads, expected {expected}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// One packet as the test body keeps it.
#[derive(Clone, Debug)]
struct Got {
    data: Vec<u8>,
    len: usize,
    from: Option<Address>,
    errno: i32,
    truncated: bool,
}

/// What a pump's handler saw, shared with the test body.
#[derive(Default)]
struct Seen {
    packets: Vec<Got>,
    errors: Vec<String>,
    closing: Vec<usize>,
    closes: Vec<CloseReason>,
}

type Shared = Rc<RefCell<Seen>>;
type PacketHook = Box<dyn FnMut(&mut Context<'_>, &Packet)>;

/// Records every packet and close, and runs an optional hook on each packet.
struct Recorder {
    seen: Shared,
    hook: Option<PacketHook>,
}

impl Recorder {
    fn new(seen: &Shared) -> Recorder {
        Recorder {
            seen: seen.clone(),
            hook: None,
        }
    }

    fn with(seen: &Shared, hook: impl FnMut(&mut Context<'_>, &Packet) + 'static) -> Recorder {
        Recorder {
            seen: seen.clone(),
            hook: Some(Box::new(hook)),
        }
    }

    /// Sends every packet back to its sender.
    fn echo(seen: &Shared) -> Recorder {
        Recorder::with(seen, |ctx, packet| {
            let from = packet.from().expect("a received packet has a sender");
            ctx.send_to(from, packet.data()).unwrap();
        })
    }
}

impl Handler for Recorder {
    fn on_packet(&mut self, ctx: &mut Context<'_>, packet: &Packet) {
        self.seen.borrow_mut().packets.push(Got {
            data: packet.data().to_vec(),
            len: packet.len(),
            from: packet.from().cloned(),
            errno: packet.errno(),
            truncated: packet.is_truncated(),
        });
        if let Some(hook) = &mut self.hook {
            hook(ctx, packet);
        }
    }

    fn on_error(&mut self, _ctx: &mut Context<'_>, error: &Error) {
        self.seen.borrow_mut().errors.push(error.to_string());
    }

    fn on_closing(&mut self, _ctx: &mut Context<'_>, missing: usize) {
        self.seen.borrow_mut().closing.push(missing);
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, reason: CloseReason) {
        self.seen.borrow_mut().closes.push(reason);
    }
}

/// Starts a pump on 127.0.0.1:0 and returns its token and the address it got.
fn pump_local(
    reactor: &mut Reactor,
    options: PumpOptions,
    handler: impl IntoHandler,
) -> (Token, SocketAddr) {
    let token = reactor
        .pump("udp://127.0.0.1:0", options, handler)
        .expect("start a pump on loopback");
    let addr = reactor.handle(token).unwrap().local_addr().unwrap();
    (token, addr)
}

/// Starts a pump on a fresh Unix datagram path that echoes every packet; returns its
/// token and the path.
fn unix_echo_pump(reactor: &mut Reactor, options: PumpOptions, seen: &Shared) -> (Token, TempPath) {
    let path = TempPath::new("server");
    let url = format!("unix_dgram://{}", path.display());
    let pump = reactor
        .pump(url.as_str(), options, Recorder::echo(seen))
        .expect("start a pump on a Unix datagram socket");
    (pump, path)
}

/// Runs until `socket` has received `count` datagrams in all; returns them.
fn receive(reactor: &mut Reactor, socket: &UdpSocket, count: usize) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    run_until(reactor, &format!("{count} datagram(s) at the peer"), |_| {
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => got.push((buf[..n].to_vec(), from)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("peer receive: {e}"),
            }
        }
        got.len() >= count
    });
    got
}

/// Runs until the pump's counters satisfy `done`; returns them.
fn stats_when(
    reactor: &mut Reactor,
    pump: Token,
    what: &str,
    mut done: impl FnMut(&PumpStats) -> bool,
) -> PumpStats {
    let mut last = PumpStats::default();
    run_until(reactor, what, |reactor| {
        last = reactor.pump_stats(pump).expect("the pump is open");
        done(&last)
    });
    last
}

/// Sender `id`'s datagram number `seq`: both, little-endian.
fn numbered(id: u32, seq: u32) -> [u8; 8] {
    let mut datagram = [0u8; 8];
    datagram[..4].copy_from_slice(&id.to_le_bytes());
    datagram[4..].copy_from_slice(&seq.to_le_bytes());
    datagram
}

fn parse_numbered(data: &[u8]) -> (u32, u32) {
    assert_eq!(data.len(), 8, "a numbered datagram is 8 bytes: {data:?}");
    let id = u32::from_le_bytes(data[..4].try_into().unwrap());
    let seq = u32::from_le_bytes(data[4..].try_into().unwrap());
    (id, seq)
}

/// Per sender, how often each sequence number arrived.
struct Tally {
    counts: Vec<Vec<u32>>,
    total: usize,
}

impl Tally {
    fn new(senders: usize, each: usize) -> Tally {
        Tally {
            counts: vec![vec![0; each]; senders],
            total: 0,
        }
    }

    fn count(&mut self, data: &[u8]) {
        let (id, seq) = parse_numbered(data);
        self.counts[id as usize][seq as usize] += 1;
        self.total += 1;
    }

    /// Panics unless every datagram of every sender arrived exactly once.
    fn assert_each_once(&self) {
        for (id, counts) in self.counts.iter().enumerate() {
            for (seq, &n) in counts.iter().enumerate() {
                assert_eq!(n, 1, "sender {id}, datagram {seq}: received {n} times");
            }
        }
    }
}

/// A socket path in the temp directory, unique to this process and call; removed again
/// when dropped (whoever created the file).
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "eventmux-pump-{}-{n}-{name}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }
}

impl std::ops::Deref for TempPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Bytes waiting in a UDP socket's receive queue before its first datagram (`FIONREAD`):
/// 0 when no (non-empty) datagram is queued.
fn first_datagram_waiting(socket: &UdpSocket) -> usize {
    let mut waiting: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is valid for writes.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::FIONREAD, &mut waiting) };
    assert_eq!(rc, 0, "FIONREAD: {}", io::Error::last_os_error());
    waiting as usize
}

/// UDP sockets in `/proc/net/udp` bound to 127.0.0.1 on `port`.
fn loopback_udp_sockets_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/udp").expect("read /proc/net/udp");
    // The local address column reads 0100007F:PORT (address in host order, port in hex).
    let local = format!("{:08X}:{port:04X}", u32::from_ne_bytes([127, 0, 0, 1]));
    table
        .lines()
        .skip(1)
        .filter(|line| line.split_whitespace().nth(1) == Some(local.as_str()))
        .count()
}

// ----- packets ---------------------------------------------------------------------------

/// A pump's counters in one comparable array: received, delivered, dropped, truncated,
/// errors.
fn counts(stats: &PumpStats) -> [u64; 5] {
    [
        stats.received(),
        stats.delivered(),
        stats.dropped(),
        stats.truncated(),
        stats.errors(),
    ]
}

#[test]
fn one_packet_has_data_length_sender_and_errno_zero() {
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let (pump, addr) = pump_local(&mut reactor, PumpOptions::new(), Recorder::new(&seen));

    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"hello, pump", addr).unwrap();
    run_until(&mut reactor, "the packet", |_| {
        !seen.borrow().packets.is_empty()
    });

    let seen = seen.borrow();
    assert_eq!(seen.packets.len(), 1);
    let packet = &seen.packets[0];
    assert_eq!(packet.data, b"hello, pump");
    assert_eq!(packet.len, b"hello, pump".len());
    let from = packet.from.as_ref().expect("the sender's address");
    assert_eq!(from.as_inet(), Some(sender.local_addr().unwrap()));
    assert_eq!(packet.errno, 0);
    assert!(!packet.truncated);
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    let stats = reactor.pump_stats(pump).expect("a live pump");
    assert_eq!(
        counts(&stats),
        [1, 1, 0, 0, 0],
        "received, delivered, dropped, truncated, errors"
    );
}

#[test]
fn truncated_datagram_is_flagged() {
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let (pump, addr) = pump_local(
        &mut reactor,
        PumpOptions::new().buffer_size(16),
        Recorder::new(&seen),
    );

    let big: Vec<u8> = (0..100u8).collect();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(&big, addr).unwrap();
    sender.send_to(b"fits", addr).unwrap();
    run_until(&mut reactor, "both packets", |_| {
        seen.borrow().packets.len() >= 2
    });

    let seen = seen.borrow();
    let cut = &seen.packets[0];
    assert!(cut.truncated);
    assert_eq!(cut.len, 100, "len() is the datagram's real size");
    assert_eq!(cut.data, &big[..16], "data() is what fitted");
    assert_eq!(cut.errno, 0);
    let whole = &seen.packets[1];
    assert!(!whole.truncated);
    assert_eq!((whole.data.as_slice(), whole.len), (&b"fits"[..], 4));
    let stats = reactor.pump_stats(pump).unwrap();
    assert_eq!(stats.truncated(), 1);
    assert_eq!((stats.received(), stats.delivered()), (2, 2));
}

#[test]
fn many_packets_from_several_senders_none_lost_in_block_mode() {
    const SENDERS: usize = 4;
    const EACH: usize = 5000;
    /// A sender waits for an acknowledgement after every window, so no more than
    /// SENDERS x WINDOW datagrams are ever queued in the kernel: it never overflows.
    const WINDOW: usize = 32;
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();
    let tally = Rc::new(RefCell::new(Tally::new(SENDERS, EACH)));
    let senders: Vec<UdpSocket> = (0..SENDERS)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let sender_addrs: Vec<SocketAddr> = senders.iter().map(|s| s.local_addr().unwrap()).collect();
    let wrong_sender = Rc::new(RefCell::new(Vec::new()));
    let handler = {
        let (tally, wrong_sender) = (tally.clone(), wrong_sender.clone());
        Recorder::with(&Shared::default(), move |ctx, packet| {
            let (id, seq) = parse_numbered(packet.data());
            let from = packet.from().expect("a sender");
            if from.as_inet() != Some(sender_addrs[id as usize]) {
                wrong_sender.borrow_mut().push((id, seq, from.clone()));
            }
            tally.borrow_mut().count(packet.data());
            if (seq as usize + 1) % WINDOW == 0 || seq as usize + 1 == EACH {
                ctx.send_to(from, packet.data()).unwrap();
            }
        })
    };
    let options = PumpOptions::new()
        .threads(2)
        .when_full(WhenFull::Block)
        .socket_buffer(8 << 20);
    let (pump, addr) = pump_local(&mut reactor, options, handler);

    let threads: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(id, socket)| {
            thread::spawn(move || {
                socket.set_read_timeout(Some(DEADLINE)).unwrap();
                let mut ack = [0u8; 64];
                for seq in 0..EACH {
                    socket
                        .send_to(&numbered(id as u32, seq as u32), addr)
                        .unwrap();
                    if (seq + 1) % WINDOW == 0 || seq + 1 == EACH {
                        let (n, from) = socket
                            .recv_from(&mut ack)
                            .unwrap_or_else(|e| panic!("sender {id}: no ack for {seq}: {e}"));
                        assert_eq!(from, addr);
                        assert_eq!(parse_numbered(&ack[..n]), (id as u32, seq as u32));
                    }
                }
            })
        })
        .collect();
    run_until(&mut reactor, "every datagram", |_| {
        tally.borrow().total >= SENDERS * EACH
    });
    for sender in threads {
        sender.join().expect("a sender failed");
    }

    tally.borrow().assert_each_once();
    assert_eq!(tally.borrow().total, SENDERS * EACH);
    assert!(
        wrong_sender.borrow().is_empty(),
        "{:?}",
        wrong_sender.borrow()
    );
    let total = (SENDERS * EACH) as u64;
    let stats = reactor.pump_stats(pump).unwrap();
    assert_eq!(
        counts(&stats),
        [total, total, 0, 0, 0],
        "received, delivered, dropped, truncated, errors"
    );
}

#[test]
fn drop_mode_counts_exactly_what_it_dropped() {
    const COUNT: u32 = 64;
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();

    // Our own socket, so that a duplicate of it can watch the kernel's receive queue.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let probe = socket.try_clone().unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in 0..COUNT {
        sender.send_to(&numbered(0, seq), addr).unwrap();
    }

    // The first on_packet holds the reactor thread until the pump thread has taken every
    // datagram from the kernel: with room for one batch of one packet in the channel, the
    // thread must drop all but (at most) one of the rest.
    let delivered_seqs = Rc::new(RefCell::new(Vec::new()));
    let handler = {
        let delivered_seqs = delivered_seqs.clone();
        Recorder::with(&Shared::default(), move |_ctx, packet| {
            let (_, seq) = parse_numbered(packet.data());
            if delivered_seqs.borrow().is_empty() {
                let start = Instant::now();
                while first_datagram_waiting(&probe) > 0 {
                    assert!(start.elapsed() < DEADLINE, "the pump thread never drained");
                    thread::sleep(Duration::from_millis(1));
                }
            }
            delivered_seqs.borrow_mut().push(seq);
        })
    };
    let options = PumpOptions::new()
        .capacity(1)
        .batch(1)
        .when_full(WhenFull::Drop);
    let pump = reactor.pump_socket(socket, options, handler).unwrap();

    let stats = stats_when(&mut reactor, pump, "every datagram accounted for", |s| {
        s.received() == u64::from(COUNT) && s.delivered() + s.dropped() >= s.received()
    });
    // A few more turns: nothing else may trickle in.
    for _ in 0..3 {
        reactor.run_once(Some(Duration::ZERO)).unwrap();
    }
    assert_eq!(reactor.pump_stats(pump), Some(stats));

    let delivered_seqs = delivered_seqs.borrow();
    assert_eq!(
        stats.delivered() + stats.dropped(),
        stats.received(),
        "{stats:?}"
    );
    assert_eq!(
        stats.delivered(),
        delivered_seqs.len() as u64,
        "delivered counts on_packet calls"
    );
    assert!(
        stats.dropped() > 0,
        "the full channel dropped nothing: {stats:?}"
    );
    assert!(
        delivered_seqs.windows(2).all(|w| w[0] < w[1]),
        "one thread keeps order: {delivered_seqs:?}"
    );
    assert_eq!(delivered_seqs[0], 0);
    assert_eq!((stats.errors(), stats.truncated()), (0, 0));
}

#[test]
fn replies_go_back_through_the_pumped_socket() {
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let (pump, addr) = pump_local(
        &mut reactor,
        PumpOptions::new().threads(2),
        Recorder::echo(&seen),
    );

    let client = udp_peer();
    for i in 0..3 {
        client
            .send_to(format!("ping {i}").as_bytes(), addr)
            .unwrap();
    }
    let mut echoes = receive(&mut reactor, &client, 3);
    echoes.sort();
    assert_eq!(
        echoes,
        [
            (b"ping 0".to_vec(), addr),
            (b"ping 1".to_vec(), addr),
            (b"ping 2".to_vec(), addr),
        ],
        "every echo comes from the pump's address"
    );
    assert!(
        seen.borrow().errors.is_empty(),
        "{:?}",
        seen.borrow().errors
    );
    assert_eq!(reactor.handle(pump).unwrap().buflen(), 0);
}

#[test]
fn reuse_port_spreads_over_several_sockets() {
    const SENDERS: usize = 64;
    const EACH: usize = 10;
    // Exclusive: thread counting, and no other SO_REUSEPORT group of this process can share
    // the port the kernel picks for port 0.
    let _pumps = exclusive_pumps();
    let mut reactor = Reactor::new().unwrap();
    let tally = Rc::new(RefCell::new(Tally::new(SENDERS, EACH)));
    let handler = {
        let tally = tally.clone();
        Recorder::with(&Shared::default(), move |_ctx, packet| {
            tally.borrow_mut().count(packet.data())
        })
    };
    let options = PumpOptions::new()
        .threads(4)
        .reuse_port(true)
        .socket_buffer(1 << 20);
    let (pump, addr) = pump_local(&mut reactor, options, handler);
    assert_eq!(
        loopback_udp_sockets_on(addr.port()),
        4,
        "one socket per thread, all on the port"
    );
    wait_for_pump_threads(4, "four pump threads");

    // Every sender has a port of its own, so the kernel's 4-tuple hash spreads them.
    let senders: Vec<UdpSocket> = (0..SENDERS)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for seq in 0..EACH {
        for (id, sender) in senders.iter().enumerate() {
            sender
                .send_to(&numbered(id as u32, seq as u32), addr)
                .unwrap();
        }
    }
    run_until(&mut reactor, "every datagram", |_| {
        tally.borrow().total >= SENDERS * EACH
    });

    tally.borrow().assert_each_once();
    let stats = reactor.pump_stats(pump).unwrap();
    let total = (SENDERS * EACH) as u64;
    assert_eq!(
        (stats.received(), stats.delivered(), stats.dropped()),
        (total, total, 0)
    );

    drop(reactor);
    wait_for_pump_threads(0, "the pump threads after the reactor was dropped");
    assert_eq!(
        loopback_udp_sockets_on(addr.port()),
        0,
        "every socket closed"
    );
}

#[test]
fn ipv6_pump() {
    if let Err(e) = UdpSocket::bind("[::1]:0") {
        println!("skipped: no IPv6 loopback ([::1]: {e})");
        return;
    }
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let pump = reactor
        .pump("udp://[::1]:0", PumpOptions::new(), Recorder::echo(&seen))
        .unwrap();
    let addr = reactor.handle(pump).unwrap().local_addr().unwrap();
    assert!(addr.is_ipv6(), "{addr}");

    let client = UdpSocket::bind("[::1]:0").unwrap();
    client.set_nonblocking(true).unwrap();
    client.send_to(b"over IPv6", addr).unwrap();
    let echoes = receive(&mut reactor, &client, 1);
    assert_eq!(echoes, [(b"over IPv6".to_vec(), addr)]);
    let seen = seen.borrow();
    assert_eq!(
        seen.packets[0].from.as_ref().and_then(Address::as_inet),
        Some(client.local_addr().unwrap())
    );
}

#[test]
fn unix_datagram_pump() {
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let (pump, server_path) = unix_echo_pump(&mut reactor, PumpOptions::new().threads(2), &seen);
    let client_path = TempPath::new("client");

    let client = UnixDatagram::bind(&*client_path).unwrap();
    client.set_nonblocking(true).unwrap();
    client
        .send_to(b"over a unix socket", &*server_path)
        .unwrap();
    let mut buf = [0u8; 256];
    let mut echo = None;
    run_until(&mut reactor, "the echo", |_| {
        match client.recv_from(&mut buf) {
            Ok((n, from)) => echo = Some((buf[..n].to_vec(), from)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("client receive: {e}"),
        }
        echo.is_some()
    });
    let (data, from) = echo.unwrap();
    assert_eq!(data, b"over a unix socket");
    assert_eq!(from.as_pathname(), Some(&*server_path));
    {
        let seen = seen.borrow();
        let from = seen.packets[0].from.as_ref().expect("the client's address");
        assert_eq!(from.as_path(), Some(&*client_path));
    }

    // Closing the pump removes the socket file it bound.
    reactor.handle(pump).unwrap().kill();
    run_until(&mut reactor, "the close", |_| {
        !seen.borrow().closes.is_empty()
    });
    assert!(!server_path.exists(), "the pump's socket file is removed");
}

/// The pump's socket is blocking (its threads wait in `recvmmsg`), so the reactor's replies
/// must not be: a peer that stops reading fills its queue (a Unix datagram socket takes
/// `net.unix.max_dgram_qlen` datagrams: 10 by kernel default, 512 where systemd sets it),
/// and the rest of the replies wait in the handle's queue while the reactor goes on; they
/// leave once the peer reads again.
#[test]
fn replies_to_a_peer_that_does_not_read_wait_without_blocking_the_reactor() {
    let queue: u32 = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(512);
    // Well past the peer's queue. The channel holds every packet even one per batch, so
    // the pump thread never waits for the reactor, which only runs once all are sent.
    let count = 2 * queue + 20;
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let options = PumpOptions::new().capacity(count as usize);
    let (pump, server_path) = unix_echo_pump(&mut reactor, options, &seen);
    let client_path = TempPath::new("client");
    let client = UnixDatagram::bind(&*client_path).unwrap();
    for seq in 0..count {
        client.send_to(&numbered(0, seq), &*server_path).unwrap();
    }

    run_until(&mut reactor, "every packet handled", |_| {
        seen.borrow().packets.len() == count as usize
    });
    let queued = reactor.handle(pump).unwrap().buflen();
    assert!(
        queued > 0,
        "the peer reads nothing yet, so some replies must still be queued"
    );

    client.set_nonblocking(true).unwrap();
    let mut echoes = Vec::new();
    let mut buf = [0u8; 64];
    run_until(&mut reactor, "every echo at the peer", |_| {
        loop {
            match client.recv(&mut buf) {
                Ok(n) => echoes.push(parse_numbered(&buf[..n])),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("client receive: {e}"),
            }
        }
        echoes.len() == count as usize
    });
    let expected: Vec<(u32, u32)> = (0..count).map(|seq| (0, seq)).collect();
    assert_eq!(echoes, expected, "every reply, once, in order");
    assert_eq!(reactor.handle(pump).unwrap().buflen(), 0);
    assert!(
        seen.borrow().errors.is_empty(),
        "{:?}",
        seen.borrow().errors
    );
}

/// A reactor that never blocks (here: only zero-timeout turns, as a busy one has) still
/// takes every packet: each turn looks at the channels itself, so packets do not depend on
/// an eventfd write that producers skip while the reactor is awake.
#[test]
fn packets_reach_a_reactor_that_never_blocks() {
    const COUNT: u32 = 200;
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let (pump, addr) = pump_local(&mut reactor, PumpOptions::new(), Recorder::new(&seen));
    let sender = udp_peer();
    let start = Instant::now();
    let mut sent = 0;
    while seen.borrow().packets.len() < COUNT as usize {
        assert!(
            start.elapsed() < DEADLINE,
            "{} of {COUNT} packets delivered",
            seen.borrow().packets.len()
        );
        if sent < COUNT {
            sender.send_to(&numbered(0, sent), addr).unwrap();
            sent += 1;
        }
        reactor.run_once(Some(Duration::ZERO)).unwrap();
    }
    let stats = reactor.pump_stats(pump).unwrap();
    assert_eq!(stats.delivered(), u64::from(COUNT), "{stats:?}");
}

// ----- closing ---------------------------------------------------------------------------

#[test]
fn closing_a_pump_joins_its_threads() {
    let _pumps = exclusive_pumps();
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let (pump, addr) = pump_local(
        &mut reactor,
        PumpOptions::new().threads(4),
        Recorder::new(&seen),
    );
    wait_for_pump_threads(4, "four pump threads");

    // The pump works before it is closed.
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"before", addr).unwrap();
    run_until(&mut reactor, "a packet", |_| {
        !seen.borrow().packets.is_empty()
    });

    reactor.handle(pump).unwrap().kill();
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(seen.borrow().closes, [CloseReason::Killed]);
    assert!(reactor.handle(pump).is_none());
    assert_eq!(reactor.pump_stats(pump), None);
    wait_for_pump_threads(0, "the pump threads after the close");

    // More turns change nothing: one close, no packet after it.
    let _ = sender.send_to(b"after", addr);
    for _ in 0..3 {
        reactor.run_once(Some(Duration::ZERO)).unwrap();
    }
    let seen = seen.borrow();
    assert_eq!(seen.closes, [CloseReason::Killed]);
    assert_eq!(seen.closing.len(), 1);
    assert_eq!(seen.packets.len(), 1);
}

/// Records the pump's counters as its handler sees them in `on_close`.
struct FinalStats(Rc<RefCell<Option<PumpStats>>>);

impl Handler for FinalStats {
    fn on_close(&mut self, ctx: &mut Context<'_>, _: CloseReason) {
        *self.0.borrow_mut() = ctx.pump_stats();
    }
}

/// Packets still in the channel, and the batch a thread is blocked handing over, when the
/// pump closes are counted as dropped before `on_close`, which reads the final counters:
/// every received datagram is either delivered or dropped.
#[test]
fn packets_queued_at_close_are_counted_before_on_close() {
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();
    let last = Rc::new(RefCell::new(None));
    // One packet per batch, one batch in the channel: the second packet leaves the thread
    // blocked in its send, since the reactor is not run until the close.
    let options = PumpOptions::new().batch(1).capacity(1);
    let (pump, addr) = pump_local(&mut reactor, options, FinalStats(last.clone()));
    let sender = udp_peer();
    for seq in 0..8 {
        sender.send_to(&numbered(0, seq), addr).unwrap();
    }
    let start = Instant::now();
    while reactor.pump_stats(pump).unwrap().received() < 2 {
        assert!(
            start.elapsed() < DEADLINE,
            "the thread never took two packets"
        );
        thread::sleep(Duration::from_millis(1));
    }

    reactor.handle(pump).unwrap().kill();
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    let stats = last.borrow().expect("on_close saw the pump's counters");
    assert_eq!(stats.delivered(), 0, "{stats:?}");
    assert!(
        stats.dropped() >= 2,
        "the queued and the blocked batch: {stats:?}"
    );
    assert_eq!(
        stats.received(),
        stats.delivered() + stats.dropped(),
        "{stats:?}"
    );
    assert_eq!(
        reactor.pump_stats(pump),
        None,
        "the pump is gone after on_close"
    );
}

/// The threads run under `SCHED_BATCH` by default, so that a packet arriving while the
/// reactor holds a shared CPU does not preempt it (see `PumpOptions::batch_scheduling`);
/// turned off, they keep the default policy.
#[test]
fn pump_threads_run_under_batch_scheduling_unless_turned_off() {
    let _pumps = exclusive_pumps();
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let (batch, _) = pump_local(
        &mut reactor,
        PumpOptions::new().threads(2),
        Recorder::new(&seen),
    );
    wait_for_pump_threads(2, "two pump threads");
    // A thread sets its policy first thing after it starts: wait for both to have done so.
    let start = Instant::now();
    while pump_thread_policies() != [libc::SCHED_BATCH; 2] {
        assert!(
            start.elapsed() < DEADLINE,
            "pump thread policies {:?}, expected SCHED_BATCH ({})",
            pump_thread_policies(),
            libc::SCHED_BATCH
        );
        thread::sleep(Duration::from_millis(1));
    }
    reactor.handle(batch).unwrap().kill();
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    wait_for_pump_threads(0, "the pump threads after the close");

    let (_plain, addr) = pump_local(
        &mut reactor,
        PumpOptions::new().batch_scheduling(false),
        Recorder::new(&seen),
    );
    // Once a packet went through, the thread is past the point where it would have changed
    // its policy.
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"x", addr)
        .unwrap();
    run_until(&mut reactor, "a packet", |_| {
        !seen.borrow().packets.is_empty()
    });
    assert_eq!(pump_thread_policies(), [libc::SCHED_OTHER]);
}

#[test]
fn dropping_the_reactor_stops_every_pump() {
    let _pumps = exclusive_pumps();
    let mut reactor = Reactor::new().unwrap();
    let (_, _) = pump_local(
        &mut reactor,
        PumpOptions::new().threads(2),
        Recorder::new(&Shared::default()),
    );
    let (_, _) = pump_local(
        &mut reactor,
        PumpOptions::new().threads(2).reuse_port(true),
        Recorder::new(&Shared::default()),
    );
    // A pump whose thread blocks on a full channel: the reactor never takes its batches.
    let (_, blocked_addr) = pump_local(
        &mut reactor,
        PumpOptions::new()
            .threads(1)
            .batch(1)
            .capacity(1)
            .when_full(WhenFull::Block),
        Recorder::new(&Shared::default()),
    );
    wait_for_pump_threads(5, "five pump threads");
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..10u8 {
        sender.send_to(&[i], blocked_addr).unwrap();
    }

    drop(reactor);
    wait_for_pump_threads(0, "the pump threads after the reactor was dropped");
}

// ----- default callbacks -----------------------------------------------------------------

/// Datagrams with their senders, as a handler records them.
type DatagramLog = Rc<RefCell<Vec<(Vec<u8>, Address)>>>;

/// Implements only `on_datagram`.
struct Datagrams(DatagramLog);

impl Handler for Datagrams {
    fn on_datagram(&mut self, _ctx: &mut Context<'_>, data: &[u8], from: &Address) {
        self.0.borrow_mut().push((data.to_vec(), from.clone()));
    }
}

/// Implements only `on_read`.
struct Reads(Rc<RefCell<Vec<Vec<u8>>>>);

impl Handler for Reads {
    fn on_read(&mut self, _ctx: &mut Context<'_>, data: &[u8]) {
        self.0.borrow_mut().push(data.to_vec());
    }
}

#[test]
fn default_on_packet_passes_packets_to_on_datagram_and_on_read() {
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();
    let datagrams = DatagramLog::default();
    let reads = Rc::new(RefCell::new(Vec::new()));
    let (_, datagram_addr) = pump_local(
        &mut reactor,
        PumpOptions::new(),
        Datagrams(datagrams.clone()),
    );
    let (_, read_addr) = pump_local(&mut reactor, PumpOptions::new(), Reads(reads.clone()));

    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"to on_datagram", datagram_addr).unwrap();
    sender.send_to(b"", read_addr).unwrap();
    sender.send_to(b"to on_read", read_addr).unwrap();
    run_until(&mut reactor, "all three packets", |_| {
        datagrams.borrow().len() == 1 && reads.borrow().len() == 2
    });

    let (data, from) = datagrams.borrow()[0].clone();
    assert_eq!(data, b"to on_datagram");
    assert_eq!(from.as_inet(), Some(sender.local_addr().unwrap()));
    assert_eq!(*reads.borrow(), [b"".to_vec(), b"to on_read".to_vec()]);
}

/// Implements only `on_error` (and counts what reaches `on_read` through the defaults).
struct Errors {
    errors: Rc<RefCell<Vec<Option<i32>>>>,
    reads: Rc<RefCell<usize>>,
}

impl Handler for Errors {
    fn on_read(&mut self, _ctx: &mut Context<'_>, _data: &[u8]) {
        *self.reads.borrow_mut() += 1;
    }

    fn on_error(&mut self, _ctx: &mut Context<'_>, error: &Error) {
        let errno = match error {
            Error::Io(e) => e.raw_os_error(),
            _ => None,
        };
        self.errors.borrow_mut().push(errno);
    }
}

/// A pump on a UDP socket connected to a loopback port nobody listens on, which has sent
/// one datagram there: the ICMP port unreachable that comes back makes the socket's next
/// receive fail with ECONNREFUSED.
fn refused_pump(reactor: &mut Reactor, handler: impl IntoHandler) -> Token {
    let nobody = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(nobody).unwrap();
    let pump = reactor
        .pump_socket(socket, PumpOptions::new(), handler)
        .unwrap();
    reactor.handle(pump).unwrap().send(b"to nobody").unwrap();
    pump
}

#[test]
fn a_failed_receive_is_a_packet_with_its_errno() {
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let pump = refused_pump(&mut reactor, Recorder::new(&seen));

    run_until(&mut reactor, "the failed receive", |_| {
        let seen = seen.borrow();
        !seen.packets.is_empty() || !seen.errors.is_empty()
    });
    let seen = seen.borrow();
    // Packet::errno and PumpStats::errors document exactly this case.
    assert_eq!(
        seen.errors,
        Vec::<String>::new(),
        "the error bypassed the pump: no packet carried it"
    );
    let packet = &seen.packets[0];
    assert_eq!(packet.errno, libc::ECONNREFUSED, "{packet:?}");
    assert!(packet.from.is_none());
    assert_eq!((packet.len, packet.data.len()), (0, 0));
    let stats = reactor.pump_stats(pump).unwrap();
    assert_eq!((stats.errors(), stats.received()), (1, 0), "{stats:?}");
    assert!(reactor.handle(pump).is_some(), "the pump stays open");
}

#[test]
fn a_refused_datagram_reaches_on_error_once_through_the_defaults() {
    let _pumps = shared_pumps();
    let mut reactor = Reactor::new().unwrap();
    let errors = Rc::new(RefCell::new(Vec::new()));
    let reads = Rc::new(RefCell::new(0));
    let pump = refused_pump(
        &mut reactor,
        Errors {
            errors: errors.clone(),
            reads: reads.clone(),
        },
    );

    run_until(&mut reactor, "the error", |_| !errors.borrow().is_empty());
    // A few more turns: the error is not reported twice (by the pump thread and the reactor).
    for _ in 0..3 {
        reactor.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(*errors.borrow(), [Some(libc::ECONNREFUSED)]);
    assert_eq!(*reads.borrow(), 0, "a failed receive is not a read");
    assert!(reactor.handle(pump).is_some(), "the pump stays open");
}
