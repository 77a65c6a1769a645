//! One UDP load client: a socket connected to the server, a window of datagrams in flight,
//! and what became of every sequence number (a ring of [`Slot`]s).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::sys::mmsg::{self, BATCH};
use crate::CpuClock;

/// A client that gets no echo at all for this long writes off everything in flight.
const LOSS_TIMEOUT: Duration = Duration::from_millis(20);
/// How long clients wait for the echoes still in flight when a run ends.
const DRAIN_TIME: Duration = Duration::from_millis(200);
/// Sequence numbers a client remembers (a power of two, far above any window).
pub const RING: usize = 1 << 16;
/// Bytes of a datagram that carry the client's id and the sequence number.
pub const HEADER: usize = 12;

/// What a client knows about one sequence number (modulo [`RING`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Slot {
    Free,
    InFlight,
    WrittenOff,
}

/// What one client saw in one run.
#[derive(Default, Clone, Copy, Debug)]
pub struct ClientOutcome {
    /// Echoes received while the run was measured.
    pub measured: u64,
    pub sent: u64,
    /// Echoes received in all, including the drain at the end and late ones.
    pub echoed: u64,
    /// Echoes of datagrams already written off as lost.
    pub late: u64,
    /// Echoes of datagrams never sent, sent twice, cut or not ours.
    pub bogus: u64,
    /// The client thread's CPU time while measured.
    pub cpu: Duration,
}

/// One client: a socket connected to the server and a window of datagrams in flight.
#[derive(Debug)]
pub struct Client {
    id: u32,
    socket: UdpSocket,
    size: usize,
    window: usize,
    slots: Vec<Slot>,
    next_seq: u64,
    /// No datagram below this one is still in flight.
    low: u64,
    in_flight: usize,
    outcome: ClientOutcome,
    send_buf: Vec<u8>,
    receive_buf: Vec<u8>,
    lens: [usize; BATCH],
    /// Whether sends go out segmented ([`mmsg::segment_sends`]) rather than by `sendmmsg`.
    segmented: bool,
}

impl Client {
    /// Client `id`, keeping `window` datagrams of `size` bytes in flight to `server`;
    /// `segmented` asks for `UDP_SEGMENT` sends, where the kernel allows them.
    ///
    /// # Panics
    ///
    /// If the socket cannot be set up.
    pub fn new(id: u32, server: SocketAddr, window: usize, size: usize, segmented: bool) -> Client {
        assert!(size >= HEADER && window <= RING / 4);
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a client socket");
        socket.connect(server).expect("connecting a client socket");
        let segmented = segmented && mmsg::segment_sends(socket.as_raw_fd(), size);
        socket
            .set_read_timeout(Some(LOSS_TIMEOUT))
            .expect("setting a read timeout");
        Client {
            id,
            socket,
            size,
            window,
            slots: vec![Slot::Free; RING],
            next_seq: 0,
            low: 0,
            in_flight: 0,
            outcome: ClientOutcome::default(),
            send_buf: vec![0; BATCH * size],
            receive_buf: vec![0; BATCH * size],
            lens: [0; BATCH],
            segmented,
        }
    }

    /// Keeps the window full from `start` until `stop`, then waits briefly for what is in
    /// flight.
    pub fn run(mut self, start: &Barrier, stop: &AtomicBool) -> ClientOutcome {
        let clock = CpuClock::current_thread();
        start.wait();
        let cpu_before = clock.read();
        self.fill_window();
        while !stop.load(Ordering::Relaxed) {
            if !self.receive() {
                self.write_off_in_flight();
            }
            self.fill_window();
        }
        self.outcome.measured = self.outcome.echoed;
        self.outcome.cpu = clock
            .read()
            .zip(cpu_before)
            .map_or(Duration::ZERO, |(after, before)| {
                after.saturating_sub(before)
            });
        let drain_until = Instant::now() + DRAIN_TIME;
        while self.in_flight > 0 && Instant::now() < drain_until && self.receive() {}
        self.outcome
    }

    /// Sends new datagrams until the window is full.
    fn fill_window(&mut self) {
        while self.in_flight < self.window {
            let count = (self.window - self.in_flight).min(BATCH);
            for i in 0..count {
                let seq = self.next_seq + i as u64;
                let datagram = &mut self.send_buf[i * self.size..][..self.size];
                datagram[..4].copy_from_slice(&self.id.to_le_bytes());
                datagram[4..HEADER].copy_from_slice(&seq.to_le_bytes());
                // A datagram written off a whole ring ago is forgotten: it stays lost.
                self.slots[seq as usize % RING] = Slot::InFlight;
            }
            let fd = self.socket.as_raw_fd();
            if self.segmented {
                mmsg::send_segmented(fd, &self.send_buf, self.size, count)
            } else {
                mmsg::send_datagrams(fd, &self.send_buf, self.size, count)
            }
            .unwrap_or_else(|e| panic!("client {}: send failed: {e}", self.id));
            self.next_seq += count as u64;
            self.in_flight += count;
            self.outcome.sent += count as u64;
        }
    }

