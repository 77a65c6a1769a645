//! Framing end to end: each rule (split, lines, size, fixed, HTTP, last, regex) over real
//! loopback connections, whatever the write boundaries; what `on_read_last` gets and when;
//! the `max_size` bound and its callback order; per-connection framing state; framing
//! changed on a live handle (from `on_read` and from a timer); pausing with records
//! buffered; and many records in one read.
//!
//! The decoders' own property tests cut byte strings in memory; here the same streams
//! cross a socket, written by a client in random-sized pieces, and must give the server
//! exactly the records that one big write gives.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use eventmux::framing::{Decoder, Endian, Frame, FrameError, Framing, Size};
use eventmux::{Error, Options, Reactor, DEFAULT_MAX_SIZE, DEFAULT_READ_SIZE};
use util::peer::{run_until_closed_with, Peer};
use util::probe::{events, serve_framed, show, Probe, Records};
use util::{assert_same_bytes, join_client, run_until, run_until_closed, settle, Log, DEADLINE};

// ----- helpers ---------------------------------------------------------------------------

/// A simple seeded PRNG (xorshift64*), so that a failing split can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `1..=max`.
    fn between_1_and(&mut self, max: usize) -> usize {
        1 + (self.next() % max as u64) as usize
    }
}

/// How a client writes its byte stream.
#[derive(Copy, Clone, Debug)]
enum Writes {
    /// In one `write_all`.
    Whole,
    /// In pieces of 1..=`max` bytes, sizes drawn from a PRNG seeded with `seed`.
    Random { seed: u64, max: usize },
}

/// What a server connection made of a byte stream.
#[derive(Debug, PartialEq)]
struct Framed {
    records: Vec<Vec<u8>>,
    last: Vec<Vec<u8>>,
    events: Vec<String>,
}

/// Sends `input` to a fresh server whose connections use `framing`, written as `writes`
/// says (`TCP_NODELAY`, so small pieces leave as they are written), then ends the stream;
/// returns the records, the `on_read_last` data and the callbacks of the server side.
fn frame_over_tcp(framing: Framing, input: &[u8], writes: Writes) -> Framed {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (records, last) = (Records::default(), Records::default());
    let (r, l) = (records.clone(), last.clone());
    let addr = serve_framed(
        &mut reactor,
        Options::new().framing(framing),
        &log,
        &["srv"],
        move |probe| probe.keeping_records(&r, &l),
    );
    let input = input.to_vec();
    let client = thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        match writes {
            Writes::Whole => stream.write_all(&input).unwrap(),
            Writes::Random { seed, max } => {
                let mut rng = Rng(seed);
                let mut rest = &input[..];
                while !rest.is_empty() {
                    let n = rng.between_1_and(max).min(rest.len());
                    stream.write_all(&rest[..n]).unwrap();
                    rest = &rest[n..];
                }
            }
        }
        stream.shutdown(Shutdown::Write).unwrap();
        let _ = stream.read_to_end(&mut Vec::new());
    });
    run_until_closed(&mut reactor, &log, "srv");
    join_client(&mut reactor, client);
    let records = records.borrow().clone();
    let last = last.borrow().clone();
    Framed {
        records,
        last,
        events: events(&log, "srv"),
    }
}

/// Checks that `input` framed by `framing` gives `records` and `last` (then a close on
/// the peer's end of stream), whether it is written whole or in random pieces of 1..=`max`
/// bytes, for a few seeds.
fn assert_frames_the_same_however_written(
    framing: &Framing,
    input: &[u8],
    max: usize,
    records: &[&[u8]],
    last: &[&[u8]],
) {
    let want = Framed {
        records: records.iter().map(|r| r.to_vec()).collect(),
        last: last.iter().map(|r| r.to_vec()).collect(),
        events: ["srv:connect".to_string()]
            .into_iter()
            .chain(records.iter().map(|r| format!("srv:read:{}", show(r))))
            .chain(last.iter().map(|r| format!("srv:read_last:{}", show(r))))
            .chain(["srv:closing:0".into(), "srv:close:PeerClosed".into()])
            .collect(),
    };
    let whole = frame_over_tcp(framing.clone(), input, Writes::Whole);
    assert_eq!(whole, want, "written in one piece");
    for seed in [1, 0x5eed, 0xdead_beef] {
        let writes = Writes::Random { seed, max };
        assert_eq!(
            frame_over_tcp(framing.clone(), input, writes),
            want,
            "written as {writes:?}"
        );
    }
}

