//! The protocol examples end to end: `mini_redis` (RESP2 and inline commands) and
//! `http_hello` (HTTP/1.1 with keep-alive and pipelining), each started on a reactor on the
//! test thread and driven by a plain blocking `TcpStream` client on a thread of its own,
//! with the bytes a real client sends. Every reply is compared byte for byte.
//!
//! Pipelined streams are also written in random pieces of 1 to 7 bytes (a seeded PRNG, so a
//! failing split can be replayed) and must give exactly the replies one big write gives.
//! Closes are proved by the client reading to the end of the stream (its reads time out
//! after `DEADLINE`, so a server that wrongly keeps a connection open fails the test).
//!
//! The bounds against hostile clients are tested too: redis's 64 KiB line limit as it is,
//! and `maxclients`, HTTP's request and keep-alive deadlines and its head and body limits
//! set small through each example's `Config`, so that a test passes them in a fraction of
//! a second.
// mini_redis and http_hello each include the examples' shared command line (examples/cli).
#![allow(clippy::duplicate_mod)]

mod util;

#[path = "../examples/mini_redis.rs"]
#[allow(dead_code)]
mod mini_redis;

#[path = "../examples/http_hello.rs"]
#[allow(dead_code)]
mod http_hello;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use eventmux::{Reactor, Token};
use util::{run_until, DEADLINE};

// ----- harness -----------------------------------------------------------------------------

/// One of the examples, listening on 127.0.0.1:0 on a reactor owned by the test thread.
struct Server {
    reactor: Reactor,
    addr: SocketAddr,
    listener: Token,
}

impl Server {
    fn redis() -> Server {
        Server::redis_with(mini_redis::Config::default())
    }

    fn redis_with(config: mini_redis::Config) -> Server {
        Server::start(|reactor, addr| mini_redis::start(reactor, addr, &config))
    }

    fn http() -> Server {
        Server::http_with(http_hello::Config::default())
    }

    fn http_with(config: http_hello::Config) -> Server {
        Server::start(|reactor, addr| http_hello::start(reactor, addr, &config))
    }

    fn start(start: impl FnOnce(&mut Reactor, &str) -> io::Result<Token>) -> Server {
        let mut reactor = Reactor::new().expect("a reactor");
        let listener = start(&mut reactor, "127.0.0.1:0").expect("listen on loopback");
        let addr = reactor
            .handle(listener)
            .expect("just opened")
            .local_addr()
            .expect("a bound address");
        Server {
            reactor,
            addr,
            listener,
        }
    }

    /// Runs the server until `client`, run on a thread of its own with the server's
    /// address, has returned; a panic in the client fails the test with its message.
    fn serve(&mut self, client: impl FnOnce(SocketAddr) + Send + 'static) {
        let addr = self.addr;
        let client = thread::spawn(move || client(addr));
        run_until(&mut self.reactor, "the client to finish", |_| {
            client.is_finished()
        });
        if let Err(panic) = client.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

/// A blocking client connection whose reads and writes fail a hung test. They give up
/// well before the reactor's `DEADLINE`, so the client's own message (what it got before
/// the wait) is the one reported.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
        .set_read_timeout(Some(DEADLINE / 2))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(DEADLINE / 2))
        .expect("write timeout");
    stream
}

/// Fails unless `got` is exactly `want`, showing both escaped.
#[track_caller]
fn assert_bytes(got: &[u8], want: &[u8]) {
    assert!(
        got == want,
        "reply differs\n  got: {}\n want: {}",
        show(got),
        show(want)
    );
}

/// Bytes escaped; long ones cut in the middle.
fn show(data: &[u8]) -> String {
    if data.len() <= 400 {
        format!(
            "{:?} ({} bytes)",
            data.escape_ascii().to_string(),
            data.len()
        )
    } else {
        format!(
            "{:?} ... {:?} ({} bytes)",
            data[..200].escape_ascii().to_string(),
            data[data.len() - 200..].escape_ascii().to_string(),
            data.len()
        )
    }
}

/// Reads exactly `len` bytes.
fn read_n(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut reply = vec![0; len];
    let mut got = 0;
    while got < len {
        match stream.read(&mut reply[got..]) {
            Ok(0) => panic!(
                "the server closed the connection after {}",
                show(&reply[..got])
            ),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed after {}: {e}", show(&reply[..got])),
        }
    }
    reply
}

/// Sends `request` and checks that exactly `want` comes back (the connection stays open).
#[track_caller]
fn ask(stream: &mut TcpStream, request: &[u8], want: &[u8]) {
    stream.write_all(request).expect("write a request");
    assert_bytes(&read_n(stream, want.len()), want);
}

