//! `webrtc.interfaces`, `exclude_interfaces` and `ipv6` decide which addresses a viewer is
//! offered, and an IPv6-only viewer connects when `ipv6 = true`.
//!
//! Two namespaces joined by a veth (IPv4 and IPv6 on both ends); the daemon's namespace also has
//! a second interface "other" with addresses of its own, which must not be offered when excluded.
//! Needs root and `ip netns`; skips with a message otherwise.

use camrtc_testkit as common;

use common::netns::{Lab, in_netns, plain_network, unavailable, watch};

struct Pair {
    lab: Lab,
    daemon_ns: String,
    viewer_ns: String,
}

/// Daemon 10.96.<net>.1 / fd00:96:<net>::1 on "to-viewer" and 10.95.<net>.1 / fd00:95:<net>::1 on
/// "other"; viewer 10.96.<net>.2 / fd00:96:<net>::2.
fn pair(tag: &str, net: u8) -> Option<Pair> {
    if let Some(reason) = unavailable() {
        println!("SKIPPED ice_interfaces ({tag}): {reason}");
        return None;
    }
    let mut lab = Lab::new(tag);
    let (d, v) = (lab.namespace("daemon"), lab.namespace("viewer"));
    let (daemon_v4, viewer_v4) = (format!("10.96.{net}.1/24"), format!("10.96.{net}.2/24"));
    lab.link((&d, "to-viewer", Some(&daemon_v4)), (&v, "to-daemon", Some(&viewer_v4)));
    // nodad: the addresses are usable at once instead of after duplicate detection.
    for (ns, dev, ip) in [(&d, "to-viewer", "1"), (&v, "to-daemon", "2")] {
        lab.ip(ns, &["addr", "add", &format!("fd00:96:{net}::{ip}/64"), "dev", dev, "nodad"]);
    }
    // A veth with both ends in the daemon's namespace (the dummy module may be missing).
    lab.ip(&d, &["link", "add", "other", "type", "veth", "peer", "name", "other-end"]);
    lab.ip(&d, &["link", "set", "other-end", "up"]);
    lab.ip(&d, &["addr", "add", &format!("10.95.{net}.1/24"), "dev", "other"]);
    lab.ip(&d, &["addr", "add", &format!("fd00:95:{net}::1/64"), "dev", "other", "nodad"]);
    lab.ip(&d, &["link", "set", "other", "up"]);
    Some(Pair { lab, daemon_ns: d, viewer_ns: v })
}

fn offered_hosts(answer: &str) -> Vec<String> {
    let hosts = common::netns::answered_candidates(answer, "host");
    let mut addresses: Vec<String> = hosts.into_iter().map(|(address, _)| address).collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

#[test]
fn only_the_chosen_interfaces_are_offered() {
    let Some(mut p) = pair("ifaces", 10) else { return };
    for section in ["interfaces = [\"to-viewer\"]", "exclude_interfaces = [\"other\"]"] {
        p.lab.start_daemon(&p.daemon_ns, section);
        let (signal, network) = (p.daemon_ns.clone(), plain_network("10.96.10.2"));
        let outcome = in_netns(&p.viewer_ns, move || watch(signal, network, false));
        outcome.print(&format!("ice_interfaces ({section})"));
        assert_eq!(offered_hosts(&outcome.answer), ["10.96.10.1"], "{}", outcome.answer);
    }
}

#[test]
fn an_ipv6_viewer_connects_with_ipv6_on() {
    let Some(mut p) = pair("ipv6", 20) else { return };
    p.lab.start_daemon(&p.daemon_ns, "ipv6 = true\nexclude_interfaces = [\"other\"]");
    let (signal, network) = (p.daemon_ns.clone(), plain_network("[fd00:96:20::2]"));
    let outcome = in_netns(&p.viewer_ns, move || watch(signal, network, false));
    outcome.print("ice_interfaces (ipv6 = true, IPv6-only viewer)");
    assert_eq!(offered_hosts(&outcome.answer), ["10.96.20.1", "fd00:96:20::1"]);
    assert_eq!(outcome.remote.address, "fd00:96:20::1", "{}", outcome.pair);
}
