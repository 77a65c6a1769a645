//! [`UdpLoad`]: how many clients, how many datagrams of what size in flight each, and one
//! measured run of them against a server ([`UdpLoad::run`], giving a [`UdpRun`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use super::client::{Client, ClientOutcome, HEADER, RING};
use super::kernel_drops::receive_buffer_drops;
use crate::{pin_to, CpuMeter, CpuUsage};

/// The largest UDP payload over IPv4.
const MAX_SIZE: usize = 65_507;

/// The shape of a UDP load.
///
/// ```
/// let load = loadgen::UdpLoad::new(4, 64, 1);
/// assert_eq!(load.size(), loadgen::UdpLoad::MIN_SIZE, "room for the header");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct UdpLoad {
    clients: usize,
    window: usize,
    size: usize,
    segmented: bool,
}

impl UdpLoad {
    /// The smallest datagram: the client's id and a sequence number.
    pub const MIN_SIZE: usize = HEADER;

    /// `clients` clients (at least 1), each keeping `window` datagrams (1 to 16,384) of
    /// `size` bytes ([`UdpLoad::MIN_SIZE`] to 65,507) in flight, sending with
    /// `UDP_SEGMENT` where the kernel allows it.
    pub fn new(clients: usize, window: usize, size: usize) -> UdpLoad {
        UdpLoad {
            clients: clients.max(1),
            window: window.clamp(1, RING / 4),
            size: size.clamp(HEADER, MAX_SIZE),
            segmented: true,
        }
    }

    /// Whether clients send a burst as one `UDP_SEGMENT` send (true, the default) or by
    /// `sendmmsg`.
    pub fn segmented(self, segmented: bool) -> UdpLoad {
        UdpLoad { segmented, ..self }
    }

    /// Client threads, one socket each.
    pub fn clients(&self) -> usize {
        self.clients
    }

    /// Datagrams each client keeps in flight.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Bytes per datagram.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs the clients (pinned to `cpu` if given) against `server` for `run_time`, then
    /// lets them wait briefly for the echoes still in flight.
    ///
    /// # Panics
    ///
    /// If a client cannot set up, send or receive.
    pub fn run(&self, server: SocketAddr, run_time: Duration, cpu: Option<usize>) -> UdpRun {
        let clients: Vec<Client> = (0..self.clients)
            .map(|id| Client::new(id as u32, server, self.window, self.size, self.segmented))
            .collect();
        let start = Barrier::new(self.clients + 1);
        let stop = AtomicBool::new(false);
        thread::scope(|scope| {
            let workers: Vec<_> = clients
                .into_iter()
                .map(|client| {
                    let (start, stop) = (&start, &stop);
                    scope.spawn(move || {
                        pin_to(cpu);
                        client.run(start, stop)
                    })
                })
                .collect();
            start.wait();
            let meter = CpuMeter::start(None);
            let drops_before = receive_buffer_drops();
            thread::sleep(run_time);
            stop.store(true, Ordering::Relaxed);
            let usage = meter.stop();
            let clients = workers
                .into_iter()
                .map(|worker| {
                    worker
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p))
                })
                .collect();
            // After the drain: what was dropped at the very end counts too.
            let kernel_drops = receive_buffer_drops()
                .zip(drops_before)
                .map(|(after, before)| after.saturating_sub(before));
            UdpRun {
                clients,
                usage,
                kernel_drops,
            }
        })
    }
}

/// One measured run of a [`UdpLoad`].
#[derive(Debug)]
pub struct UdpRun {
    clients: Vec<ClientOutcome>,
    usage: CpuUsage,
    kernel_drops: Option<u64>,
}

impl UdpRun {
    /// The run's wall time and the CPU the process and the machine used meanwhile.
    pub fn usage(&self) -> &CpuUsage {
        &self.usage
    }

    /// Datagrams the kernel dropped for full receive buffers during the run (system-wide),
    /// if known.
    pub fn kernel_drops(&self) -> Option<u64> {
        self.kernel_drops
    }

    /// Echoes per second while the run was measured.
    pub fn packets_per_sec(&self) -> f64 {
        let echoed: u64 = self.clients.iter().map(|c| c.measured).sum();
        echoed as f64 / self.usage.elapsed().as_secs_f64()
    }

    /// CPU time the client threads used while the run was measured.
    pub fn client_cpu(&self) -> Duration {
        self.clients.iter().map(|c| c.cpu).sum()
    }

    /// Datagrams sent.
    pub fn sent(&self) -> u64 {
        self.clients.iter().map(|c| c.sent).sum()
    }

    /// Echoes received, the drain at the end and late ones included.
    pub fn echoed(&self) -> u64 {
        self.clients.iter().map(|c| c.echoed).sum()
    }

    /// Echoes of datagrams already written off as lost.
    pub fn late(&self) -> u64 {
        self.clients.iter().map(|c| c.late).sum()
    }

    /// Echoes of datagrams never sent, sent twice, cut or not the client's.
    pub fn bogus(&self) -> u64 {
        self.clients.iter().map(|c| c.bogus).sum()
    }
}
