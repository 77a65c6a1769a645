//! Child processes (`Reactor::spawn`): output before `on_exit`, the right status, stdin,
//! signalling, closing and killing a child, shutdown, and 1,000 children that leave no
//! zombie and no descriptor behind. The tests of this file run one at a time (`serial`), so
//! that "no child left" and the descriptor count see this test's children only.

mod util;

use std::cell::RefCell;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use eventmux::{ChildStdio, CloseReason, Context, Handler, Kind, Options, Reactor, TimerId};
use util::{run_until, Log};

/// One test at a time: children and descriptors are process-wide.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a child's handler saw, in order.
#[derive(Default)]
struct Seen {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<ExitStatus>,
    /// Bytes of stdout received when `on_exit` came.
    stdout_at_exit: Option<usize>,
}

/// Records a child's output and exit; logs each callback as `stdio:event`.
struct Recorder {
    seen: Rc<RefCell<Seen>>,
    log: Log,
}

impl Recorder {
    fn new(log: &Log) -> (Recorder, Rc<RefCell<Seen>>) {
        let seen = Rc::new(RefCell::new(Seen::default()));
        let recorder = Recorder {
            seen: seen.clone(),
            log: log.clone(),
        };
        (recorder, seen)
    }

    fn name(ctx: &Context<'_>) -> &'static str {
        match ctx.stdio() {
            Some(ChildStdio::Stdin) => "stdin",
            Some(ChildStdio::Stdout) => "stdout",
            Some(ChildStdio::Stderr) => "stderr",
            None => "process",
        }
    }
}

impl Handler for Recorder {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let mut seen = self.seen.borrow_mut();
        match ctx.stdio() {
            Some(ChildStdio::Stdout) => seen.stdout.extend_from_slice(data),
            Some(ChildStdio::Stderr) => seen.stderr.extend_from_slice(data),
            other => panic!("on_read for {other:?}"),
        }
    }

    fn on_exit(&mut self, ctx: &mut Context<'_>, status: ExitStatus) {
        assert_eq!(ctx.kind(), Some(Kind::Process));
        let mut seen = self.seen.borrow_mut();
        seen.stdout_at_exit = Some(seen.stdout.len());
        seen.status = Some(status);
        self.log.push("process:exit");
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, reason: CloseReason) {
        self.log
            .push(format!("{}:close:{reason:?}", Recorder::name(ctx)));
    }
}

