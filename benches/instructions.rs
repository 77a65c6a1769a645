//! Instructions per message on the server side, counted by callgrind through gungraun (the
//! maintained successor of iai-callgrind): the `echo` example, `lenprefix_echo` (a framing
//! rule) and `mini_redis`, beside tokio's echo and a hand-written mio echo
//! (`loadgen::TokioEcho`, `loadgen::MioEcho`).
//!
//! Each server runs on the benchmark thread; a client thread in this process connects,
//! warms up, then sends [`MESSAGES`] messages in lock-step rounds (every connection sends
//! its batch of `depth` messages, then every connection reads its replies, each byte
//! checked). Only the benchmark thread is counted, and the setup (listening, connecting,
//! the warm-up) is not, so each count is the server's user-space instructions for
//! [`MESSAGES`] messages and the stop at the end; kernel work is not in it. Counts are
//! deterministic for one binary, unlike times, so `.ci/run` compares them with the figures
//! committed in `benches/instructions.baseline` (`scripts/instructions.py`).
//!
//! With one connection every turn serves one read, so those counts repeat from build to
//! build. With 50, how many of a round's requests one `epoll_wait` returns depends on how
//! valgrind interleaves the client's and the server's threads, which a change elsewhere in
//! the binary can tip: the same server code has measured in two modes, about 500 and
//! about 2,150 waits per 20,000 messages, some 5% apart on the echo at depth 1. The gate
//! allows for that on the batched rows (see `scripts/instructions.py`).
//!
//!     cargo bench --bench instructions       # needs valgrind and gungraun-runner 0.20.0
//!     python3 scripts/instructions.py        # the same, as instructions per message
// Each example included below has its own copy of examples/cli as a module.
#![allow(clippy::duplicate_mod)]

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use eventmux::Reactor;
use gungraun::{library_benchmark, library_benchmark_group, main, LibraryBenchmarkConfig};
use loadgen::{MioEcho, ServerStats, TokioEcho};

#[path = "../examples/echo.rs"]
#[allow(dead_code)]
mod echo;
#[path = "../examples/lenprefix_echo.rs"]
#[allow(dead_code)]
mod lenprefix_echo;
#[path = "../examples/mini_redis.rs"]
#[allow(dead_code)]
mod mini_redis;

/// Messages each benchmark counts (after its warm-up).
const MESSAGES: usize = 20_000;
/// Rounds of warm-up before counting: buffers allocated, caches filled.
const WARMUP_ROUNDS: usize = 20;

/// What a client sends and expects back, per message.
#[derive(Clone, Copy)]
struct Protocol {
    request: &'static [u8],
    reply: &'static [u8],
    /// Messages in one request (a SET and a GET are two).
    messages: usize,
}

/// 64 bytes each way, as `scripts/compare.sh`'s echo rows.
const ECHO: Protocol = Protocol {
    request: &[b'x'; 64],
    reply: &[b'x'; 64],
    messages: 1,
};

/// A 60-byte payload behind its 4-byte length: 64 bytes each way.
const LENPREFIX: Protocol = Protocol {
    request: b"\0\0\0\x3cxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    reply: b"\0\0\0\x3cxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    messages: 1,
};

/// A SET and a GET of the same key, as redis-benchmark's commands look on the wire.
const REDIS: Protocol = Protocol {
    request: b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$3\r\nxxx\r\n\
               *2\r\n$3\r\nGET\r\n$16\r\nkey:000000000042\r\n",
    reply: b"+OK\r\n$3\r\nxxx\r\n",
    messages: 2,
};

/// The client thread and the signal that starts its counted rounds.
struct Client {
    go: mpsc::Sender<()>,
    thread: JoinHandle<Vec<TcpStream>>,
}

