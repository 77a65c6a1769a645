//! A logging stream handler (`Probe`) with builder hooks, a listener handler (`Acceptor`)
//! that lets the test build each connection's handler, and the helpers that read their
//! shared log.
#![allow(dead_code)] // each test file uses its own subset

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use eventmux::framing::FrameError;
use eventmux::{CloseReason, Context, Error, Handler, Incoming, Options, Reactor, TimerId};

use super::{listen_local, Log};

type Hook = Box<dyn FnMut(&mut Context<'_>)>;
type ReadHook = Box<dyn FnMut(&mut Context<'_>, &[u8])>;
type ErrorHook = Box<dyn FnMut(&mut Context<'_>, &Error)>;
type Accept = Box<dyn FnMut(&mut Context<'_>, &Incoming) -> Option<Box<dyn Handler>>>;

/// Whole records as a framed `Probe` got them, shared with the test body.
pub type Records = Rc<RefCell<Vec<Vec<u8>>>>;

/// A stream handler that records every callback as `name:event` in a shared log, keeps
/// what it read, optionally echoes it, and runs test-specific hooks.
///
/// By default each read is logged as `read` and its bytes are appended to one buffer, and
/// each `on_sent` is logged as `sent:<buflen>`. A [framed](Probe::framed) probe logs each
/// record and the `on_read_last` data instead (escaped, or `#len` when long), keeps them
/// one by one, and logs no `on_sent`.
pub struct Probe {
    pub name: &'static str,
    log: Log,
    framed: bool,
    received: Rc<RefCell<Vec<u8>>>,
    records: Records,
    last: Records,
    echo: bool,
    connect: Option<Hook>,
    read: Option<ReadHook>,
    timer: Option<Hook>,
    error: Option<ErrorHook>,
}

impl Probe {
    pub fn new(name: &'static str, log: &Log) -> Probe {
        Probe {
            name,
            log: log.clone(),
            framed: false,
            received: Rc::default(),
            records: Rc::default(),
            last: Rc::default(),
            echo: false,
            connect: None,
            read: None,
            timer: None,
            error: None,
        }
    }

    /// Logs and keeps whole records (`read:<record>`, `read_last:<data>`), not `on_sent`.
    pub fn framed(mut self) -> Probe {
        self.framed = true;
        self
    }

    pub fn echo(mut self) -> Probe {
        self.echo = true;
        self
    }

    pub fn on_connect(mut self, hook: impl FnMut(&mut Context<'_>) + 'static) -> Probe {
        self.connect = Some(Box::new(hook));
        self
    }

    pub fn on_read(mut self, hook: impl FnMut(&mut Context<'_>, &[u8]) + 'static) -> Probe {
        self.read = Some(Box::new(hook));
        self
    }

    pub fn on_timer(mut self, hook: impl FnMut(&mut Context<'_>) + 'static) -> Probe {
        self.timer = Some(Box::new(hook));
        self
    }

    /// Runs `hook` after logging an error.
    pub fn on_error(mut self, hook: impl FnMut(&mut Context<'_>, &Error) + 'static) -> Probe {
        self.error = Some(Box::new(hook));
        self
    }

    /// Keeps what this handler reads in `received`, shared with the test body.
    pub fn keeping(mut self, received: &Rc<RefCell<Vec<u8>>>) -> Probe {
        self.received = received.clone();
        self
    }

    /// For a framed probe: keeps the records (and the `on_read_last` data) in `records`
    /// (and `last`), shared with the test body.
    pub fn keeping_records(mut self, records: &Records, last: &Records) -> Probe {
        self.records = records.clone();
        self.last = last.clone();
        self
    }

    pub fn boxed(self) -> Option<Box<dyn Handler>> {
        Some(Box::new(self))
    }

    fn note(&self, event: impl std::fmt::Display) {
        self.log.push(format!("{}:{event}", self.name));
    }
}

impl Handler for Probe {
    fn on_connect(&mut self, ctx: &mut Context<'_>) {
        self.note("connect");
        if let Some(hook) = &mut self.connect {
            hook(ctx);
        }
    }

    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        if self.framed {
            self.note(format_args!("read:{}", show(data)));
            self.records.borrow_mut().push(data.to_vec());
        } else {
            self.note("read");
            self.received.borrow_mut().extend_from_slice(data);
        }
        if self.echo {
            if let Err(e) = ctx.send(data) {
                self.note(format_args!("echo-failed:{}", describe(&e)));
            }
        }
        if let Some(hook) = &mut self.read {
            hook(ctx, data);
        }
    }

    fn on_read_last(&mut self, _ctx: &mut Context<'_>, data: &[u8]) {
        if self.framed {
            self.note(format_args!("read_last:{}", show(data)));
            self.last.borrow_mut().push(data.to_vec());
        }
    }

    fn on_sent(&mut self, ctx: &mut Context<'_>) {
        if !self.framed {
            self.note(format_args!("sent:{}", ctx.buflen()));
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: TimerId) {
        self.note("timer");
        if let Some(hook) = &mut self.timer {
            hook(ctx);
        }
    }

    fn on_error(&mut self, ctx: &mut Context<'_>, error: &Error) {
        self.note(format_args!("error:{}", describe(error)));
        if let Some(hook) = &mut self.error {
            hook(ctx, error);
        }
    }

    fn on_closing(&mut self, _ctx: &mut Context<'_>, missing: usize) {
        self.note(format_args!("closing:{missing}"));
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, reason: CloseReason) {
        self.note(format_args!("close:{reason:?}"));
    }
}

/// A listener handler: records accepts (and errors, closes) and lets the test build each
/// connection's handler.
pub struct Acceptor {
    name: &'static str,
    log: Log,
    make: Accept,
}

impl Acceptor {
    pub fn handler(
        name: &'static str,
        log: &Log,
        make: impl FnMut(&mut Context<'_>, &Incoming) -> Option<Box<dyn Handler>> + 'static,
    ) -> Box<dyn Handler> {
        Box::new(Acceptor {
            name,
            log: log.clone(),
            make: Box::new(make),
        })
    }
}

impl Handler for Acceptor {
    fn on_accept(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: &Incoming,
    ) -> Option<Box<dyn Handler>> {
        self.log.push(format!("{}:accept", self.name));
        (self.make)(ctx, incoming)
    }

    fn on_error(&mut self, _ctx: &mut Context<'_>, error: &Error) {
        self.log
            .push(format!("{}:error:{}", self.name, describe(error)));
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, reason: CloseReason) {
        self.log.push(format!("{}:close:{reason:?}", self.name));
    }
}

/// A listener on loopback, logging as `lst`, whose every connection gets a handler from
/// `make`.
pub fn serve(
    reactor: &mut Reactor,
    options: Options,
    log: &Log,
    make: impl FnMut(&mut Context<'_>, &Incoming) -> Option<Box<dyn Handler>> + 'static,
) -> SocketAddr {
    listen_local(reactor, options, Acceptor::handler("lst", log, make)).1
}

/// A loopback listener with `options`, logging as `lst`; its connections, named
/// `names[0]`, `names[1]`, ... in accept order, get the handler `make` builds from a fresh
/// framed `Probe`.
pub fn serve_framed(
    reactor: &mut Reactor,
    options: Options,
    log: &Log,
    names: &'static [&'static str],
    mut make: impl FnMut(Probe) -> Probe + 'static,
) -> SocketAddr {
    let (l, mut accepted) = (log.clone(), 0);
    serve(reactor, options, log, move |_, _| {
        let name = names[accepted];
        accepted += 1;
        make(Probe::new(name, &l).framed()).boxed()
    })
}

/// Bytes as a short, comparable string: escaped if short, `#len` if long.
pub fn show(data: &[u8]) -> String {
    if data.len() <= 40 {
        data.escape_ascii().to_string()
    } else {
        format!("#{}", data.len())
    }
}

/// An error as a short, comparable string.
pub fn describe(error: &Error) -> String {
    match error {
        Error::Io(e) => format!("io:{:?}", e.kind()),
        Error::OutputLimit {
            limit,
            queued,
            attempted,
        } => format!("output_limit:{limit}/{queued}/{attempted}"),
        Error::InputLimit { limit, .. } => format!("input_limit:{limit}"),
        Error::Frame(FrameError::BadHttp(_)) => "frame:bad_http".to_string(),
        Error::Frame(e) => format!("frame:{e:?}"),
        other => format!("{other:?}"),
    }
}

/// The log entries of handler `name`, without its plain `read` and its `sent` entries (how
/// many of those there are depends on how the kernel splits the stream). A framed probe's
/// `read:<record>` entries stay.
pub fn events(log: &Log, name: &str) -> Vec<String> {
    let prefix = format!("{name}:");
    log.entries()
        .into_iter()
        .filter(|e| {
            e.strip_prefix(&prefix)
                .is_some_and(|event| event != "read" && !event.starts_with("sent:"))
        })
        .collect()
}