/// Whether this process has any child left, zombie or running (`waitid` without reaping).
fn has_children() -> bool {
    // SAFETY: waitid with P_ALL writes only into `info`; WNOWAIT leaves any child as it is.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // ECHILD: no child at all. 0: children exist (a zombie fills `info`, a running one not).
    !(rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

#[test]
fn all_output_comes_before_on_exit_with_the_right_status() {
    let _serial = serial();
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (recorder, seen) = Recorder::new(&log);
    // 1 MiB on stdout (sixteen pipe buffers, so most of it is read while the child runs and
    // the last buffer after it has exited), a line on stderr, then status 7.
    let mut command = sh("head -c 1048576 /dev/zero; echo oops >&2; exit 7");
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = reactor.spawn(&mut command, recorder).unwrap();
    assert_eq!(child.stdin(), None, "stdin was not piped");
    assert_eq!(
        child.stdio_of(child.stdout().unwrap()),
        Some(ChildStdio::Stdout)
    );
    reactor.run().unwrap();

    let seen = seen.borrow();
    assert_eq!(seen.stdout.len(), 1 << 20);
    assert!(seen.stdout.iter().all(|&b| b == 0));
    assert_eq!(seen.stderr, b"oops\n");
    assert_eq!(seen.status.unwrap().code(), Some(7));
    assert_eq!(
        seen.stdout_at_exit,
        Some(1 << 20),
        "all of stdout before on_exit"
    );
    let entries = log.entries();
    let exit = entries.iter().position(|e| e == "process:exit").unwrap();
    for pipe in ["stdout", "stderr"] {
        let closed = entries
            .iter()
            .position(|e| e.starts_with(&format!("{pipe}:close:")))
            .unwrap();
        assert!(closed < exit, "{pipe} closed before the exit: {entries:?}");
    }
    assert_eq!(entries.last().unwrap(), "process:close:Exited");
    assert!(!has_children());
}

/// Pauses stdout at once and resumes it well after the child has exited: the exit waits
/// for the output still in the pipe.
struct LateReader {
    inner: Recorder,
}

impl Handler for LateReader {
    fn on_connect(&mut self, _ctx: &mut Context<'_>) {}

    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.inner.on_read(ctx, data);
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: TimerId) {
        let stdout = ctx.child().unwrap().stdout().unwrap();
        ctx.handle(stdout).unwrap().resume_reading().unwrap();
    }

    fn on_exit(&mut self, ctx: &mut Context<'_>, status: ExitStatus) {
        self.inner.on_exit(ctx, status);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, reason: CloseReason) {
        self.inner.on_close(ctx, reason);
    }
}

#[test]
fn a_child_that_exits_before_its_output_is_read_still_delivers_all_of_it_first() {
    let _serial = serial();
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (recorder, seen) = Recorder::new(&log);
    let mut command = sh("head -c 40000 /dev/zero; exit 3");
    command.stdout(Stdio::piped());
    let child = reactor
        .spawn(&mut command, LateReader { inner: recorder })
        .unwrap();
    let stdout = child.stdout().unwrap();
    reactor.handle(stdout).unwrap().pause_reading().unwrap();
    // The child has exited long before this timer (40,000 bytes fit in the pipe).
    reactor
        .handle(child.process())
        .unwrap()
        .set_timer(Duration::from_millis(300))
        .unwrap();
    reactor.run().unwrap();

    let seen = seen.borrow();
    assert_eq!(seen.stdout.len(), 40_000);
    assert_eq!(seen.stdout_at_exit, Some(40_000));
    assert_eq!(seen.status.unwrap().code(), Some(3));
}

/// Writes to the child's stdin and closes it; the child (`cat`) echoes it back.
struct Conversation {
    inner: Recorder,
    message: Vec<u8>,
}

impl Handler for Conversation {
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.inner.on_read(ctx, data);
    }

    fn on_exit(&mut self, ctx: &mut Context<'_>, status: ExitStatus) {
        self.inner.on_exit(ctx, status);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, reason: CloseReason) {
        self.inner.on_close(ctx, reason);
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: TimerId) {
        let stdin = ctx.child().unwrap().stdin().unwrap();
        let mut stdin = ctx.handle(stdin).unwrap();
        stdin.send(&self.message).unwrap();
        stdin.close();
    }
}

#[test]
fn what_is_sent_to_stdin_reaches_the_child_and_closing_stdin_ends_it() {
    let _serial = serial();
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (recorder, seen) = Recorder::new(&log);
    let message = util::pattern(300_000);
    let mut cat = Command::new("cat");
    cat.stdin(Stdio::piped()).stdout(Stdio::piped());
    let child = reactor
        .spawn(
            &mut cat,
            Conversation {
                inner: recorder,
                message: message.clone(),
            },
        )
        .unwrap();
    reactor
        .handle(child.process())
        .unwrap()
        .set_timer(Duration::from_millis(1))
        .unwrap();
    reactor.run().unwrap();

    let seen = seen.borrow();
    util::assert_same_bytes(&seen.stdout, &message, "cat's output");
    assert_eq!(seen.status.unwrap().code(), Some(0));
    assert!(log.contains("stdin:close:Closed"), "{:?}", log.entries());
}

#[test]
fn signal_child_reaches_the_child_and_on_exit_names_the_signal() {
    let _serial = serial();
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (recorder, seen) = Recorder::new(&log);
    // The test thread may have signals blocked (other tests use signalfd); the child
    // starts with none blocked all the same.
    let child = reactor
        .spawn(Command::new("sleep").arg("30"), recorder)
        .unwrap();
    reactor
        .handle(child.process())
        .unwrap()
        .signal_child(libc::SIGTERM)
        .unwrap();
    reactor.run().unwrap();

    let status = seen.borrow().status.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(log.contains("process:close:Exited"));
    // Reaped: its pid may be another process's by now, so it is not signalled again.
    assert!(!has_children());
}

#[test]
fn closing_a_process_handle_asks_the_child_to_end_and_waits_for_its_exit() {
    let _serial = serial();
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (recorder, seen) = Recorder::new(&log);
    let mut sleep = Command::new("sleep");
    sleep.arg("30").stdout(Stdio::piped());
    let child = reactor.spawn(&mut sleep, recorder).unwrap();
    reactor.handle(child.process()).unwrap().close();
    reactor.run().unwrap();

    assert_eq!(seen.borrow().status.unwrap().signal(), Some(libc::SIGTERM));
    assert_eq!(log.entries().last().unwrap(), "process:close:Closed");
    assert!(!has_children());
}

#[test]
fn a_child_that_ignores_sigterm_is_killed_when_the_linger_time_runs_out() {
    let _serial = serial();
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (recorder, seen) = Recorder::new(&log);
    // `exec` so that the process that ignores SIGTERM is the child itself (an ignored
    // signal stays ignored across exec); it says when the trap is set.
    let mut stubborn = sh("trap '' TERM; echo ready; exec sleep 30");
    stubborn.stdout(Stdio::piped());
    let options = Options::new().linger(Duration::from_millis(200));
    let child = reactor
        .spawn_with(&mut stubborn, options, recorder)
        .unwrap();
    run_until(&mut reactor, "the trap set", |_| {
        seen.borrow().stdout == b"ready\n"
    });
    reactor.handle(child.process()).unwrap().close();
    reactor.run().unwrap();

    assert!(
        log.contains("process:close:LingerExpired"),
        "{:?}",
        log.entries()
    );
    assert!(!log.contains("process:exit"), "no exit status to report");
    // SIGKILLed and reaped by the reactor without a handle.
    run_until(&mut reactor, "the orphan reaped", |_| !has_children());
}

#[test]
fn killing_a_process_handle_kills_the_child_and_still_reaps_it() {
    let _serial = serial();
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (recorder, _seen) = Recorder::new(&log);
    let child = reactor
        .spawn(Command::new("sleep").arg("30"), recorder)
        .unwrap();
    reactor.handle(child.process()).unwrap().kill();
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    assert!(log.contains("process:close:Killed"));
    run_until(&mut reactor, "the orphan reaped", |_| !has_children());
}

#[test]
fn shutdown_waits_for_children_and_asks_them_to_end() {
    let _serial = serial();
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (recorder, seen) = Recorder::new(&log);
    let mut sleep = Command::new("sleep");
    sleep.arg("30").stdout(Stdio::piped());
    reactor.spawn(&mut sleep, recorder).unwrap();
    reactor.shutdown(Duration::from_secs(10));
    reactor.run().unwrap();

    assert_eq!(seen.borrow().status.unwrap().signal(), Some(libc::SIGTERM));
    assert!(!has_children());
}

#[test]
fn dropping_the_reactor_kills_and_reaps_its_children() {
    let _serial = serial();
    let log = Log::default();
    let (recorder, _seen) = Recorder::new(&log);
    let mut reactor = Reactor::new().unwrap();
    reactor
        .spawn(Command::new("sleep").arg("30"), recorder)
        .unwrap();
    assert!(has_children());
    drop(reactor);
    assert!(!has_children());
}

#[test]
fn a_command_that_cannot_start_fails_spawn_and_leaves_nothing() {
    let _serial = serial();
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let (recorder, _seen) = Recorder::new(&log);
    let before = open_descriptors();
    let error = reactor
        .spawn(&mut Command::new("/nonexistent/program"), recorder)
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert!(reactor.is_empty());
    assert_eq!(open_descriptors(), before);
}

/// Counts exits; stops the reactor once `want` children have exited.
struct Counted {
    exited: Rc<RefCell<usize>>,
    bytes: Rc<RefCell<usize>>,
}

impl Handler for Counted {
    fn on_read(&mut self, _: &mut Context<'_>, data: &[u8]) {
        *self.bytes.borrow_mut() += data.len();
    }

    fn on_exit(&mut self, _: &mut Context<'_>, status: ExitStatus) {
        assert!(status.success());
        *self.exited.borrow_mut() += 1;
    }
}

#[test]
fn a_thousand_children_spawned_and_reaped_leave_no_zombie_and_no_descriptor() {
    let _serial = serial();
    let mut reactor = Reactor::new().unwrap();
    let exited = Rc::new(RefCell::new(0));
    let bytes = Rc::new(RefCell::new(0));
    let before = open_descriptors();
    // A hundred at a time: each holds a pidfd and three pipes while it runs.
    for batch in 0..10 {
        for _ in 0..100 {
            let mut echo = Command::new("echo");
            echo.arg("hi")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let handler = Counted {
                exited: exited.clone(),
                bytes: bytes.clone(),
            };
            reactor.spawn(&mut echo, handler).unwrap();
        }
        let want = (batch + 1) * 100;
        run_until(&mut reactor, "a batch of children", |_| {
            *exited.borrow() == want
        });
    }
    util::settle(&mut reactor);
    assert_eq!(*exited.borrow(), 1000);
    assert_eq!(*bytes.borrow(), 3000, "each child's \"hi\\n\"");
    assert!(reactor.is_empty(), "every handle of every child closed");
    assert!(!has_children(), "a child was left unreaped");
    assert_eq!(open_descriptors(), before, "descriptors leaked");
}

#[test]
fn add_refuses_to_treat_a_descriptor_as_a_process() {
    let _serial = serial();
    let mut reactor = Reactor::new().unwrap();
    let (ours, _theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let log = Log::default();
    let (recorder, _seen) = Recorder::new(&log);
    let error = reactor
        .add(ours, Options::new().kind(Kind::Process), recorder)
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}
