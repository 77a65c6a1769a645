//! A small Redis: RESP2 (and inline commands) over eventmux, enough for `redis-cli` and
//! `redis-benchmark -t ping,set,get,incr,mset` (pipelined too).
//!
//!     cargo run --release --example mini_redis -- [ADDR] [--maxclients N] [--timeout SECS]
//!         [--busy-poll-us N]
//!
//! ADDR defaults to 127.0.0.1:6380; `--help` lists the options and their defaults. Busy
//! polling is off by default: measured with `scripts/compare.sh`, 200 µs of it
//! (`--busy-poll-us 200`, `Reactor::set_busy_poll`) kept the server's core busy (0.96 of
//! it against 0.71 under `redis-benchmark -P 1`) for no more requests: about 40% fewer
//! requests per CPU-second. Under `-P 16` the tests went either way (from 17% more to 8%
//! fewer). It pays only on a core dedicated to the server.
//!
//! Commands: PING, ECHO, SET (EX/PX/NX/XX), GET, DEL, EXISTS, INCR, DECR, MSET, MGET,
//! EXPIRE, TTL, DBSIZE, FLUSHALL, plus what clients send at start-up (CONFIG GET, COMMAND,
//! CLIENT, SELECT, INFO, QUIT). Framing splits the stream into whole commands, so the
//! handler only parses arguments and writes replies; all connections share one keyspace
//! (one thread, no locks). It stays single-threaded, as redis does: one keyspace behind
//! one reactor needs no locks, and there is no `--threads` (to use more cores, run one
//! instance per core on its own port, as redis users do). A malformed request gets `-ERR Protocol error` and closes only
//! its own connection; so does one larger than `MAX_REQUEST`.
//!
//! Against hostile clients it does what redis does: past `maxclients` (10000) connections
//! a new one is told `-ERR max number of clients reached` and closed; an inline command, or
//! a `*`/`$` count line, with no end in its first 64 KiB is refused (`too big inline
//! request`) instead of buffered up to `MAX_REQUEST`; `--timeout` closes idle clients
//! (redis's `timeout`, off by default). Beyond redis, a request must be whole within 60 s
//! of its first byte (eventmux's record deadline), and a client that takes none of its
//! replies for 60 s is dropped.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::ops::Range;
use std::rc::Rc;
use std::time::{Duration, Instant};

use eventmux::framing::{Decoder, Frame, FrameError, Framing};
use eventmux::{Context, Error, Handler, Incoming, Options, Reactor, TimerId, Token};
use siphash::KeyHash;

const DEFAULT_ADDR: &str = "127.0.0.1:6380";
/// Largest request accepted (Redis allows 512 MB bulk strings; a toy server should not).
const MAX_REQUEST: usize = 8 * 1024 * 1024;
/// Busy-poll window unless `--busy-poll-us` says otherwise: none (see the module docs).
const DEFAULT_BUSY_POLL: Duration = Duration::ZERO;
/// Most arguments in one request.
const MAX_ARGS: i64 = 1024 * 1024;
/// Longest line before its `\n`: an inline command, or a `*` or `$` count line (redis's
/// `PROTO_INLINE_MAX_SIZE`).
const MAX_LINE: usize = 64 * 1024;
/// Default `--maxclients`, as in redis.
const DEFAULT_MAX_CLIENTS: usize = 10_000;
/// What a client past `maxclients` is told, byte for byte redis's answer.
const MAX_CLIENTS_REACHED: &[u8] = b"-ERR max number of clients reached\r\n";

// ----- framing: one RESP request per record ---------------------------------------------

/// Finds where one request ends: `*N` then N `$len` bulk strings, or an inline command line.
/// Malformed input ends the record at the bad line, so the handler can answer it; a line
/// that runs past `MAX_LINE` without its end is handed over cut there, unterminated, for
/// the same reason.
#[derive(Clone, Default)]
struct Resp {
    /// The unterminated line the last call stopped in: where it starts and how far it has
    /// been searched. Without it, each byte of a line trickled a byte at a time would have
    /// the line searched again from its start.
    waiting: Option<(usize, usize)>,
    /// The argument ranges of the request the last call returned, when it was a
    /// well-formed multibulk request (`well_formed`): the handler takes them
    /// (`Resp::take_args`, through `ctx.decoder`) instead of parsing the request again.
    args: Vec<Range<usize>>,
    well_formed: bool,
}