/// Wraps a rule and counts, across every connection using it, the bytes its decoders have
/// been shown: a test can then wait until the server has read what a client wrote before
/// it writes more, so that the boundaries it chose are the ones the server sees.
struct Watched {
    inner: Box<dyn Decoder>,
    /// Bytes this connection's records used up.
    consumed: usize,
    /// Bytes this connection has received, as far as the decoder has been shown.
    received: usize,
    /// Shared by every connection's copy.
    total: Rc<Cell<usize>>,
}

impl Decoder for Watched {
    fn decode(&mut self, buf: &[u8], limit: usize) -> Result<Option<Frame>, FrameError> {
        // `buf` is everything received and not yet used up by a record.
        let now = self.consumed + buf.len();
        if now > self.received {
            self.total.set(self.total.get() + now - self.received);
            self.received = now;
        }
        let result = self.inner.decode(buf, limit);
        if let Ok(Some(frame)) = &result {
            self.consumed += frame.consumed();
        }
        result
    }

    fn decode_eof(&mut self, buf: &[u8]) -> Option<Frame> {
        self.inner.decode_eof(buf)
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(Watched {
            inner: self.inner.fresh(),
            consumed: 0,
            received: 0,
            total: self.total.clone(),
        })
    }
}

/// `framing`, watched: also returns the count of bytes its decoders have been shown.
fn watched(framing: Framing) -> (Framing, Rc<Cell<usize>>) {
    let total = Rc::new(Cell::new(0));
    let framing = Framing::custom(Watched {
        inner: framing.into_decoder(),
        consumed: 0,
        received: 0,
        total: total.clone(),
    });
    (framing, total)
}

/// `peer` writes `data`; then the reactor runs until the server's decoders have been shown
/// `seen` bytes in all (counted by a `Watched` framing).
fn send_and_wait(reactor: &mut Reactor, peer: &mut Peer, data: &[u8], seen: &Cell<usize>) {
    let want = seen.get() + data.len();
    peer.send(data);
    run_until(reactor, "the server to read the piece", |_| {
        seen.get() >= want
    });
    assert_eq!(seen.get(), want, "the server read more than was written");
}

/// Encodes `payloads` with a length prefix as `width`, `endian` and `adjust` describe.
fn size_prefixed(width: usize, endian: Endian, adjust: i64, payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        let value = (p.len() as i64 - adjust) as u64;
        match endian {
            Endian::Big => out.extend_from_slice(&value.to_be_bytes()[8 - width..]),
            Endian::Little => out.extend_from_slice(&value.to_le_bytes()[..width]),
        }
        out.extend_from_slice(p);
    }
    out
}

/// Deterministic, non-periodic bytes, so that a lost, duplicated or reordered chunk shows
/// (drawn from this file's `Rng`: other bytes than `util::pattern`'s).
fn pattern(len: usize) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Like `pattern`, but letters only (no delimiter can occur in it).
fn letters(len: usize) -> Vec<u8> {
    pattern(len).into_iter().map(|b| b'a' + b % 26).collect()
}

/// Splits `stream` right after each marker, each searched for from the previous cut.
fn cut_after(stream: &[u8], markers: &[&str]) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for marker in markers {
        let marker = marker.as_bytes();
        let at = stream[start..]
            .windows(marker.len())
            .position(|w| w == marker)
            .unwrap_or_else(|| panic!("marker {:?} not found", marker.escape_ascii().to_string()));
        let end = start + at + marker.len();
        pieces.push(stream[start..end].to_vec());
        start = end;
    }
    pieces.push(stream[start..].to_vec());
    pieces
}

// ----- the rules, whatever the write boundaries ------------------------------------------

#[test]
fn lines_arrive_whole_whatever_the_write_boundaries() {
    let mut input = Vec::new();
    let mut want: Vec<Vec<u8>> = Vec::new();
    let mut rng = Rng(42);
    for i in 0..300 {
        // Empty lines, CRLF and LF endings, lines longer than a write piece.
        let line = letters(rng.next() as usize % 90)
            .into_iter()
            .chain(format!("#{i}").into_bytes())
            .collect::<Vec<u8>>();
        let line = if i % 17 == 0 { Vec::new() } else { line };
        input.extend_from_slice(&line);
        input.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
        want.push(line);
    }
    input.extend_from_slice(b"no end\r");
    let want: Vec<&[u8]> = want.iter().map(Vec::as_slice).collect();

    assert_frames_the_same_however_written(&Framing::lines(), &input, 50, &want, &[b"no end\r"]);
}

