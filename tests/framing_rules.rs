//! Rules that wrap rules: a skip throws bytes away unbuffered, a rule's own size limit
//! replaces the handle's, a rule that cannot fit its limit is refused when set, and a
//! custom decoder hands the handler what it parsed. `.ci/run` runs them on every backend.

mod util;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;

use eventmux::framing::{Decoder, Frame, FrameError, Framing};
use eventmux::{CloseReason, Context, Error, Handler, Incoming, Options, Reactor};
use util::{run_until, DEADLINE};

type Seen = Rc<RefCell<Vec<String>>>;

/// Logs records, errors and the close; runs `on_record` on each record.
struct Conn {
    seen: Seen,
    on_record: fn(&mut Context<'_>, &[u8]),
}

impl Handler for Conn {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let shown = if data.len() > 40 {
            format!("#{}", data.len())
        } else {
            String::from_utf8_lossy(data).into_owned()
        };
        self.seen.borrow_mut().push(format!("read:{shown}"));
        (self.on_record)(ctx, data);
    }

    fn on_read_last(&mut self, _: &mut Context<'_>, _: &[u8]) {}

    fn on_error(&mut self, _: &mut Context<'_>, error: &Error) {
        self.seen.borrow_mut().push(format!("error:{error}"));
    }

    fn on_close(&mut self, _: &mut Context<'_>, reason: CloseReason) {
        self.seen.borrow_mut().push(format!("close:{reason:?}"));
    }
}

struct Server(Seen, fn(&mut Context<'_>, &[u8]));

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Conn {
            seen: self.0.clone(),
            on_record: self.1,
        }))
    }
}

