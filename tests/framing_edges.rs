//! The edges of framing, defined and held: `fixed(0)` is one empty record, an empty record
//! reaches `on_read` as an empty slice, a decoder is never given an empty buffer, the
//! records after a `close()` in `on_read` go to `on_read_last`, and a panicking handler's
//! queued replies are still written. `.ci/run` runs them on every backend.

mod util;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;

use eventmux::framing::{Decoder, Frame, FrameError, Framing};
use eventmux::{CloseReason, Context, Handler, Incoming, Options, Reactor, Token};
use util::{run_until, DEADLINE};

/// What a connection saw, in order: `read:<bytes>`, `last:<bytes>`, `close:<reason>`.
type Seen = Rc<RefCell<Vec<String>>>;

fn show(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// A connection whose `on_read` runs `on_record` (what to do with each record).
struct Conn {
    seen: Seen,
    on_record: fn(&mut Context<'_>, &[u8]),
}

impl Handler for Conn {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.seen.borrow_mut().push(format!("read:{}", show(data)));
        (self.on_record)(ctx, data);
    }

    fn on_read_last(&mut self, _: &mut Context<'_>, data: &[u8]) {
        self.seen.borrow_mut().push(format!("last:{}", show(data)));
    }

    fn on_close(&mut self, _: &mut Context<'_>, reason: CloseReason) {
        self.seen.borrow_mut().push(format!("close:{reason:?}"));
    }
}

struct Server {
    seen: Seen,
    on_record: fn(&mut Context<'_>, &[u8]),
    accepted: Rc<RefCell<Option<Token>>>,
}

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, incoming: &Incoming) -> Option<Box<dyn Handler>> {
        *self.accepted.borrow_mut() = Some(incoming.token());
        Some(Box::new(Conn {
            seen: self.seen.clone(),
            on_record: self.on_record,
        }))
    }
}

/// A server with `framing` whose connections run `on_record`; returns its client, what the
/// connection sees, and the connection's token once accepted.
fn serve(
    reactor: &mut Reactor,
    framing: Framing,
    on_record: fn(&mut Context<'_>, &[u8]),
) -> (TcpStream, Seen, Rc<RefCell<Option<Token>>>) {
    let seen = Seen::default();
    let accepted = Rc::new(RefCell::new(None));
    let server = Server {
        seen: seen.clone(),
        on_record,
        accepted: accepted.clone(),
    };
    let options = Options::new().framing(framing);
    let listener = reactor.listen_with("127.0.0.1:0", options, server).unwrap();
    let client = TcpStream::connect(reactor.local_addr(listener).unwrap()).unwrap();
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    (client, seen, accepted)
}

fn entries(seen: &Seen) -> Vec<String> {
    seen.borrow().clone()
}

#[test]
fn fixed_0_is_one_empty_record_and_the_next_rule_takes_the_rest_of_the_same_read() {
    let mut reactor = Reactor::new().unwrap();
    // "len N": a body of N bytes follows (fixed(N)), then lines again.
    let (mut client, seen, _) = serve(&mut reactor, Framing::lines(), |ctx, record| {
        if let Some(n) = record.strip_prefix(b"len ") {
            let n: usize = std::str::from_utf8(n).unwrap().parse().unwrap();
            ctx.set_framing(Some(Framing::fixed(n))).unwrap();
        } else if !record.starts_with(b"line") {
            ctx.set_framing(Some(Framing::lines())).unwrap(); // a body: lines again
        }
    });
    // Each body, the empty one too, is followed by lines again.
    client
        .write_all(b"len 0\nline one\nlen 3\nabcline two\n")
        .unwrap();
    run_until(&mut reactor, "every record", |_| {
        entries(&seen).contains(&"read:line two".to_string())
    });
    assert_eq!(
        entries(&seen),
        [
            "read:len 0",
            "read:",
            "read:line one",
            "read:len 3",
            "read:abc",
            "read:line two"
        ]
    );
}

#[test]
fn after_fixed_0_what_follows_waits_for_the_handler_to_set_a_rule() {
    let mut reactor = Reactor::new().unwrap();
    let (mut client, seen, accepted) = serve(&mut reactor, Framing::lines(), |ctx, record| {
        if record == b"empty" {
            ctx.set_framing(Some(Framing::fixed(0))).unwrap();
        }
    });
    client.write_all(b"empty\nkept\n").unwrap();
    run_until(&mut reactor, "the empty record", |_| {
        entries(&seen).len() == 2
    });
    util::settle(&mut reactor);
    assert_eq!(entries(&seen), ["read:empty", "read:"], "the rest waits");
    let token = accepted.borrow().unwrap();
    reactor
        .handle(token)
        .unwrap()
        .set_framing(Some(Framing::lines()))
        .unwrap();
    run_until(&mut reactor, "the kept line", |_| entries(&seen).len() == 3);
    assert_eq!(entries(&seen)[2], "read:kept");
}

#[test]
fn an_empty_record_reaches_on_read_as_an_empty_slice() {
    let mut reactor = Reactor::new().unwrap();
    let (mut client, seen, _) = serve(&mut reactor, Framing::lines(), |_, _| {});
    client.write_all(b"\n\r\nx\n").unwrap();
    run_until(&mut reactor, "three lines", |_| entries(&seen).len() == 3);
    assert_eq!(entries(&seen), ["read:", "read:", "read:x"]);
}

/// Asserts it is never handed an empty buffer; records are single bytes.
#[derive(Clone, Default)]
struct NeverEmpty;

impl Decoder for NeverEmpty {
    fn decode(&mut self, buf: &[u8], _limit: usize) -> Result<Option<Frame>, FrameError> {
        assert!(!buf.is_empty(), "decode was given an empty buffer");
        Ok(Some(Frame::new(0..1, 1)))
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(NeverEmpty)
    }
}

#[test]
fn a_decoder_is_never_given_an_empty_buffer() {
    let mut reactor = Reactor::new().unwrap();
    // Switching rules back and forth between records, with bytes trickling in one by one
    // and in bulk: every path that asks a decoder (a read, the input buffer, a new rule).
    let (mut client, seen, _) = serve(&mut reactor, Framing::custom(NeverEmpty), |ctx, record| {
        let next = match record {
            b"f" => Framing::fixed(0),
            _ => Framing::custom(NeverEmpty),
        };
        ctx.set_framing(Some(next)).unwrap();
    });
    for byte in b"abf" {
        client.write_all(&[*byte]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        reactor
            .run_once(Some(std::time::Duration::from_millis(5)))
            .unwrap();
    }
    client.write_all(b"cdfgh").unwrap();
    run_until(&mut reactor, "every record", |_| {
        entries(&seen).contains(&"read:h".to_string())
    });
    let records = entries(&seen);
    assert_eq!(
        records,
        [
            "read:a", "read:b", "read:f", "read:", "read:c", "read:d", "read:f", "read:", "read:g",
            "read:h"
        ]
    );
}

#[test]
fn the_records_after_a_close_in_on_read_go_to_on_read_last() {
    let mut reactor = Reactor::new().unwrap();
    let (mut client, seen, _) = serve(&mut reactor, Framing::lines(), |ctx, record| {
        if record == b"quit" {
            let _ = ctx.send(b"bye\n");
            ctx.close();
        }
    });
    client.write_all(b"one\nquit\ntwo\nthree\n").unwrap();
    let reader = std::thread::spawn(move || {
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).unwrap();
        reply
    });
    run_until(&mut reactor, "the close", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    assert_eq!(reader.join().unwrap(), b"bye\n");
    assert_eq!(
        entries(&seen),
        ["read:one", "read:quit", "last:two\nthree\n", "close:Closed"],
        "no record after the close; the rest, unframed, to on_read_last"
    );
}

#[test]
fn a_panicking_handler_s_queued_replies_are_still_written() {
    let mut reactor = Reactor::new().unwrap();
    let (mut client, seen, _) = serve(&mut reactor, Framing::lines(), |ctx, record| {
        let _ = ctx.send(&vec![b'r'; 100_000]); // more than one write takes, often
        let _ = ctx.send(b"\n");
        if record == b"boom" {
            panic!("the handler's state is broken");
        }
    });
    client.write_all(b"fine\nboom\nnever\n").unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        got
    });
    run_until(&mut reactor, "the close", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    let got = reader.join().unwrap();
    assert_eq!(
        got.len(),
        2 * 100_001,
        "both replies, the panicking one's too"
    );
    let seen = entries(&seen);
    assert_eq!(seen.last().unwrap(), "close:Panicked");
    assert!(!seen.contains(&"read:never".to_string()), "{seen:?}");
}

#[derive(Debug)]
struct Refused(u8);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "byte {} is not allowed", self.0)
    }
}

