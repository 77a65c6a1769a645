//! UDP load on an echo server ([`UdpLoad`]): client threads, each with a socket connected
//! to the server, keep a window of datagrams in flight, every one carrying the client's id
//! and a sequence number, and check every echo against what that client sent.
//!
//! Sending and receiving are batched so that the load generator is cheap: a client's burst
//! leaves in one `send` cut into datagrams by the kernel (`UDP_SEGMENT`; `sendmmsg` where
//! the kernel refuses it, or when asked), and echoes come back by `recvmmsg`. With one CPU
//! for all the clients, a load generator that sent by `sendmmsg` set the pace of the
//! fastest servers, and a table then compared clients, not servers.
//!
//! Nothing is resent: a datagram still unanswered once echoes for datagrams sent two
//! windows later have arrived, or when no echo at all arrives for 20 ms, is written off and
//! replaced by a new one. At the end of a run the clients wait briefly for what is still in
//! flight; loss is the share of datagrams sent that never came back (late echoes of
//! written-off datagrams count as echoed).

mod client;
mod kernel_drops;
mod load;

pub use load::{UdpLoad, UdpRun};