/// What a search for the end of a line found.
enum Line {
    /// Its `\n` is at this index.
    End(usize),
    /// Not yet: more bytes are needed.
    Open,
    /// It has run past `MAX_LINE` without an end.
    TooLong,
}

impl Resp {
    /// Looks for the end of the line that starts at `at`, no further than `MAX_LINE`.
    fn line(&mut self, buf: &[u8], at: usize) -> Line {
        let from = match self.waiting {
            Some((start, searched)) if start == at => searched,
            _ => at,
        };
        let window = buf.len().min(at + MAX_LINE + 1);
        if let Some(i) = buf[from..window].iter().position(|&b| b == b'\n') {
            return Line::End(from + i);
        }
        if window - at > MAX_LINE {
            return Line::TooLong;
        }
        self.waiting = Some((at, window));
        Line::Open
    }

    /// The request at the start of `buf`, if it is all there (see `Decoder::decode`).
    /// A well-formed multibulk request leaves its arguments in `args`.
    fn request(&mut self, buf: &[u8], limit: usize) -> Result<Option<Frame>, FrameError> {
        self.args.clear();
        self.well_formed = false;
        if buf[0] != b'*' {
            // Inline command: one line.
            return Ok(match self.line(buf, 0) {
                Line::End(end) => Some(Frame::new(0..end + 1, end + 1)),
                Line::Open => None,
                Line::TooLong => Some(cut(0)),
            });
        }
        let (count, mut at) = match quick_header(buf, 0, MAX_ARGS as usize) {
            Some((count, at)) => (count as i64, at),
            None => {
                let at = match self.line(buf, 0) {
                    Line::End(end) => end + 1,
                    Line::Open => return Ok(None),
                    Line::TooLong => return Ok(Some(cut(0))),
                };
                match number(buf, 0, at - 1) {
                    Ok(n) if n <= MAX_ARGS => (n, at),
                    _ => return Ok(Some(Frame::new(0..at, at))), // the handler reports it
                }
            }
        };
        for _ in 0..count.max(0) {
            if at >= buf.len() {
                return Ok(None);
            }
            if buf[at] != b'$' {
                return Ok(Some(Frame::new(0..at + 1, at + 1)));
            }
            // The common header in one pass; anything unusual (a trickled, long or bad
            // line) takes the general path, which knows how to answer it.
            let (len, after) = match quick_header(buf, at, MAX_REQUEST) {
                Some(header) => header,
                None => {
                    let end = match self.line(buf, at) {
                        Line::End(end) => end,
                        Line::Open => return Ok(None),
                        Line::TooLong => return Ok(Some(cut(at))),
                    };
                    let after = end + 1;
                    match number(buf, at, end) {
                        Ok(n) if (0..=MAX_REQUEST as i64).contains(&n) => (n as usize, after),
                        _ => return Ok(Some(Frame::new(0..after, after))),
                    }
                }
            };
            let end = after + len + 2;
            if end > limit {
                return Err(FrameError::TooLarge {
                    size: end as u64,
                    limit,
                });
            }
            if end > buf.len() {
                return Ok(None);
            }
            // The handler's `parse` names what is wrong with a request that is not
            // well formed; this one's arguments are ready.
            if &buf[end - 2..end] == b"\r\n" {
                self.args.push(after..after + len);
            }
            at = end;
        }
        self.well_formed = self.args.len() == count.max(0) as usize;
        Ok(Some(Frame::new(0..at, at)))
    }

    /// Hands the arguments of the request just returned to `into` (swapping vectors, so
    /// neither side allocates), if it was well formed; false means `parse` it.
    fn take_args(&mut self, into: &mut Vec<Range<usize>>) -> bool {
        if self.well_formed {
            std::mem::swap(&mut self.args, into);
        }
        self.well_formed
    }
}