#[test]
fn size_prefixed_records_deliver_payload_only_including_empty_ones() {
    let payloads: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"a".to_vec(),
        pattern(300),
        Vec::new(),
        Vec::new(),
        b"hello".to_vec(),
        pattern(1000),
        Vec::new(),
    ];
    let want: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();

    // 2-byte little-endian length of the payload.
    let le = size_prefixed(2, Endian::Little, 0, &payloads);
    assert_eq!(&le[..5], &[0, 0, 1, 0, b'a'], "precondition: the encoding");
    let framing = Framing::size(Size::new(2, Endian::Little));
    assert_frames_the_same_however_written(&framing, &le, 50, &want, &[]);

    // 4-byte big-endian length that counts its own header, and a payload larger than one
    // read; a record cut short by the end of the stream goes to on_read_last, header and
    // all.
    let mut payloads = payloads;
    payloads.push(pattern(DEFAULT_READ_SIZE + 5000));
    payloads.push(Vec::new());
    let mut be = size_prefixed(4, Endian::Big, -4, &payloads);
    assert_eq!(
        &be[..8],
        &[0, 0, 0, 4, 0, 0, 0, 5],
        "precondition: the encoding"
    );
    be.extend_from_slice(&[0, 0, 0, 9, b'x']);
    let want: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let framing = Framing::size(Size::new(4, Endian::Big).adjust(-4));
    assert_frames_the_same_however_written(&framing, &be, 50, &want, &[&[0, 0, 0, 9, b'x']]);
}

#[test]
fn fixed_size_records() {
    let input = pattern(7 * 100 + 3);
    let want: Vec<&[u8]> = input.chunks(7).take(100).collect();
    assert_frames_the_same_however_written(&Framing::fixed(7), &input, 20, &want, &[&input[700..]]);
}

#[test]
fn split_on_multibyte_delimiter() {
    // Parts of the delimiter inside records, empty records, the delimiter at the very end
    // of a record's bytes; pieces of 1..=3 bytes cut the delimiter in every way.
    let input = b"a<->bb<-><->c-<d<<->>x<-<->-><->";
    let want: [&[u8]; 6] = [b"a", b"bb", b"", b"c-<d<", b">x<-", b"->"];
    assert_frames_the_same_however_written(&Framing::split("<->"), input, 3, &want, &[]);
    // A delimiter is not a line end: no `\r` stripping.
    assert_frames_the_same_however_written(
        &Framing::split("\n\n"),
        b"one\r\n\ntwo\n\n\n",
        2,
        &[b"one\r", b"two"],
        &[b"\n"],
    );
}

#[cfg(feature = "regex")]
#[test]
fn regex_records_are_the_first_group_and_skip_garbage() {
    let framing = Framing::regex(r"<(\w*)>").unwrap();
    let input = b"junk<ab>noise<<cd>x<>>>< bad ><end><tail";
    assert_frames_the_same_however_written(
        &framing,
        input,
        4,
        &[b"ab", b"cd", b"", b"end"],
        &[b"<tail"],
    );
    // Without a group the record is the whole match.
    let framing = Framing::regex(r"\d+;").unwrap();
    assert_frames_the_same_however_written(
        &framing,
        b"a12;b;;345;6",
        3,
        &[b"12;", b"345;"],
        &[b"6"],
    );
}

const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const POST: &[u8] = b"POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world";
const CHUNKED: &[u8] = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
    5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n";
const GET_Z: &[u8] = b"GET /z HTTP/1.1\r\n\r\n";

