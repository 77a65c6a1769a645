//! HTTP/1.1 "hello world" with keep-alive and pipelining: `GET /` gets 200 and a fixed body,
//! anything else 404, a malformed request 400; `Connection: close` (and HTTP/1.0 without
//! keep-alive) is honoured.
//!
//!     cargo run --release --example http_hello -- [ADDR] [--request-timeout SECS]
//!         [--keepalive-timeout SECS] [--max-head BYTES] [--max-body BYTES] [--busy-poll-us N]
//!         [--threads N] [--pin] [--tls CERT KEY]
//!
//! ADDR defaults to 127.0.0.1:8080; `--help` lists the options and their defaults. Busy
//! polling (`--busy-poll-us N`, `Reactor::set_busy_poll`) is off by default: it keeps the
//! server's core busy between requests, which pays only on a core dedicated to it (see
//! `mini_redis` for the figures).
//!
//! `--threads N` serves on N reactor threads, each with its own `SO_REUSEPORT` listener
//! (as nginx's workers do with `reuseport`); `--pin` pins thread i to the i-th CPU.
//!
//! `--tls CERT KEY` (a build with `--features tls`) serves HTTPS with the PEM certificate
//! chain and key (`scripts/make_cert.sh` makes a self-signed pair): try
//! `curl --cacert cert.pem https://localhost:8080/`.
//!
//! Try it with `curl -v http://127.0.0.1:8080/` or `wrk -c 50 http://127.0.0.1:8080/`.
//! Framing (`Framing::http()`, bounded here) hands the handler one whole request at a time,
//! however the bytes arrived; replies to pipelined requests leave in one write.
//!
//! Clients are held to nginx's bounds: a request must be whole within 60 s of its first
//! byte (`client_header_timeout`), or it is answered `408 Request Timeout`; a keep-alive
//! connection silent for 75 s is closed (`keepalive_timeout`); a head over 32 KiB (nginx's
//! four 8 KiB header buffers) gets `431 Request Header Fields Too Large`, and a body over
//! 1 MiB (`client_max_body_size`) `413 Content Too Large`. Each refusal says `Connection:
//! close`, and the connection closes once it is written; a client that takes none of its
//! responses for 60 s is dropped (`send_timeout`, eventmux's default too).

use std::io::Write;
use std::time::Duration;

use eventmux::framing::{Decoder, Frame, FrameError, Framing};
use eventmux::{
    Context, Deadline, Error, Handler, Incoming, Options, Reactor, ReactorGroup, Spread, Token,
};

const DEFAULT_ADDR: &str = "127.0.0.1:8080";
const BODY: &[u8] = b"Hello, world!\n";
const NOT_FOUND: &[u8] = b"Not Found\n";
/// Busy-poll window unless `--busy-poll-us` says otherwise: none.
const DEFAULT_BUSY_POLL: Duration = Duration::ZERO;
/// How the decoder says a head passed `max_head` (`on_error` answers it with 431).
const HEAD_TOO_LARGE: &str = "request head too large";

/// The bounds a client is held to; `start` takes them, `main` fills them from the flags.
#[derive(Clone, Debug)]
pub struct Config {
    /// A request must be whole this long after its first byte, or it gets 408 (`None`: no
    /// bound).
    pub request_timeout: Option<Duration>,
    /// A connection with no traffic for this long is closed (`None`: never).
    pub keepalive_timeout: Option<Duration>,
    /// Largest request head, blank line included; a longer one gets 431.
    pub max_head: usize,
    /// Largest body, as sent (a chunked body's framing counts); a longer one gets 413.
    pub max_body: usize,
}

impl Default for Config {
    /// nginx's defaults: `client_header_timeout 60s`, `keepalive_timeout 75s`,
    /// `large_client_header_buffers 4 8k`, `client_max_body_size 1m`.
    fn default() -> Config {
        Config {
            request_timeout: Some(Duration::from_secs(60)),
            keepalive_timeout: Some(Duration::from_secs(75)),
            max_head: 32 * 1024,
            max_body: 1024 * 1024,
        }
    }
}

// ----- framing: whole requests, head and body bounded apart ------------------------------

/// `Framing::http()` with a bound on the head and another on the body. A handle has one
/// input bound (`Options::max_size`), and passing it is `Error::InputLimit` whatever part
/// was too long; this decoder refuses a long head itself, with an error of its own, so that
/// `on_error` can answer 431 for the head and 413 for the body.
struct Requests {
    http: Box<dyn Decoder>,
    max_head: usize,
    max_body: usize,
    /// The length of the current request's head, once it is all in.
    head: Option<usize>,
    /// How far the head has been searched for its end.
    scanned: usize,
}