impl Decoder for Resp {
    fn decode(&mut self, buf: &[u8], limit: usize) -> Result<Option<Frame>, FrameError> {
        let request = self.request(buf, limit)?;
        if request.is_some() {
            // The next call starts at the next request: remembered offsets mean nothing there.
            self.waiting = None;
        }
        Ok(request)
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(Resp::default())
    }
}

/// A header line at `at` (`*<count>\r\n`, `$<length>\r\n`) as well-behaved clients send
/// it (digits without a leading zero, within `max`, the line complete): the number and
/// where the next line starts, read in one pass. `None` for anything else, which the
/// general path decides.
#[inline(always)]
fn quick_header(buf: &[u8], at: usize, max: usize) -> Option<(usize, usize)> {
    // One or two digits (most headers: counts, command names, short keys), without the
    // loop.
    let digit = |i: usize| {
        buf.get(at + i)
            .map(|b| b.wrapping_sub(b'0'))
            .filter(|&d| d <= 9)
    };
    let line_end = |i: usize| buf.get(at + i..at + i + 2) == Some(b"\r\n");
    if let Some(first) = digit(1) {
        let one = usize::from(first);
        if line_end(2) {
            return (one <= max).then_some((one, at + 4));
        }
        if let Some(second) = digit(2).filter(|_| first != 0) {
            let two = one * 10 + usize::from(second);
            if line_end(3) {
                return (two <= max).then_some((two, at + 5));
            }
        }
    }
    let digits = buf.get(at + 1..)?;
    if digits.first() == Some(&b'0') && digits.get(1) != Some(&b'\r') {
        return None;
    }
    let mut len: usize = 0;
    for (i, &b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                len = len * 10 + usize::from(b - b'0');
                if len > max {
                    return None;
                }
            }
            b'\r' if i > 0 && digits.get(i + 1) == Some(&b'\n') => {
                return Some((len, at + 1 + i + 2));
            }
            _ => return None,
        }
    }
    None
}

/// A record of the line at `at` cut at `MAX_LINE`: `parse` finds no end in it and answers
/// that the line was too long, as redis does.
fn cut(at: usize) -> Frame {
    let end = at + MAX_LINE + 1;
    Frame::new(0..end, end)
}

/// The number on the line from `at` (a one-byte prefix, then digits) to its `\n` at `end`.
fn number(buf: &[u8], at: usize, end: usize) -> Result<i64, ()> {
    let line = &buf[at + 1..end];
    integer(line.strip_suffix(b"\r").unwrap_or(line)).ok_or(())
}

/// Reads a `\r\n`-terminated number after a one-byte prefix; `Err` if it is not one.
fn number_line(buf: &[u8], at: usize) -> Option<(Result<i64, ()>, usize)> {
    let end = at + buf.get(at..)?.iter().position(|&b| b == b'\n')?;
    Some((number(buf, at, end), end + 1))
}

/// A decimal integer as Redis reads one (`string2ll`): an optional `-`, then digits with no
/// leading zero, within `i64`. Parsed by hand: on pipelined requests, going through `str`
/// and `str::parse` was the largest share of the server's own CPU.
fn integer(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        // Accumulate negatively: i64::MIN has no positive counterpart.
        n = n.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative {
        Some(n)
    } else {
        n.checked_neg()
    }
}

/// Where a parsed request's arguments lie.
enum ArgsIn {
    /// In the request itself (RESP: every argument is a slice of it).
    Request,
    /// In the connection's scratch buffer: an inline command, whose quotes and escapes
    /// make arguments that are not slices of the line.
    Scratch,
}