/// Connects `conns` clients to `addr`; warms up, calls `warm`, waits for the go, sends the
/// counted rounds and calls `done`. The streams are returned, to close after the server
/// has stopped.
fn client(
    addr: SocketAddr,
    conns: usize,
    depth: usize,
    protocol: Protocol,
    warm: impl FnOnce() + Send + 'static,
    done: impl FnOnce() + Send + 'static,
) -> Client {
    let (go, started) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut streams: Vec<TcpStream> = (0..conns)
            .map(|_| {
                let stream = TcpStream::connect(addr).unwrap();
                stream.set_nodelay(true).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(120)))
                    .unwrap();
                stream
            })
            .collect();
        let batch = protocol.request.repeat(depth);
        let expected = protocol.reply.repeat(depth);
        let mut got = vec![0; expected.len()];
        let mut round = |streams: &mut [TcpStream]| {
            for stream in streams.iter_mut() {
                stream.write_all(&batch).unwrap();
            }
            for stream in streams.iter_mut() {
                stream.read_exact(&mut got).unwrap();
                assert!(got == expected, "a wrong reply");
            }
        };
        for _ in 0..WARMUP_ROUNDS {
            round(&mut streams);
        }
        warm();
        started.recv().unwrap();
        let rounds = MESSAGES / (conns * depth * protocol.messages);
        assert_eq!(rounds * conns * depth * protocol.messages, MESSAGES);
        for _ in 0..rounds {
            round(&mut streams);
        }
        done();
        streams
    });
    Client { go, thread }
}

// ----- eventmux ----------------------------------------------------------------------------

struct EventmuxFixture {
    reactor: Reactor,
    client: Client,
}

/// A reactor with the listener `listen` opens, warmed up by a client.
fn eventmux_fixture(
    listen: fn(&mut Reactor) -> eventmux::Token,
    conns: usize,
    depth: usize,
    protocol: Protocol,
) -> EventmuxFixture {
    let mut reactor = Reactor::new().unwrap();
    let listener = listen(&mut reactor);
    let addr = reactor.local_addr(listener).unwrap();
    let remote = reactor.remote().unwrap();
    let (warm, warmed) = mpsc::channel();
    let client = client(
        addr,
        conns,
        depth,
        protocol,
        move || warm.send(()).unwrap(),
        move || remote.stop().unwrap(),
    );
    while warmed.try_recv().is_err() {
        reactor.run_once(Some(Duration::from_millis(1))).unwrap();
    }
    EventmuxFixture { reactor, client }
}

fn finish_eventmux(fixture: EventmuxFixture) {
    drop(fixture.client.thread.join().unwrap());
}

fn echo_listener(reactor: &mut Reactor) -> eventmux::Token {
    let options = echo::options(Some(echo::DEFAULT_IDLE));
    reactor
        .listen_with("127.0.0.1:0", options, echo::Server)
        .unwrap()
}

fn lenprefix_listener(reactor: &mut Reactor) -> eventmux::Token {
    reactor
        .listen_with(
            "127.0.0.1:0",
            lenprefix_echo::options(),
            lenprefix_echo::Server,
        )
        .unwrap()
}

fn redis_listener(reactor: &mut Reactor) -> eventmux::Token {
    mini_redis::start(reactor, "127.0.0.1:0", &mini_redis::Config::default()).unwrap()
}

fn echo_fixture(conns: usize, depth: usize) -> EventmuxFixture {
    eventmux_fixture(echo_listener, conns, depth, ECHO)
}

fn lenprefix_fixture(conns: usize, depth: usize) -> EventmuxFixture {
    eventmux_fixture(lenprefix_listener, conns, depth, LENPREFIX)
}

fn redis_fixture(conns: usize, depth: usize) -> EventmuxFixture {
    eventmux_fixture(redis_listener, conns, depth, REDIS)
}

/// Serves the counted rounds: runs the reactor until the client stops it.
fn serve_eventmux(fixture: EventmuxFixture) -> EventmuxFixture {
    let mut fixture = fixture;
    fixture.client.go.send(()).unwrap();
    fixture.reactor.run().unwrap();
    black_box(fixture)
}

#[library_benchmark]
#[bench::c1_d1(args = (1, 1), setup = echo_fixture, teardown = finish_eventmux)]
#[bench::c50_d1(args = (50, 1), setup = echo_fixture, teardown = finish_eventmux)]
#[bench::c50_d16(args = (50, 16), setup = echo_fixture, teardown = finish_eventmux)]
fn eventmux_echo(fixture: EventmuxFixture) -> EventmuxFixture {
    serve_eventmux(fixture)
}