fn serve(
    reactor: &mut Reactor,
    options: Options,
    on_record: fn(&mut Context<'_>, &[u8]),
) -> (TcpStream, Seen) {
    let seen = Seen::default();
    let listener = reactor
        .listen_with("127.0.0.1:0", options, Server(seen.clone(), on_record))
        .unwrap();
    let client = TcpStream::connect(reactor.local_addr(listener).unwrap()).unwrap();
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    (client, seen)
}

fn entries(seen: &Seen) -> Vec<String> {
    seen.borrow().clone()
}

#[test]
fn a_skipped_block_far_larger_than_max_size_is_thrown_away_unbuffered() {
    let mut reactor = Reactor::new().unwrap();
    // The handle buffers at most 64 KiB; the block skipped is 8 MiB.
    let options = Options::new().framing(Framing::lines()).max_size(64 * 1024);
    let (client, seen) = serve(&mut reactor, options, |ctx, line| {
        if let Some(n) = line.strip_prefix(b"skip ") {
            let n: u64 = std::str::from_utf8(n).unwrap().parse().unwrap();
            ctx.skip(n).unwrap();
        }
    });
    let block = vec![b'x'; 8 << 20];
    let writer = std::thread::spawn(move || {
        let mut client = client;
        client.write_all(b"before\nskip 8388608\n").unwrap();
        client.write_all(&block).unwrap();
        client.write_all(b"after\n").unwrap();
        client
    });
    run_until(&mut reactor, "the line after the block", |_| {
        entries(&seen).contains(&"read:after".to_string())
    });
    drop(writer.join().unwrap());
    assert_eq!(
        entries(&seen),
        ["read:before", "read:skip 8388608", "read:after"]
    );
}

#[test]
fn a_rule_s_own_limit_replaces_the_handle_s() {
    let mut reactor = Reactor::new().unwrap();
    // Lines of at most 16 bytes, bodies of up to 1 MiB, on a handle that buffers 64 KiB.
    let options = Options::new()
        .framing(Framing::lines().max_size(16))
        .max_size(64 * 1024);
    let (mut client, seen) = serve(&mut reactor, options, |ctx, record| {
        if let Some(n) = record.strip_prefix(b"body ") {
            let n: usize = std::str::from_utf8(n).unwrap().parse().unwrap();
            let body = Framing::fixed(n).max_size(1 << 20);
            ctx.set_framing(Some(body)).unwrap();
        } else if record.len() > 16 {
            ctx.set_framing(Some(Framing::lines().max_size(16)))
                .unwrap();
        }
    });
    let mut stream = b"body 500000\n".to_vec();
    stream.extend(vec![b'b'; 500_000]);
    stream.extend_from_slice(b"short\nthis line is far too long\n");
    client.write_all(&stream).unwrap();
    run_until(&mut reactor, "the close", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    let seen = entries(&seen);
    assert_eq!(
        &seen[..3],
        ["read:body 500000", "read:#500000", "read:short"]
    );
    assert!(seen[3].starts_with("error:"), "{seen:?}");
    assert!(seen[3].contains("limit of 16"), "{seen:?}");
    assert_eq!(seen[4], "close:InputLimit");
}

#[test]
fn set_framing_refuses_a_rule_that_can_never_fit_its_limit() {
    let mut reactor = Reactor::new().unwrap();
    let options = Options::new().framing(Framing::lines()).max_size(1024);
    let (mut client, seen) = serve(&mut reactor, options, |ctx, _| {
        let too_big = ctx.set_framing(Some(Framing::fixed(4096)));
        let text = match too_big {
            Err(Error::Frame(FrameError::TooLarge { size, limit })) => format!("{size}>{limit}"),
            other => format!("{other:?}"),
        };
        let fits = ctx.set_framing(Some(Framing::fixed(4096).max_size(8192)));
        let _ = ctx.send(format!("{text} {}\n", fits.is_ok()).as_bytes());
    });
    client.write_all(b"go\n").unwrap();
    let reader = std::thread::spawn(move || {
        let mut line = [0u8; 14];
        client.read_exact(&mut line).unwrap();
        line
    });
    run_until(&mut reactor, "the answer", |_| reader.is_finished());
    assert_eq!(&reader.join().unwrap(), b"4096>1024 true");
    // (The client has gone since: what follows is its close.)
    assert_eq!(entries(&seen)[0], "read:go");
    // And at listen time, through the options.
    let error = reactor
        .listen_with(
            "127.0.0.1:0",
            Options::new().framing(Framing::fixed(4096)).max_size(1024),
            Server(Seen::default(), |_, _| {}),
        )
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

/// "+N" / "-N" lines; keeps the number parsed from the line it returns.
#[derive(Clone, Default)]
struct Numbers {
    value: i64,
}

impl Decoder for Numbers {
    fn decode(&mut self, buf: &[u8], _: usize) -> Result<Option<Frame>, FrameError> {
        let Some(end) = buf.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        self.value = std::str::from_utf8(&buf[..end])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| FrameError::custom(std::fmt::Error))?;
        Ok(Some(Frame::new(0..end, end + 1)))
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(Numbers::default())
    }
}

/// Another decoder type, never in use.
#[derive(Clone)]
struct NotThisOne;

impl Decoder for NotThisOne {
    fn decode(&mut self, _: &[u8], _: usize) -> Result<Option<Frame>, FrameError> {
        Ok(None)
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(NotThisOne)
    }
}

#[test]
fn a_decoder_hands_the_handler_what_it_parsed() {
    let mut reactor = Reactor::new().unwrap();
    // Limited, so the decoder is reached through the wrapper too.
    let options = Options::new().framing(Framing::custom(Numbers::default()).max_size(64));
    let (mut client, seen) = serve(&mut reactor, options, |ctx, _| {
        let value = ctx.decoder::<Numbers>().map(|d| d.value);
        assert!(
            ctx.decoder::<NotThisOne>().is_none(),
            "not a decoder of that type"
        );
        let _ = ctx.send(format!("{}\n", value.unwrap() * 2).as_bytes());
    });
    client.write_all(b"+20\n-3\n").unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = [0u8; 6];
        client.read_exact(&mut got).unwrap();
        got
    });
    run_until(&mut reactor, "the answers", |_| reader.is_finished());
    assert_eq!(&reader.join().unwrap(), b"40\n-6\n");
    assert_eq!(entries(&seen)[..2], ["read:+20", "read:-3"]);
}

#[test]
fn the_handle_s_max_size_bounds_what_is_buffered_not_a_record_whole_in_one_read() {
    let mut reactor = Reactor::new().unwrap();
    // 100-byte lines on a handle that buffers at most 64 bytes.
    let options = Options::new().framing(Framing::lines()).max_size(64);
    let (mut client, seen) = serve(&mut reactor, options, |_, _| {});
    let mut line = vec![b'a'; 100];
    line.push(b'\n');
    client.write_all(&line).unwrap();
    run_until(&mut reactor, "the whole line", |_| {
        !entries(&seen).is_empty()
    });
    assert_eq!(entries(&seen), ["read:#100"], "not buffered: not refused");
    // The same line in two pieces has to be buffered: refused past 64 bytes.
    client.write_all(&line[..80]).unwrap();
    run_until(&mut reactor, "the refusal", |_| {
        entries(&seen).iter().any(|e| e.starts_with("close:"))
    });
    let seen = entries(&seen);
    assert!(seen[1].starts_with("error:"), "{seen:?}");
    assert_eq!(seen[2], "close:InputLimit");
}