/// Reads until the server closes the connection.
fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut reply = Vec::new();
    if let Err(e) = stream.read_to_end(&mut reply) {
        panic!("no end of stream after {}: {e}", show(&reply));
    }
    reply
}

/// Sends `request` and checks that exactly `want` comes back, then the end of the stream.
#[track_caller]
fn ask_then_eof(stream: &mut TcpStream, request: &[u8], want: &[u8]) {
    stream.write_all(request).expect("write a request");
    assert_bytes(&read_to_eof(stream), want);
}

/// A seeded PRNG (xorshift64*), so that a failing split can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Writes `bytes` in pieces of 1 to 7 bytes, sizes drawn from a PRNG seeded with `seed`.
fn write_in_pieces(stream: &mut TcpStream, bytes: &[u8], seed: u64) {
    let mut rng = Rng(seed);
    let mut at = 0;
    while at < bytes.len() {
        let end = (at + 1 + rng.below(7) as usize).min(bytes.len());
        stream.write_all(&bytes[at..end]).expect("write a piece");
        at = end;
    }
}

/// Sends `request` (in one write, or in random pieces with `Some(seed)`) while reading the
/// replies on another thread, and checks that exactly `want` comes back.
fn pipeline(addr: SocketAddr, request: &[u8], seed: Option<u64>, want: &[u8]) {
    let mut stream = connect(addr);
    let mut writer = stream.try_clone().expect("a second descriptor");
    let got = thread::scope(|scope| {
        let reader = scope.spawn(move || read_n(&mut stream, want.len()));
        match seed {
            Some(seed) => write_in_pieces(&mut writer, request, seed),
            None => writer.write_all(request).expect("write the pipeline"),
        }
        reader
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    assert_bytes(&got, want);
}

// ----- RESP --------------------------------------------------------------------------------

/// A RESP request: an array of bulk strings.
fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

/// A RESP bulk string reply.
fn bulk(s: &str) -> Vec<u8> {
    format!("${}\r\n{s}\r\n", s.len()).into_bytes()
}

const OK: &[u8] = b"+OK\r\n";
const NIL: &[u8] = b"$-1\r\n";

// ----- mini_redis: commands ---------------------------------------------------------------

#[test]
fn redis_ping_and_echo() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, &cmd(&["PING"]), b"+PONG\r\n");
        ask(&mut c, &cmd(&["ping", "hi there"]), &bulk("hi there"));
        ask(&mut c, &cmd(&["ECHO", "hello"]), &bulk("hello"));
        ask(&mut c, &cmd(&["ECHO", ""]), b"$0\r\n\r\n");
        ask(
            &mut c,
            &cmd(&["ECHO"]),
            b"-ERR wrong number of arguments for 'echo' command\r\n",
        );
    });
}

#[test]
fn redis_set_get_del_exists() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, &cmd(&["GET", "k"]), NIL);
        ask(&mut c, &cmd(&["SET", "k", "v1"]), OK);
        ask(&mut c, &cmd(&["GET", "k"]), &bulk("v1"));
        ask(&mut c, &cmd(&["SET", "k", "value two"]), OK);
        ask(&mut c, &cmd(&["GET", "k"]), &bulk("value two"));
        ask(&mut c, &cmd(&["SET", "k", "x", "NX"]), NIL);
        ask(&mut c, &cmd(&["SET", "other", "x", "XX"]), NIL);
        ask(&mut c, &cmd(&["SET", "other", "o", "NX"]), OK);
        ask(
            &mut c,
            &cmd(&["EXISTS", "k", "other", "missing", "k"]),
            b":3\r\n",
        );
        ask(&mut c, &cmd(&["DEL", "k", "missing"]), b":1\r\n");
        ask(&mut c, &cmd(&["GET", "k"]), NIL);
        ask(&mut c, &cmd(&["EXISTS", "k"]), b":0\r\n");
        ask(&mut c, &cmd(&["GET", "other"]), &bulk("o"));
        // A binary value with CR LF inside survives: bulk strings are length-framed.
        let binary = b"*3\r\n$3\r\nSET\r\n$3\r\nbin\r\n$6\r\na\r\nb\0c\r\n";
        ask(&mut c, binary, OK);
        ask(&mut c, &cmd(&["GET", "bin"]), b"$6\r\na\r\nb\0c\r\n");
    });
}

#[test]
fn redis_incr_and_decr() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, &cmd(&["INCR", "n"]), b":1\r\n");
        ask(&mut c, &cmd(&["INCR", "n"]), b":2\r\n");
        ask(&mut c, &cmd(&["DECR", "n"]), b":1\r\n");
        ask(&mut c, &cmd(&["DECR", "fresh"]), b":-1\r\n");
        ask(&mut c, &cmd(&["SET", "n", "41"]), OK);
        ask(&mut c, &cmd(&["INCR", "n"]), b":42\r\n");
        ask(&mut c, &cmd(&["GET", "n"]), &bulk("42"));
    });
}

