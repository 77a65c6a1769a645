//! HTTP/1.1 "hello world" with keep-alive and pipelining: `GET /` gets 200 and a fixed body,
//! anything else 404, a malformed request 400; `Connection: close` (and HTTP/1.0 without
//! keep-alive) is honoured.
//!
//!     cargo run --release --example http_hello [ADDR] [--busy-poll-us N]
//!
//! ADDR defaults to 127.0.0.1:8080. The reactor busy-polls for 200 µs after each busy turn
//! (`Reactor::set_busy_poll`), as a server on a dedicated core can afford; `--busy-poll-us
//! 0` turns that off.
//!
//! Try it with `curl -v http://127.0.0.1:8080/` or `wrk -c 50 http://127.0.0.1:8080/`.
//! Framing (`Framing::http()`) hands the handler one whole request at a time, however the
//! bytes arrived; replies to pipelined requests leave in one write.

use std::io::Write;
use std::time::Duration;

use eventmux::framing::Framing;
use eventmux::{Context, Error, Handler, Incoming, Options, Reactor, Token};

const BODY: &[u8] = b"Hello, world!\n";
const NOT_FOUND: &[u8] = b"Not Found\n";
/// Busy-poll window unless `--busy-poll-us` says otherwise.
const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(200);
/// Largest request head plus body accepted.
const MAX_REQUEST: usize = 64 * 1024;

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
    /// A response after which the connection closes (a bad request).
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

    fn on_error(&mut self, ctx: &mut Context<'_>, error: &Error) {
        // A request framing could not make sense of (or too large): still open for this.
        if let Error::Frame(_) | Error::InputLimit { .. } = error {
            self.respond(ctx, "400 Bad Request", b"", Reply::CLOSE);
        }
    }
}

struct Server;

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        Some(Box::new(Connection::default()))
    }
}

/// Opens the server on `addr`; returns the listener's token.
pub fn start(reactor: &mut Reactor, addr: &str) -> std::io::Result<Token> {
    let options = Options::new()
        .framing(Framing::http())
        .max_size(MAX_REQUEST);
    reactor.listen_with(addr, options, Server)
}

#[allow(dead_code)] // tests include this file for `start`
fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut busy_poll = DEFAULT_BUSY_POLL;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--busy-poll-us" => match args.next().and_then(|n| n.parse().ok()) {
                Some(micros) => busy_poll = Duration::from_micros(micros),
                None => {
                    eprintln!("--busy-poll-us takes a number of microseconds");
                    std::process::exit(2);
                }
            },
            _ => addr = arg,
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
