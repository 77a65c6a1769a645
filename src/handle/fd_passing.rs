//! Passing descriptors over Unix stream handles (`SCM_RIGHTS`).
//!
//! **Sending**: [`Context::send_fds`](crate::Context::send_fds) queues bytes like `send`
//! and duplicates the descriptors into an [`Attachment`] that remembers where in the output
//! queue its bytes begin. The flush of a stream with attachments writes up to the next one
//! with plain writes, then sends the attachment's bytes with its descriptors in one
//! `sendmsg`, so the peer receives them with exactly those bytes. Streams that never pass a
//! descriptor pay one flag test per flush.
//!
//! **Receiving** is opt-in ([`Options::receive_fds`](crate::Options::receive_fds)): such a
//! stream reads with `recvmsg`, and descriptors that came go to `on_fds` before any byte
//! that came with them reaches `on_read`. A read that brought descriptors ends after their
//! bytes (the kernel keeps each batch with its own), so a short read proves nothing on
//! such a stream: it never takes one as the end of what is waiting (`short_read_drains`
//! is off), and reads until `EAGAIN`. On every other handle the kernel closes
//! descriptors a peer sends, so a peer cannot make the reactor hold any.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::output::MAX_IOVECS;
use super::stream::write_once;
use super::{Flushed, State};
use crate::reactor::dispatch::dispatch;
use crate::reactor::registry::{slot_mut, Registry};
use crate::selector::Ready;
use crate::sys;
use crate::{Error, Reactor, Token, Transport};

/// Descriptors waiting for their bytes to be written.
pub(crate) struct Attachment {
    /// Queued bytes before the ones the descriptors travel with.
    at: usize,
    fds: Vec<OwnedFd>,
}

/// Every stream's attachments, by handle (few handles ever have one).
#[derive(Default)]
pub(crate) struct Attachments {
    by_handle: HashMap<Token, VecDeque<Attachment>>,
}

impl Attachments {
    /// Forgets a handle's attachments (it is closing): their descriptors are closed here,
    /// the peer never gets them.
    pub(crate) fn forget(&mut self, token: Token) {
        self.by_handle.remove(&token);
    }

    /// The written bytes are gone from the queue: the attachments behind them move up.
    fn consumed(&mut self, token: Token, written: usize) {
        if let Some(queue) = self.by_handle.get_mut(&token) {
            for attachment in queue.iter_mut() {
                attachment.at -= written.min(attachment.at);
            }
        }
    }
}