impl Requests {
    fn new(config: &Config) -> Requests {
        Requests {
            http: Framing::http().into_decoder(),
            max_head: config.max_head,
            max_body: config.max_body,
            head: None,
            scanned: 0,
        }
    }
}

/// The end of the head (just past its blank line), searching from `from`; the same rule
/// as `Framing::http()`'s, so both find the same end.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(offset) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let at = i + offset;
        match buf.get(at + 1..) {
            Some([b'\n', ..]) => return Some(at + 2),
            Some([b'\r', b'\n', ..]) => return Some(at + 3),
            _ => i = at + 1,
        }
    }
    None
}

impl Decoder for Requests {
    fn decode(&mut self, buf: &[u8], _limit: usize) -> Result<Option<Frame>, FrameError> {
        let head = match self.head {
            Some(head) => head,
            None => {
                // Only the first `max_head` bytes can hold the end of a head short enough.
                let window = &buf[..buf.len().min(self.max_head)];
                // Back 3: the last read may have ended inside the blank line.
                match head_end(window, self.scanned.saturating_sub(3)) {
                    Some(end) => end,
                    None if buf.len() >= self.max_head => {
                        return Err(FrameError::BadHttp(HEAD_TOO_LARGE.into()))
                    }
                    None => {
                        self.scanned = buf.len();
                        return Ok(None);
                    }
                }
            }
        };
        self.head = Some(head);
        self.scanned = 0;
        // The HTTP rule refuses a body past its limit with `TooLarge`: `InputLimit`, 413.
        let request = self.http.decode(buf, head.saturating_add(self.max_body))?;
        if request.is_some() {
            self.head = None;
        }
        Ok(request)
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(Requests {
            http: self.http.fresh(),
            max_head: self.max_head,
            max_body: self.max_body,
            head: None,
            scanned: 0,
        })
    }
}

// ----- requests and responses --------------------------------------------------------------

/// One per connection; `head` is reused for every response head.
#[derive(Default)]
struct Connection {
    head: Vec<u8>,
}

/// What a request asks for, as far as this server cares.
struct Request {
    found: bool,
    reply: Reply,
}

/// How to shape the response.
#[derive(Copy, Clone)]
struct Reply {
    head_only: bool,
    keep_alive: bool,
    /// HTTP/1.0: keep-alive is not the default, so a response that keeps the connection
    /// open must say so.
    http10: bool,
}

impl Reply {
    /// A response after which the connection closes (a request refused).
    const CLOSE: Reply = Reply {
        head_only: false,
        keep_alive: false,
        http10: false,
    };
}

fn parse(record: &[u8]) -> Option<Request> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    // Framing already checked the head; parsing again is cheap and gives the fields.
    request.parse(record).ok()?;
    let method = request.method?;
    let http11 = request.version? == 1;
    // Every Connection header counts (RFC 9110 §5.3: repeated fields are one list).
    let says = |word: &[u8]| {
        request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("connection"))
            .flat_map(|h| h.value.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(word))
    };
    Some(Request {
        found: (method == "GET" || method == "HEAD") && request.path? == "/",
        reply: Reply {
            head_only: method == "HEAD",
            keep_alive: if http11 {
                !says(b"close")
            } else {
                says(b"keep-alive") && !says(b"close")
            },
            http10: !http11,
        },
    })
}

impl Connection {
    fn respond(&mut self, ctx: &mut Context<'_>, status: &str, body: &[u8], how: Reply) {
        let connection = match (how.keep_alive, how.http10) {
            (false, _) => "Connection: close\r\n",
            (true, true) => "Connection: keep-alive\r\n",
            (true, false) => "",
        };
        let head = &mut self.head;
        head.clear();
        let _ = write!(
            head,
            "HTTP/1.1 {status}\r\nServer: eventmux\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\n{connection}\r\n",
            body.len(),
        );
        let _ = ctx.send(head);
        if !how.head_only {
            let _ = ctx.send(body);
        }
    }
}

impl Handler for Connection {
    fn on_read(&mut self, ctx: &mut Context<'_>, record: &[u8]) {
        let Some(request) = parse(record) else {
            self.respond(ctx, "400 Bad Request", b"", Reply::CLOSE);
            ctx.close();
            return;
        };
        if request.found {
            self.respond(ctx, "200 OK", BODY, request.reply);
        } else {
            self.respond(ctx, "404 Not Found", NOT_FOUND, request.reply);
        }
        if !request.reply.keep_alive {
            ctx.close(); // after the response is flushed
        }
    }

    fn on_read_last(&mut self, _: &mut Context<'_>, _: &[u8]) {
        // An unfinished request at the close: there is no one left to answer.
    }