#[test]
fn redis_incr_on_a_non_integer_is_an_error() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        let error = b"-ERR value is not an integer or out of range\r\n";
        ask(&mut c, &cmd(&["SET", "s", "abc"]), OK);
        ask(&mut c, &cmd(&["INCR", "s"]), error);
        ask(&mut c, &cmd(&["DECR", "s"]), error);
        ask(&mut c, &cmd(&["GET", "s"]), &bulk("abc"));
        ask(&mut c, &cmd(&["SET", "max", &i64::MAX.to_string()]), OK);
        ask(&mut c, &cmd(&["INCR", "max"]), error);
        // The connection is still good.
        ask(&mut c, &cmd(&["PING"]), b"+PONG\r\n");
    });
}

#[test]
fn redis_mset_and_mget() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, &cmd(&["MSET", "a", "1", "b", "22", "c", ""]), OK);
        ask(
            &mut c,
            &cmd(&["MGET", "a", "missing", "b", "c"]),
            b"*4\r\n$1\r\n1\r\n$-1\r\n$2\r\n22\r\n$0\r\n\r\n",
        );
        ask(
            &mut c,
            &cmd(&["MSET", "a", "1", "b"]),
            b"-ERR wrong number of arguments for 'mset' command\r\n",
        );
    });
}

#[test]
fn redis_expire_and_ttl() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, &cmd(&["TTL", "missing"]), b":-2\r\n");
        ask(&mut c, &cmd(&["SET", "k", "v"]), OK);
        ask(&mut c, &cmd(&["TTL", "k"]), b":-1\r\n");
        ask(&mut c, &cmd(&["EXPIRE", "missing", "100"]), b":0\r\n");
        // EXPIRE and TTL in one write, handled in one turn: TTL rounds to whole seconds,
        // so only a half-second stall between the two could change the answer.
        let mut both = cmd(&["EXPIRE", "k", "100"]);
        both.extend(cmd(&["TTL", "k"]));
        ask(&mut c, &both, b":1\r\n:100\r\n");
        ask(&mut c, &cmd(&["GET", "k"]), &bulk("v"));
        ask(
            &mut c,
            &cmd(&["EXPIRE", "k", "soon"]),
            b"-ERR value is not an integer or out of range\r\n",
        );
        // A non-positive time deletes the key.
        ask(&mut c, &cmd(&["EXPIRE", "k", "0"]), b":1\r\n");
        ask(&mut c, &cmd(&["GET", "k"]), NIL);
    });
}

#[test]
fn redis_set_ex_then_ttl() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        // Both in one write, handled in one turn (see redis_expire_and_ttl).
        let mut request = cmd(&["SET", "k", "v", "EX", "1000"]);
        request.extend(cmd(&["TTL", "k"]));
        request.extend(cmd(&["SET", "p", "v", "PX", "20000"]));
        request.extend(cmd(&["TTL", "p"]));
        ask(&mut c, &request, b"+OK\r\n:1000\r\n+OK\r\n:20\r\n");
        ask(
            &mut c,
            &cmd(&["SET", "k", "v", "EX", "0"]),
            b"-ERR invalid expire time in 'set' command\r\n",
        );
        ask(
            &mut c,
            &cmd(&["SET", "k", "v", "BOGUS"]),
            b"-ERR syntax error\r\n",
        );
        // A plain SET clears the TTL.
        ask(&mut c, &cmd(&["SET", "k", "w"]), OK);
        ask(&mut c, &cmd(&["TTL", "k"]), b":-1\r\n");
    });
}

#[test]
fn redis_ttl_past_the_clock_is_an_error_not_a_crash() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        let huge = i64::MAX.to_string();
        ask(
            &mut c,
            &cmd(&["SET", "k", "v", "EX", &huge]),
            b"-ERR invalid expire time in 'set' command\r\n",
        );
        ask(&mut c, &cmd(&["SET", "k", "v"]), OK);
        ask(
            &mut c,
            &cmd(&["EXPIRE", "k", &huge]),
            b"-ERR invalid expire time in 'expire' command\r\n",
        );
        // Same connection, key untouched.
        ask(&mut c, &cmd(&["TTL", "k"]), b":-1\r\n");
    });
}

