//! A daemon behind a router that forwards a UDP port range to it, with the router's public
//! address in `webrtc.nat_1to1_ips` and the range in `udp_port_min`/`udp_port_max`: a viewer
//! that can reach only the public address connects through the advertised 1:1 candidate. Two
//! viewers connect at the same time, each through its own port of the range.
//!
//! Namespaces as in tests/stun_nat.rs (home, router, public) but no STUN server, and the router
//! is a strict home router (nftables): it masquerades, forwards 40000-40009/udp from its public
//! side to the daemon, and drops every other new connection, in either direction. The daemon's
//! own host address is unreachable from the public side and it has no ICE servers, so the
//! public candidate is the only way in. Candidate pairs and setup times are printed
//! (`-- --nocapture`).
//!
//! Needs root, `ip netns` and nftables (scripts/install-deps.sh --test); skips without root or
//! `ip netns`.

use camrtc_testkit as common;

use common::netns::{Lab, in_netns, plain_network, unavailable, watch};
use webrtc::peer_connection::RTCIceCandidateType;

const PORTS: std::ops::RangeInclusive<u16> = 40_000..=40_009;

#[test]
fn viewer_reaches_the_daemon_through_a_forwarded_port_range() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED nat_port_forward: {reason}");
        return;
    }
    let net = 30;
    let mut lab = Lab::new("portfwd");
    let (home, router, public) = lab.home_behind_router(net);
    let (daemon_ip, router_public, public_ip) =
        (format!("10.97.{net}.2"), format!("10.97.{}.1", net + 1), format!("10.97.{}.2", net + 1));
    let ports = format!("{}-{}", PORTS.start(), PORTS.end());
    lab.nft(
        &router,
        &format!(
            "table ip nat {{\n\
               chain prerouting {{ type nat hook prerouting priority dstnat;\n\
                 iifname \"wan\" udp dport {ports} dnat to {daemon_ip}; }}\n\
               chain postrouting {{ type nat hook postrouting priority srcnat;\n\
                 oifname \"wan\" masquerade; }}\n\
             }}\n\
             table ip filter {{\n\
               chain forward {{ type filter hook forward priority filter; policy drop;\n\
                 ct state established,related accept\n\
                 iifname \"wan\" oifname \"lan\" udp dport {ports} ct status dnat accept; }}\n\
             }}\n"
        ),
    );
    lab.assert_no_route(&public, &daemon_ip);
    lab.start_daemon(
        &home,
        &format!(
            "nat_1to1_ips = [\"{router_public}\"]\nudp_port_min = {}\nudp_port_max = {}",
            PORTS.start(),
            PORTS.end()
        ),
    );

    // Two viewers at once: each session holds its own port of the range while both play.
    let (signal, ip) = (home.clone(), public_ip.clone());
    let (first, second) = in_netns(&public, move || async move {
        tokio::join!(
            watch(signal.clone(), plain_network(&ip), false),
            watch(signal, plain_network(&ip), false)
        )
    });
    let mut ports_used = Vec::new();
    for (viewer, outcome) in [(1, first), (2, second)] {
        let label = format!("nat_port_forward (viewer {viewer}, concurrent)");
        outcome.print(&label);
        ports_used.push(outcome.remote.port);
        let hosts = outcome.answered("host");
        let local_ports: Vec<u16> =
            hosts.iter().filter(|(address, _)| *address == daemon_ip).map(|(_, p)| *p).collect();
        assert!(!local_ports.is_empty(), "{}", outcome.answer);
        assert!(local_ports.iter().all(|port| PORTS.contains(port)), "{local_ports:?}");
        let advertised: Vec<(String, u16)> =
            local_ports.iter().map(|port| (router_public.clone(), *port)).collect();
        assert!(
            advertised.iter().all(|candidate| hosts.contains(candidate)),
            "the answer advertises the public address with the same ports: {}",
            outcome.answer
        );
        assert_eq!(outcome.remote.typ, RTCIceCandidateType::Host, "{}", outcome.pair);
        assert!(
            advertised.contains(&(outcome.remote.address.clone(), outcome.remote.port)),
            "the selected pair uses the 1:1 candidate: {}",
            outcome.pair
        );
    }
    assert_ne!(ports_used[0], ports_used[1], "concurrent viewers share a port: {ports_used:?}");
}
