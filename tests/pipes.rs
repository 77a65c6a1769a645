//! Pipes and any other descriptor as a handle: a child process's stdin, stdout and stderr,
//! socketpair ends, raw pipe ends, a terminal. What a descriptor is gets detected (and can
//! be forced with `Options::kind`); read-only ends reach end of file as a normal close,
//! write-only ends have a send queue and `on_sent`, and a write to a pipe nobody reads any
//! more is an error for that handle, never a SIGPIPE for the process. Ready handles are
//! served read by read, round-robin.
//!
//! Peers are child processes (`sh`, `seq`, `cat`, `wc`), `std` sockets, or the other end of a
//! pipe, all driven from the test thread.

mod util;

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram, UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use eventmux::{CloseReason, Context, Error, Handler, Kind, Options, Reactor, Token, Transport};
use util::{assert_same_bytes, pattern, run_until, DEADLINE};

// ----- helpers ---------------------------------------------------------------------------

/// What one handle's handler saw, shared with the test body.
#[derive(Default)]
struct Seen {
    bytes: Vec<u8>,
    reads: usize,
    /// Calls of `on_datagram` (a handler that tells them from plain reads).
    datagrams: usize,
    /// `(kind, transport)` as the first read's callback saw them.
    shape: Option<(Option<Kind>, Option<Transport>)>,
    /// `buflen` at each `on_sent`.
    sent: Vec<usize>,
    errors: Vec<io::ErrorKind>,
    closing: Option<usize>,
    closed: Option<CloseReason>,
}

type Shared = Rc<RefCell<Seen>>;

/// Records every callback of one handle into a [`Seen`]; optionally echoes what it reads
/// and appends its id to an order of reads shared by several handles.
struct Recorder {
    seen: Shared,
    echo: bool,
    order: Option<(usize, Rc<RefCell<Vec<usize>>>)>,
    count_datagrams: bool,
}

impl Recorder {
    fn new(seen: &Shared) -> Recorder {
        Recorder {
            seen: seen.clone(),
            echo: false,
            order: None,
            count_datagrams: false,
        }
    }

    fn echo(mut self) -> Recorder {
        self.echo = true;
        self
    }

    /// Appends `id` to `order` on every read.
    fn ordered(mut self, id: usize, order: &Rc<RefCell<Vec<usize>>>) -> Recorder {
        self.order = Some((id, order.clone()));
        self
    }

    /// Counts `on_datagram` calls separately (and keeps their bytes like reads).
    fn counting_datagrams(mut self) -> Recorder {
        self.count_datagrams = true;
        self
    }

    fn boxed(self) -> Box<dyn Handler> {
        Box::new(self)
    }
}

impl Handler for Recorder {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let mut seen = self.seen.borrow_mut();
        seen.bytes.extend_from_slice(data);
        seen.reads += 1;
        seen.shape.get_or_insert((ctx.kind(), ctx.transport()));
        drop(seen);
        if let Some((id, order)) = &self.order {
            order.borrow_mut().push(*id);
        }
        if self.echo {
            ctx.send(data).unwrap();
        }
    }

    fn on_datagram(&mut self, ctx: &mut Context<'_>, data: &[u8], _from: &eventmux::Address) {
        if self.count_datagrams {
            self.seen.borrow_mut().datagrams += 1;
        }
        self.on_read(ctx, data);
    }

    fn on_sent(&mut self, ctx: &mut Context<'_>) {
        self.seen.borrow_mut().sent.push(ctx.buflen());
    }

    fn on_error(&mut self, _ctx: &mut Context<'_>, error: &Error) {
        let kind = match error {
            Error::Io(e) => e.kind(),
            _ => io::ErrorKind::Other,
        };
        self.seen.borrow_mut().errors.push(kind);
    }

    fn on_closing(&mut self, _ctx: &mut Context<'_>, missing: usize) {
        self.seen.borrow_mut().closing = Some(missing);
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, reason: CloseReason) {
        self.seen.borrow_mut().closed = Some(reason);
    }
}

/// A handler that does nothing (for handles that are only looked at).
struct Idle;

impl Handler for Idle {}

/// A pipe: (read end, write end), close-on-exec.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: pipe2 succeeded: both are fresh descriptors that nothing else owns.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Adds `fd` with default options and a plain `Recorder` into `seen`.
fn record(reactor: &mut Reactor, fd: impl Into<OwnedFd>, seen: &Shared) -> Token {
    reactor
        .add(fd, Options::new(), Recorder::new(seen).boxed())
        .unwrap()
}