#[test]
fn http_pipelined_requests_split_across_writes_arrive_as_whole_messages() {
    // Written at chosen awkward boundaries, each piece read by the server before the next
    // is written: in the method, inside the blank line, inside Content-Length's digits, in
    // the body, inside chunk-size lines and chunk data, between the last chunk and the
    // trailers, and with one message's end and the next one's start in one piece.
    let stream = [GET, POST, CHUNKED, GET_Z].concat();
    let pieces = cut_after(
        &stream,
        &[
            "GE",
            "x\r\n\r",
            "Length: 1",
            "\r\n\r\nhel",
            "world",
            "POST /c HTTP/1.1\r",
            "chunked\r\n\r\n5",
            "\r\nhel",
            "6;ext",
            "=1\r\n world\r",
            "\n0\r\n",
            "X-Trailer: 1\r\n",
            "\r",
            "\nGET /z",
        ],
    );
    assert_eq!(pieces.concat(), stream, "precondition: the pieces");

    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (framing, seen) = watched(Framing::http());
    let addr = serve_framed(
        &mut reactor,
        Options::new().framing(framing),
        &log,
        &["srv"],
        |probe| probe.on_read(|ctx, _| ctx.send(b"ok\n").unwrap()),
    );
    let mut client = Peer::connect(addr).nodelay();
    for piece in &pieces {
        send_and_wait(&mut reactor, &mut client, piece, &seen);
    }
    run_until(&mut reactor, "the four replies", |_| {
        client.pump();
        client.received.len() >= 12
    });
    settle(&mut reactor);
    client.pump();

    let want: Vec<String> = [GET, POST, CHUNKED, GET_Z]
        .iter()
        .map(|m| format!("srv:read:{}", show(m)))
        .collect();
    let mut events = events(&log, "srv");
    assert_eq!(events.remove(0), "srv:connect");
    assert_eq!(events, want, "whole messages, in order, nothing else");
    assert_eq!(client.received, b"ok\nok\nok\nok\n");

    // And in random pieces, many messages in a row, as in one write.
    let messages: Vec<&[u8]> = (0..40)
        .map(|i| [GET, POST, CHUNKED, GET_Z][i % 4])
        .collect();
    let input = messages.concat();
    assert_frames_the_same_however_written(&Framing::http(), &input, 50, &messages, &[]);
}

#[test]
fn malformed_http_closes_with_bad_frame() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let addr = serve_framed(
        &mut reactor,
        Options::new().framing(Framing::http()),
        &log,
        &["bad", "good"],
        |probe| {
            probe
                .on_read(|ctx, _| ctx.send(b"ok\n").unwrap())
                .on_error(|ctx, _| ctx.send(b"400\n").unwrap())
        },
    );
    let mut bad = Peer::connect(addr).nodelay();
    run_until(&mut reactor, "bad's connect", |_| {
        log.contains("bad:connect")
    });
    let mut good = Peer::connect(addr).nodelay();
    run_until(&mut reactor, "good's connect", |_| {
        log.contains("good:connect")
    });
    good.send(GET);
    run_until(&mut reactor, "good's first reply", |_| {
        good.pump();
        good.received.len() >= 3
    });

    // In one write: a valid request, then one whose method holds a control byte. The
    // valid one's reply and the answer given in on_error are both flushed by the close.
    bad.send(&[GET, b"GET\x01 / HTTP/1.1\r\n\r\n"].concat());
    run_until_closed_with(&mut reactor, &log, "bad", &mut bad);

    good.send(POST);
    run_until(&mut reactor, "good's second reply", |_| {
        good.pump();
        good.received.len() >= 6
    });
    settle(&mut reactor);
    good.pump();

    // Whether the rejected bytes also reach on_read_last is not what this test is about.
    let bad_events: Vec<String> = events(&log, "bad")
        .into_iter()
        .filter(|e| !e.starts_with("bad:read_last:"))
        .collect();
    assert_eq!(
        bad_events,
        [
            "bad:connect".to_string(),
            format!("bad:read:{}", show(GET)),
            "bad:error:frame:bad_http".to_string(),
            "bad:closing:0".to_string(),
            "bad:close:BadFrame".to_string(),
        ]
    );
    assert_eq!(
        bad.received, b"ok\n400\n",
        "the valid request was answered, then the malformed one from on_error"
    );
    assert_eq!(bad.end, Some(Ok(())), "a clean end of stream, not a reset");
    assert_eq!(
        events(&log, "good"),
        [
            "good:connect".to_string(),
            format!("good:read:{}", show(GET)),
            format!("good:read:{}", show(POST)),
        ],
        "the other connection is unaffected"
    );
    assert_eq!(good.received, b"ok\nok\n");
    assert!(good.end.is_none());
}

