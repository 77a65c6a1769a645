//! Framing benchmark: records per second for each rule over a large in-memory stream.
//!
//!     cargo bench --bench framing
//!
//! Each rule's decoder (from `Framing::into_decoder`) is fed a generated stream of about
//! 64 MiB in 64 KiB reads, the way the reactor feeds it (`src/deliver.rs`): records wholly
//! inside a read are decoded in place, an incomplete tail is copied into a pending buffer
//! and the next read appended to it. The table gives records/s, MiB/s and ns/record, the
//! median of `FRAMING_BENCH_ROUNDS` rounds (default 5). `FRAMING_BENCH_MIB` sets the stream
//! size. Run without `--bench` (as `cargo test --benches` does), one small round per rule.

use std::hint::black_box;
use std::time::{Duration, Instant};

use eventmux::framing::{Decoder, Endian, Framing, Size};

const READ_SIZE: usize = 64 * 1024;

/// A rule and a generated stream it frames.
struct Case {
    name: &'static str,
    make: fn() -> Framing,
    stream: Vec<u8>,
}

/// Deterministic pseudo-random numbers (xorshift), so every run frames the same stream.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn generate(bytes: usize, mut record: impl FnMut(&mut Rng, &mut Vec<u8>)) -> Vec<u8> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::with_capacity(bytes + 1024);
    while out.len() < bytes {
        record(&mut rng, &mut out);
    }
    out
}

fn text(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    out.extend((0..len).map(|_| b'a' + rng.below(26) as u8));
}

fn cases(bytes: usize) -> Vec<Case> {
    let lines = generate(bytes, |rng, out| {
        let n = 10 + rng.below(60);
        text(rng, out, n);
        out.extend_from_slice(b"\r\n");
    });
    vec![
        Case {
            name: "lines (~40 B)",
            make: Framing::lines,
            stream: lines.clone(),
        },
        Case {
            name: "split \"\\r\\n\"",
            make: || Framing::split("\r\n"),
            stream: lines.clone(),
        },
        Case {
            name: "size 4 BE (~100 B)",
            make: || Framing::size(Size::new(4, Endian::Big)),
            stream: generate(bytes, |rng, out| {
                let n = 50 + rng.below(100);
                out.extend_from_slice(&(n as u32).to_be_bytes());
                text(rng, out, n);
            }),
        },
        Case {
            name: "fixed 100",
            make: || Framing::fixed(100),
            stream: generate(bytes, |rng, out| text(rng, out, 100)),
        },
        Case {
            name: "http GET (~90 B)",
            make: Framing::http,
            stream: generate(bytes, |rng, out| {
                out.extend_from_slice(b"GET /");
                let n = 5 + rng.below(20);
                text(rng, out, n);
                out.extend_from_slice(b" HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
            }),
        },
        Case {
            name: "http POST 1 KiB body",
            make: Framing::http,
            stream: generate(bytes, |rng, out| {
                out.extend_from_slice(
                    b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n",
                );
                text(rng, out, 1024);
            }),
        },
        #[cfg(feature = "regex")]
        Case {
            name: "regex ([^\\n]*)\\n",
            make: || Framing::regex(r"([^\n]*)\n").expect("valid pattern"),
            stream: lines,
        },
        Case {
            name: "last (one record)",
            make: Framing::last,
            stream: generate(bytes, |rng, out| text(rng, out, 4096)),
        },
    ]
}

/// Frames `stream` as the reactor would; returns the number of records and payload bytes.
fn frame(decoder: &mut dyn Decoder, stream: &[u8]) -> (u64, u64) {
    let (mut records, mut payload) = (0u64, 0u64);
    let mut pending: Vec<u8> = Vec::new();
    let mut take = |data: &[u8], decoder: &mut dyn Decoder| -> usize {
        let mut offset = 0;
        while offset < data.len() {
            match decoder.decode(&data[offset..], usize::MAX) {
                Ok(Some(frame)) => {
                    records += 1;
                    payload += black_box(&data[offset..][frame.payload()]).len() as u64;
                    offset += frame.consumed();
                }
                Ok(None) => break,
                Err(e) => panic!("the generated stream is valid: {e}"),
            }
        }
        offset
    };
    for read in stream.chunks(READ_SIZE) {
        if pending.is_empty() {
            let used = take(read, decoder);
            pending.extend_from_slice(&read[used..]);
        } else {
            pending.extend_from_slice(read);
            let used = take(&pending, decoder);
            pending.drain(..used);
        }
    }
    if let Some(frame) = decoder.decode_eof(&pending) {
        records += 1;
        payload += frame.payload().len() as u64;
    }
    (records, payload)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (mib, rounds) = if smoke {
        (1, 1)
    } else {
        (
            env("FRAMING_BENCH_MIB", 64),
            env("FRAMING_BENCH_ROUNDS", 5).max(1),
        )
    };
    println!("framing {mib} MiB in {READ_SIZE}-byte reads, median of {rounds} rounds");
    println!(
        "{:<24} {:>12} {:>14} {:>10} {:>10}",
        "rule", "records", "records/s", "MiB/s", "ns/rec"
    );
    for case in cases(mib << 20) {
        let mut times: Vec<Duration> = Vec::new();
        let mut records = 0;
        for _ in 0..rounds {
            let mut decoder = (case.make)().into_decoder();
            let start = Instant::now();
            let (n, _) = frame(&mut *decoder, &case.stream);
            times.push(start.elapsed());
            records = n;
        }
        times.sort();
        let t = times[times.len() / 2].as_secs_f64();
        let mib_s = case.stream.len() as f64 / (1 << 20) as f64 / t;
        println!(
            "{:<24} {:>12} {:>14.0} {:>10.0} {:>10.1}",
            case.name,
            records,
            records as f64 / t,
            mib_s,
            t * 1e9 / records as f64
        );
    }
}
