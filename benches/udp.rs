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
//! The load comes from the project's load generator (`loadgen::UdpLoad`): several client
//! threads each own a UDP socket connected to the server and keep a window of datagrams in
//! flight, each carrying the client's id and a sequence number, sent and received in
//! batches so that the load generator is cheap: a client's burst leaves in one `send` cut
//! into datagrams by the kernel (`UDP_SEGMENT`; `sendmmsg` where the kernel refuses it, or
//! with `UDP_BENCH_CLIENT_SENDMMSG`), and echoes come back by `recvmmsg`. Every echo is
//! checked against what that client sent. Nothing is resent: a datagram that is still
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

use std::io;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eventmux::{Address, Context, Error, Handler, Options, Packet, PumpOptions, Reactor};
use loadgen::{
    median, ratio_line, rotated_rounds, thousands, CpuPair, Knobs, Listening, ServerStats,
    ServerThread, UdpLoad, UdpRun,
};

/// How often the blocking server checks whether it was asked to stop.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Load run on every server before measuring, to warm caches and the allocator.
const WARM_UP_TIME: Duration = Duration::from_millis(300);

// ----- configuration -------------------------------------------------------------------

/// The knobs of one run, from the environment (see the module docs).
struct Config {
    run_time: Duration,
    rounds: usize,
    load: UdpLoad,
    /// Where servers and clients run, if pinned.
    cpus: Option<CpuPair>,
    smoke_test: bool,
}

impl Config {
    fn from_env() -> Config {
        let knobs = Knobs::from_env("UDP_BENCH");
        let load = UdpLoad::new(
            knobs.get("CLIENTS", 4),
            knobs.get("WINDOW", 64),
            knobs.get("SIZE", 64),
        )
        .segmented(!knobs.is_set("CLIENT_SENDMMSG"));
        Config {
            run_time: knobs.run_time(),
            rounds: knobs.rounds(),
            load,
            cpus: knobs.cpu_pair(),
            smoke_test: knobs.smoke_test(),
        }
    }
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

/// A server in its own thread; the thread returns a line of bookkeeping when it ends.
struct RunningServer {
    kind: ServerKind,
    thread: ServerThread<String>,
}

impl RunningServer {
    /// Starts a server of `kind` (pinned to `cpu` if given) and waits until it listens.
    /// Pump threads inherit the pinning from the reactor thread that starts them.
    fn start(kind: ServerKind, cpu: Option<usize>) -> RunningServer {
        let thread = ServerThread::start(kind.name(), cpu, move |listening| match kind {
            ServerKind::Pump => run_pump_server(PumpOptions::new(), listening),
            ServerKind::PumpReusePort => {
                run_pump_server(PumpOptions::new().threads(2).reuse_port(true), listening)
            }
            ServerKind::PumpPreempting => {
                run_pump_server(PumpOptions::new().batch_scheduling(false), listening)
            }
            ServerKind::StdBlocking => run_std_server(listening),
            ServerKind::ReactorThread => run_reactor_thread_server(listening),
        });
        RunningServer { kind, thread }
    }

    /// Asks the server to finish; returns its bookkeeping.
    fn stop(self) -> String {
        match self.thread.stop() {
            Ok(line) => line,
            Err(e) => format!("stopped with an error: {e}"),
        }
    }
}

/// A server's errors as its bookkeeping line ends them.
fn describe_errors(stats: &ServerStats) -> String {
    match stats.first_error() {
        Some(first) => format!("{} errors (first: {first})", stats.errors()),
        None => format!("{} errors", stats.errors()),
    }
}

/// The pump's handler: every packet goes back to its sender.
struct PumpEcho {
    stats: Arc<ServerStats>,
}

impl Handler for PumpEcho {
    fn on_packet(&mut self, ctx: &mut Context<'_>, packet: &Packet) {
        match packet.from() {
            Some(from) => {
                if let Err(e) = ctx.send_to(from, packet.data()) {
                    self.stats.record_error(e);
                }
            }
            None => self
                .stats
                .record_error(io::Error::from_raw_os_error(packet.errno())),
        }
    }

    fn on_error(&mut self, _: &mut Context<'_>, error: &Error) {
        self.stats.record_error(error);
    }
}

fn run_pump_server(options: PumpOptions, listening: Listening) -> io::Result<String> {
    let stats = Arc::new(ServerStats::default());
    let mut reactor = Reactor::new()?;
    let pump = reactor.pump(
        "udp://127.0.0.1:0",
        options,
        PumpEcho {
            stats: stats.clone(),
        },
    )?;
    let addr = reactor.handle(pump).expect("just opened").local_addr()?;
    let remote = reactor.remote()?;
    listening.announce(addr, move || {
        let _ = remote.stop();
    });
    reactor.run()?;
    let counters = reactor.pump_stats(pump).unwrap_or_default();
    Ok(format!(
        "pump received {}, delivered {}, dropped {}, truncated {}, failed receives {}; {}",
        counters.received(),
        counters.delivered(),
        counters.dropped(),
        counters.truncated(),
        counters.errors(),
        describe_errors(&stats)
    ))
}

/// The reactor-thread server's handler: every datagram goes back to its sender.
struct DatagramEcho {
    stats: Arc<ServerStats>,
    echoed: u64,
}

impl Handler for DatagramEcho {
    fn on_datagram(&mut self, ctx: &mut Context<'_>, data: &[u8], from: &Address) {
        match ctx.send_to(from, data) {
            Ok(()) => self.echoed += 1,
            Err(e) => self.stats.record_error(e),
        }
    }

