//! [`ServerThread`]: a server under test running in a thread of this process, pinned to the
//! server CPU. Its body binds a socket and announces the address it listens on, with how to
//! stop it ([`Listening::announce`]), before it serves; [`ServerThread::start`] returns once
//! it has, so the load never races the bind. The thread's CPU clock says how busy the
//! server was during a run.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use crate::{pin_to, CpuClock};

/// How to ask a server to finish (`Sync` so that a benchmark may share a `ServerThread`
/// with its load threads).
type Stop = Box<dyn FnOnce() + Send + Sync>;

/// Handed to a server's body: the way to say that it listens.
#[derive(Debug)]
pub struct Listening {
    ready: mpsc::Sender<(SocketAddr, Stop)>,
}

impl Listening {
    /// The server listens on `addr`; calling `stop` (from another thread) makes its body
    /// return.
    pub fn announce(self, addr: SocketAddr, stop: impl FnOnce() + Send + Sync + 'static) {
        // The receiver only goes away if `start` panicked already.
        let _ = self.ready.send((addr, Box::new(stop)));
    }
}

/// A server listening in its own thread, whose body returns an `R` when stopped.
///
/// ```
/// use std::net::UdpSocket;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use loadgen::ServerThread;
///
/// let server = ServerThread::start("udp-echo", None, |listening| {
///     let socket = UdpSocket::bind("127.0.0.1:0")?;
///     socket.set_read_timeout(Some(Duration::from_millis(10)))?;
///     let stop = Arc::new(AtomicBool::new(false));
///     let flag = stop.clone();
///     listening.announce(socket.local_addr()?, move || flag.store(true, Ordering::Relaxed));
///     let (mut echoed, mut buffer) = (0, [0; 64]);
///     while !stop.load(Ordering::Relaxed) {
///         if let Ok((n, from)) = socket.recv_from(&mut buffer) {
///             socket.send_to(&buffer[..n], from)?;
///             echoed += 1;
///         }
///     }
///     Ok(echoed)
/// });
/// let client = UdpSocket::bind("127.0.0.1:0")?;
/// client.send_to(b"hi", server.addr())?;
/// client.recv(&mut [0; 64])?;
/// assert_eq!(server.stop()?, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ServerThread<R> {
    name: String,
    addr: SocketAddr,
    stop: Stop,
    thread: JoinHandle<io::Result<R>>,
}

impl<R: Send + 'static> ServerThread<R> {
    /// Starts `body` in a thread named `name` (pinned to `cpu` if given, before the body
    /// runs, so threads it starts inherit the pinning) and waits until it announces its
    /// address.
    ///
    /// # Panics
    ///
    /// If the body returns or panics without announcing.
    pub fn start(
        name: &str,
        cpu: Option<usize>,
        body: impl FnOnce(Listening) -> io::Result<R> + Send + 'static,
    ) -> ServerThread<R> {
        let (ready, announced) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                pin_to(cpu);
                body(Listening { ready })
            })
            .expect("spawning a server thread");
        let (addr, stop) = match announced.recv() {
            Ok(announced) => announced,
            Err(_) => match thread.join() {
                Ok(Ok(_)) => panic!("{name} returned without announcing its address"),
                Ok(Err(e)) => panic!("{name} did not start: {e}"),
                Err(panic) => std::panic::resume_unwind(panic),
            },
        };
        ServerThread {
            name: name.into(),
            addr,
            stop,
            thread,
        }
    }
}

impl<R> ServerThread<R> {
    /// The name it was started with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The clock of the server thread's CPU time (not of threads it started).
    pub fn cpu_clock(&self) -> io::Result<CpuClock> {
        CpuClock::of_thread(&self.thread)
    }

    /// Asks the server to finish and waits for its thread; returns what its body did.
    ///
    /// # Panics
    ///
    /// If the server thread panicked.
    pub fn stop(self) -> io::Result<R> {
        (self.stop)();
        match self.thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
