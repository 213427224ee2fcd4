//! Making a daemon behind a port-forwarding router reachable: its answer advertises the router's
//! public address (`webrtc.nat_1to1_ips`) next to each host candidate, and its ICE sockets use
//! ports from a fixed range (`webrtc.udp_port_min`..=`udp_port_max`) that the router forwards.
//!
//! webrtc 0.21 stores a 1:1 NAT setting but never reads it, so the answer SDP is rewritten here.
//! It has no way to share one UDP port between peer connections either (each binds its own
//! sockets, and nothing demultiplexes one socket's packets to several ICE agents), so the
//! forwarded range needs one port per viewer.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

/// For every host candidate in `sdp` whose address is of the same family as a public address,
/// adds a host candidate with the public address and the same port just after it. The local one
/// stays, so viewers on the LAN still connect directly; the added one has a lower priority and
/// its own foundation (RFC 8445 §5.1.1.3: a different address is a different foundation).
pub fn advertise_public_addresses(sdp: &str, public: &[IpAddr]) -> String {
    if public.is_empty() {
        return sdp.to_owned();
    }
    let mut out = String::with_capacity(sdp.len() * 2);
    for line in sdp.split_inclusive('\n') {
        out.push_str(line);
        let Some(candidate) = HostCandidate::parse(line.trim_end()) else { continue };
        for ip in public.iter().filter(|ip| ip.is_ipv4() == candidate.address.is_ipv4()) {
            if *ip != candidate.address {
                out.push_str(&candidate.with_address(*ip));
                out.push_str("\r\n");
            }
        }
    }
    out
}

/// The fields of an `a=candidate:` line that the public copy changes.
struct HostCandidate<'a> {
    foundation: &'a str,
    component: &'a str,
    transport: &'a str,
    priority: u32,
    address: IpAddr,
    /// Everything from the port on ("9000 typ host ...").
    rest: String,
}

impl<'a> HostCandidate<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let fields: Vec<&str> = line.strip_prefix("a=candidate:")?.split_whitespace().collect();
        if fields.len() < 8 || fields[6] != "typ" || fields[7] != "host" {
            return None;
        }
        Some(HostCandidate {
            foundation: fields[0],
            component: fields[1],
            transport: fields[2],
            priority: fields[3].parse().ok()?,
            // A `.local` name or anything else that is not an address is left alone.
            address: fields[4].parse().ok()?,
            rest: fields[5..].join(" "),
        })
    }

    fn with_address(&self, ip: IpAddr) -> String {
        // 'n' keeps the foundation within ice-char and apart from the crate's numeric ones.
        format!(
            "a=candidate:{}n {} {} {} {ip} {}",
            self.foundation,
            self.component,
            self.transport,
            self.priority.saturating_sub(1),
            self.rest
        )
    }
}

/// Why no UDP port could be handed out.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Every port of the range is in use by a session or by another program.
    #[error("all UDP ports {first}-{last} (webrtc.udp_port_min/udp_port_max) are in use")]
    Exhausted {
        /// First port of the configured range.
        first: u16,
        /// Last port of the configured range.
        last: u16,
    },
}

/// The configured UDP port range and which ports sessions hold. Shared by all sessions; the set
/// is the only mutable state and is touched only to take or return one port.
#[derive(Debug)]
pub struct PortPool {
    range: RangeInclusive<u16>,
    leased: Mutex<BTreeSet<u16>>,
}

/// One session's port: returned to the pool when dropped, which the session does only after
/// closing its peer connection (and with it the sockets on the port).
#[derive(Debug)]
pub struct PortLease {
    pool: Arc<PortPool>,
    port: u16,
}

impl PortLease {
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.leased().remove(&self.port);
    }
}

impl PortPool {
    pub fn new(range: RangeInclusive<u16>) -> Arc<Self> {
        Arc::new(PortPool { range, leased: Mutex::new(BTreeSet::new()) })
    }

    fn leased(&self) -> std::sync::MutexGuard<'_, BTreeSet<u16>> {
        // Only insert/remove run under the lock; neither can panic half-way.
        self.leased.lock().expect("the port set's lock is never held across a panic")
    }

    /// A port no session holds and no other program has bound on any address. The crate binds
    /// it again per interface right after; another program could take it in between, in which
    /// case that session has no host candidate there (the crate logs it).
    pub fn lease(self: &Arc<Self>) -> Result<PortLease, PortError> {
        let mut leased = self.leased();
        let free = next_free(&self.range, &leased, |port| {
            UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).is_ok()
        });
        let Some(port) = free else {
            return Err(PortError::Exhausted {
                first: *self.range.start(),
                last: *self.range.end(),
            });
        };
        leased.insert(port);
        Ok(PortLease { pool: Arc::clone(self), port })
    }
}