#[test]
fn redis_integers_are_read_as_redis_reads_them() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        let error = b"-ERR value is not an integer or out of range\r\n";
        for bad in ["+5", "05", "-0", " 5", "5 ", "", "-", "9223372036854775808"] {
            ask(&mut c, &cmd(&["SET", "n", bad]), OK);
            ask(&mut c, &cmd(&["INCR", "n"]), error);
        }
        ask(&mut c, &cmd(&["SET", "n", &i64::MIN.to_string()]), OK);
        ask(&mut c, &cmd(&["DECR", "n"]), error);
        ask(&mut c, &cmd(&["INCR", "n"]), b":-9223372036854775807\r\n");
        ask(&mut c, &cmd(&["SET", "n", "0"]), OK);
        ask(&mut c, &cmd(&["DECR", "n"]), b":-1\r\n");
    });
}

/// Asks EXISTS until the key has expired.
fn wait_until_gone(c: &mut TcpStream, key: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        c.write_all(&cmd(&["EXISTS", key])).expect("write EXISTS");
        if read_n(c, 4) == b":0\r\n" {
            return;
        }
        assert!(Instant::now() < deadline, "{key} never expired");
    }
}

#[test]
fn redis_expired_keys_are_gone_for_every_command() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, &cmd(&["MSET", "stays", "1", "goes", "2"]), OK);
        ask(&mut c, &cmd(&["SET", "goes", "2", "PX", "1"]), OK);
        wait_until_gone(&mut c, "goes");
        ask(&mut c, &cmd(&["GET", "goes"]), NIL);
        ask(&mut c, &cmd(&["TTL", "goes"]), b":-2\r\n");
        ask(&mut c, &cmd(&["DEL", "goes"]), b":0\r\n");
        ask(&mut c, &cmd(&["DBSIZE"]), b":1\r\n");
        // INCR on an expired key starts again from zero, without the old TTL.
        ask(&mut c, &cmd(&["SET", "goes", "41", "PX", "1"]), OK);
        wait_until_gone(&mut c, "goes");
        ask(&mut c, &cmd(&["INCR", "goes"]), b":1\r\n");
        ask(&mut c, &cmd(&["TTL", "goes"]), b":-1\r\n");
    });
}

#[test]
fn redis_dbsize_and_flushall() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, &cmd(&["DBSIZE"]), b":0\r\n");
        ask(&mut c, &cmd(&["MSET", "a", "1", "b", "2", "c", "3"]), OK);
        ask(&mut c, &cmd(&["DBSIZE"]), b":3\r\n");
        ask(&mut c, &cmd(&["FLUSHALL"]), OK);
        ask(&mut c, &cmd(&["DBSIZE"]), b":0\r\n");
        ask(&mut c, &cmd(&["GET", "a"]), NIL);
    });
}

#[test]
fn redis_keyspace_is_shared_between_connections() {
    Server::redis().serve(|addr| {
        let (mut a, mut b) = (connect(addr), connect(addr));
        ask(&mut a, &cmd(&["SET", "k", "from a"]), OK);
        ask(&mut b, &cmd(&["GET", "k"]), &bulk("from a"));
    });
}

#[test]
fn redis_unknown_command_is_an_error() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        ask(
            &mut c,
            &cmd(&["FROB", "x"]),
            b"-ERR unknown command 'FROB'\r\n",
        );
        ask(&mut c, &cmd(&["PING"]), b"+PONG\r\n");
    });
}

#[test]
fn redis_config_get_save_answers_a_two_element_array() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        ask(
            &mut c,
            &cmd(&["CONFIG", "GET", "save"]),
            b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n",
        );
        ask(
            &mut c,
            &cmd(&["CONFIG", "GET", "appendonly"]),
            b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n",
        );
        ask(&mut c, &cmd(&["CONFIG", "GET", "maxmemory"]), b"*0\r\n");
    });
}

#[test]
fn redis_inline_commands() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, b"PING\r\n", b"+PONG\r\n");
        ask(&mut c, b"SET  k \t hello\r\n", OK);
        ask(&mut c, b"GET k\n", &bulk("hello"));
        ask(&mut c, b"ECHO hi\r\nPING\r\n", b"$2\r\nhi\r\n+PONG\r\n");
        // An empty line is nothing to do; the next command still gets its answer.
        ask(&mut c, b"\r\nEXISTS k\r\n", b":1\r\n");
    });
}

#[test]
fn redis_inline_commands_take_quotes_and_escapes_as_redis_does() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, b"SET k \"a b\"\r\n", OK);
        ask(&mut c, b"GET k\r\n", &bulk("a b"));
        ask(&mut c, b"SET k \"tab\\there\\x41\\\"\"\r\n", OK);
        ask(&mut c, b"GET k\r\n", &bulk("tab\there\x41\""));
        ask(&mut c, b"SET k 'it\\'s \\n'\r\n", OK);
        ask(&mut c, b"GET k\r\n", &bulk("it's \\n"));
        ask(&mut c, b"ECHO \"\"\r\n", b"$0\r\n\r\n");
        // A quote left open, or one closed inside a word, ends the connection.
        ask_then_eof(
            &mut c,
            b"SET k \"open\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        );
        let mut c = connect(addr);
        ask_then_eof(
            &mut c,
            b"SET k \"a\"b\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        );
    });
}