/// Splits a request into argument ranges (into `args`, reused; an inline command's
/// arguments are decoded into `scratch`); `Err` names what is wrong.
fn parse(
    request: &[u8],
    args: &mut Vec<Range<usize>>,
    scratch: &mut Vec<u8>,
) -> Result<ArgsIn, &'static str> {
    args.clear();
    // A line without its end is one the decoder cut at `MAX_LINE`.
    if request[0] != b'*' {
        if request.last() != Some(&b'\n') {
            return Err("too big inline request");
        }
        split_inline(request, args, scratch)?;
        return Ok(ArgsIn::Scratch);
    }
    let (count, mut at) = number_line(request, 0).ok_or("too big mbulk count string")?;
    let count = count.map_err(|_| "invalid multibulk length")?;
    if count > MAX_ARGS {
        return Err("invalid multibulk length");
    }
    for _ in 0..count.max(0) {
        if request.get(at) != Some(&b'$') {
            return Err("expected '$'");
        }
        let (len, after) = number_line(request, at).ok_or("too big bulk count string")?;
        let len = len
            .ok()
            .filter(|&n| (0..=MAX_REQUEST as i64).contains(&n))
            .ok_or("invalid bulk length")? as usize;
        if request.get(after + len..after + len + 2) != Some(b"\r\n") {
            return Err("bulk string not followed by CRLF");
        }
        args.push(after..after + len);
        at = after + len + 2;
    }
    Ok(ArgsIn::Request)
}

/// Splits an inline command line as Redis does (`sdssplitargs`): words separated by white
/// space; `"..."` with the escapes `\n \r \t \b \a \xHH` (any other escaped byte stands
/// for itself); `'...'` where only `\'` is an escape. A closing quote must end its word.
fn split_inline(
    line: &[u8],
    args: &mut Vec<Range<usize>>,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    const UNBALANCED: &str = "unbalanced quotes in request";
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    out.clear();
    let mut i = 0;
    loop {
        while line.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let Some(&first) = line.get(i) else {
            return Ok(());
        };
        let start = out.len();
        if first == b'"' || first == b'\'' {
            i += 1;
            loop {
                let Some(&b) = line.get(i) else {
                    return Err(UNBALANCED);
                };
                let next = line.get(i + 1).copied();
                match (first, b, next) {
                    (b'"', b'\\', Some(b'x')) => {
                        match (
                            line.get(i + 2).and_then(|&h| hex(h)),
                            line.get(i + 3).and_then(|&l| hex(l)),
                        ) {
                            (Some(h), Some(l)) => {
                                out.push(h << 4 | l);
                                i += 4;
                            }
                            _ => {
                                out.push(b'x');
                                i += 2;
                            }
                        }
                    }
                    (b'"', b'\\', Some(escaped)) => {
                        out.push(match escaped {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        i += 2;
                    }
                    (b'\'', b'\\', Some(b'\'')) => {
                        out.push(b'\'');
                        i += 2;
                    }
                    (quote, b, _) if b == quote => {
                        i += 1;
                        if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                            return Err(UNBALANCED);
                        }
                        break;
                    }
                    (_, b, _) => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(&b) = line.get(i).filter(|b| !b.is_ascii_whitespace()) {
                out.push(b);
                i += 1;
            }
        }
        args.push(start..out.len());
    }
}

// ----- the keyspace -------------------------------------------------------------------

struct Value {
    data: Vec<u8>,
    expires: Option<Instant>,
}

impl Value {
    /// Whether the key's TTL has run out. The clock is read only for keys with a TTL: on a
    /// plain GET it would be a noticeable share of the work.
    fn expired(&self) -> bool {
        self.expires.is_some_and(|t| t <= Instant::now())
    }
}

/// All keys, shared by every connection (the reactor is one thread: `Rc<RefCell<_>>`).
///
/// Each command hashes its key once. An expired key stays in the map until the active
/// expiry (`expire`, ten times a second) or a write removes it, but no read sees it. Keys
/// come from the network, so the map hashes them with a randomly keyed SipHash-1-2, as
/// redis does (`siphash::KeyHash`): with a fixed fast hash a client could choose keys that
/// all collide.
#[derive(Default)]
struct Db {
    map: HashMap<Vec<u8>, Value, KeyHash>,
    /// Deadlines of keys with a TTL; stale entries (the key changed) are skipped.
    deadlines: BinaryHeap<Reverse<(Instant, Vec<u8>)>>,
}

impl Db {
    /// The key's value unless it has expired.
    fn get(&self, key: &[u8]) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.expired())
    }

    /// The key's value, to change in place, unless it has expired.
    fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.map.get_mut(key).filter(|v| !v.expired())
    }

    /// Sets a key, reusing the old value's buffer when it fits (no allocation for a
    /// SET of an existing key, the common case under `redis-benchmark`).
    fn set(&mut self, key: &[u8], data: &[u8], expires: Option<Instant>) {
        if let Some(t) = expires {
            self.deadlines.push(Reverse((t, key.to_vec())));
        }
        if let Some(value) = self.map.get_mut(key) {
            // A buffer far larger than its new contents would pin memory: replace it.
            if value.data.capacity() > 2 * data.len() + 64 {
                value.data = Vec::new();
            }
            value.data.clear();
            value.data.extend_from_slice(data);
            value.expires = expires;
            return;
        }
        let data = data.to_vec();
        self.map.insert(key.to_vec(), Value { data, expires });
    }

    /// Gives a live key a deadline; whether the key was there.
    fn expire_at(&mut self, key: &[u8], deadline: Instant) -> bool {
        let Some(value) = self.get_mut(key) else {
            return false;
        };
        value.expires = Some(deadline);
        self.deadlines.push(Reverse((deadline, key.to_vec())));
        true
    }

    /// Removes a key; whether it was there (and alive).
    fn remove(&mut self, key: &[u8]) -> bool {
        self.map.remove(key).is_some_and(|v| !v.expired())
    }

    /// Removes keys whose deadline has passed (active expiry).
    fn expire(&mut self, now: Instant) {
        while let Some(Reverse((t, _))) = self.deadlines.peek() {
            if *t > now {
                break;
            }
            let Reverse((t, key)) = self.deadlines.pop().expect("peeked");
            if self.map.get(&key).is_some_and(|v| v.expires == Some(t)) {
                self.map.remove(&key);
            }
        }
    }
}

