//! The reactor's side of the work other threads hand it: [`Remote`] commands and pump
//! batches. Both arrive through bounded channels and one shared [`Waker`]. Every turn,
//! before its wait, the reactor arms the waker and looks at the channels
//! ([`Handoffs::look`]); when the eventfd fires, or that look found work, it drains, a
//! bounded amount per turn so that a flood from other threads cannot starve the sockets
//! (what is left is taken next turn, which then does not wait). Pump batches are delivered
//! by the pump's own file (`handle/pump.rs`).

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::dispatch::{call_detached, dispatch};
use super::registry::Registry;
use crate::handle::State;
use crate::remote::{Command, RemoteInbox};
use crate::selector::{Interest, Selector, Trigger};
use crate::waker::Waker;
use crate::{Reactor, Remote, Token};

/// Commands carried out per turn.
const COMMANDS_PER_TURN: usize = 4096;

/// What other threads can reach: the waker, the remotes' inbox, the pumps.
#[derive(Default)]
pub(crate) struct Handoffs {
    /// Created and registered with the first pump or remote.
    waker: Option<Arc<Waker>>,
    remote: Option<RemoteInbox>,
    /// Pump handles, whose channels are drained when the waker fires.
    pub(crate) pumps: Vec<Token>,
    /// Work was left for the next turn (the per-turn bound was reached).
    pub(crate) left: bool,
}

impl Handoffs {
    /// The waker, created and registered with `selector` on first use.
    pub(crate) fn waker(&mut self, selector: &dyn Selector) -> io::Result<Arc<Waker>> {
        if let Some(waker) = &self.waker {
            return Ok(waker.clone());
        }
        let waker = Waker::new()?;
        let read = Interest {
            read: true,
            write: false,
        };
        selector.register(
            waker.fd().as_fd(),
            crate::waker::WAKER_KEY,
            read,
            Trigger::Level,
        )?;
        self.waker = Some(waker.clone());
        Ok(waker)
    }

    /// A new remote; all of them share one inbox.
    pub(crate) fn remote(&mut self, selector: &dyn Selector) -> io::Result<Remote> {
        let waker = self.waker(selector)?;
        Ok(self
            .remote
            .get_or_insert_with(RemoteInbox::new)
            .remote(waker))
    }

    /// Arms the waker, so that producers signal from now on, then looks at the channels:
    /// work already waiting is taken this turn (`left`, so the wait does not block) and the
    /// waker is disarmed again. Done every turn, busy or not: a flag left up would keep
    /// producers from signalling, and their work would wait for a quiet turn.
    #[inline]
    pub(crate) fn look(&mut self, registry: &Registry) {
        let Some(waker) = &self.waker else {
            return;
        };
        // A command sent since the last look has set the flag (`Remote` wakes after it
        // sends): with the flag down, the inbox need not be looked at.
        let woken = waker.arm();
        let commands = woken && self.remote.as_ref().is_some_and(|r| !r.commands.is_empty());
        if commands || (!self.pumps.is_empty() && self.batches_waiting(registry)) {
            waker.disarm();
            self.left = true;
        }
    }

    /// Whether a pump has packets waiting (out of line: most reactors have no pump).
    #[inline(never)]
    fn batches_waiting(&self, registry: &Registry) -> bool {
        self.pumps.iter().any(|&token| {
            matches!(registry.entry(token).map(|e| &e.state),
                Some(State::Pump(slot)) if slot.pump.as_ref().is_some_and(|p| p.has_more()))
        })
    }

    /// The eventfd fired: reset it.
    pub(crate) fn woken(&self) {
        if let Some(waker) = &self.waker {
            waker.consume_signal();
        }
    }
}

impl Reactor {
    /// Carries out what other threads handed over: called when the waker fired, or when
    /// work was found waiting (left by the previous turn, or seen before the wait).
    pub(crate) fn drain_handoffs(&mut self) {
        self.handoffs.left = false;
        self.run_commands();
        for i in 0..self.handoffs.pumps.len() {
            let Some(&token) = self.handoffs.pumps.get(i) else {
                break;
            };
            self.deliver_batches(token);
        }
    }

    fn run_commands(&mut self) {
        for _ in 0..COMMANDS_PER_TURN {
            let Some(inbox) = &self.handoffs.remote else {
                return;
            };
            let Ok(command) = inbox.commands.try_recv() else {
                return;
            };
            let undelivered = inbox.undelivered.clone();
            let delivered = match command {
                Command::Run(f) => {
                    call_detached(&mut self.registry, |ctx| f(ctx));
                    true
                }
                Command::Event(token, event) => {
                    let live = self.registry.is_live(token);
                    live && dispatch(&mut self.registry, token, |h, ctx| {
                        h.on_user_event(ctx, event)
                    })
                    .is_some()
                }
                Command::Send(token, data) => self.registry.send_bytes(token, data).is_ok(),
                Command::Shutdown(grace) => {
                    self.registry.shutdown(grace);
                    true
                }
                Command::Stop => {
                    self.registry.stopped = true;
                    true
                }
            };
            if !delivered {
                undelivered.fetch_add(1, Ordering::Relaxed);
                log::debug!("a remote command named a handle that is gone");
            }
            self.process_deferred();
        }
        self.handoffs.left = true;
    }
}