    fn on_error(&mut self, _: &mut Context<'_>, error: &Error) {
        self.stats.record_error(error);
    }
}

fn run_reactor_thread_server(listening: Listening) -> io::Result<String> {
    let stats = Arc::new(ServerStats::default());
    let mut reactor = Reactor::new()?;
    let socket = reactor.bind(
        "udp://127.0.0.1:0",
        Options::new(),
        DatagramEcho {
            stats: stats.clone(),
            echoed: 0,
        },
    )?;
    let addr = reactor.handle(socket).expect("just opened").local_addr()?;
    let remote = reactor.remote()?;
    listening.announce(addr, move || {
        let _ = remote.stop();
    });
    reactor.run()?;
    let echoed = reactor
        .handler_mut::<DatagramEcho>(socket)
        .map_or("?".into(), |echo| echo.echoed.to_string());
    Ok(format!("echoed {echoed}; {}", describe_errors(&stats)))
}

fn run_std_server(listening: Listening) -> io::Result<String> {
    let stats = ServerStats::default();
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(STOP_POLL_INTERVAL))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    listening.announce(socket.local_addr()?, move || {
        flag.store(true, Ordering::Relaxed)
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut echoed = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => match socket.send_to(&buf[..n], from) {
                Ok(_) => echoed += 1,
                Err(e) => stats.record_error(e),
            },
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => stats.record_error(e),
        }
    }
    Ok(format!("echoed {echoed}; {}", describe_errors(&stats)))
}

// ----- measuring and reporting ---------------------------------------------------------

/// The CPU the server used in `run`: the whole process minus the client threads (pump
/// threads have no clock of their own here, and the idle servers use next to nothing).
fn server_cpu(run: &UdpRun) -> Duration {
    run.usage().process_cpu().saturating_sub(run.client_cpu())
}

/// Server CPU time per echo in `run`, in nanoseconds.
fn server_ns_per_packet(run: &UdpRun) -> f64 {
    let packets = run.packets_per_sec() * run.usage().elapsed().as_secs_f64();
    server_cpu(run).as_nanos() as f64 / packets.max(1.0)
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
    fn of(runs: &[UdpRun]) -> Summary {
        let rounds: Vec<f64> = runs.iter().map(UdpRun::packets_per_sec).collect();
        let sent: u64 = runs.iter().map(UdpRun::sent).sum();
        let echoed: u64 = runs.iter().map(UdpRun::echoed).sum();
        let busy: Vec<f64> = runs
            .iter()
            .map(|run| run.usage().share(server_cpu(run)))
            .collect();
        let cost: Vec<f64> = runs.iter().map(server_ns_per_packet).collect();
        let client: Vec<f64> = runs
            .iter()
            .map(|run| run.usage().share(run.client_cpu()))
            .collect();
        Summary {
            packets_per_sec: median(&rounds),
            rounds,
            loss: sent.saturating_sub(echoed) as f64 / sent.max(1) as f64,
            kernel_drops: runs.iter().map(UdpRun::kernel_drops).sum(),
            worst_foreign_busy: runs
                .iter()
                .map(|run| run.usage().foreign_busy())
                .collect::<Option<Vec<f64>>>()
                .map(|busy| busy.into_iter().fold(0.0, f64::max)),
            late: runs.iter().map(UdpRun::late).sum(),
            bogus: runs.iter().map(UdpRun::bogus).sum(),
            server_busy: median(&busy),
            server_ns_per_packet: median(&cost),
            client_busy: median(&client),
        }
    }
}

fn print_table(config: &Config, servers: &[RunningServer], runs: &[Vec<UdpRun>]) {
    println!();
    println!(
        "{} clients x {} datagrams of {} B in flight: median of {} x {:.1} s",
        config.load.clients(),
        config.load.window(),
        config.load.size(),
        config.rounds,
        config.run_time.as_secs_f64()
    );
    println!(
        "  {:<18} {:>10} {:>7} {:>7} {:>8} {:>7} {:>8} {:>6}   every round (pkts/s)",
        "server", "pkts/s", "loss", "kdrops", "srv CPU", "ns/pkt", "cli CPU", "other"
    );
    let summaries: Vec<Summary> = runs.iter().map(|runs| Summary::of(runs)).collect();
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
                let rate = a.packets_per_sec / b.packets_per_sec;
                let cost = a.server_ns_per_packet / b.server_ns_per_packet;
                println!("{}", ratio_line(&label, 37, "pkt", rate, Some(cost)));
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
    let runs = config.rounds * ServerKind::ALL.len();
    println!(
        "udp echo benchmark: {} round(s) x {} servers x {:.1} s (~{:.0} s)",
        config.rounds,
        ServerKind::ALL.len(),
        config.run_time.as_secs_f64(),
        runs as f64 * config.run_time.as_secs_f64()
    );
    if let Some(cpus) = config.cpus {
        println!(
            "pinning: server threads (pump threads included) on CPU {}, client threads on CPU {}",
            cpus.server(),
            cpus.load()
        );
    }
    let (server_cpu, client_cpu) = (
        config.cpus.map(|c| c.server()),
        config.cpus.map(|c| c.load()),
    );
    let servers: Vec<RunningServer> = ServerKind::ALL
        .into_iter()
        .map(|kind| RunningServer::start(kind, server_cpu))
        .collect();
    if !config.smoke_test {
        for server in &servers {
            config
                .load
                .run(server.thread.addr(), WARM_UP_TIME, client_cpu);
        }
    }
    let runs = rotated_rounds(config.rounds, servers.len(), |index| {
        config
            .load
            .run(servers[index].thread.addr(), config.run_time, client_cpu)
    });
    print_table(&config, &servers, &runs);
    println!();
    println!("server bookkeeping after all runs:");
    for server in servers {
        let name = server.kind.name();
        println!("  {name:<18} {}", server.stop());
    }
}