/// `count` units of `unit_ms` milliseconds from now; `None` past what the clock can
/// represent (a client may ask for any 64-bit TTL, and `Instant + Duration` would panic).
fn deadline_after(count: u64, unit_ms: u64) -> Option<Instant> {
    let ms = count.checked_mul(unit_ms)?;
    Instant::now().checked_add(Duration::from_millis(ms))
}

// ----- replies ------------------------------------------------------------------------

/// Builds one request's replies, reused across requests. Formatted by hand rather than
/// with `write!`: the formatting machinery cost more than the rest of a GET.
#[derive(Default)]
struct Reply(Vec<u8>);

impl Reply {
    fn line(&mut self, prefix: u8, text: &[u8]) {
        self.0.push(prefix);
        self.0.extend_from_slice(text);
        self.0.extend_from_slice(b"\r\n");
    }
    fn number(&mut self, prefix: u8, n: i64) {
        self.0.push(prefix);
        push_decimal(&mut self.0, n);
        self.0.extend_from_slice(b"\r\n");
    }
    fn simple(&mut self, s: &str) {
        self.line(b'+', s.as_bytes());
    }
    fn error(&mut self, s: &str) {
        self.line(b'-', s.as_bytes());
    }
    fn int(&mut self, n: i64) {
        self.number(b':', n);
    }
    fn bulk(&mut self, data: Option<&[u8]>) {
        match data {
            Some(d) => {
                self.number(b'$', d.len() as i64);
                self.0.extend_from_slice(d);
                self.0.extend_from_slice(b"\r\n");
            }
            None => self.0.extend_from_slice(b"$-1\r\n"),
        }
    }
    fn array(&mut self, len: usize) {
        self.number(b'*', len as i64);
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: i64) {
    if let Ok(digit @ 0..=9) = u8::try_from(n) {
        // Most lengths and counts in replies: one digit, without the loop.
        out.push(b'0' + digit);
        return;
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

// ----- the connection handler ----------------------------------------------------------

struct Client {
    db: Rc<RefCell<Db>>,
    args: Vec<Range<usize>>,
    /// An inline command's decoded arguments.
    scratch: Vec<u8>,
    reply: Reply,
}

impl Client {
    /// Runs one command; returns false if the connection should close after the reply.
    fn run(&mut self, request: &[u8]) -> bool {
        let arg = |i: usize| &request[self.args[i].clone()];
        let argc = self.args.len();
        let Some(name) = self.args.first().map(|r| &request[r.clone()]) else {
            return true; // an empty line or array: nothing to do
        };
        let is = |cmd: &str| name.eq_ignore_ascii_case(cmd.as_bytes());
        let reply = &mut self.reply;
        let wrong_args = |reply: &mut Reply| {
            let cmd = String::from_utf8_lossy(name).to_lowercase();
            reply.error(&format!(
                "ERR wrong number of arguments for '{cmd}' command"
            ));
        };
        let mut db = self.db.borrow_mut();
        // The commands redis-benchmark sends most first: each test costs a comparison.
        if is("GET") {
            if argc != 2 {
                wrong_args(reply);
            } else {
                let value = db.get(arg(1)).map(|v| v.data.as_slice());
                reply.bulk(value);
            }
        } else if is("SET") {
            if argc < 3 {
                wrong_args(reply);
                return true;
            }
            let (mut expires, mut nx, mut xx, mut i) = (None, false, false, 3);
            while i < argc {
                let option = arg(i);
                let ttl = |unit: u64| -> Option<Instant> {
                    let n = integer(arg(i + 1)).filter(|&n| n > 0)?;
                    deadline_after(n as u64, unit)
                };
                if (option.eq_ignore_ascii_case(b"EX") || option.eq_ignore_ascii_case(b"PX"))
                    && i + 1 < argc
                {
                    let unit = if option.eq_ignore_ascii_case(b"EX") {
                        1000
                    } else {
                        1
                    };
                    match ttl(unit) {
                        Some(t) => expires = Some(t),
                        None => {
                            reply.error("ERR invalid expire time in 'set' command");
                            return true;
                        }
                    }
                    i += 2;
                } else if option.eq_ignore_ascii_case(b"NX") {
                    nx = true;
                    i += 1;
                } else if option.eq_ignore_ascii_case(b"XX") {
                    xx = true;
                    i += 1;
                } else {
                    reply.error("ERR syntax error");
                    return true;
                }
            }
            let exists = (nx || xx) && db.get(arg(1)).is_some();
            if (nx && exists) || (xx && !exists) {
                reply.bulk(None);
            } else {
                db.set(arg(1), arg(2), expires);
                reply.simple("OK");
            }
        } else if is("PING") {
            match argc {
                1 => reply.simple("PONG"),
                2 => reply.bulk(Some(arg(1))),
                _ => wrong_args(reply),
            }
        } else if is("ECHO") {
            if argc == 2 {
                reply.bulk(Some(arg(1)))
            } else {
                wrong_args(reply)
            }
        } else if is("DEL") || is("EXISTS") {
            if argc < 2 {
                wrong_args(reply);
                return true;
            }
            let delete = is("DEL");
            let mut n = 0;
            for i in 1..argc {
                let found = if delete {
                    db.remove(arg(i))
                } else {
                    db.get(arg(i)).is_some()
                };
                n += i64::from(found);
            }
            reply.int(n);
        } else if is("INCR") || is("DECR") {
            if argc != 2 {
                wrong_args(reply);
                return true;
            }
            let step = if is("INCR") { 1 } else { -1 };
            let next = |data: &[u8]| integer(data).and_then(|n| n.checked_add(step));
            let result = match db.get_mut(arg(1)) {
                // In place: the key keeps its TTL, and its buffer.
                Some(value) => next(&value.data).inspect(|&n| {
                    value.data.clear();
                    push_decimal(&mut value.data, n);
                }),
                None => {
                    let mut data = Vec::new();
                    push_decimal(&mut data, step);
                    db.set(arg(1), &data, None);
                    Some(step)
                }
            };
            match result {
                Some(n) => reply.int(n),
                None => reply.error("ERR value is not an integer or out of range"),
            }
        } else if is("MSET") {
            if argc < 3 || argc % 2 == 0 {
                wrong_args(reply);
                return true;
            }
            for i in (1..argc).step_by(2) {
                db.set(arg(i), arg(i + 1), None);
            }
            reply.simple("OK");
        } else if is("MGET") {
            if argc < 2 {
                wrong_args(reply);
                return true;
            }
            reply.array(argc - 1);
            for i in 1..argc {
                reply.bulk(db.get(arg(i)).map(|v| v.data.as_slice()));
            }
        } else if is("EXPIRE") {
            match (argc, integer(arg(2.min(argc - 1)))) {
                (3, Some(seconds)) if seconds <= 0 => reply.int(i64::from(db.remove(arg(1)))),
                (3, Some(seconds)) => match deadline_after(seconds as u64, 1000) {
                    Some(deadline) => reply.int(i64::from(db.expire_at(arg(1), deadline))),
                    None => reply.error("ERR invalid expire time in 'expire' command"),
                },
                (3, None) => reply.error("ERR value is not an integer or out of range"),
                _ => wrong_args(reply),
            }
        } else if is("TTL") {
            if argc != 2 {
                wrong_args(reply);
                return true;
            }
            match db.get(arg(1)) {
                None => reply.int(-2),
                Some(Value { expires: None, .. }) => reply.int(-1),
                Some(Value {
                    expires: Some(t), ..
                }) => reply.int(
                    (t.saturating_duration_since(Instant::now()).as_millis() as i64 + 500) / 1000,
                ),
            }
        } else if is("DBSIZE") {
            db.expire(Instant::now());
            reply.int(db.map.len() as i64);
        } else if is("FLUSHALL") || is("FLUSHDB") {
            db.map.clear();
            db.deadlines.clear();
            reply.simple("OK");
        } else if is("CONFIG") && argc == 3 && arg(1).eq_ignore_ascii_case(b"GET") {
            // redis-benchmark asks for these two at start-up; others get an empty answer.
            let value: Option<&[u8]> = match arg(2).to_ascii_lowercase().as_slice() {
                b"save" => Some(b""),
                b"appendonly" => Some(b"no"),
                _ => None,
            };
            match value {
                Some(v) => {
                    reply.array(2);
                    reply.bulk(Some(arg(2)));
                    reply.bulk(Some(v));
                }
                None => reply.array(0),
            }
        } else if is("CONFIG") || is("COMMAND") {
            // redis-cli asks COMMAND DOCS at start-up; nothing better to say.
            reply.array(0);
        } else if is("CLIENT") || is("SELECT") {
            reply.simple("OK");
        } else if is("INFO") {
            reply.bulk(Some(b"# Server\r\nredis_version:7.0.0-mini\r\n"));
        } else if is("QUIT") {
            reply.simple("OK");
            return false;
        } else {
            let cmd = String::from_utf8_lossy(name);
            reply.error(&format!("ERR unknown command '{cmd}'"));
        }
        true
    }
}

impl Handler for Client {
    fn on_read(&mut self, ctx: &mut Context<'_>, request: &[u8]) {
        self.reply.0.clear();
        // The decoder found the arguments of a well-formed request as it framed it: each
        // request is parsed once. Inline commands and malformed requests are parsed here.
        let parsed = ctx
            .decoder::<Resp>()
            .is_some_and(|resp| resp.take_args(&mut self.args));
        let keep = if parsed {
            self.run(request)
        } else {
            let mut scratch = std::mem::take(&mut self.scratch);
            let keep = match parse(request, &mut self.args, &mut scratch) {
                Ok(ArgsIn::Request) => self.run(request),
                Ok(ArgsIn::Scratch) => self.run(&scratch),
                Err(why) => {
                    self.reply.error(&format!("ERR Protocol error: {why}"));
                    false
                }
            };
            self.scratch = scratch;
            keep
        };
        // Pipelined requests' replies join the same write at the end of the turn.
        let _ = ctx.send(&self.reply.0);
        if !keep {
            ctx.close();
        }
    }

    fn on_read_last(&mut self, _: &mut Context<'_>, _: &[u8]) {
        // A request cut short by the close (the client hung up, or was refused): redis
        // does not run those, and there is no one left to answer.
    }

    fn on_error(&mut self, ctx: &mut Context<'_>, error: &Error) {
        if let Error::InputLimit { .. } | Error::Frame(_) = error {
            // The handle is still open for this answer; a graceful close follows.
            let _ = ctx.send(b"-ERR Protocol error: request too large or malformed\r\n");
        }
    }
}

/// Accepts clients and expires keys.
struct Server {
    db: Rc<RefCell<Db>>,
}

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Client {
            db: self.db.clone(),
            args: Vec::new(),
            scratch: Vec::new(),
            reply: Reply::default(),
        }))
    }

    fn on_timer(&mut self, _: &mut Context<'_>, _: TimerId) {
        self.db.borrow_mut().expire(Instant::now());
    }
}