#[test]
fn last_delivers_everything_at_end_of_stream() {
    let input = pattern(5000);
    assert_frames_the_same_however_written(&Framing::last(), &input, 50, &[&input], &[]);
    // And nothing before the end: the server sees the bytes but hands over nothing.
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (framing, seen) = watched(Framing::last());
    let addr = serve_framed(
        &mut reactor,
        Options::new().framing(framing),
        &log,
        &["srv"],
        |p| p,
    );
    let mut client = Peer::connect(addr).nodelay();
    run_until(&mut reactor, "the connect", |_| log.contains("srv:connect"));
    send_and_wait(&mut reactor, &mut client, b"abc", &seen);
    send_and_wait(&mut reactor, &mut client, b"def", &seen);
    settle(&mut reactor);
    assert_eq!(
        events(&log, "srv"),
        ["srv:connect"],
        "nothing before the end"
    );
    client.stream.shutdown(Shutdown::Write).unwrap();
    run_until_closed(&mut reactor, &log, "srv");
    assert_eq!(
        events(&log, "srv"),
        [
            "srv:connect",
            "srv:read:abcdef",
            "srv:closing:0",
            "srv:close:PeerClosed"
        ]
    );
}

// ----- read_last ---------------------------------------------------------------------------

#[test]
fn read_last_gets_the_incomplete_tail_before_closing_and_close() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let addr = serve_framed(
        &mut reactor,
        Options::new().framing(Framing::lines()),
        &log,
        &["srv"],
        |p| p,
    );
    let mut client = Peer::connect(addr).nodelay();
    client.send(b"one\ntwo");
    client.stream.shutdown(Shutdown::Write).unwrap();
    run_until_closed(&mut reactor, &log, "srv");
    run_until(&mut reactor, "the client to see the end", |_| client.pump());
    settle(&mut reactor);

    assert_eq!(
        events(&log, "srv"),
        [
            "srv:connect",
            "srv:read:one",
            "srv:read_last:two",
            "srv:closing:0",
            "srv:close:PeerClosed"
        ]
    );
}

#[test]
fn kill_skips_read_last() {
    // Both handlers stop after the first record of "one\ntwo", leaving "two" buffered:
    // the one that closes gets it in on_read_last, the one that kills does not.
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let addr = serve_framed(
        &mut reactor,
        Options::new().framing(Framing::lines()),
        &log,
        &["killed", "closed"],
        |probe| {
            let kill = probe.name == "killed";
            probe.on_read(move |ctx, _| {
                if kill {
                    ctx.kill();
                } else {
                    ctx.close();
                }
            })
        },
    );
    let mut killed = Peer::connect(addr).nodelay();
    run_until(&mut reactor, "the first connect", |_| {
        log.contains("killed:connect")
    });
    let mut closed = Peer::connect(addr).nodelay();
    run_until(&mut reactor, "the second connect", |_| {
        log.contains("closed:connect")
    });
    killed.send(b"one\ntwo");
    closed.send(b"one\ntwo");
    run_until_closed(&mut reactor, &log, "killed");
    run_until(&mut reactor, "the clients to see the end", |_| {
        let a = killed.pump();
        closed.pump() && a
    });
    run_until_closed(&mut reactor, &log, "closed");
    settle(&mut reactor);

    assert_eq!(
        events(&log, "killed"),
        [
            "killed:connect",
            "killed:read:one",
            "killed:closing:0",
            "killed:close:Killed"
        ]
    );
    assert_eq!(
        events(&log, "closed"),
        [
            "closed:connect",
            "closed:read:one",
            "closed:read_last:two",
            "closed:closing:0",
            "closed:close:Closed"
        ]
    );
}

// ----- max_size ------------------------------------------------------------------------------

