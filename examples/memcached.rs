//! A memcached text-protocol server (a subset), written with eventmux's framing rules: a
//! command is a line (held to memcached's 2,048 bytes by the rule's own limit), a storage
//! command's value block is `fixed(n + 2)` (held to the 1 MiB item size), and a block too
//! large to store is answered `SERVER_ERROR object too large for cache` and swallowed with
//! `ctx.skip`, never buffered.
//!
//!     cargo run --release --example memcached -- [ADDR] [--busy-poll-us N]
//!
//! ADDR defaults to 127.0.0.1:11311 (memcached's own port is 11211). Try it with
//! `printf 'set a 0 0 1\r\nx\r\nget a\r\n' | nc -q1 127.0.0.1 11311`, or point `memcslap`
//! at it.
//!
//! Commands: get, gets, set, add, replace, append, prepend, cas, delete, incr, decr, touch,
//! flush_all, version, stats, quit, each storage and update command with `noreply`. Items
//! expire as memcached's do (an exptime up to 30 days is relative, above it a unix time,
//! negative at once); there is no memory limit or LRU beyond the item size. All
//! connections share one store, on the reactor's one thread (no locks).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventmux::framing::Framing;
use eventmux::{Context, Error, Handler, Incoming, Options, Reactor, Token};

const DEFAULT_ADDR: &str = "127.0.0.1:11311";
/// memcached's longest command line.
pub const MAX_LINE: usize = 2048;
/// memcached's default item size limit (`-I 1m`).
pub const MAX_ITEM: usize = 1024 * 1024;
/// The longest key memcached takes.
const MAX_KEY: usize = 250;
/// An exptime above this many seconds is a unix time, not a relative one.
const RELATIVE_LIMIT: i64 = 60 * 60 * 24 * 30;
/// Off by default: busy polling costs CPU per request (see `http_hello`).
const DEFAULT_BUSY_POLL: Duration = Duration::ZERO;

/// One stored item.
struct Item {
    flags: u32,
    /// Unix time it expires at (`None`: never).
    expires: Option<i64>,
    cas: u64,
    value: Vec<u8>,
}

