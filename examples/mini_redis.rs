//! A small Redis: RESP2 (and inline commands) over eventmux, enough for `redis-cli` and
//! `redis-benchmark -t ping,set,get,incr,mset` (pipelined too).
//!
//!     cargo run --release --example mini_redis [ADDR] [--busy-poll-us N]
//!
//! ADDR defaults to 127.0.0.1:6380. The reactor busy-polls for 200 µs after each busy turn
//! (`Reactor::set_busy_poll`), as a server on a dedicated core can afford: clients then
//! rarely have to wake it. `--busy-poll-us 0` turns that off.
//!
//! Commands: PING, ECHO, SET (EX/PX/NX/XX), GET, DEL, EXISTS, INCR, DECR, MSET, MGET,
//! EXPIRE, TTL, DBSIZE, FLUSHALL, plus what clients send at start-up (CONFIG GET, COMMAND,
//! CLIENT, SELECT, INFO, QUIT). Framing splits the stream into whole commands, so the
//! handler only parses arguments and writes replies; all connections share one keyspace
//! (one thread, no locks). A malformed request gets `-ERR Protocol error` and closes only
//! its own connection; so does one larger than `MAX_REQUEST`.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::ops::Range;
use std::rc::Rc;
use std::time::{Duration, Instant};

use eventmux::framing::{Decoder, Frame, FrameError, Framing};
use eventmux::{Context, Error, Handler, Incoming, Options, Reactor, TimerId, Token};

/// Largest request accepted (Redis allows 512 MB bulk strings; a toy server should not).
const MAX_REQUEST: usize = 8 * 1024 * 1024;
/// Busy-poll window unless `--busy-poll-us` says otherwise.
const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(200);
/// Most arguments in one request.
const MAX_ARGS: i64 = 1024 * 1024;

// ----- framing: one RESP request per record ---------------------------------------------

/// Finds where one request ends: `*N` then N `$len` bulk strings, or an inline command line.
/// Malformed input ends the record at the bad line, so the handler can answer it.
#[derive(Clone, Default)]
struct Resp;

/// Reads a `\r\n`-terminated number after a one-byte prefix; `Err` if it is not one.
fn number_line(buf: &[u8], at: usize) -> Option<(Result<i64, ()>, usize)> {
    let end = at + buf.get(at..)?.iter().position(|&b| b == b'\n')?;
    let line = buf[at + 1..end]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[at + 1..end]);
    let number = std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(());
    Some((number, end + 1))
}