/// What `start` sets up; `main` fills it from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// Most clients connected at once (redis's `maxclients`); past it a new client is told
    /// `-ERR max number of clients reached` and closed.
    pub maxclients: usize,
    /// A client silent this long is closed (redis's `timeout`; `None`, as its 0, is never).
    pub timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            maxclients: DEFAULT_MAX_CLIENTS,
            timeout: None,
        }
    }
}

/// Opens the server on `addr`; returns the listener's token.
pub fn start(reactor: &mut Reactor, addr: &str, config: &Config) -> std::io::Result<Token> {
    let db = Rc::new(RefCell::new(Db::default()));
    let options = Options::new()
        .framing(Framing::custom(Resp::default()))
        .max_size(MAX_REQUEST)
        .idle_timeout(config.timeout)
        .max_connections(config.maxclients)
        .refusal(MAX_CLIENTS_REACHED);
    let listener = reactor.listen_with(addr, options, Server { db })?;
    // Active expiry ten times a second, like Redis's default hz.
    reactor
        .handle(listener)
        .expect("just opened")
        .set_interval(Duration::from_millis(100))
        .map_err(std::io::Error::from)?;
    Ok(listener)
}

#[path = "cli/mod.rs"]
mod cli;
#[path = "siphash/mod.rs"]
mod siphash;