/// The store every connection shares.
#[derive(Default)]
struct Store {
    items: HashMap<Vec<u8>, Item>,
    /// The last cas unique given out.
    last_cas: u64,
    /// `flush_all` with a delay: items older than this are gone once it passes.
    flush_at: Option<i64>,
    started: i64,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    connections: u64,
    get_hits: u64,
    get_misses: u64,
    sets: u64,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// memcached's exptime: 0 never, up to 30 days relative, above an absolute unix time, and
/// negative already expired.
fn expiry(exptime: i64, now: i64) -> Option<i64> {
    match exptime {
        0 => None,
        t if t < 0 => Some(now - 1),
        t if t <= RELATIVE_LIMIT => Some(now + t),
        t => Some(t),
    }
}

impl Store {
    /// The live item under `key` (an expired or flushed one is removed).
    fn live(&mut self, key: &[u8]) -> Option<&mut Item> {
        let now = now();
        if let Some(at) = self.flush_at.filter(|&at| at <= now) {
            let _ = at;
            self.items.clear();
            self.flush_at = None;
        }
        let expired = self
            .items
            .get(key)
            .is_some_and(|item| item.expires.is_some_and(|at| at <= now));
        if expired {
            self.items.remove(key);
        }
        self.items.get_mut(key)
    }
}

/// A storage command waiting for its value block.
struct Pending {
    command: Storage,
    key: Vec<u8>,
    flags: u32,
    exptime: i64,
    cas_unique: u64,
    noreply: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Storage {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

/// One connection: lines, and a value block after a storage command.
struct Session {
    store: Rc<RefCell<Store>>,
    pending: Option<Pending>,
}

/// The command-line rule: lines of at most `MAX_LINE` bytes, however large the values.
fn command_lines() -> Framing {
    Framing::lines().max_size(MAX_LINE)
}

fn reply(ctx: &mut Context<'_>, noreply: bool, text: &[u8]) {
    if !noreply {
        let _ = ctx.send(text);
    }
}

impl Session {
    fn command(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
        let words: Vec<&[u8]> = line
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .collect();
        let Some((&name, args)) = words.split_first() else {
            let _ = ctx.send(b"ERROR\r\n");
            return;
        };
        match name {
            b"get" => self.get(ctx, args, false),
            b"gets" => self.get(ctx, args, true),
            b"set" => self.storage(ctx, Storage::Set, args),
            b"add" => self.storage(ctx, Storage::Add, args),
            b"replace" => self.storage(ctx, Storage::Replace, args),
            b"append" => self.storage(ctx, Storage::Append, args),
            b"prepend" => self.storage(ctx, Storage::Prepend, args),
            b"cas" => self.storage(ctx, Storage::Cas, args),
            b"delete" => self.delete(ctx, args),
            b"incr" => self.arithmetic(ctx, args, true),
            b"decr" => self.arithmetic(ctx, args, false),
            b"touch" => self.touch(ctx, args),
            b"flush_all" => self.flush_all(ctx, args),
            b"version" => {
                let _ = ctx.send(b"VERSION 1.6.0 (eventmux)\r\n");
            }
            b"stats" => self.stats(ctx),
            b"quit" => ctx.close(),
            _ => {
                let _ = ctx.send(b"ERROR\r\n");
            }
        }
    }

    fn get(&mut self, ctx: &mut Context<'_>, keys: &[&[u8]], with_cas: bool) {
        if keys.is_empty() {
            let _ = ctx.send(b"ERROR\r\n");
            return;
        }
        let mut store = self.store.borrow_mut();
        for key in keys {
            if key.len() > MAX_KEY {
                let _ = ctx.send(b"CLIENT_ERROR bad command line format\r\n");
                return;
            }
            let Some(item) = store.live(key) else {
                store.counters.get_misses += 1;
                continue;
            };
            let head = if with_cas {
                format!(" {} {} {}\r\n", item.flags, item.value.len(), item.cas)
            } else {
                format!(" {} {}\r\n", item.flags, item.value.len())
            };
            let _ = ctx.send(b"VALUE ");
            let _ = ctx.send(key);
            let _ = ctx.send(head.as_bytes());
            let _ = ctx.send(&item.value);
            let _ = ctx.send(b"\r\n");
            store.counters.get_hits += 1;
        }
        let _ = ctx.send(b"END\r\n");
    }

    /// `<command> <key> <flags> <exptime> <bytes> [cas unique] [noreply]`: the block comes
    /// next, as one fixed-size record of the value and its `\r\n`.
    fn storage(&mut self, ctx: &mut Context<'_>, command: Storage, args: &[&[u8]]) {
        let wanted = if command == Storage::Cas { 5 } else { 4 };
        let noreply = args.len() == wanted + 1 && args[wanted] == b"noreply";
        let parsed = (args.len() == wanted || noreply)
            .then(|| {
                let flags = number::<u32>(args[1])?;
                let exptime = number::<i64>(args[2])?;
                let bytes = number::<i64>(args[3])?;
                let cas_unique = match command {
                    Storage::Cas => number::<u64>(args[4])?,
                    _ => 0,
                };
                Some((flags, exptime, bytes, cas_unique))
            })
            .flatten();
        let Some((flags, exptime, bytes, cas_unique)) = parsed.filter(|_| args[0].len() <= MAX_KEY)
        else {
            let _ = ctx.send(b"CLIENT_ERROR bad command line format\r\n");
            return;
        };
        let Ok(bytes) = usize::try_from(bytes) else {
            let _ = ctx.send(b"CLIENT_ERROR bad command line format\r\n");
            return;
        };
        if bytes > MAX_ITEM {
            // memcached's answer; the block (and its \r\n) is thrown away as it arrives.
            let _ = ctx.send(b"SERVER_ERROR object too large for cache\r\n");
            let _ = ctx.skip(bytes as u64 + 2);
            return;
        }
        self.pending = Some(Pending {
            command,
            key: args[0].to_vec(),
            flags,
            exptime,
            cas_unique,
            noreply,
        });
        let block = Framing::fixed(bytes + 2).max_size(MAX_ITEM + 2);
        if let Err(e) = ctx.set_framing(Some(block)) {
            eprintln!("memcached: {e}");
            ctx.close();
        }
    }

    /// The value block of the pending storage command (its `\r\n` included).
    fn block(&mut self, ctx: &mut Context<'_>, pending: Pending, block: &[u8]) {
        if let Err(e) = ctx.set_framing(Some(command_lines())) {
            eprintln!("memcached: {e}");
            ctx.close();
            return;
        }
        let Some(value) = block.strip_suffix(b"\r\n") else {
            let _ = ctx.send(b"CLIENT_ERROR bad data chunk\r\n");
            return;
        };
        let mut store = self.store.borrow_mut();
        store.counters.sets += 1;
        let now = now();
        // memcached numbers what it stores, and only that.
        let cas = store.last_cas + 1;
        let existing = store.live(&pending.key);
        let answer: &[u8] = match (pending.command, existing) {
            (Storage::Add, Some(_))
            | (Storage::Replace | Storage::Append | Storage::Prepend, None) => b"NOT_STORED\r\n",
            (Storage::Cas, None) => b"NOT_FOUND\r\n",
            (Storage::Cas, Some(item)) if item.cas != pending.cas_unique => b"EXISTS\r\n",
            (Storage::Append, Some(item)) => {
                item.value.extend_from_slice(value);
                item.cas = cas;
                b"STORED\r\n"
            }
            (Storage::Prepend, Some(item)) => {
                let mut joined = value.to_vec();
                joined.extend_from_slice(&item.value);
                item.value = joined;
                item.cas = cas;
                b"STORED\r\n"
            }
            _ => {
                let item = Item {
                    flags: pending.flags,
                    expires: expiry(pending.exptime, now),
                    cas,
                    value: value.to_vec(),
                };
                store.items.insert(pending.key, item);
                b"STORED\r\n"
            }
        };
        if answer == b"STORED\r\n" {
            store.last_cas = cas;
        }
        reply(ctx, pending.noreply, answer);
    }

    fn delete(&mut self, ctx: &mut Context<'_>, args: &[&[u8]]) {
        let noreply = args.last() == Some(&&b"noreply"[..]);
        let args = &args[..args.len() - usize::from(noreply)];
        // memcached still takes a trailing "0" (the old delete time).
        let ([key] | [key, b"0"]) = args else {
            let _ = ctx
                .send(b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
            return;
        };
        let mut store = self.store.borrow_mut();
        let found = store.live(key).is_some();
        if found {
            store.items.remove(*key);
        }
        reply(
            ctx,
            noreply,
            if found {
                b"DELETED\r\n"
            } else {
                b"NOT_FOUND\r\n"
            },
        );
    }

    fn arithmetic(&mut self, ctx: &mut Context<'_>, args: &[&[u8]], up: bool) {
        let noreply = args.len() == 3 && args[2] == b"noreply";
        if args.len() != 2 && !noreply {
            let _ = ctx.send(b"ERROR\r\n");
            return;
        }
        let Some(delta) = number::<u64>(args[1]) else {
            let _ = ctx.send(b"CLIENT_ERROR invalid numeric delta argument\r\n");
            return;
        };
        let mut store = self.store.borrow_mut();
        let cas = store.last_cas + 1;
        let Some(item) = store.live(args[0]) else {
            reply(ctx, noreply, b"NOT_FOUND\r\n");
            return;
        };
        // A value an earlier decr padded with spaces (see below) still counts.
        let Some(current) = std::str::from_utf8(&item.value)
            .ok()
            .and_then(|s| s.trim_end_matches(' ').parse::<u64>().ok())
        else {
            let _ = ctx.send(b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
            return;
        };
        // incr wraps at 64 bits; decr stops at 0.
        let next = if up {
            current.wrapping_add(delta)
        } else {
            current.saturating_sub(delta)
        };
        // As memcached does: a result no longer than the old value is written in place,
        // padded with spaces to the old length.
        let mut digits = next.to_string().into_bytes();
        if digits.len() < item.value.len() {
            digits.resize(item.value.len(), b' ');
        }
        item.value = digits;
        item.cas = cas;
        store.last_cas = cas;
        reply(ctx, noreply, format!("{next}\r\n").as_bytes());
    }

    fn touch(&mut self, ctx: &mut Context<'_>, args: &[&[u8]]) {
        let noreply = args.len() == 3 && args[2] == b"noreply";
        let exptime = (args.len() == 2 || noreply)
            .then(|| number::<i64>(args[1]))
            .flatten();
        let Some(exptime) = exptime else {
            let _ = ctx.send(b"ERROR\r\n");
            return;
        };
        let mut store = self.store.borrow_mut();
        let answer: &[u8] = match store.live(args[0]) {
            Some(item) => {
                item.expires = expiry(exptime, now());
                b"TOUCHED\r\n"
            }
            None => b"NOT_FOUND\r\n",
        };
        reply(ctx, noreply, answer);
    }

    fn flush_all(&mut self, ctx: &mut Context<'_>, args: &[&[u8]]) {
        let noreply = args.last() == Some(&&b"noreply"[..]);
        let args = &args[..args.len() - usize::from(noreply)];
        let delay = match args {
            [] => Some(0),
            [delay] => number::<i64>(delay),
            _ => None,
        };
        let Some(delay) = delay else {
            let _ = ctx.send(b"CLIENT_ERROR bad command line format\r\n");
            return;
        };
        let mut store = self.store.borrow_mut();
        if delay <= 0 {
            store.items.clear();
        } else {
            store.flush_at = expiry(delay, now());
        }
        reply(ctx, noreply, b"OK\r\n");
    }

    fn stats(&mut self, ctx: &mut Context<'_>) {
        let store = self.store.borrow();
        let now = now();
        let lines = [
            ("pid", u64::from(std::process::id())),
            ("uptime", (now - store.started).max(0) as u64),
            ("time", now as u64),
            ("curr_items", store.items.len() as u64),
            ("total_connections", store.counters.connections),
            ("cmd_set", store.counters.sets),
            ("get_hits", store.counters.get_hits),
            ("get_misses", store.counters.get_misses),
            ("limit_maxbytes", MAX_ITEM as u64),
        ];
        for (name, value) in lines {
            let _ = ctx.send(format!("STAT {name} {value}\r\n").as_bytes());
        }
        let _ = ctx.send(b"END\r\n");
    }
}

impl Handler for Session {
    fn on_read(&mut self, ctx: &mut Context<'_>, record: &[u8]) {
        match self.pending.take() {
            Some(pending) => self.block(ctx, pending, record),
            None => self.command(ctx, record),
        }
    }

    fn on_error(&mut self, ctx: &mut Context<'_>, error: &Error) {
        // A command line past 2,048 bytes (the rule's own limit): memcached says so and
        // closes.
        if let Error::InputLimit { .. } = error {
            let _ = ctx.send(b"CLIENT_ERROR line too long\r\n");
        }
    }

    /// Draining: the client may be mid-command; let it finish (within the grace time).
    fn on_shutdown(&mut self, _ctx: &mut Context<'_>) {}
}

/// A whole number in ASCII, or `None`.
fn number<T: std::str::FromStr>(word: &[u8]) -> Option<T> {
    std::str::from_utf8(word).ok()?.parse().ok()
}

struct Server {
    store: Rc<RefCell<Store>>,
}

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        self.store.borrow_mut().counters.connections += 1;
        Some(Box::new(Session {
            store: self.store.clone(),
            pending: None,
        }))
    }
}

/// Opens the server on `addr`; returns the listener's token.
pub fn start(reactor: &mut Reactor, addr: &str) -> std::io::Result<Token> {
    let store = Store {
        started: now(),
        ..Store::default()
    };
    let options = Options::new().framing(command_lines());
    reactor.listen_with(
        addr,
        options,
        Server {
            store: Rc::new(RefCell::new(store)),
        },
    )
}

#[path = "cli/mod.rs"]
mod cli;

fn usage() -> String {
    format!(
        "usage: memcached [ADDR] [--busy-poll-us N]

  ADDR              address to listen on (default {DEFAULT_ADDR})
  --busy-poll-us N  busy-poll this long after a busy turn, 0 for not at all (default {})
",
        DEFAULT_BUSY_POLL.as_micros()
    )
}

#[allow(dead_code)] // tests include this file for `start`
fn main() -> std::io::Result<()> {
    let mut busy_poll = DEFAULT_BUSY_POLL;
    let addr = cli::parse("memcached", &usage(), DEFAULT_ADDR, |flag, value| {
        match flag {
            "--busy-poll-us" => busy_poll = cli::micros(flag, value.next())?,
            _ => return Ok(false),
        }
        Ok(true)
    });
    let mut reactor = Reactor::new()?;
    reactor.set_busy_poll(busy_poll);
    let listener = start(&mut reactor, &addr)?;
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    cli::drain_on_signals(&mut reactor)?;
    reactor.run()
}
