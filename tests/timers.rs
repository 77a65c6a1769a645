//! Timers: one-shot and repeating timers on virtual handles, cancellation, deadline order,
//! and the rule that a handle's timers die with it (so `run` returns once nothing is left).

mod util;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use eventmux::{CloseReason, Context, Handler, Kind, Reactor, TimerId, Token};
use util::{run_until, Log, DEADLINE};

/// Aborts the test binary if not dropped within the deadline: nothing else can interrupt a
/// `Reactor::run` that fails to return.
struct Watchdog {
    _disarm_on_drop: mpsc::Sender<()>,
}

fn watchdog(what: &'static str) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(DEADLINE) {
            eprintln!("hung: {what}");
            std::process::abort();
        }
    });
    Watchdog {
        _disarm_on_drop: tx,
    }
}

/// Logs every timer as `timer <id>` (and the handle's kind) and its close as
/// `close <reason>`. Timers in `kill_on` (`close_on`) make it kill (close) itself;
/// `interval` is cancelled after `stop_interval_after` firings, and `probe` armed instead.
#[derive(Default)]
struct Timed {
    log: Log,
    kill_on: Vec<TimerId>,
    close_on: Vec<TimerId>,
    interval: Option<TimerId>,
    interval_fired: usize,
    stop_interval_after: usize,
    probe: Option<TimerId>,
    /// One-shot mode: the first timer arms a probe 100 ms later and cancels the fired timer
    /// (which must fail: it already fired).
    arm_probe_on_first: bool,
    /// When the timer fires, kill the other handle.
    kill_other: Option<(TimerId, Token)>,
}

impl Timed {
    fn new(log: &Log) -> Timed {
        Timed {
            log: log.clone(),
            ..Timed::default()
        }
    }
}

impl Handler for Timed {
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        self.log.push(format!("timer {timer:?}"));
        self.log.push(format!("kind {:?}", ctx.kind()));
        if self.arm_probe_on_first && self.probe.is_none() {
            self.log
                .push(format!("cancel fired: {}", ctx.cancel_timer(timer)));
            let probe = ctx.set_timer(Duration::from_millis(100)).unwrap();
            self.probe = Some(probe);
            self.kill_on.push(probe);
        }
        if Some(timer) == self.interval {
            self.interval_fired += 1;
            if self.interval_fired == self.stop_interval_after {
                self.log
                    .push(format!("cancel: {}", ctx.cancel_timer(timer)));
                self.log
                    .push(format!("cancel again: {}", ctx.cancel_timer(timer)));
                self.probe = Some(ctx.set_timer(Duration::from_millis(60)).unwrap());
            }
        }
        if let Some((on, other)) = self.kill_other {
            if on == timer {
                ctx.handle(other).expect("the other handle is open").kill();
            }
        }
        if self.kill_on.contains(&timer) {
            ctx.kill();
        }
        if self.close_on.contains(&timer) {
            ctx.close();
        }
    }

    fn on_close(&mut self, _: &mut Context<'_>, reason: CloseReason) {
        self.log.push(format!("close {reason:?}"));
    }
}

fn fired(log: &Log, id: TimerId) -> usize {
    log.count(&format!("timer {id:?}"))
}

#[test]
fn one_shot_timer_fires_once_and_run_returns_after_the_handle_kills_itself() {
    let _watchdog = watchdog("one_shot_timer_fires_once");
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let mut handler = Timed::new(&log);
    handler.arm_probe_on_first = true;
    let token = reactor.add_handler(handler);
    assert_eq!(reactor.handle(token).unwrap().kind(), Some(Kind::Virtual));

    let start = Instant::now();
    let id = reactor
        .handle(token)
        .unwrap()
        .set_timer(Duration::from_millis(20))
        .unwrap();
    reactor.run().unwrap();

    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(fired(&log, id), 1, "log: {:?}", log.entries());
    assert!(log.contains("kind Some(Virtual)"));
    assert!(
        log.contains("cancel fired: false"),
        "a fired one-shot cannot be cancelled"
    );
    assert!(reactor.handle(token).is_none(), "the handle is gone");
    // The probe fired 100 ms after the one-shot; the one-shot did not fire again meanwhile.
    let entries = log.entries();
    assert_eq!(entries.iter().filter(|e| e.starts_with("timer")).count(), 2);
    assert_eq!(entries.last().unwrap(), "close Killed");
    assert!(reactor.is_empty());
}

#[test]
fn repeating_timer_fires_until_cancelled_and_the_handle_stays() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let token = reactor.add_handler(Timed::new(&log));
    let id = reactor
        .handle(token)
        .unwrap()
        .set_interval(Duration::from_millis(10))
        .unwrap();
    {
        let handler = reactor.handler_mut::<Timed>(token).unwrap();
        handler.interval = Some(id);
        handler.stop_interval_after = 3;
    }

    run_until(&mut reactor, "the probe after the cancel", |r| {
        let probe = r.handler_mut::<Timed>(token).unwrap().probe;
        probe.is_some_and(|p| fired(&log, p) == 1)
    });

    assert_eq!(fired(&log, id), 3, "log: {:?}", log.entries());
    assert!(log.contains("cancel: true"));
    assert!(log.contains("cancel again: false"));
    assert!(
        reactor.handle(token).is_some(),
        "cancelling a timer keeps the handle"
    );
    assert!(!log.contains("close Killed"));
    assert!(!reactor.handle(token).unwrap().cancel_timer(id));
}