#[test]
fn redis_quit_replies_ok_and_closes() {
    Server::redis().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, &cmd(&["PING"]), b"+PONG\r\n");
        // A command pipelined after QUIT is not answered.
        let mut request = cmd(&["QUIT"]);
        request.extend(cmd(&["PING"]));
        ask_then_eof(&mut c, &request, OK);
    });
}

// ----- mini_redis: pipelining ----------------------------------------------------------------

/// 1000 SET and 1000 GET requests and the replies they must get, in order.
fn thousand_sets_and_gets() -> (Vec<u8>, Vec<u8>) {
    let (mut request, mut replies) = (Vec::new(), Vec::new());
    for i in 0..1000 {
        let (key, value) = (format!("key:{i}"), format!("value-{}", i * 7919));
        request.extend(cmd(&["SET", &key, &value]));
        replies.extend_from_slice(OK);
        request.extend(cmd(&["GET", &key]));
        replies.extend(bulk(&value));
    }
    // Inline commands mixed in, and a final count.
    request.extend_from_slice(b"PING\r\nDBSIZE\r\n");
    replies.extend_from_slice(b"+PONG\r\n:1000\r\n");
    (request, replies)
}

#[test]
fn redis_pipelined_requests_in_one_write() {
    let (request, replies) = thousand_sets_and_gets();
    Server::redis().serve(move |addr| pipeline(addr, &request, None, &replies));
}

#[test]
fn redis_pipelined_requests_split_at_random_boundaries() {
    let (request, replies) = thousand_sets_and_gets();
    Server::redis().serve(move |addr| {
        for seed in [1, 0x5eed, 0xdead_beef] {
            // Each seed on a fresh keyspace, so DBSIZE counts the same.
            let mut c = connect(addr);
            ask(&mut c, &cmd(&["FLUSHALL"]), OK);
            pipeline(addr, &request, Some(seed), &replies);
        }
    });
}

// ----- mini_redis: bad requests ------------------------------------------------------------

