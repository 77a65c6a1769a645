//! [`Signal`]: one signal a reactor took from its signalfd (see
//! [`Reactor::signals`](crate::Reactor::signals)), with what the kernel recorded about it:
//! who sent it, and for SIGCHLD the child's status.

/// A signal delivered to [`Handler::on_signal`](crate::Handler::on_signal) (signalfd's
/// `signalfd_siginfo`).
///
/// ```
/// use eventmux::{Context, Handler, Signal};
///
/// struct Stopper;
/// impl Handler for Stopper {
///     fn on_signal(&mut self, ctx: &mut Context<'_>, signal: &Signal) {
///         eprintln!("signal {} from pid {}", signal.number(), signal.sender_pid());
///         ctx.stop();
///     }
/// }
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Signal {
    number: i32,
    code: i32,
    sender_pid: u32,
    sender_uid: u32,
    status: i32,
}

impl Signal {
    pub(crate) fn from_siginfo(info: &libc::signalfd_siginfo) -> Signal {
        Signal {
            number: info.ssi_signo as i32,
            code: info.ssi_code,
            sender_pid: info.ssi_pid,
            sender_uid: info.ssi_uid,
            status: info.ssi_status,
        }
    }

    /// The signal's number (`libc::SIGTERM`, ...).
    ///
    /// ```
    /// # fn check(signal: &eventmux::Signal) {
    /// if signal.number() == libc::SIGHUP {
    ///     println!("reload the configuration");
    /// }
    /// # }
    /// ```
    pub fn number(&self) -> i32 {
        self.number
    }

    /// How it was sent (`si_code`: `SI_USER` for kill(2), `SI_QUEUE`, `SI_TKILL`, or a
    /// kernel code such as `CLD_EXITED` for SIGCHLD).
    ///
    /// ```
    /// # fn check(signal: &eventmux::Signal) {
    /// let from_kill = signal.code() == libc::SI_USER;
    /// # let _ = from_kill; }
    /// ```
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The sending process (or, for SIGCHLD, the child).
    ///
    /// ```
    /// # fn check(signal: &eventmux::Signal) {
    /// println!("sent by {}", signal.sender_pid());
    /// # }
    /// ```
    pub fn sender_pid(&self) -> u32 {
        self.sender_pid
    }

    /// The sending process's real user id.
    ///
    /// ```
    /// # fn check(signal: &eventmux::Signal) {
    /// let from_root = signal.sender_uid() == 0;
    /// # let _ = from_root; }
    /// ```
    pub fn sender_uid(&self) -> u32 {
        self.sender_uid
    }

    /// For SIGCHLD: the child's exit status or signal (`si_status`); otherwise 0.
    ///
    /// ```
    /// # fn check(signal: &eventmux::Signal) {
    /// if signal.number() == libc::SIGCHLD {
    ///     println!("child {} ended with {}", signal.sender_pid(), signal.status());
    /// }
    /// # }
    /// ```
    pub fn status(&self) -> i32 {
        self.status
    }
}