#[test]
fn cancelled_timer_is_never_delivered() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let token = reactor.add_handler(Timed::new(&log));
    let mut handle = reactor.handle(token).unwrap();
    let cancelled = handle.set_timer(Duration::from_millis(10)).unwrap();
    assert!(handle.cancel_timer(cancelled));
    assert!(!handle.cancel_timer(cancelled));
    let probe = handle.set_timer(Duration::from_millis(50)).unwrap();

    run_until(&mut reactor, "the probe", |_| fired(&log, probe) == 1);

    assert_eq!(fired(&log, cancelled), 0, "log: {:?}", log.entries());
}

#[test]
fn timers_fire_in_deadline_order() {
    let _watchdog = watchdog("timers_fire_in_deadline_order");
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let token = reactor.add_handler(Timed::new(&log));
    let mut handle = reactor.handle(token).unwrap();
    let t30 = handle.set_timer(Duration::from_millis(30)).unwrap();
    let t10 = handle.set_timer(Duration::from_millis(10)).unwrap();
    let t20 = handle.set_timer(Duration::from_millis(20)).unwrap();
    reactor.handler_mut::<Timed>(token).unwrap().kill_on = vec![t30];

    reactor.run().unwrap();

    let timers: Vec<String> = log
        .entries()
        .into_iter()
        .filter(|e| e.starts_with("timer"))
        .collect();
    let expected: Vec<String> = [t10, t20, t30]
        .iter()
        .map(|id| format!("timer {id:?}"))
        .collect();
    assert_eq!(timers, expected);
}

#[test]
fn timer_of_a_closed_handle_is_never_delivered() {
    let _watchdog = watchdog("timer_of_a_closed_handle_is_never_delivered");
    let mut reactor = Reactor::new().unwrap();
    let victim_log = Log::default();
    let killer_log = Log::default();
    let victim = reactor.add_handler(Timed::new(&victim_log));
    let killer = reactor.add_handler(Timed::new(&killer_log));

    let orphan = reactor
        .handle(victim)
        .unwrap()
        .set_timer(Duration::from_millis(40))
        .unwrap();
    let mut handle = reactor.handle(killer).unwrap();
    let kill_victim = handle.set_timer(Duration::from_millis(10)).unwrap();
    let last = handle.set_timer(Duration::from_millis(80)).unwrap();
    {
        let handler = reactor.handler_mut::<Timed>(killer).unwrap();
        handler.kill_other = Some((kill_victim, victim));
        handler.kill_on = vec![last];
    }

    reactor.run().unwrap();

    assert_eq!(
        fired(&victim_log, orphan),
        0,
        "log: {:?}",
        victim_log.entries()
    );
    assert_eq!(victim_log.entries(), vec!["close Killed"]);
    assert_eq!(
        fired(&killer_log, last),
        1,
        "the killer outlived the orphan's deadline"
    );
    assert!(reactor.is_empty());
}

#[test]
fn cancel_with_another_handles_timer_id_fails_and_leaves_it_armed() {
    let mut reactor = Reactor::new().unwrap();
    let owner_log = Log::default();
    let owner = reactor.add_handler(Timed::new(&owner_log));
    let other = reactor.add_handler(Timed::new(&Log::default()));
    let id = reactor
        .handle(owner)
        .unwrap()
        .set_timer(Duration::from_millis(20))
        .unwrap();

    assert!(!reactor.handle(other).unwrap().cancel_timer(id));

    run_until(&mut reactor, "the owner's timer", |_| {
        fired(&owner_log, id) == 1
    });
}

#[test]
fn run_returns_when_the_last_handle_closes_with_timers_pending() {
    let _watchdog = watchdog("run_returns_when_the_last_handle_closes_with_timers_pending");
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let token = reactor.add_handler(Timed::new(&log));
    let mut handle = reactor.handle(token).unwrap();
    let pending = handle.set_timer(Duration::from_secs(3600)).unwrap();
    let interval = handle.set_interval(Duration::from_secs(3600)).unwrap();
    let close_now = handle.set_timer(Duration::from_millis(10)).unwrap();
    reactor.handler_mut::<Timed>(token).unwrap().close_on = vec![close_now];

    reactor.run().unwrap();

    assert_eq!(fired(&log, pending), 0);
    assert_eq!(fired(&log, interval), 0);
    assert_eq!(fired(&log, close_now), 1);
    assert!(log.contains("close Closed"), "log: {:?}", log.entries());
    assert!(reactor.is_empty());
}

#[test]
fn run_once_with_zero_timeout_polls_and_returns() {
    let mut reactor = Reactor::new().unwrap();
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    reactor.run().unwrap(); // nothing to watch: returns at once

    // With a handle whose only timer is far away, a poll delivers nothing.
    let log = Log::default();
    let token = reactor.add_handler(Timed::new(&log));
    reactor
        .handle(token)
        .unwrap()
        .set_timer(Duration::from_secs(3600))
        .unwrap();
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    assert!(log.entries().is_empty());
    assert!(reactor.handle(token).is_some());
}