#[test]
fn redis_malformed_request_closes_only_that_connection() {
    let cases: [(&[u8], &[u8]); 5] = [
        (
            b"*x\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        // A leading zero is refused, as redis's string2ll does, in the one- and two-digit
        // headers the decoder reads without its loop as in longer ones.
        (
            b"*1\r\n$04\r\nPING\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*01\r\n$4\r\nPING\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (b"*1\r\n+foo\r\n", b"-ERR Protocol error: expected '$'\r\n"),
    ];
    Server::redis().serve(move |addr| {
        let mut good = connect(addr);
        ask(&mut good, &cmd(&["SET", "k", "v"]), OK);
        for (request, error) in cases {
            let mut bad = connect(addr);
            ask(&mut bad, &cmd(&["PING"]), b"+PONG\r\n");
            // What follows the bad request in the same write is not answered.
            let mut request = request.to_vec();
            request.extend(cmd(&["PING"]));
            ask_then_eof(&mut bad, &request, error);
            ask(&mut good, &cmd(&["GET", "k"]), &bulk("v"));
        }
        // And a new client is served as before.
        ask(&mut connect(addr), &cmd(&["GET", "k"]), &bulk("v"));
    });
}

#[test]
fn redis_oversized_request_is_refused_and_closed() {
    Server::redis().serve(|addr| {
        let mut good = connect(addr);
        ask(&mut good, &cmd(&["PING"]), b"+PONG\r\n");
        // A bulk length past the 8 MiB limit is refused from the announcement alone.
        let mut c = connect(addr);
        ask_then_eof(
            &mut c,
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9000000\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        );
        // One exactly at the limit cannot fit in a request with its header either.
        let mut c = connect(addr);
        ask_then_eof(
            &mut c,
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$8388608\r\nxxxx",
            b"-ERR Protocol error: request too large or malformed\r\n",
        );
        ask(&mut good, &cmd(&["PING"]), b"+PONG\r\n");
    });
}

#[test]
fn redis_clients_past_maxclients_get_the_redis_refusal_and_a_close() {
    let config = mini_redis::Config {
        maxclients: 2,
        ..mini_redis::Config::default()
    };
    let mut server = Server::redis_with(config);
    server.serve(|addr| {
        let (mut a, mut b) = (connect(addr), connect(addr));
        ask(&mut a, &cmd(&["PING"]), b"+PONG\r\n");
        ask(&mut b, &cmd(&["PING"]), b"+PONG\r\n");
        let mut third = connect(addr);
        assert_bytes(
            &read_to_eof(&mut third),
            b"-ERR max number of clients reached\r\n",
        );
        // The two inside are served as before.
        ask(&mut a, &cmd(&["SET", "k", "v"]), OK);
        ask(&mut b, &cmd(&["GET", "k"]), &bulk("v"));
        // Once one leaves there is a seat again (as soon as the server has seen it go).
        drop(a);
        let deadline = Instant::now() + DEADLINE / 2;
        loop {
            let mut c = connect(addr);
            let mut reply = [0; 7];
            // Refused, it reads the refusal's first bytes (or a reset after them).
            let served = c.write_all(&cmd(&["PING"])).is_ok()
                && c.read_exact(&mut reply).is_ok()
                && reply == *b"+PONG\r\n";
            if served {
                break;
            }
            assert!(Instant::now() < deadline, "no seat after a close");
        }
    });
    let listener = server.reactor.handle(server.listener).expect("still open");
    let refused = listener.refused_connections().expect("a listener");
    assert!(refused >= 1, "the refusals are counted");
}

/// An inline command of `len` bytes before its `\r\n`: ECHO of a run of `a`.
fn inline_echo(len: usize) -> (Vec<u8>, Vec<u8>) {
    let word = "a".repeat(len - "ECHO \r".len());
    (format!("ECHO {word}\r\n").into_bytes(), bulk(&word))
}

const TOO_BIG_INLINE: &[u8] = b"-ERR Protocol error: too big inline request\r\n";

#[test]
fn redis_inline_request_of_64_kib_is_served_and_a_longer_one_refused_as_redis_does() {
    Server::redis().serve(|addr| {
        let mut good = connect(addr);
        // The line up to its \n is 64 KiB, \r included: redis's PROTO_INLINE_MAX_SIZE.
        let (request, reply) = inline_echo(64 * 1024);
        ask(&mut good, &request, &reply);
        // One byte more is refused, end in sight or not, however the bytes arrive.
        let (request, _) = inline_echo(64 * 1024 + 1);
        ask_then_eof(&mut connect(addr), &request, TOO_BIG_INLINE);
        let unterminated = [&b"SET k "[..], &[b'x'; 64 * 1024]].concat();
        let mut c = connect(addr);
        write_in_pieces(&mut c, &unterminated, 0x64);
        assert_bytes(&read_to_eof(&mut c), TOO_BIG_INLINE);
        // Refused at 64 KiB, not buffered up to the 8 MiB request bound, and not run.
        ask(&mut good, &cmd(&["EXISTS", "k"]), b":0\r\n");
    });
}

#[test]
fn redis_count_lines_past_64_kib_are_refused_as_redis_does() {
    Server::redis().serve(|addr| {
        let digits = vec![b'1'; 64 * 1024 + 1];
        ask_then_eof(
            &mut connect(addr),
            &[&b"*"[..], &digits].concat(),
            b"-ERR Protocol error: too big mbulk count string\r\n",
        );
        ask_then_eof(
            &mut connect(addr),
            &[&b"*1\r\n$"[..], &digits].concat(),
            b"-ERR Protocol error: too big bulk count string\r\n",
        );
    });
}

// ----- http_hello ----------------------------------------------------------------------------

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nServer: eventmux\r\nContent-Type: text/plain\r\n\
Content-Length: 14\r\n\r\nHello, world!\n";
const HELLO_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: eventmux\r\nContent-Type: text/plain\r\n\
Content-Length: 14\r\nConnection: close\r\n\r\nHello, world!\n";
const HELLO_KEEP_ALIVE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: eventmux\r\nContent-Type: text/plain\r\n\
Content-Length: 14\r\nConnection: keep-alive\r\n\r\nHello, world!\n";
const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nServer: eventmux\r\n\
Content-Type: text/plain\r\nContent-Length: 10\r\n\r\nNot Found\n";
const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nServer: eventmux\r\n\
Content-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const REQUEST_TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nServer: eventmux\r\n\
Content-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const CONTENT_TOO_LARGE: &[u8] = b"HTTP/1.1 413 Content Too Large\r\nServer: eventmux\r\n\
Content-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const HEADERS_TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
Server: eventmux\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[test]
fn http_get_root_is_200_hello_world() {
    Server::http().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, GET, HELLO);
        // Keep-alive: the same connection serves the next request.
        ask(
            &mut c,
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n",
            HELLO,
        );
    });
}

#[test]
fn http_other_paths_and_methods_are_404() {
    Server::http().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n", NOT_FOUND);
        ask(&mut c, b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", NOT_FOUND);
        ask(&mut c, GET, HELLO);
    });
}