impl Registry {
    /// Queues `data` with duplicates of `fds`; see
    /// [`Context::send_fds`](crate::Context::send_fds).
    pub(crate) fn send_fds(
        &mut self,
        token: Token,
        data: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), Error> {
        let entry = self.live_mut(token)?;
        if !matches!(entry.state, State::Stream(_)) || entry.transport != Transport::Unix {
            return Err(Error::WrongKind {
                operation: "send_fds (a Unix stream socket only)",
                kind: entry.kind(),
            });
        }
        if data.is_empty() {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "descriptors travel with at least one byte",
            )));
        }
        let at = entry.buflen();
        let duplicates = fds
            .iter()
            .map(|fd| fd.try_clone_to_owned())
            .collect::<io::Result<Vec<OwnedFd>>>()
            .map_err(Error::Io)?;
        self.send(token, data)?;
        self.shared_with_peer(fds);
        if let Some(State::Stream(stream)) = self.entry_mut(token).map(|e| &mut e.state) {
            stream.extras.set_attached(true);
        }
        self.attachments
            .by_handle
            .entry(token)
            .or_default()
            .push_back(Attachment {
                at,
                fds: duplicates,
            });
        Ok(())
    }

    /// Handles of ours whose descriptor is being sent: another process will hold their open
    /// file, so closing ours no longer ends its epoll registration; they deregister
    /// explicitly from now on.
    fn shared_with_peer(&mut self, fds: &[BorrowedFd<'_>]) {
        for (_, entry) in self.entries.iter_mut() {
            let ours = entry.fd.as_ref().map(|fd| fd.as_raw_fd());
            if ours.is_some_and(|raw| fds.iter().any(|fd| fd.as_raw_fd() == raw)) {
                entry.sole_owner = false;
            }
        }
    }

    /// The flush of a stream with attachments: plain writes up to the next attachment, its
    /// bytes with its descriptors in one `sendmsg`, and so on; once none is left, the
    /// ordinary flush takes over.
    pub(crate) fn write_attached(&mut self, token: Token) -> Flushed {
        loop {
            let Registry {
                entries,
                buffers,
                id,
                clock,
                attachments,
                ..
            } = self;
            let Some(entry) = slot_mut(entries, *id, token) else {
                return Flushed::Idle;
            };
            let (Some(fd), State::Stream(stream)) = (entry.fd.as_ref(), &mut entry.state) else {
                return Flushed::Idle;
            };
            let Some(queue) = attachments
                .by_handle
                .get_mut(&token)
                .filter(|q| !q.is_empty())
            else {
                attachments.forget(token);
                stream.extras.set_attached(false);
                return self.write_stream(token);
            };
            let next = &queue[0];
            let (carry, limit) = match next.at {
                // This attachment's bytes come next: up to the one after it.
                0 => (true, queue.get(1).map_or(usize::MAX, |a| a.at)),
                at => (false, at),
            };
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let (n, offered) = stream.output.io_slices_upto(&mut slices, limit);
            let result = if carry {
                let borrowed: Vec<BorrowedFd<'_>> = next.fds.iter().map(|f| f.as_fd()).collect();
                retry(|| sys::rights::send_with_fds(fd.as_fd(), &slices[..n], &borrowed))
            } else {
                write_once(fd.as_fd(), &slices[..n], entry.transport.is_socket())
            };
            match result {
                Ok(0) => {
                    entry.ready.remove(Ready::WRITABLE);
                    return Flushed::Partial;
                }
                Ok(written) => {
                    (stream.active_at, stream.sent_at) = (clock.now(), clock.now());
                    stream.wrote_any = true;
                    stream.output.consume(written, buffers, false);
                    if carry {
                        // The descriptors went with the first of these bytes; ours close.
                        queue.pop_front();
                    }
                    attachments.consumed(token, written);
                    if stream.output.is_empty() {
                        attachments.forget(token);
                        stream.extras.set_attached(false);
                        return Flushed::Drained;
                    }
                    if written < offered {
                        entry.ready.remove(Ready::WRITABLE);
                        return Flushed::Partial;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    entry.ready.remove(Ready::WRITABLE);
                    return Flushed::Partial;
                }
                Err(e) => return Flushed::Failed(e),
            }
        }
    }
}

/// Descriptors the last read of a `receive_fds` stream brought, until they are delivered
/// (a reactor field, so that reads without descriptors carry nothing of them).
#[derive(Default)]
pub(crate) struct PassedFds {
    fds: Vec<OwnedFd>,
    /// More came than one read takes; the kernel closed the rest.
    cut: bool,
}

impl PassedFds {
    /// One `recvmsg` into `buf`, keeping what descriptors came.
    pub(crate) fn recv(&mut self, socket: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
        let (n, cut) = sys::rights::recv_with_fds(socket, buf, &mut self.fds)?;
        self.cut |= cut;
        Ok(n)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.fds.is_empty() && !self.cut
    }
}

impl Reactor {
    /// Hands the descriptors that came with a read to `on_fds` (before the read's bytes);
    /// a batch the kernel cut short is reported too.
    pub(crate) fn deliver_fds(&mut self, token: Token) {
        if self.passed.is_empty() {
            return;
        }
        let PassedFds { fds, cut } = std::mem::take(&mut self.passed);
        if cut {
            let error = io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the peer passed more than {} descriptors at once; the rest were closed",
                    sys::rights::MAX_FDS_PER_READ
                ),
            );
            self.registry.report(token, Error::Io(error));
        }
        if !fds.is_empty() {
            dispatch(&mut self.registry, token, |h, ctx| h.on_fds(ctx, fds));
        }
    }
}

/// Runs a write with descriptors again while it is interrupted (plain writes use the
/// stream's own `write_once`).
fn retry(mut write: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match write() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