/// The lowest port of `range` not in `leased` for which `bindable` says yes.
fn next_free(
    range: &RangeInclusive<u16>,
    leased: &BTreeSet<u16>,
    mut bindable: impl FnMut(u16) -> bool,
) -> Option<u16> {
    range.clone().find(|port| !leased.contains(port) && bindable(*port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "v=0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
        a=candidate:68851482 1 udp 2130706431 192.168.1.20 40000 typ host\r\n\
        a=candidate:68851482 2 udp 2130706431 192.168.1.20 40000 typ host\r\n\
        a=candidate:713766899 1 udp 1694498815 203.0.113.7 51000 typ srflx raddr 192.168.1.20 rport 40000\r\n\
        a=candidate:5 1 udp 2130706431 fd00::20 40001 typ host\r\n\
        a=candidate:6 1 udp 2130706431 0a1b.local 40002 typ host\r\n\
        a=candidate:7 1 tcp 1671430143 192.168.1.20 40000 typ host tcptype passive\r\n\
        a=end-of-candidates\r\n";

    fn candidates(sdp: &str) -> Vec<&str> {
        sdp.lines().filter(|line| line.starts_with("a=candidate")).collect()
    }

    #[test]
    fn public_addresses_are_added_after_each_host_candidate_of_their_family() {
        let public = ["198.51.100.4".parse().unwrap(), "2001:db8::4".parse().unwrap()];
        let rewritten = advertise_public_addresses(ANSWER, &public);
        assert_eq!(
            candidates(&rewritten),
            [
                "a=candidate:68851482 1 udp 2130706431 192.168.1.20 40000 typ host",
                "a=candidate:68851482n 1 udp 2130706430 198.51.100.4 40000 typ host",
                "a=candidate:68851482 2 udp 2130706431 192.168.1.20 40000 typ host",
                "a=candidate:68851482n 2 udp 2130706430 198.51.100.4 40000 typ host",
                "a=candidate:713766899 1 udp 1694498815 203.0.113.7 51000 typ srflx raddr 192.168.1.20 rport 40000",
                "a=candidate:5 1 udp 2130706431 fd00::20 40001 typ host",
                "a=candidate:5n 1 udp 2130706430 2001:db8::4 40001 typ host",
                "a=candidate:6 1 udp 2130706431 0a1b.local 40002 typ host",
                // ICE-TCP (webrtc.ice_tcp): the same forwarded port, its tcptype kept.
                "a=candidate:7 1 tcp 1671430143 192.168.1.20 40000 typ host tcptype passive",
                "a=candidate:7n 1 tcp 1671430142 198.51.100.4 40000 typ host tcptype passive",
            ]
        );
        // Everything else is untouched, line endings included.
        assert!(rewritten.starts_with("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"));
        assert!(rewritten.ends_with("a=end-of-candidates\r\n"));
        assert_eq!(rewritten.matches("\r\n").count(), rewritten.lines().count());
    }

    #[test]
    fn without_public_addresses_or_when_already_public_nothing_changes() {
        assert_eq!(advertise_public_addresses(ANSWER, &[]), ANSWER);
        let same = ["192.168.1.20".parse().unwrap()];
        assert_eq!(advertise_public_addresses(ANSWER, &same), ANSWER);
    }

    #[test]
    fn ports_are_the_lowest_free_ones_and_come_back_when_released() {
        let leased = BTreeSet::from([40_000, 40_002]);
        assert_eq!(next_free(&(40_000..=40_003), &leased, |_| true), Some(40_001));
        assert_eq!(next_free(&(40_000..=40_003), &leased, |p| p != 40_001), Some(40_003));
        assert_eq!(next_free(&(40_000..=40_002), &leased, |p| p != 40_001), None);
    }

    #[test]
    fn a_pool_hands_out_each_port_once_and_skips_ports_other_programs_hold() {
        // A port some other program holds, and the one after it, as a two-port range.
        let taken = UdpSocket::bind("0.0.0.0:0").unwrap();
        let busy = taken.local_addr().unwrap().port();
        let Some(next) = busy.checked_add(1) else { return };
        if UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, next))).is_err() {
            return; // Someone else holds it too; nothing to learn from this run.
        }
        let pool = PortPool::new(busy..=next);
        let lease = pool.lease().unwrap();
        assert_eq!(lease.port(), next);
        assert!(matches!(pool.lease(), Err(PortError::Exhausted { first, last })
            if first == busy && last == next));
        let message = pool.lease().unwrap_err().to_string();
        assert!(message.contains("webrtc.udp_port_min"), "{message}");
        drop(lease);
        assert_eq!(pool.lease().unwrap().port(), next);
    }
}