    /// Receives what has come back (waiting up to [`LOSS_TIMEOUT`] for the first); false if
    /// nothing came.
    fn receive(&mut self) -> bool {
        let fd = self.socket.as_raw_fd();
        let n = match mmsg::receive_datagrams(fd, &mut self.receive_buf, self.size, &mut self.lens)
        {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return true,
            Err(e) => panic!("client {}: receive failed: {e}", self.id),
        };
        for i in 0..n {
            let datagram = &self.receive_buf[i * self.size..][..self.size];
            let id = u32::from_le_bytes(datagram[..4].try_into().expect("4 bytes"));
            let seq = u64::from_le_bytes(datagram[4..HEADER].try_into().expect("8 bytes"));
            self.take_echo(self.lens[i] == self.size && id == self.id, seq);
        }
        true
    }

    fn take_echo(&mut self, well_formed: bool, seq: u64) {
        if !well_formed || seq >= self.next_seq || self.next_seq - seq > RING as u64 {
            self.outcome.bogus += 1;
            return;
        }
        let slot = &mut self.slots[seq as usize % RING];
        match *slot {
            Slot::InFlight => {
                self.in_flight -= 1;
                self.outcome.echoed += 1;
            }
            Slot::WrittenOff => {
                self.outcome.echoed += 1;
                self.outcome.late += 1;
            }
            Slot::Free => {
                self.outcome.bogus += 1;
                return;
            }
        }
        *slot = Slot::Free;
        // Echoes come back in order on one flow: what is still in flight two windows before
        // this one is lost.
        let slack = 2 * self.window as u64;
        while self.low + slack < seq {
            let slot = &mut self.slots[self.low as usize % RING];
            if *slot == Slot::InFlight {
                *slot = Slot::WrittenOff;
                self.in_flight -= 1;
            }
            self.low += 1;
        }
    }

    /// Nothing came back for a while: everything in flight is lost.
    fn write_off_in_flight(&mut self) {
        for seq in self.low..self.next_seq {
            let slot = &mut self.slots[seq as usize % RING];
            if *slot == Slot::InFlight {
                *slot = Slot::WrittenOff;
            }
        }
        self.in_flight = 0;
        self.low = self.next_seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client with `window` datagrams sent to a socket that never answers.
    fn client_with_window(window: usize) -> (Client, UdpSocket) {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut client = Client::new(7, silent.local_addr().unwrap(), window, HEADER, false);
        client.fill_window();
        (client, silent)
    }

    #[test]
    fn an_echo_frees_its_slot_once() {
        let (mut client, _server) = client_with_window(4);
        assert_eq!(client.outcome.sent, 4);
        client.take_echo(true, 2);
        assert_eq!((client.outcome.echoed, client.in_flight), (1, 3));
        client.take_echo(true, 2);
        assert_eq!(client.outcome.bogus, 1, "the second echo of 2 is not ours");
        assert_eq!(client.in_flight, 3);
    }

    #[test]
    fn echoes_of_what_was_never_sent_are_bogus() {
        let (mut client, _server) = client_with_window(4);
        client.take_echo(true, 4);
        client.take_echo(false, 0);
        assert_eq!((client.outcome.bogus, client.outcome.echoed), (2, 0));
    }

    #[test]
    fn datagrams_two_windows_behind_an_echo_are_written_off_and_may_come_late() {
        let (mut client, _server) = client_with_window(2);
        // Datagram 0 never comes back; the newest in flight always does.
        for _ in 0..6 {
            let newest = client.next_seq - 1;
            client.take_echo(true, newest);
            client.fill_window();
        }
        // Echo 5 came more than two windows (4) after 0 was sent: 0 is lost.
        assert_eq!(client.slots[0], Slot::WrittenOff);
        assert_eq!(client.in_flight, 2, "its place was taken by a new datagram");
        client.take_echo(true, 0);
        assert_eq!(client.outcome.late, 1);
        assert_eq!(client.outcome.echoed, 7);
        assert_eq!(client.outcome.bogus, 0);
    }

    #[test]
    fn silence_writes_off_the_whole_window() {
        let (mut client, _server) = client_with_window(8);
        client.write_off_in_flight();
        assert_eq!(client.in_flight, 0);
        client.fill_window();
        assert_eq!(
            client.outcome.sent, 16,
            "a new window replaces the lost one"
        );
    }
}