impl Decoder for Resp {
    fn decode(&mut self, buf: &[u8], limit: usize) -> Result<Option<Frame>, FrameError> {
        if buf[0] != b'*' {
            // Inline command: one line.
            return Ok(buf
                .iter()
                .position(|&b| b == b'\n')
                .map(|end| Frame::new(0..end + 1, end + 1)));
        }
        let Some((count, mut at)) = number_line(buf, 0) else {
            return Ok(None);
        };
        let count = match count {
            Ok(n) if n <= MAX_ARGS => n,
            _ => return Ok(Some(Frame::new(0..at, at))), // the handler reports it
        };
        for _ in 0..count.max(0) {
            if at >= buf.len() {
                return Ok(None);
            }
            if buf[at] != b'$' {
                return Ok(Some(Frame::new(0..at + 1, at + 1)));
            }
            let Some((len, after)) = number_line(buf, at) else {
                return Ok(None);
            };
            let len = match len {
                Ok(n) if (0..=MAX_REQUEST as i64).contains(&n) => n as usize,
                _ => return Ok(Some(Frame::new(0..after, after))),
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
            at = end;
        }
        Ok(Some(Frame::new(0..at, at)))
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(Resp)
    }
}

/// Splits a request into argument ranges (into `args`, reused); `Err` names what is wrong.
fn parse(request: &[u8], args: &mut Vec<Range<usize>>) -> Result<(), &'static str> {
    args.clear();
    if request[0] != b'*' {
        let line = request.strip_suffix(b"\n").unwrap_or(request);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut start = None;
        for (i, &b) in line.iter().chain(std::iter::once(&b' ')).enumerate() {
            match (b == b' ' || b == b'\t', start) {
                (true, Some(s)) => {
                    args.push(s..i);
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        return Ok(());
    }
    let (count, mut at) = number_line(request, 0).ok_or("incomplete request")?;
    let count = count.map_err(|_| "invalid multibulk length")?;
    if count > MAX_ARGS {
        return Err("invalid multibulk length");
    }
    for _ in 0..count.max(0) {
        if request.get(at) != Some(&b'$') {
            return Err("expected '$'");
        }
        let (len, after) = number_line(request, at).ok_or("incomplete request")?;
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
    Ok(())
}

// ----- the keyspace -------------------------------------------------------------------

struct Value {
    data: Vec<u8>,
    expires: Option<Instant>,
}

/// All keys, shared by every connection (the reactor is one thread: `Rc<RefCell<_>>`).
#[derive(Default)]
struct Db {
    map: HashMap<Vec<u8>, Value>,
    /// Deadlines of keys with a TTL; stale entries (the key changed) are skipped.
    deadlines: BinaryHeap<Reverse<(Instant, Vec<u8>)>>,
}

impl Db {
    /// The key's value unless it has expired. The clock is read only for keys with a TTL:
    /// on a plain GET it would be a noticeable share of the work.
    fn live(&mut self, key: &[u8]) -> Option<&mut Value> {
        let expired = self
            .map
            .get(key)?
            .expires
            .is_some_and(|t| t <= Instant::now());
        if expired {
            self.map.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    fn set(&mut self, key: &[u8], data: Vec<u8>, expires: Option<Instant>) {
        if let Some(t) = expires {
            self.deadlines.push(Reverse((t, key.to_vec())));
        }
        match self.map.get_mut(key) {
            Some(value) => *value = Value { data, expires },
            None => {
                self.map.insert(key.to_vec(), Value { data, expires });
            }
        }
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

// ----- replies ------------------------------------------------------------------------

/// Builds one request's replies, reused across requests.
#[derive(Default)]
struct Reply(Vec<u8>);

impl Reply {
    fn simple(&mut self, s: &str) {
        let _ = write!(self.0, "+{s}\r\n");
    }
    fn error(&mut self, s: &str) {
        let _ = write!(self.0, "-{s}\r\n");
    }
    fn int(&mut self, n: i64) {
        let _ = write!(self.0, ":{n}\r\n");
    }
    fn bulk(&mut self, data: Option<&[u8]>) {
        match data {
            Some(d) => {
                let _ = write!(self.0, "${}\r\n", d.len());
                self.0.extend_from_slice(d);
                self.0.extend_from_slice(b"\r\n");
            }
            None => self.0.extend_from_slice(b"$-1\r\n"),
        }
    }
    fn array(&mut self, len: usize) {
        let _ = write!(self.0, "*{len}\r\n");
    }
}

fn integer(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

// ----- the connection handler ----------------------------------------------------------

struct Client {
    db: Rc<RefCell<Db>>,
    args: Vec<Range<usize>>,
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
        if is("PING") {
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
        } else if is("GET") {
            if argc != 2 {
                wrong_args(reply);
            } else {
                let value = db.live(arg(1)).map(|v| v.data.as_slice());
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
                    let n = integer(arg(i + 1)).filter(|&n| n > 0)? as u64;
                    Some(Instant::now() + Duration::from_millis(n.saturating_mul(unit)))
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
            let exists = db.live(arg(1)).is_some();
            if (nx && exists) || (xx && !exists) {
                reply.bulk(None);
            } else {
                db.set(arg(1), arg(2).to_vec(), expires);
                reply.simple("OK");
            }
        } else if is("DEL") || is("EXISTS") {
            if argc < 2 {
                wrong_args(reply);
                return true;
            }
            let delete = is("DEL");
            let mut n = 0;
            for i in 1..argc {
                if db.live(arg(i)).is_some() {
                    n += 1;
                    if delete {
                        db.map.remove(arg(i));
                    }
                }
            }
            reply.int(n);
        } else if is("INCR") || is("DECR") {
            if argc != 2 {
                wrong_args(reply);
                return true;
            }
            let step = if is("INCR") { 1 } else { -1 };
            let current = match db.live(arg(1)) {
                Some(v) => integer(&v.data),
                None => Some(0),
            };
            match current.and_then(|n| n.checked_add(step)) {
                Some(n) => {
                    let expires = db.live(arg(1)).and_then(|v| v.expires);
                    db.set(arg(1), n.to_string().into_bytes(), expires);
                    reply.int(n);
                }
                None => reply.error("ERR value is not an integer or out of range"),
            }
        } else if is("MSET") {
            if argc < 3 || argc % 2 == 0 {
                wrong_args(reply);
                return true;
            }
            for i in (1..argc).step_by(2) {
                db.set(arg(i), arg(i + 1).to_vec(), None);
            }
            reply.simple("OK");
        } else if is("MGET") {
            if argc < 2 {
                wrong_args(reply);
                return true;
            }
            reply.array(argc - 1);
            for i in 1..argc {
                reply.bulk(db.live(arg(i)).map(|v| v.data.as_slice()));
            }
        } else if is("EXPIRE") {
            match (argc, integer(arg(2.min(argc - 1)))) {
                (3, Some(seconds)) => {
                    let deadline = Instant::now() + Duration::from_secs(seconds.max(0) as u64);
                    match db.live(arg(1)).map(|v| v.data.clone()) {
                        Some(data) if seconds > 0 => {
                            db.set(arg(1), data, Some(deadline));
                            reply.int(1);
                        }
                        Some(_) => {
                            db.map.remove(arg(1));
                            reply.int(1);
                        }
                        None => reply.int(0),
                    }
                }
                (3, None) => reply.error("ERR value is not an integer or out of range"),
                _ => wrong_args(reply),
            }
        } else if is("TTL") {
            if argc != 2 {
                wrong_args(reply);
                return true;
            }
            match db.live(arg(1)) {
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
        let keep = match parse(request, &mut self.args) {
            Ok(()) => self.run(request),
            Err(why) => {
                self.reply.error(&format!("ERR Protocol error: {why}"));
                false
            }
        };
        // Pipelined requests' replies join the same write at the end of the turn.
        let _ = ctx.send(&self.reply.0);
        if !keep {
            ctx.close();
        }
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
            reply: Reply::default(),
        }))
    }

    fn on_timer(&mut self, _: &mut Context<'_>, _: TimerId) {
        self.db.borrow_mut().expire(Instant::now());
    }
}

/// Opens the server on `addr`; returns the listener's token.
pub fn start(reactor: &mut Reactor, addr: &str) -> std::io::Result<Token> {
    let db = Rc::new(RefCell::new(Db::default()));
    let options = Options::new()
        .framing(Framing::custom(Resp))
        .max_size(MAX_REQUEST);
    let listener = reactor.listen_with(addr, options, Box::new(Server { db }))?;
    // Active expiry ten times a second, like Redis's default hz.
    reactor
        .handle(listener)
        .expect("just opened")
        .set_interval(Duration::from_millis(100))
        .map_err(std::io::Error::from)?;
    Ok(listener)
}

#[allow(dead_code)] // tests include this file for `start`
fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:6380".to_string();
    let mut busy_poll = DEFAULT_BUSY_POLL;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--busy-poll-us" {
            let micros = args.next().and_then(|n| n.parse().ok()).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "--busy-poll-us takes a number of microseconds",
                )
            })?;
            busy_poll = Duration::from_micros(micros);
        } else {
            addr = arg;
        }
    }
    let mut reactor = Reactor::new()?;
    reactor.set_busy_poll(busy_poll);
    let listener = start(&mut reactor, &addr)?;
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    reactor.run()
}
