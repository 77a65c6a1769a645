//! Output watermarks: past the high mark reading pauses and `on_watermark(High)` comes;
//! drained to the low mark, reading resumes and `on_watermark(Low)` comes, in that order,
//! with no read in between. `.ci/run` runs them on every backend.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;

use eventmux::{Context, Handler, Options, Reactor, Watermark};
use util::probe::serve;
use util::{join_client, settle, Log};

/// More than loopback's socket buffers take at once, so the queue stays over the mark for
/// a while.
const REPLY: usize = 8 << 20;

/// Answers every request byte with `REPLY` bytes; logs reads and watermark crossings.
struct Flood {
    log: Log,
}

impl Handler for Flood {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.log.push(format!("read:{}", data.len()));
        for _ in data {
            ctx.send(&vec![1u8; REPLY]).unwrap();
        }
    }

    fn on_watermark(&mut self, _ctx: &mut Context<'_>, mark: Watermark) {
        self.log.push(format!("watermark:{mark:?}"));
    }
}

fn flood_server(reactor: &mut Reactor, log: &Log, options: Options) -> std::net::SocketAddr {
    let l = log.clone();
    serve(reactor, options, log, move |_, _| {
        Some(Box::new(Flood { log: l.clone() }))
    })
}

#[test]
fn crossing_high_pauses_reading_until_the_queue_drains_to_low() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let addr = flood_server(
        &mut reactor,
        &log,
        Options::new()
            .watermarks(1 << 20, 256 << 10)
            .max_output(64 << 20),
    );
    let client = thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(util::DEADLINE)).unwrap();
        stream.write_all(b"a").unwrap();
        // The first byte of the reply proves the server read the request alone and queued
        // the reply (past the high mark); ask for more while it is over it: that request
        // must wait for the low mark.
        let mut got = vec![0; 2 * REPLY];
        stream.read_exact(&mut got[..1]).unwrap();
        stream.write_all(b"b").unwrap();
        stream.read_exact(&mut got[1..]).unwrap();
        got.len()
    });
    assert_eq!(join_client(&mut reactor, client), 2 * REPLY);
    settle(&mut reactor);
    let entries: Vec<String> = log
        .entries()
        .into_iter()
        .filter(|e| !e.starts_with("lst:"))
        .collect();
    assert_eq!(
        entries,
        [
            "read:1",
            "watermark:High",
            "watermark:Low",
            "read:1",
            "watermark:High",
            "watermark:Low"
        ],
        "the second request is read only after the first reply drained"
    );
}

#[test]
fn output_that_stays_under_the_high_mark_crosses_nothing() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let addr = flood_server(
        &mut reactor,
        &log,
        Options::new()
            .watermarks(32 << 20, 1 << 20)
            .max_output(64 << 20),
    );
    let client = thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"a").unwrap();
        let mut got = vec![0; REPLY];
        stream.read_exact(&mut got).unwrap();
    });
    join_client(&mut reactor, client);
    settle(&mut reactor);
    assert_eq!(log.count_prefix("watermark:"), 0, "{:?}", log.entries());
}