#[test]
fn http_head_gets_headers_without_body() {
    Server::http().serve(|addr| {
        let mut c = connect(addr);
        let head = &HELLO[..HELLO.len() - b"Hello, world!\n".len()];
        ask(&mut c, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", head);
        // Had a body been sent, it would come before this response.
        ask(&mut c, GET, HELLO);
    });
}

#[test]
fn http_pipelined_gets_in_one_write() {
    Server::http().serve(|addr| {
        pipeline(addr, &GET.repeat(10), None, &HELLO.repeat(10));
    });
}

#[test]
fn http_pipelined_gets_split_at_random_boundaries() {
    let mut request = Vec::new();
    let mut replies = Vec::new();
    for i in 0..10 {
        if i % 3 == 1 {
            request.extend_from_slice(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
            replies.extend_from_slice(NOT_FOUND);
        } else {
            request.extend_from_slice(GET);
            replies.extend_from_slice(HELLO);
        }
    }
    Server::http().serve(move |addr| {
        for seed in [1, 0x5eed, 0xdead_beef] {
            pipeline(addr, &request, Some(seed), &replies);
        }
    });
}

#[test]
fn http_connection_close_closes_after_the_response() {
    Server::http().serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, GET, HELLO);
        // A request pipelined after it is not answered.
        let mut request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec();
        request.extend_from_slice(GET);
        ask_then_eof(&mut c, &request, HELLO_CLOSE);
    });
}

#[test]
fn http_10_without_keep_alive_closes_after_the_response() {
    Server::http().serve(|addr| {
        let mut c = connect(addr);
        ask_then_eof(&mut c, b"GET / HTTP/1.0\r\n\r\n", HELLO_CLOSE);
    });
}

#[test]
fn http_10_with_keep_alive_stays_open() {
    Server::http().serve(|addr| {
        let mut c = connect(addr);
        let request = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
        // An HTTP/1.0 client only keeps the connection if the response says so.
        ask(&mut c, request, HELLO_KEEP_ALIVE);
        ask(&mut c, request, HELLO_KEEP_ALIVE);
    });
}

#[test]
fn http_every_connection_header_counts() {
    Server::http().serve(|addr| {
        let mut c = connect(addr);
        let request =
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nconnection: CLOSE\r\n\r\n";
        ask_then_eof(&mut c, request, HELLO_CLOSE);
        let mut c = connect(addr);
        let request = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n";
        ask_then_eof(&mut c, request, HELLO_CLOSE);
    });
}

#[test]
fn http_malformed_request_gets_400_then_eof() {
    let cases: [&[u8]; 3] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ];
    Server::http().serve(move |addr| {
        let mut good = connect(addr);
        ask(&mut good, GET, HELLO);
        for request in cases {
            let mut c = connect(addr);
            ask_then_eof(&mut c, request, BAD_REQUEST);
            ask(&mut good, GET, HELLO);
        }
    });
}

#[test]
fn http_post_with_a_content_length_body_is_framed() {
    Server::http().serve(|addr| {
        // The body looks like a request: answered, it would add a response.
        let body = b"GET / HTTP/1.1\r\n\r\n";
        let mut request = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        request.extend_from_slice(GET);
        let replies = [NOT_FOUND, HELLO].concat();
        pipeline(addr, &request, None, &replies);
        pipeline(addr, &request, Some(7), &replies);
        // Nothing more came after those two responses.
        let mut c = connect(addr);
        ask(&mut c, &request, &replies);
        ask(&mut c, GET, HELLO);
    });
}

#[test]
fn http_chunked_post_is_framed() {
    Server::http().serve(|addr| {
        let request = [
            &b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"4\r\nGET \r\n",
            b"e\r\n/ HTTP/1.1\r\n\r\n\r\n",
            b"0\r\n\r\n",
            GET,
        ]
        .concat();
        let replies = [NOT_FOUND, HELLO].concat();
        pipeline(addr, &request, None, &replies);
        pipeline(addr, &request, Some(11), &replies);
        let mut c = connect(addr);
        ask(&mut c, &request, &replies);
        ask(&mut c, GET, HELLO);
    });
}

// ----- http_hello: hostile clients -----------------------------------------------------------

/// A deadline short enough for a test to wait out.
const SHORT: Duration = Duration::from_millis(300);
/// How much earlier than its deadline a close may come: eventmux's deadline clock counts
/// whole milliseconds, read once per turn.
const CLOCK_GRAIN: Duration = Duration::from_millis(2);

/// Small bounds, so that a test request can pass them.
fn small_limits() -> http_hello::Config {
    http_hello::Config {
        max_head: 1024,
        max_body: 1024,
        ..http_hello::Config::default()
    }
}