fn shape(reactor: &mut Reactor, token: Token) -> (Kind, Transport) {
    let handle = reactor.handle(token).expect("the handle is open");
    (
        handle.kind().expect("an open handle has a kind"),
        handle.transport().expect("and a transport"),
    )
}

fn closed(seen: &Shared) -> bool {
    seen.borrow().closed.is_some()
}

// ----- child processes -------------------------------------------------------------------

#[test]
fn child_stdout_and_stderr_arrive_in_full_with_exact_data() {
    const ERR_TEXT: &str = "first line on stderr\nsecond line on stderr\n";
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("seq 1 40000 && printf '{ERR_TEXT}' >&2"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let mut reactor = Reactor::new().unwrap();
    let (out, err) = (Shared::default(), Shared::default());
    let out_token = record(&mut reactor, child.stdout.take().unwrap(), &out);
    let err_token = record(&mut reactor, child.stderr.take().unwrap(), &err);
    assert_eq!(
        shape(&mut reactor, out_token),
        (Kind::Stream, Transport::Pipe)
    );
    assert_eq!(
        shape(&mut reactor, err_token),
        (Kind::Stream, Transport::Pipe)
    );

    run_until(&mut reactor, "both pipes to close", |_| {
        closed(&out) && closed(&err)
    });

    let want: String = (1..=40000).map(|i| format!("{i}\n")).collect();
    assert!(want.len() > 200 * 1024);
    assert_same_bytes(&out.borrow().bytes, want.as_bytes(), "the child's stdout");
    assert_eq!(String::from_utf8_lossy(&err.borrow().bytes), ERR_TEXT);
    for seen in [&out, &err] {
        let seen = seen.borrow();
        assert_eq!(seen.closed, Some(CloseReason::PeerClosed));
        assert!(seen.errors.is_empty(), "{:?}", seen.errors);
        assert_eq!(
            seen.shape,
            Some((Some(Kind::Stream), Some(Transport::Pipe)))
        );
    }
    assert!(reactor.is_empty());
    assert!(child.wait().unwrap().success());
}

#[test]
fn child_stdin_is_write_only_with_a_send_queue_and_on_sent() {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cat");
    let mut reactor = Reactor::new().unwrap();
    let (input, output) = (Shared::default(), Shared::default());
    let stdin = record(&mut reactor, child.stdin.take().unwrap(), &input);
    let stdout = record(&mut reactor, child.stdout.take().unwrap(), &output);
    assert_eq!(shape(&mut reactor, stdin), (Kind::Stream, Transport::Pipe));
    assert!(
        matches!(
            reactor.handle(stdout).unwrap().send(b"x"),
            Err(Error::WrongKind { .. })
        ),
        "a read-only end takes no sends"
    );

    let payload = pattern(1024 * 1024);
    reactor.handle(stdin).unwrap().send(&payload).unwrap();
    assert_eq!(reactor.handle(stdin).unwrap().buflen(), payload.len());
    run_until(&mut reactor, "on_sent for stdin", |_| {
        !input.borrow().sent.is_empty()
    });
    assert_eq!(
        input.borrow().sent,
        [0],
        "one on_sent, with the queue empty"
    );
    assert_eq!(reactor.handle(stdin).unwrap().buflen(), 0);

    // Graceful close of a pipe: nothing queued, so it closes at once; cat sees its EOF.
    reactor.handle(stdin).unwrap().close();
    run_until(&mut reactor, "both pipes to close", |_| {
        closed(&input) && closed(&output)
    });

    assert_same_bytes(&output.borrow().bytes, &payload, "what cat wrote back");
    let input = input.borrow();
    assert_eq!(
        (input.closing, input.closed),
        (Some(0), Some(CloseReason::Closed))
    );
    assert_eq!(input.reads, 0, "a write-only end is never read");
    assert!(input.errors.is_empty(), "{:?}", input.errors);
    assert_eq!(output.borrow().closed, Some(CloseReason::PeerClosed));
    assert!(child.wait().unwrap().success());
}

#[test]
fn graceful_close_of_a_pipe_flushes_its_queue_first() {
    let mut child = Command::new("wc")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn wc");
    let mut reactor = Reactor::new().unwrap();
    let (input, output) = (Shared::default(), Shared::default());
    let stdin = record(&mut reactor, child.stdin.take().unwrap(), &input);
    record(&mut reactor, child.stdout.take().unwrap(), &output);

    // Far more than a pipe holds (64 KiB), queued and closed in the same breath.
    let payload = pattern(3 * 1024 * 1024 + 7);
    reactor.handle(stdin).unwrap().send(&payload).unwrap();
    reactor.handle(stdin).unwrap().close();
    run_until(&mut reactor, "both pipes to close", |_| {
        closed(&input) && closed(&output)
    });

    let count = String::from_utf8_lossy(&output.borrow().bytes)
        .trim()
        .to_string();
    assert_eq!(count, payload.len().to_string(), "wc -c counted every byte");
    let input = input.borrow();
    assert_eq!(
        (input.closing, input.closed),
        (Some(0), Some(CloseReason::Closed))
    );
    assert_eq!(
        input.sent,
        [0],
        "the close's drain is reported once with on_sent (EventMux's sent), queue empty"
    );
    assert!(child.wait().unwrap().success());
}

// ----- sockets as plain descriptors ------------------------------------------------------

#[test]
fn socketpair_ends_are_streams() {
    let mut reactor = Reactor::new().unwrap();
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    theirs.set_nonblocking(true).unwrap();
    let seen = Shared::default();
    let token = reactor
        .add(ours, Options::new(), Recorder::new(&seen).echo().boxed())
        .unwrap();
    assert_eq!(shape(&mut reactor, token), (Kind::Stream, Transport::Unix));

    theirs.write_all(b"over the pair").unwrap();
    let mut echoed = Vec::new();
    let mut buf = [0u8; 64];
    run_until(&mut reactor, "the echo", |_| {
        match theirs.read(&mut buf) {
            Ok(n) => echoed.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        echoed.len() >= 13
    });
    assert_eq!(echoed, b"over the pair");
    assert_eq!(
        seen.borrow().shape,
        Some((Some(Kind::Stream), Some(Transport::Unix))),
        "as the callback sees it"
    );

    drop(theirs);
    run_until(&mut reactor, "the close", |_| closed(&seen));
    assert_eq!(seen.borrow().closed, Some(CloseReason::PeerClosed));
}

#[test]
fn type_detection_for_every_kind() {
    let mut reactor = Reactor::new().unwrap();
    let mut add = |fd: OwnedFd| -> io::Result<(Kind, Transport)> {
        let token = reactor.add(fd, Options::new(), Idle)?;
        Ok(shape(&mut reactor, token))
    };

    let tcp_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_client = TcpStream::connect(tcp_listener.local_addr().unwrap()).unwrap();
    let (tcp_accepted, _) = tcp_listener.accept().unwrap();
    let name = format!("eventmux-{}-types", std::process::id());
    let unix_listener =
        UnixListener::bind_addr(&UnixAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let (unix_stream, _other_end) = UnixStream::pair().unwrap();
    let (read_end, write_end) = pipe();

    assert_eq!(
        add(tcp_listener.into()).unwrap(),
        (Kind::Listener, Transport::Tcp)
    );
    assert_eq!(
        add(tcp_accepted.into()).unwrap(),
        (Kind::Stream, Transport::Tcp)
    );
    assert_eq!(
        add(tcp_client.into()).unwrap(),
        (Kind::Stream, Transport::Tcp)
    );
    assert_eq!(
        add(UdpSocket::bind("127.0.0.1:0").unwrap().into()).unwrap(),
        (Kind::Datagram, Transport::Udp)
    );
    assert_eq!(
        add(unix_listener.into()).unwrap(),
        (Kind::Listener, Transport::Unix)
    );
    assert_eq!(
        add(unix_stream.into()).unwrap(),
        (Kind::Stream, Transport::Unix)
    );
    assert_eq!(
        add(UnixDatagram::unbound().unwrap().into()).unwrap(),
        (Kind::Datagram, Transport::Unix)
    );
    assert_eq!(add(read_end).unwrap(), (Kind::Stream, Transport::Pipe));
    assert_eq!(add(write_end).unwrap(), (Kind::Stream, Transport::Pipe));

    let manifest = env!("CARGO_MANIFEST_DIR");
    for path in [format!("{manifest}/Cargo.toml"), manifest.to_string()] {
        let error = add(File::open(&path).unwrap().into()).expect_err(&path);
        assert_eq!(error.kind(), io::ErrorKind::Unsupported, "{path}: {error}");
    }
    assert_eq!(reactor.len(), 9, "a refused descriptor leaves no handle");
}

/// `Options::kind` wins over detection: a datagram socket forced to be a stream is read
/// and written like one (`on_read` without sender, `buflen` in bytes), while the same
/// socket type detected is a datagram handle (`on_datagram`, `buflen` in datagrams).
#[test]
fn forced_kind_overrides_detection() {
    let mut reactor = Reactor::new().unwrap();
    let (forced_end, forced_peer) = UnixDatagram::pair().unwrap();
    let (detected_end, detected_peer) = UnixDatagram::pair().unwrap();
    forced_peer.set_nonblocking(true).unwrap();
    let (forced, detected) = (Shared::default(), Shared::default());
    let forced_token = reactor
        .add(
            forced_end,
            Options::new().kind(Kind::Stream),
            Recorder::new(&forced).counting_datagrams().boxed(),
        )
        .unwrap();
    let detected_token = reactor
        .add(
            detected_end,
            Options::new(),
            Recorder::new(&detected).counting_datagrams().boxed(),
        )
        .unwrap();
    assert_eq!(
        shape(&mut reactor, forced_token),
        (Kind::Stream, Transport::Unix)
    );
    assert_eq!(
        shape(&mut reactor, detected_token),
        (Kind::Datagram, Transport::Unix)
    );

    forced_peer.send(b"ab").unwrap();
    detected_peer.send(b"ab").unwrap();
    run_until(&mut reactor, "both reads", |_| {
        forced.borrow().reads == 1 && detected.borrow().reads == 1
    });
    assert_eq!(
        (forced.borrow().datagrams, detected.borrow().datagrams),
        (0, 1)
    );
    assert_eq!(forced.borrow().bytes, b"ab");

    for token in [forced_token, detected_token] {
        let mut handle = reactor.handle(token).unwrap();
        handle.send(b"xyz").unwrap();
        handle.send(b"xyz").unwrap();
    }
    assert_eq!(
        reactor.handle(forced_token).unwrap().buflen(),
        6,
        "bytes, for a stream"
    );
    assert_eq!(
        reactor.handle(detected_token).unwrap().buflen(),
        2,
        "datagrams"
    );

    let mut received = Vec::new();
    let mut buf = [0u8; 64];
    run_until(&mut reactor, "the forced handle's bytes", |_| {
        while let Ok(n) = forced_peer.recv(&mut buf) {
            received.extend_from_slice(&buf[..n]);
        }
        received.len() >= 6
    });
    assert_eq!(received, b"xyzxyz");
}

// ----- serving several pipes -------------------------------------------------------------

#[test]
fn three_pipes_with_a_tiny_read_size_are_served_fairly() {
    const SIZE: usize = 4096;
    const READ_SIZE: usize = 64;
    let mut reactor = Reactor::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let mut pipes = Vec::new();
    for id in 0..3 {
        let (read_end, write_end) = pipe();
        // Each pipe full before the reactor sees any of them; writers gone, so each ends.
        let data = pattern(SIZE + id)[id..].to_vec();
        File::from(write_end).write_all(&data).unwrap();
        let seen = Shared::default();
        let options = Options::new().read_size(READ_SIZE);
        let handler = Recorder::new(&seen).ordered(id, &order).boxed();
        reactor.add(read_end, options, handler).unwrap();
        pipes.push((seen, data));
    }
    run_until(&mut reactor, "all three pipes to close", |_| {
        pipes.iter().all(|(seen, _)| closed(seen))
    });

    for (id, (seen, data)) in pipes.iter().enumerate() {
        let seen = seen.borrow();
        assert_same_bytes(&seen.bytes, data, &format!("pipe {id}"));
        assert_eq!(
            seen.reads,
            SIZE / READ_SIZE,
            "pipe {id}: one read per {READ_SIZE} bytes"
        );
        assert_eq!(seen.closed, Some(CloseReason::PeerClosed));
    }
    // Round-robin: one read per ready handle per round, so while all three have data every
    // three consecutive reads come from three different pipes.
    let order = order.borrow();
    let first: Vec<usize> = order[..30].to_vec();
    for window in first.windows(3) {
        let mut ids = window.to_vec();
        ids.sort_unstable();
        assert_eq!(ids, [0, 1, 2], "reads not served round-robin: {first:?}");
    }
}

// ----- writing to a pipe nobody reads ----------------------------------------------------

/// Adds the write end of a pipe whose read end is already closed, and sends to it.
fn send_to_a_pipe_without_reader(reactor: &mut Reactor, seen: &Shared) {
    let (read_end, write_end) = pipe();
    drop(read_end);
    let token = record(reactor, write_end, seen);
    reactor.handle(token).unwrap().send(b"lost").unwrap();
    run_until(reactor, "the close", |_| closed(seen));
}

#[test]
fn write_only_pipe_whose_reader_closed_reports_and_closes() {
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    send_to_a_pipe_without_reader(&mut reactor, &seen);

    let seen = seen.borrow();
    assert_eq!(seen.errors, [io::ErrorKind::BrokenPipe]);
    assert_eq!(
        seen.closing,
        Some(4),
        "the unwritten bytes are reported missing"
    );
    assert_eq!(seen.closed, Some(CloseReason::Error));
    assert!(reactor.is_empty());
}

#[test]
fn idle_write_only_pipe_closes_when_its_reader_goes() {
    let mut reactor = Reactor::new().unwrap();
    let (read_end, write_end) = pipe();
    let seen = Shared::default();
    record(&mut reactor, write_end, &seen);
    for _ in 0..3 {
        reactor.run_once(Some(Duration::ZERO)).unwrap();
    }
    assert!(!closed(&seen), "open while the reader is there");

    drop(read_end);
    run_until(&mut reactor, "the close", |_| closed(&seen));
    let seen = seen.borrow();
    assert_eq!(seen.closed, Some(CloseReason::PeerClosed));
    assert_eq!(seen.closing, Some(0));
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
}

const SIGPIPE_CHILD: &str = "EVENTMUX_TEST_SIGPIPE_CHILD";

/// A C host may leave SIGPIPE at its default action, which kills the process on a write to
/// a pipe without reader. The test runs itself in a child process with SIGPIPE reset (the
/// Rust runtime ignores it, which would hide the problem) and checks that the child lives.
#[test]
fn sigpipe_at_its_default_action_does_not_kill_a_pipe_writer() {
    const NAME: &str = "sigpipe_at_its_default_action_does_not_kill_a_pipe_writer";
    if std::env::var_os(SIGPIPE_CHILD).is_none() {
        let output = Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--test-threads=1", "--nocapture"])
            .env(SIGPIPE_CHILD, "1")
            .stdin(Stdio::null())
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child: {:?} (signal {:?})\n{stdout}\n{}",
            output.status,
            std::os::unix::process::ExitStatusExt::signal(&output.status),
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    // SAFETY: the child runs only this test, on one thread; nothing else handles signals.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    send_to_a_pipe_without_reader(&mut reactor, &seen);
    assert_eq!(seen.borrow().errors, [io::ErrorKind::BrokenPipe]);
    assert_eq!(seen.borrow().closed, Some(CloseReason::Error));
}

// ----- terminals -------------------------------------------------------------------------

/// A pseudo-terminal: (master, slave), the slave in its default canonical mode.
fn pty() -> io::Result<(File, OwnedFd)> {
    // SAFETY: posix_openpt takes flags only; a non-negative result is a fresh descriptor.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if master < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `master` was just opened and nothing else owns it.
    let master = unsafe { File::from_raw_fd(master) };
    let mut name = [0 as libc::c_char; 128];
    let fd = master.as_raw_fd();
    // SAFETY: `fd` is an open pty master; `name` is writable for its whole length.
    let ok = unsafe {
        libc::grantpt(fd) == 0
            && libc::unlockpt(fd) == 0
            && libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) == 0
    };
    if !ok {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated path.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path.to_str().expect("a UTF-8 pty path"))?;
    Ok((master, slave.into()))
}

/// A terminal in canonical mode hands out one line per read(2), so a read shorter than
/// asked for does not mean nothing is left: every line must still arrive.
#[test]
fn terminal_lines_all_arrive() {
    let (mut master, slave) = match pty() {
        Ok(pty) => pty,
        Err(e) => {
            eprintln!("skipped: no pseudo-terminal here ({e})");
            return;
        }
    };
    let mut reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    let token = record(&mut reactor, slave, &seen);
    assert_eq!(shape(&mut reactor, token), (Kind::Stream, Transport::Pipe));

    master.write_all(b"one\ntwo\nthree\n").unwrap();
    // Wait up to util's deadline (a loaded machine may be slow); a stall still fails below.
    let start = Instant::now();
    while seen.borrow().bytes.len() < 14 && start.elapsed() < DEADLINE {
        reactor.run_once(Some(Duration::from_millis(20))).unwrap();
    }
    assert_eq!(
        String::from_utf8_lossy(&seen.borrow().bytes),
        "one\ntwo\nthree\n",
        "after {} read(s)",
        seen.borrow().reads
    );
}