#[test]
fn max_size_overrun_reports_input_limit_then_read_last_closing_close() {
    const LIMIT: usize = 1024;
    const READ_SIZE: usize = 4096;
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let errors: Rc<RefCell<Vec<(usize, u64)>>> = Rc::default();
    let (records, last) = (Records::default(), Records::default());
    let (e, r, l) = (errors.clone(), records.clone(), last.clone());
    let options = Options::new()
        .framing(Framing::lines())
        .max_size(LIMIT)
        .read_size(READ_SIZE);
    let addr = serve_framed(&mut reactor, options, &log, &["lines"], move |probe| {
        let e = e.clone();
        probe.keeping_records(&r, &l).on_error(move |ctx, error| {
            if let Error::InputLimit { limit, needed } = error {
                e.borrow_mut().push((*limit, *needed));
            }
            // The handle can still answer here.
            ctx.send(b"-ERR too long\n").unwrap();
        })
    });

    // Ten times the limit, and no newline.
    let mut client = Peer::connect(addr).nodelay();
    let sent = letters(10 * 1024);
    client.send(&sent);
    run_until_closed_with(&mut reactor, &log, "lines", &mut client);
    settle(&mut reactor);
    assert_eq!(
        client.received, b"-ERR too long\n",
        "the answer from on_error"
    );
    assert_eq!(
        client.end,
        Some(Ok(())),
        "a clean end of stream, not a reset"
    );

    let got = last.borrow().concat();
    assert_eq!(
        events(&log, "lines"),
        [
            "lines:connect".to_string(),
            format!("lines:error:input_limit:{LIMIT}"),
            format!("lines:read_last:{}", show(&got)),
            "lines:closing:0".to_string(),
            "lines:close:InputLimit".to_string(),
        ]
    );
    assert!(records.borrow().is_empty());
    let (limit, needed) = errors.borrow()[0];
    assert_eq!(limit, LIMIT);
    assert!(needed > LIMIT as u64, "needed {needed}");
    assert!(
        got.len() > LIMIT && got.len() <= LIMIT + READ_SIZE,
        "on_read_last got {} bytes: more than the limit, at most one read past it",
        got.len()
    );
    assert_same_bytes(&got, &sent[..got.len()], "what on_read_last got");

    // A length prefix announcing more than the limit is refused at the header, before the
    // body arrives (the client never sends it).
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let errors: Rc<RefCell<Vec<(usize, u64)>>> = Rc::default();
    let e = errors.clone();
    let options = Options::new().framing(Framing::size(Size::new(4, Endian::Big)));
    let addr = serve_framed(&mut reactor, options, &log, &["size"], move |probe| {
        let e = e.clone();
        probe.on_error(move |_, error| {
            if let Error::InputLimit { limit, needed } = error {
                e.borrow_mut().push((*limit, *needed));
            }
        })
    });
    let mut client = Peer::connect(addr).nodelay();
    client.send(&[0x7f, 0xff, 0xff, 0xf0, b'0', b'1', b'2']);
    run_until_closed_with(&mut reactor, &log, "size", &mut client);

    assert_eq!(
        events(&log, "size"),
        [
            "size:connect".to_string(),
            format!("size:error:input_limit:{DEFAULT_MAX_SIZE}"),
            "size:read_last:\\x7f\\xff\\xff\\xf0012".to_string(),
            "size:closing:0".to_string(),
            "size:close:InputLimit".to_string(),
        ]
    );
    assert_eq!(
        errors.borrow().as_slice(),
        [(DEFAULT_MAX_SIZE, 0x7fff_fff0 + 4)],
        "the size the header announced, header included"
    );
}

#[test]
fn unlimited_max_size_only_when_asked() {
    const LINE: usize = 3 * 1024 * 1024;
    let line = letters(LINE);

    // Unbounded: the 3 MiB line is one record.
    let mut line_and_end = line.clone();
    line_and_end.push(b'\n');
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (records, last) = (Records::default(), Records::default());
    let (r, l) = (records.clone(), last.clone());
    let options = Options::new().framing(Framing::lines()).max_size(0);
    let addr = serve_framed(&mut reactor, options, &log, &["srv"], move |p| {
        p.keeping_records(&r, &l)
    });
    let client = spawn_writer(addr, line_and_end.clone());
    run_until_closed(&mut reactor, &log, "srv");
    join_client(&mut reactor, client);
    assert_eq!(
        events(&log, "srv"),
        [
            "srv:connect".to_string(),
            format!("srv:read:#{LINE}"),
            "srv:closing:0".to_string(),
            "srv:close:PeerClosed".to_string(),
        ]
    );
    assert_same_bytes(&records.borrow()[0], &line, "the 3 MiB record");

    // The default bound refuses it, having buffered at most one read past the bound.
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (records, last) = (Records::default(), Records::default());
    let (r, l) = (records.clone(), last.clone());
    let options = Options::new().framing(Framing::lines());
    let addr = serve_framed(&mut reactor, options, &log, &["srv"], move |p| {
        p.keeping_records(&r, &l)
    });
    let client = spawn_writer(addr, line_and_end);
    run_until_closed(&mut reactor, &log, "srv");
    join_client(&mut reactor, client);
    let got = last.borrow().concat();
    assert_eq!(
        events(&log, "srv"),
        [
            "srv:connect".to_string(),
            format!("srv:error:input_limit:{DEFAULT_MAX_SIZE}"),
            format!("srv:read_last:#{}", got.len()),
            "srv:closing:0".to_string(),
            "srv:close:InputLimit".to_string(),
        ]
    );
    assert!(records.borrow().is_empty());
    assert!(
        got.len() > DEFAULT_MAX_SIZE && got.len() <= DEFAULT_MAX_SIZE + DEFAULT_READ_SIZE,
        "buffered {} bytes",
        got.len()
    );
    assert_same_bytes(&got, &line[..got.len()], "what on_read_last got");
}

