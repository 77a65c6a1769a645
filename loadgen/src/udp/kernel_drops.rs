//! How many UDP datagrams the kernel has dropped for a full socket receive buffer
//! (`RcvbufErrors` in `/proc/net/snmp`). The count is system-wide, so other processes'
//! drops count too; over one run on a quiet machine it explains most of a server's loss.

/// UDP datagrams dropped for full receive buffers since boot (IPv4), or `None` if unknown.
pub fn receive_buffer_drops() -> Option<u64> {
    rcvbuf_errors(&std::fs::read_to_string("/proc/net/snmp").ok()?)
}

/// The `RcvbufErrors` column of the `Udp:` lines (a line of names, then one of values) in
/// the text of `/proc/net/snmp`.
fn rcvbuf_errors(snmp: &str) -> Option<u64> {
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let column = names
        .split_whitespace()
        .position(|name| name == "RcvbufErrors")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_udp_column_is_found_by_name() {
        let snmp = "\
Tcp: RtoAlgorithm RtoMin RcvbufErrors
Tcp: 1 200 99
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors
Udp: 100 2 3 90 17 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors
UdpLite: 0 0 0 0 5 0
";
        assert_eq!(rcvbuf_errors(snmp), Some(17));
    }

    #[test]
    fn a_missing_column_is_unknown() {
        assert_eq!(rcvbuf_errors("Udp: InDatagrams\nUdp: 1\n"), None);
        assert_eq!(rcvbuf_errors(""), None);
    }
}
