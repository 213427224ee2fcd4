//! Browsers hide their host addresses behind `<uuid>.local` mDNS names. The webrtc crate resolves
//! them through a socket joined to the mDNS multicast group, which it opens for every peer
//! connection and without which it fails the whole connection. camrtc probes that socket first:
//!
//! - where multicast works, a viewer's `.local` candidate is resolved (the viewer here answers
//!   mDNS queries for its name, as a browser does);
//! - where it cannot (a namespace whose only routes are its link's, none covering 224.0.0.251),
//!   viewers still connect, mDNS is off, the reason is logged once, and a `.local` candidate in
//!   the offer is ignored instead of failing the session.
//!
//! Two namespaces joined by one veth, daemon in one, viewer in the other. Needs root and
//! `ip netns`; skips with a message otherwise.

use camrtc_testkit as common;

use common::netns::{Lab, in_netns, plain_network, unavailable, watch, watch_editing};
use common::whep_client::Network;

const FALLBACK_LOG: &str = "cannot join the mDNS multicast group";

/// Daemon 10.98.<net>.1 and viewer 10.98.<net>.2 on one link, the daemon started.
fn pair(tag: &str, net: u8, multicast_route: bool) -> Option<(Lab, String, String)> {
    if let Some(reason) = unavailable() {
        println!("SKIPPED mdns_candidates ({tag}): {reason}");
        return None;
    }
    let mut lab = Lab::new(tag);
    let (d, v) = (lab.namespace("daemon"), lab.namespace("viewer"));
    let (daemon_cidr, viewer_cidr) = (format!("10.98.{net}.1/24"), format!("10.98.{net}.2/24"));
    lab.link((&d, "to-viewer", Some(&daemon_cidr)), (&v, "to-daemon", Some(&viewer_cidr)));
    if multicast_route {
        // What a default route gives a normal host: somewhere for 224.0.0.251 to go.
        for (ns, dev) in [(&d, "to-viewer"), (&v, "to-daemon")] {
            lab.ip(ns, &["route", "add", "224.0.0.0/4", "dev", dev]);
        }
    }
    lab.start_daemon(&d, "");
    Some((lab, d, v))
}

#[test]
fn without_multicast_viewers_connect_and_local_candidates_are_ignored() {
    let Some((lab, daemon_ns, viewer_ns)) = pair("nomcast", 10, false) else { return };
    let viewer_ip = "10.98.10.2";
    let (signal, network) = (daemon_ns.clone(), plain_network(viewer_ip));
    let first = in_netns(&viewer_ns, move || watch(signal, network, false));
    first.print("mdns_candidates (no multicast route)");
    assert_eq!(first.local.address, viewer_ip, "{}", first.pair);

    // A browser's offer: its host candidate under a .local name, preferred over the real one.
    let (signal, network) = (daemon_ns.clone(), plain_network(viewer_ip));
    let second = in_netns(&viewer_ns, move || {
        watch_editing(signal, network, false, |offer| add_local_name_candidate(&offer))
    });
    second.print("mdns_candidates (no multicast route, offer with a .local candidate)");
    assert!(second.offer.contains(".local 9 typ host"), "{}", second.offer);
    assert_eq!(second.remote.address, "10.98.10.1", "{}", second.pair);

    let log = lab.read_log("camrtc.log");
    assert_eq!(log.matches(FALLBACK_LOG).count(), 1, "the fallback is logged once:\n{log}");
    assert!(log.contains("mDNS is disabled"), "the .local candidate was dropped:\n{log}");
    assert_eq!(log.matches("viewer connected").count(), 2);
}

#[test]
fn with_multicast_browser_local_candidates_are_resolved() {
    let Some((lab, daemon_ns, viewer_ns)) = pair("mcast", 20, true) else { return };
    let viewer_ip = "10.98.20.2";
    let network = Network {
        mdns_ip: Some(viewer_ip.parse().expect("literal address")),
        ..plain_network(viewer_ip)
    };
    let outcome = in_netns(&viewer_ns, move || watch(daemon_ns, network, false));
    outcome.print("mdns_candidates (multicast route, viewer offers a .local name)");
    let candidates: Vec<&str> =
        outcome.offer.lines().filter(|line| line.starts_with("a=candidate")).collect();
    assert!(!candidates.is_empty());
    assert!(
        candidates.iter().all(|line| line.contains(".local") && !line.contains(viewer_ip)),
        "the viewer hid its address: {candidates:?}"
    );
    let log = lab.read_log("camrtc.log");
    assert!(!log.contains(FALLBACK_LOG), "{log}");
    // The crate's own debug line for a resolved name: without it the pair could have come from
    // a peer-reflexive candidate learnt from the viewer's checks, proving nothing about mDNS.
    assert!(log.contains("answered Candidate"), "the daemon resolved the .local name:\n{log}");
}

/// Adds, before the first candidate, a host candidate with a `.local` name and a higher
/// priority, as Chrome and Safari offer them.
fn add_local_name_candidate(offer: &str) -> String {
    let name =
        "a=candidate:1 1 udp 2130706431 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d.local 9 typ host";
    let mut out = String::new();
    let mut added = false;
    for line in offer.split_inclusive('\n') {
        if !added && line.starts_with("a=candidate") {
            out.push_str(name);
            out.push_str("\r\n");
            added = true;
        }
        out.push_str(line);
    }
    out
}