fn usage() -> String {
    format!(
        "usage: mini_redis [ADDR] [--maxclients N] [--timeout SECS] [--busy-poll-us N]

  ADDR              address to listen on (default {DEFAULT_ADDR})
  --maxclients N    most clients at once; past it: -ERR max number of clients reached
                    (default {DEFAULT_MAX_CLIENTS})
  --timeout SECS    close a client idle this long, 0 for never (default 0)
  --busy-poll-us N  busy-poll this long after a busy turn, 0 for not at all (default {})

One thread, like redis: no --threads (run one instance per core to use more).
",
        DEFAULT_BUSY_POLL.as_micros()
    )
}

#[allow(dead_code)] // tests include this file for `start`
fn main() -> std::io::Result<()> {
    let (mut config, mut busy_poll) = (Config::default(), DEFAULT_BUSY_POLL);
    let addr = cli::parse("mini_redis", &usage(), DEFAULT_ADDR, |flag, value| {
        match flag {
            "--maxclients" => config.maxclients = cli::count(flag, value.next())?,
            "--timeout" => config.timeout = cli::seconds(flag, value.next())?,
            "--busy-poll-us" => busy_poll = cli::micros(flag, value.next())?,
            _ => return Ok(false),
        }
        Ok(true)
    });
    let mut reactor = Reactor::new()?;
    reactor.set_busy_poll(busy_poll);
    let listener = start(&mut reactor, &addr, &config)?;
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    cli::drain_on_signals(&mut reactor)?;
    reactor.run()
}