/// A client thread that writes `data`, ends its stream and reads until the server's end;
/// a write refused by a server that gave up is not an error here.
fn spawn_writer(addr: SocketAddr, data: Vec<u8>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        if stream.write_all(&data).is_ok() {
            let _ = stream.shutdown(Shutdown::Write);
        }
        let _ = stream.read_to_end(&mut Vec::new());
    })
}

// ----- per-connection state ------------------------------------------------------------------

#[test]
fn accepted_connections_get_fresh_framing_state() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (framing, seen) = watched(Framing::lines());
    let addr = serve_framed(
        &mut reactor,
        Options::new().framing(framing),
        &log,
        &["a", "b"],
        |p| p,
    );
    let mut a = Peer::connect(addr).nodelay();
    run_until(&mut reactor, "a's connect", |_| log.contains("a:connect"));
    let mut b = Peer::connect(addr).nodelay();
    run_until(&mut reactor, "b's connect", |_| log.contains("b:connect"));

    // Each half line is read by the server before the next is written.
    send_and_wait(&mut reactor, &mut a, b"hel", &seen);
    send_and_wait(&mut reactor, &mut b, b"wor", &seen);
    send_and_wait(&mut reactor, &mut a, b"lo\n", &seen);
    send_and_wait(&mut reactor, &mut b, b"ld\n", &seen);
    settle(&mut reactor);

    assert_eq!(events(&log, "a"), ["a:connect", "a:read:hello"]);
    assert_eq!(events(&log, "b"), ["b:connect", "b:read:world"]);
}

// ----- changing the framing ------------------------------------------------------------------

#[test]
fn set_framing_reframes_buffered_bytes() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let addr = serve_framed(
        &mut reactor,
        Options::new().framing(Framing::lines()),
        &log,
        &["srv"],
        |probe| {
            let mut body = false;
            probe.on_read(move |ctx, record| {
                if body {
                    ctx.set_framing(Some(Framing::lines())).unwrap();
                    body = false;
                } else if let Some(n) = std::str::from_utf8(record)
                    .ok()
                    .and_then(|s| s.parse().ok())
                {
                    ctx.set_framing(Some(Framing::fixed(n))).unwrap();
                    body = true;
                }
            })
        },
    );
    let mut client = Peer::connect(addr).nodelay();
    client.send(b"5\nhelloPING\n");
    run_until(&mut reactor, "three records", |_| {
        log.count_prefix("srv:read:") >= 3
    });
    settle(&mut reactor);

    assert_eq!(
        events(&log, "srv"),
        [
            "srv:connect",
            "srv:read:5",
            "srv:read:hello",
            "srv:read:PING"
        ]
    );
}

#[test]
fn set_framing_from_a_timer_reframes_what_is_buffered() {
    // "wait" switches to records of 100 bytes: the 6 bytes after it, from the same write,
    // are buffered as an incomplete record. The timer switches back to lines, and the
    // buffered lines come out with no new input.
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let addr = serve_framed(
        &mut reactor,
        Options::new().framing(Framing::lines()),
        &log,
        &["srv"],
        |probe| {
            probe
                .on_read(|ctx, record| {
                    if record == b"wait" {
                        ctx.set_framing(Some(Framing::fixed(100))).unwrap();
                        ctx.set_timer(Duration::from_millis(30)).unwrap();
                    }
                })
                .on_timer(|ctx| ctx.set_framing(Some(Framing::lines())).unwrap())
        },
    );
    let mut client = Peer::connect(addr).nodelay();
    client.send(b"wait\nx\ny\nz");
    run_until(&mut reactor, "the timer", |_| log.contains("srv:timer"));
    run_until(&mut reactor, "the buffered lines", |_| {
        log.count_prefix("srv:read:") >= 3
    });
    settle(&mut reactor);

    assert_eq!(
        events(&log, "srv"),
        [
            "srv:connect",
            "srv:read:wait",
            "srv:timer",
            "srv:read:x",
            "srv:read:y"
        ]
    );
    // The rest of an incomplete line still waits for its end.
    client.send(b"!\n");
    run_until(&mut reactor, "the last line", |_| {
        log.contains("srv:read:z!")
    });
}

