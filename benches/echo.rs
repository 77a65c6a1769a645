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
//!   one task per connection reading into a 64 KiB buffer and `write_all`-ing it back
//!   (`loadgen::TokioEcho`, the same server as the `tokio_echo` peer of `scripts/compare.sh`).
//!
//! The eventmux handler sends back what it reads and, like `write_all` does for tokio,
//! applies backpressure: it pauses reading while more than 1 MiB waits to be written.
//!
//! The load comes from the project's load generator (`loadgen::EchoLoad`): one thread drives
//! every connection with non-blocking sockets, edge-triggered epoll and `TCP_NODELAY`.
//! Every connection sends its own pseudo-random byte sequence and every echoed byte is
//! compared with what was sent, so lost, duplicated, reordered or crossed bytes panic the
//! run; so does no echo at all for 10 s (a stalled server), and at the end of each run every
//! byte still in flight must come back. Scenarios:
//!
//! - (a) 1 connection, ping-pong of 64 B messages (latency bound);
//! - (b) 50 connections, ping-pong of 64 B messages;
//! - (c) 50 connections, each keeping 16 messages of 64 B in flight (pipelined);
//! - (d) 8 connections, each writing 16 KiB chunks whenever the socket takes them and reading
//!   the echo as it comes (here a "message" is a 16 KiB chunk).
//!
//! The result is echoed messages per second. Each scenario runs every server in turn for
//! several rounds (the order rotates every round); one table per scenario shows, per server:
//!
//! - `msgs/s`: the median round; `MiB/s`: the bytes echoed per second that makes;
//! - `srv CPU`: how busy the server thread was (share of one CPU, from its thread CPU
//!   clock); `ns/msg`: server CPU time per echoed message, the efficiency figure that still
//!   means something when the load generator, not the server, is the bottleneck;
//! - `cli CPU`: CPU used by the rest of this process, the load thread (100%: the load
//!   generator is saturated, and sets the pace);
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
//! Where the affinity mask allows, server threads are pinned to the first allowed CPU and the
//! load thread to the second (`sched_setaffinity`), so that each server has a core to itself;
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

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use eventmux::{Backend, CloseReason, Context, Error, Handler, Incoming, Reactor, TimerId};
use loadgen::{
    median, percent, pin_to, ratio_line, rotated_rounds, thousands, CpuClock, CpuMeter, CpuPair,
    CpuUsage, EchoLoad, Knobs, Listening, LoadError, ServerStats, ServerThread, TokioEcho, Traffic,
};

/// Messages each connection keeps in flight in the pipelined scenario.
const PIPELINE_DEPTH: usize = 16;
/// Connections in the streaming scenario.
const STREAM_CONNECTIONS: usize = 8;
/// Bytes per write in the streaming scenario.
const STREAM_CHUNK: usize = 16 * 1024;
/// The eventmux echo handler stops reading while more than this waits to be written.
const PAUSE_READING_ABOVE: usize = 1024 * 1024;
/// How often the eventmux server checks whether it was asked to stop.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(20);
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
    /// Where servers and load run, if pinned.
    cpus: Option<CpuPair>,
}

impl Config {
    fn from_env() -> Config {
        let knobs = Knobs::from_env("ECHO_BENCH");
        Config {
            run_time: knobs.run_time(),
            rounds: knobs.rounds(),
            connections: knobs.get("CONNS", 50usize).max(1),
            message_size: knobs.get("MSG_SIZE", 64usize).max(1),
            only: knobs.get("ONLY", "abcd".to_string()).to_lowercase(),
            cpus: knobs.cpu_pair(),
        }
    }
}

// ----- scenarios -----------------------------------------------------------------------

struct Scenario {
    letter: char,
    title: String,
    connections: usize,
    traffic: Traffic,
}