    fn on_error(&mut self, ctx: &mut Context<'_>, error: &Error) {
        // A request refused or late: the connection is still open for this answer, and
        // closes once it is written.
        let status = match error {
            Error::Timeout(Deadline::Record) => "408 Request Timeout",
            Error::Frame(FrameError::BadHttp(why)) if why == HEAD_TOO_LARGE => {
                "431 Request Header Fields Too Large"
            }
            Error::InputLimit { .. } => "413 Content Too Large",
            Error::Frame(_) => "400 Bad Request",
            // Idle (nginx closes a silent keep-alive connection without a word), or the
            // connection is gone.
            _ => return,
        };
        self.respond(ctx, status, b"", Reply::CLOSE);
    }
}

struct Server;

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Connection::default()))
    }
}

/// Opens the server on `addr`; returns the listener's token.
pub fn start(reactor: &mut Reactor, addr: &str, config: &Config) -> std::io::Result<Token> {
    start_with(reactor, addr, options(config))
}

/// Opens the server on `addr` with `options` (those of [`options`], TLS added, say).
pub fn start_with(reactor: &mut Reactor, addr: &str, options: Options) -> std::io::Result<Token> {
    reactor.listen_with(addr, options, Server)
}

/// The listener's options: the framing and the bounds of `config`.
pub fn options(config: &Config) -> Options {
    Options::new()
        .framing(Framing::custom(Requests::new(config)))
        // The decoder bounds head and body; this bounds what neither covers, a chunked
        // body's trailers (given as much room as a head).
        .max_size(
            config
                .max_head
                .saturating_mul(2)
                .saturating_add(config.max_body),
        )
        .record_timeout(config.request_timeout)
        .idle_timeout(config.keepalive_timeout)
}

#[path = "cli/mod.rs"]
mod cli;

fn usage() -> String {
    let config = Config::default();
    let secs = |t: Option<Duration>| t.map_or(0, |t| t.as_secs());
    format!(
        "usage: http_hello [ADDR] [OPTIONS]

  ADDR                       address to listen on (default {DEFAULT_ADDR})
  --request-timeout SECS     a request must be whole this long after its first byte,
                             else 408; 0 for no bound (default {})
  --keepalive-timeout SECS   close a connection silent this long, 0 for never (default {})
  --max-head BYTES           longest request head, else 431 (default {})
  --max-body BYTES           longest request body, else 413 (default {})
  --busy-poll-us N           busy-poll this long after a busy turn, 0 for not at all
                             (default {})
{}",
        secs(config.request_timeout),
        secs(config.keepalive_timeout),
        config.max_head,
        config.max_body,
        DEFAULT_BUSY_POLL.as_micros(),
        cli::cores_usage(29) + &cli::tls_usage(29),
    )
}

/// A number of bytes for `flag`.
fn bytes(flag: &str, value: Option<String>) -> Result<usize, String> {
    value
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag} takes a number of bytes"))
}

#[allow(dead_code)] // tests include this file for `start`
fn main() -> std::io::Result<()> {
    let (mut config, mut busy_poll) = (Config::default(), DEFAULT_BUSY_POLL);
    let mut cores = cli::Cores::default();
    let mut tls = cli::TlsFiles::default();
    let addr = cli::parse("http_hello", &usage(), DEFAULT_ADDR, |flag, value| {
        if cores.option(flag, value)? || tls.option(flag, value)? {
            return Ok(true);
        }
        match flag {
            "--request-timeout" => config.request_timeout = cli::seconds(flag, value.next())?,
            "--keepalive-timeout" => config.keepalive_timeout = cli::seconds(flag, value.next())?,
            "--max-head" => config.max_head = bytes(flag, value.next())?,
            "--max-body" => config.max_body = bytes(flag, value.next())?,
            "--busy-poll-us" => busy_poll = cli::micros(flag, value.next())?,
            _ => return Ok(false),
        }
        Ok(true)
    });
    if cores.threads > 1 {
        let group = ReactorGroup::builder(cores.threads)
            .pin(cores.pin)
            .listen(
                &addr,
                Spread::Kernel,
                move || tls.apply(options(&config)),
                |_| Some(Box::new(Connection::default())),
            )
            .start(move |reactor, _| {
                reactor.set_busy_poll(busy_poll);
                Ok(())
            })?;
        println!("listening on {}", group.local_addr(0));
        std::io::stdout().flush()?;
        return cli::run_group(group);
    }
    let mut reactor = Reactor::new()?;
    reactor.set_busy_poll(busy_poll);
    let listener = start_with(&mut reactor, &addr, tls.apply(options(&config)))?;
    let bound = reactor
        .handle(listener)
        .expect("just opened")
        .local_addr()?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    cli::drain_on_signals(&mut reactor)?;
    reactor.run()
}