impl std::error::Error for Refused {}

/// Single-byte records; refuses `!` with its own reason.
#[derive(Clone)]
struct NoBang;

impl Decoder for NoBang {
    fn decode(&mut self, buf: &[u8], _limit: usize) -> Result<Option<Frame>, FrameError> {
        match buf[0] {
            b'!' => Err(FrameError::custom(Refused(b'!'))),
            _ => Ok(Some(Frame::new(0..1, 1))),
        }
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(NoBang)
    }
}

/// Records what `on_error` got as the custom reason, and answers before the close.
struct Strict {
    seen: Seen,
}

impl Handler for Strict {
    fn on_read(&mut self, _: &mut Context<'_>, data: &[u8]) {
        self.seen.borrow_mut().push(format!("read:{}", show(data)));
    }

    fn on_read_last(&mut self, _: &mut Context<'_>, data: &[u8]) {
        self.seen.borrow_mut().push(format!("last:{}", show(data)));
    }

    fn on_error(&mut self, ctx: &mut Context<'_>, error: &eventmux::Error) {
        if let eventmux::Error::Frame(frame) = error {
            let byte = frame.custom_ref::<Refused>().map(|r| r.0);
            self.seen
                .borrow_mut()
                .push(format!("error:{byte:?}:{frame}"));
            let _ = ctx.send(b"refused\n");
        }
    }

    fn on_close(&mut self, _: &mut Context<'_>, reason: CloseReason) {
        self.seen.borrow_mut().push(format!("close:{reason:?}"));
    }
}

struct StrictServer(Seen);

impl Handler for StrictServer {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Strict {
            seen: self.0.clone(),
        }))
    }
}

#[test]
fn a_custom_rule_fails_with_its_own_reason_and_the_handler_can_answer() {
    let mut reactor = Reactor::new().unwrap();
    let seen = Seen::default();
    let options = Options::new().framing(Framing::custom(NoBang));
    let listener = reactor
        .listen_with("127.0.0.1:0", options, StrictServer(seen.clone()))
        .unwrap();
    let mut client = TcpStream::connect(reactor.local_addr(listener).unwrap()).unwrap();
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    client.write_all(b"ab!cd").unwrap();
    let reader = std::thread::spawn(move || {
        let mut reply = Vec::new();
        let _ = client.read_to_end(&mut reply);
        reply
    });
    run_until(&mut reactor, "the close", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    assert_eq!(reader.join().unwrap(), b"refused\n");
    assert_eq!(
        entries(&seen),
        [
            "read:a",
            "read:b",
            "error:Some(33):byte 33 is not allowed",
            "last:!cd",
            "close:BadFrame"
        ]
    );
}