/// The scenarios selected by `ECHO_BENCH_ONLY`, in order.
fn scenarios(config: &Config) -> Vec<Scenario> {
    let (n, m) = (config.connections, config.message_size);
    let all = [
        Scenario {
            letter: 'a',
            title: format!("1 connection, ping-pong, {m} B messages"),
            connections: 1,
            traffic: Traffic::Messages { size: m, depth: 1 },
        },
        Scenario {
            letter: 'b',
            title: format!("{n} connections, ping-pong, {m} B messages"),
            connections: n,
            traffic: Traffic::Messages { size: m, depth: 1 },
        },
        Scenario {
            letter: 'c',
            title: format!(
                "{n} connections, {PIPELINE_DEPTH} messages of {m} B in flight each (pipelined)"
            ),
            connections: n,
            traffic: Traffic::Messages {
                size: m,
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
            traffic: Traffic::Stream {
                chunk: STREAM_CHUNK,
            },
        },
    ];
    all.into_iter()
        .filter(|scenario| config.only.contains(scenario.letter))
        .collect()
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

/// A server listening in its own thread, with its bookkeeping.
struct RunningServer {
    kind: ServerKind,
    stats: Arc<ServerStats>,
    thread: ServerThread<()>,
    /// The server thread's CPU time, if it can be read.
    cpu_clock: Option<CpuClock>,
}

impl RunningServer {
    /// Starts a server of `kind` (pinned to `cpu` if given) and waits until it listens.
    fn start(kind: ServerKind, cpu: Option<usize>) -> RunningServer {
        let stats = Arc::new(ServerStats::default());
        let backend = match kind {
            ServerKind::EventmuxEpoll => Some(Backend::Epoll),
            ServerKind::EventmuxPolling => Some(Backend::Polling),
            ServerKind::TokioCurrentThread => None,
        };
        let server_stats = stats.clone();
        let thread = ServerThread::start(kind.name(), cpu, move |listening| match backend {
            Some(backend) => run_eventmux_server(backend, listening, server_stats),
            None => run_tokio_server(listening, server_stats),
        });
        let cpu_clock = thread
            .cpu_clock()
            .inspect_err(|e| println!("note: no CPU clock for {}: {e}", kind.name()))
            .ok();
        RunningServer {
            kind,
            stats,
            thread,
            cpu_clock,
        }
    }
}

fn run_tokio_server(listening: Listening, stats: Arc<ServerStats>) -> io::Result<()> {
    let server = TokioEcho::bind("127.0.0.1:0")?;
    listening.announce(server.local_addr()?, server.stopper());
    server.run(stats)
}

// ----- the eventmux server -------------------------------------------------------------

fn run_eventmux_server(
    backend: Backend,
    listening: Listening,
    stats: Arc<ServerStats>,
) -> io::Result<()> {
    let mut reactor = Reactor::with_backend(backend)?;
    let listener = reactor.listen("127.0.0.1:0", EchoListener { stats })?;
    let addr = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = reactor.add_handler(StopWatcher { stop: stop.clone() });
    reactor
        .handle(watcher)
        .expect("just added")
        .set_interval(STOP_POLL_INTERVAL)?;
    listening.announce(addr, move || stop.store(true, Ordering::Relaxed));
    reactor.run()
}

/// The listener's handler: every accepted connection gets an [`EchoConnection`].
struct EchoListener {
    stats: Arc<ServerStats>,
}

impl Handler for EchoListener {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        self.stats.record_accept();
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
            self.stats.record_read_pause();
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

// ----- one run -------------------------------------------------------------------------

/// One measured run of one scenario against one server.
struct RunOutcome {
    /// Bytes echoed back to each connection before the run ended.
    echoed_bytes: Vec<u64>,
    /// The run's wall time and CPU: the server thread's, the process's, the machine's.
    usage: CpuUsage,
}

impl RunOutcome {
    /// The share of one CPU the server thread kept busy.
    fn server_busy(&self) -> Option<f64> {
        self.usage.server_cpu().map(|cpu| self.usage.share(cpu))
    }

    /// The share of one CPU everything but the server used: the load thread, mostly.
    fn client_busy(&self) -> f64 {
        let server = self.usage.server_cpu().unwrap_or_default();
        self.usage
            .share(self.usage.process_cpu().saturating_sub(server))
    }

    /// Server CPU time per echoed message, in nanoseconds.
    fn server_ns_per_message(&self, message_size: usize) -> Option<f64> {
        let messages = self.messages_per_sec(message_size) * self.usage.elapsed().as_secs_f64();
        self.usage
            .server_cpu()
            .map(|cpu| cpu.as_nanos() as f64 / messages.max(1.0))
    }

    fn messages_per_sec(&self, message_size: usize) -> f64 {
        let bytes: u64 = self.echoed_bytes.iter().sum();
        bytes as f64 / message_size as f64 / self.usage.elapsed().as_secs_f64()
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

/// Opens the scenario's connections to `server` from a load thread (pinned to `load_cpu`),
/// runs its traffic for `run_time`, and waits for every byte in flight to come back.
fn run_load(
    scenario: &Scenario,
    server: &RunningServer,
    run_time: Duration,
    load_cpu: Option<usize>,
) -> RunOutcome {
    let load = || {
        pin_to(load_cpu);
        let addr = server.thread.addr();
        let mut load = EchoLoad::connect(addr, scenario.connections, scenario.traffic)
            .unwrap_or_else(|e| load_failed(server, e));
        let meter = CpuMeter::start(server.cpu_clock);
        let echoed_bytes = load
            .run_for(run_time)
            .unwrap_or_else(|e| load_failed(server, e));
        let usage = meter.stop();
        load.finish().unwrap_or_else(|e| load_failed(server, e));
        RunOutcome {
            echoed_bytes,
            usage,
        }
    };
    thread::scope(|scope| {
        scope
            .spawn(load)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Ends the benchmark: the load against `server` failed. The server's first error, if it
/// saw one, usually says why.
fn load_failed(server: &RunningServer, error: LoadError) -> ! {
    panic!(
        "load against {} failed: {error}; the server's first error: {:?}",
        server.kind.name(),
        server.stats.first_error().unwrap_or_default()
    )
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
    rotated_rounds(config.rounds, servers.len(), |index| {
        run_quietly(scenario, &servers[index], config.run_time, load_cpu)
    })
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
        if outcome.usage.foreign_busy().unwrap_or(0.0) <= NOISY_FOREIGN_BUSY {
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
        traffic: Traffic::Messages {
            size: config.message_size,
            depth: 1,
        },
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
            .map(|outcome| outcome.usage.foreign_busy())
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
    let message_size = scenario.traffic.message_size();
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
        .map(|runs| Summary::of(runs, message_size))
        .collect();
    for (server, summary) in servers.iter().zip(&summaries) {
        print_row(server.kind, summary, message_size);
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
            let label = format!("{} / {}", numerator.name(), denominator.name());
            let cost = a
                .server_ns_per_message
                .zip(b.server_ns_per_message)
                .map(|(a, b)| a / b);
            let rate = a.messages_per_sec / b.messages_per_sec;
            println!("{}", ratio_line(&label, 34, "msg", rate, cost));
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
        println!(
            "  {:<18} accepted {}, closed {} ({} abnormally), {} errors, reading paused {} times",
            server.kind.name(),
            stats.accepted(),
            stats.closed(),
            stats.abnormal_closes(),
            stats.errors(),
            stats.read_pauses()
        );
        if let Some(first) = stats.first_error() {
            println!("  {:<18} first error: {first}", "");
        }
        healthy &= stats.healthy();
    }
    healthy
}

fn print_setup(config: &Config, scenarios: &[Scenario]) {
    let runs = scenarios.len() * config.rounds * ServerKind::ALL.len();
    println!(
        "echo benchmark: {} scenario(s) x {} round(s) x {} servers x {:.1} s (~{:.0} s)",
        scenarios.len(),
        config.rounds,
        ServerKind::ALL.len(),
        config.run_time.as_secs_f64(),
        runs as f64 * config.run_time.as_secs_f64()
    );
    if let Some(cpus) = config.cpus {
        println!(
            "pinning: server threads on CPU {}, the load thread on CPU {}",
            cpus.server(),
            cpus.load()
        );
    }
}

fn main() {
    let config = Config::from_env();
    let scenarios = scenarios(&config);
    print_setup(&config, &scenarios);
    let (server_cpu, load_cpu) = (
        config.cpus.map(|c| c.server()),
        config.cpus.map(|c| c.load()),
    );
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
        if let Err(e) = server.thread.stop() {
            println!("  {name} stopped with an error: {e}");
        }
    }
    if !healthy {
        println!("note: some server closed connections abnormally or reported errors");
    }
}