#[library_benchmark]
#[bench::c1_d1(args = (1, 1), setup = lenprefix_fixture, teardown = finish_eventmux)]
#[bench::c50_d1(args = (50, 1), setup = lenprefix_fixture, teardown = finish_eventmux)]
fn eventmux_lenprefix(fixture: EventmuxFixture) -> EventmuxFixture {
    serve_eventmux(fixture)
}

#[library_benchmark]
#[bench::c1_d8(args = (1, 8), setup = redis_fixture, teardown = finish_eventmux)]
#[bench::c50_d8(args = (50, 8), setup = redis_fixture, teardown = finish_eventmux)]
fn eventmux_mini_redis(fixture: EventmuxFixture) -> EventmuxFixture {
    serve_eventmux(fixture)
}

// ----- tokio -------------------------------------------------------------------------------

struct TokioFixture {
    server: TokioEcho,
    stats: Arc<ServerStats>,
    /// Fires when the client has its last reply (taken by the counted call).
    done: Option<tokio::sync::oneshot::Receiver<()>>,
    client: Client,
}

fn tokio_fixture(conns: usize, depth: usize) -> TokioFixture {
    let mut server = TokioEcho::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let stats = Arc::new(ServerStats::default());
    let (warm, warmed) = tokio::sync::oneshot::channel();
    let (finished, done) = tokio::sync::oneshot::channel();
    let client = client(
        addr,
        conns,
        depth,
        ECHO,
        move || warm.send(()).unwrap(),
        move || finished.send(()).unwrap(),
    );
    server.serve_until(&stats, warmed).unwrap();
    TokioFixture {
        server,
        stats,
        done: Some(done),
        client,
    }
}

fn finish_tokio(fixture: TokioFixture) {
    drop(fixture.client.thread.join().unwrap());
}

#[library_benchmark]
#[bench::c1_d1(args = (1, 1), setup = tokio_fixture, teardown = finish_tokio)]
#[bench::c50_d1(args = (50, 1), setup = tokio_fixture, teardown = finish_tokio)]
#[bench::c50_d16(args = (50, 16), setup = tokio_fixture, teardown = finish_tokio)]
fn tokio_echo(fixture: TokioFixture) -> TokioFixture {
    let mut fixture = fixture;
    fixture.client.go.send(()).unwrap();
    let done = fixture.done.take().unwrap();
    fixture.server.serve_until(&fixture.stats, done).unwrap();
    black_box(fixture)
}

// ----- mio ---------------------------------------------------------------------------------

struct MioFixture {
    server: MioEcho,
    /// Says the client has its last reply.
    done: mpsc::Receiver<()>,
    client: Client,
}

fn mio_fixture(conns: usize, depth: usize) -> MioFixture {
    let mut server = MioEcho::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let (warm_waker, done_waker) = (server.waker(), server.waker());
    let (warm, warmed) = mpsc::channel();
    let (finished, done) = mpsc::channel();
    let client = client(
        addr,
        conns,
        depth,
        ECHO,
        move || {
            warm.send(()).unwrap();
            warm_waker.wake().unwrap();
        },
        move || {
            finished.send(()).unwrap();
            done_waker.wake().unwrap();
        },
    );
    server.serve_until(|| warmed.try_recv().is_ok()).unwrap();
    MioFixture {
        server,
        done,
        client,
    }
}

fn finish_mio(fixture: MioFixture) {
    drop(fixture.client.thread.join().unwrap());
}

#[library_benchmark]
#[bench::c1_d1(args = (1, 1), setup = mio_fixture, teardown = finish_mio)]
#[bench::c50_d1(args = (50, 1), setup = mio_fixture, teardown = finish_mio)]
#[bench::c50_d16(args = (50, 16), setup = mio_fixture, teardown = finish_mio)]
fn mio_echo(fixture: MioFixture) -> MioFixture {
    let mut fixture = fixture;
    fixture.client.go.send(()).unwrap();
    let MioFixture { server, done, .. } = &mut fixture;
    server.serve_until(|| done.try_recv().is_ok()).unwrap();
    black_box(fixture)
}

library_benchmark_group!(
    name = servers,
    benchmarks = [
        eventmux_echo,
        eventmux_lenprefix,
        eventmux_mini_redis,
        tokio_echo,
        mio_echo
    ]
);

main!(
    config = LibraryBenchmarkConfig::default().valgrind_args(["--fair-sched=yes"]);
    library_benchmark_groups = servers
);