/// A GET whose head is exactly `len` bytes, padded with a header.
fn get_with_head_of(len: usize) -> Vec<u8> {
    let bare = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n".len();
    format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(len - bare)
    )
    .into_bytes()
}

/// A POST to / (404 here) with a `Content-Length` body of `len` bytes.
fn post_of(len: usize) -> Vec<u8> {
    let mut request = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n");
    request.push_str(&"b".repeat(len));
    request.into_bytes()
}

#[test]
fn http_request_not_whole_within_its_deadline_gets_408_then_eof() {
    let config = http_hello::Config {
        request_timeout: Some(SHORT),
        keepalive_timeout: None,
        ..http_hello::Config::default()
    };
    Server::http_with(config).serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, GET, HELLO);
        // A head that never ends (slowloris): the deadline counts from its first byte.
        let start = Instant::now();
        ask_then_eof(
            &mut c,
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n",
            REQUEST_TIMEOUT,
        );
        let waited = start.elapsed();
        assert!(
            waited >= SHORT - CLOCK_GRAIN,
            "408 after {waited:?}, before the deadline"
        );
        // A body that never ends is late just the same.
        let mut c = connect(addr);
        ask_then_eof(
            &mut c,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nshort",
            REQUEST_TIMEOUT,
        );
    });
}

#[test]
fn http_body_over_the_limit_gets_413_then_eof() {
    Server::http_with(small_limits()).serve(|addr| {
        let mut c = connect(addr);
        // Up to the limit a body is taken, and the connection kept.
        ask(&mut c, &post_of(1024), NOT_FOUND);
        ask(&mut c, GET, HELLO);
        // Past it, refused from the Content-Length; the body sent along is not a request.
        ask_then_eof(&mut connect(addr), &post_of(1025), CONTENT_TOO_LARGE);
        // A chunked body counts as sent, framing included: 1024 bytes of data in two chunks
        // pass the limit at the second.
        let chunked = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
             200\r\n{0}\r\n200\r\n{0}\r\n0\r\n\r\n",
            "c".repeat(0x200)
        );
        ask_then_eof(&mut connect(addr), chunked.as_bytes(), CONTENT_TOO_LARGE);
    });
}

#[test]
fn http_head_over_the_limit_gets_431_then_eof() {
    Server::http_with(small_limits()).serve(|addr| {
        let mut c = connect(addr);
        ask(&mut c, &get_with_head_of(1024), HELLO);
        ask(&mut c, GET, HELLO);
        // One byte longer: refused, whole...
        ask_then_eof(
            &mut connect(addr),
            &get_with_head_of(1025),
            HEADERS_TOO_LARGE,
        );
        // ...or still growing, and however it arrives.
        let endless = format!("GET / HTTP/1.1\r\nX-Pad: {}", "p".repeat(2000));
        let mut c = connect(addr);
        write_in_pieces(&mut c, endless.as_bytes(), 0x431);
        assert_bytes(&read_to_eof(&mut c), HEADERS_TOO_LARGE);
    });
}

#[test]
fn http_idle_keep_alive_connection_is_closed_without_a_response() {
    let config = http_hello::Config {
        keepalive_timeout: Some(SHORT),
        ..http_hello::Config::default()
    };
    Server::http_with(config).serve(|addr| {
        let mut c = connect(addr);
        // The idle time counts from the server's last write, which comes after this.
        let start = Instant::now();
        ask(&mut c, GET, HELLO);
        assert_bytes(&read_to_eof(&mut c), b"");
        let waited = start.elapsed();
        assert!(
            waited >= SHORT - CLOCK_GRAIN,
            "closed after {waited:?}, before the idle time"
        );
    });
}

#[test]
fn http_keep_alive_and_pipelining_work_within_the_bounds() {
    let config = http_hello::Config {
        request_timeout: Some(SHORT * 10),
        keepalive_timeout: Some(SHORT * 10),
        ..small_limits()
    };
    let mut request = Vec::new();
    let mut replies = Vec::new();
    for i in 0..10 {
        match i % 3 {
            0 => request.extend(get_with_head_of(1024)),
            1 => request.extend(post_of(1024)),
            _ => request.extend_from_slice(GET),
        }
        replies.extend_from_slice(if i % 3 == 1 { NOT_FOUND } else { HELLO });
    }
    Server::http_with(config).serve(move |addr| {
        pipeline(addr, &request, None, &replies);
        for seed in [3, 0xb0d7] {
            pipeline(addr, &request, Some(seed), &replies);
        }
        let mut c = connect(addr);
        for _ in 0..3 {
            ask(&mut c, &request, &replies);
        }
    });
}