// ----- many records, pausing ---------------------------------------------------------------

#[test]
fn many_records_in_one_read_are_delivered_in_order_and_all_replies_arrive() {
    const RECORDS: usize = 1000;
    let payloads: Vec<Vec<u8>> = (0..RECORDS)
        .map(|i| {
            let mut p = format!("{i}:").into_bytes();
            p.extend(letters(i % 13));
            p
        })
        .collect();
    let input = size_prefixed(2, Endian::Big, 0, &payloads);
    assert!(
        input.len() < DEFAULT_READ_SIZE,
        "precondition: fits one read"
    );

    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (records, last) = (Records::default(), Records::default());
    let (r, l) = (records.clone(), last.clone());
    let options = Options::new().framing(Framing::size(Size::new(2, Endian::Big)));
    let addr = serve_framed(&mut reactor, options, &log, &["srv"], move |probe| {
        probe.keeping_records(&r, &l).on_read(|ctx, payload| {
            // The echo carries its header again.
            ctx.send(&(payload.len() as u16).to_be_bytes()).unwrap();
            ctx.send(payload).unwrap();
        })
    });
    let data = input.clone();
    let client = thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.write_all(&data).unwrap();
        let mut replies = vec![0u8; data.len()];
        stream.read_exact(&mut replies).expect("all replies");
        replies
    });
    let replies = join_client(&mut reactor, client);

    assert_eq!(
        log.count_prefix("srv:read:"),
        RECORDS,
        "one on_read per record"
    );
    assert!(*records.borrow() == payloads, "the records, in order");
    assert_same_bytes(&replies, &input, "the replies");
}

#[test]
fn pausing_holds_back_buffered_records_and_resume_delivers_them() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let addr = serve_framed(
        &mut reactor,
        Options::new().framing(Framing::lines()),
        &log,
        &["srv"],
        |probe| {
            probe
                .on_read(|ctx, record| {
                    if record == b"r1" {
                        ctx.pause_reading().unwrap();
                        ctx.set_timer(Duration::from_millis(50)).unwrap();
                    }
                })
                .on_timer(|ctx| ctx.resume_reading().unwrap())
        },
    );
    let mut client = Peer::connect(addr).nodelay();
    client.send(b"r1\nr2\nr3\nr4\n");
    run_until(&mut reactor, "the first record", |_| {
        log.contains("srv:read:r1")
    });
    // More input while paused waits behind the buffered records.
    client.send(b"r5\n");
    run_until(&mut reactor, "the timer", |_| log.contains("srv:timer"));
    run_until(&mut reactor, "the other records", |_| {
        log.count_prefix("srv:read:") >= 5
    });
    settle(&mut reactor);

    assert_eq!(
        events(&log, "srv"),
        [
            "srv:connect",
            "srv:read:r1",
            "srv:timer",
            "srv:read:r2",
            "srv:read:r3",
            "srv:read:r4",
            "srv:read:r5"
        ]
    );
}

// ----- connect ---------------------------------------------------------------------------------

#[test]
fn framing_inherited_through_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write_all(b"a\nb").unwrap();
        stream.write_all(b"\nc").unwrap();
        // Our end of stream; wait for the reactor's before closing.
        stream.shutdown(Shutdown::Write).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let _ = stream.read_to_end(&mut Vec::new());
    });

    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let options = Options::new().framing(Framing::lines());
    reactor
        .connect_with(addr, options, Probe::new("cli", &log).framed())
        .unwrap();
    run_until_closed(&mut reactor, &log, "cli");
    join_client(&mut reactor, server);

    assert_eq!(
        events(&log, "cli"),
        [
            "cli:connect",
            "cli:read:a",
            "cli:read:b",
            "cli:read_last:c",
            "cli:closing:0",
            "cli:close:PeerClosed"
        ]
    );
}
