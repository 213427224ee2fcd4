//! A viewer with no route to the daemon still gets the stream, through a real TURN server.
//!
//! The test builds three network namespaces: the daemon's, the viewer's and the TURN server's
//! (coturn, started with a generated config). Only the TURN namespace touches the other two, and
//! it does not forward, so the only path is a relay. The viewer takes the ICE servers the daemon
//! announces in its WHEP `Link` headers and allows relay candidates only (as a browser with
//! `iceTransportPolicy: 'relay'`); the daemon's own agent allocates a relay with its own
//! credentials. Run once with TURN REST credentials (coturn `use-auth-secret`, minted per session
//! by camrtc) and once with static long-term credentials. Setup times with and without TURN are
//! printed (`cargo test --test turn_relay -- --nocapture`).
//!
//! Needs root and `ip netns`; without them the test says so and skips. Everything it creates
//! (namespaces, their veths and addresses, processes, files) is removed even when it fails.

use camrtc_testkit as common;

use common::netns::{Lab, in_netns, parse_links, plain_network, unavailable, watch};
use common::whep_client::Network;
use webrtc::peer_connection::{RTCIceCandidateType, RTCIceTransportPolicy};

const TURN_REST_SECRET: &str = "doorbell-turn-rest-secret";
const STATIC_USER: (&str, &str) = ("doorbell", "static-password");

#[derive(Clone, Copy)]
enum Credentials {
    TurnRest,
    Static,
}

/// The daemon, viewer and TURN namespaces: 10.99.<net>.0/24 daemon–TURN link, <net+1>
/// viewer–TURN link, 10.99.<net+2>.1 the server's one address, reached by both sides like a
/// public TURN server's. The TURN namespace does not forward.
struct Topology {
    lab: Lab,
    turn_ns: String,
    daemon_ns: String,
    viewer_ns: String,
    turn_ip: String,
    daemon_ip: String,
    viewer_ip: String,
}

fn topology(tag: &str, net: u8) -> Topology {
    let mut lab = Lab::new(tag);
    let (t, d, v) = (lab.namespace("turn"), lab.namespace("daemon"), lab.namespace("viewer"));
    let (dnet, vnet) = (format!("10.99.{net}"), format!("10.99.{}", net + 1));
    let turn_ip = format!("10.99.{}.1", net + 2);
    let (daemon_ip, viewer_ip) = (format!("{dnet}.2"), format!("{vnet}.2"));
    let (daemon_cidr, viewer_cidr) = (format!("{daemon_ip}/24"), format!("{viewer_ip}/24"));
    lab.link((&t, "to-daemon", Some(&format!("{dnet}.1/24"))), (&d, "to-turn", Some(&daemon_cidr)));
    lab.link((&t, "to-viewer", Some(&format!("{vnet}.1/24"))), (&v, "to-turn", Some(&viewer_cidr)));
    lab.ip(&t, &["addr", "add", &format!("{turn_ip}/32"), "dev", "lo"]);
    lab.ip(&d, &["route", "add", &format!("{turn_ip}/32"), "via", &format!("{dnet}.1")]);
    lab.ip(&v, &["route", "add", &format!("{turn_ip}/32"), "via", &format!("{vnet}.1")]);
    lab.forward(&t, false);
    let turn =
        Topology { lab, turn_ns: t, daemon_ns: d, viewer_ns: v, turn_ip, daemon_ip, viewer_ip };
    turn.lab.assert_no_route(&turn.viewer_ns, &turn.daemon_ip);
    turn
}

fn relays_with(credentials: Credentials, tag: &str, net: u8) -> Option<Topology> {
    if let Some(reason) = unavailable() {
        println!("SKIPPED turn_relay ({tag}): {reason}");
        return None;
    }
    let mut t = topology(tag, net);
    let auth = match credentials {
        Credentials::TurnRest => {
            format!("use-auth-secret\nstatic-auth-secret={TURN_REST_SECRET}\n")
        }
        Credentials::Static => format!("lt-cred-mech\nuser={}:{}\n", STATIC_USER.0, STATIC_USER.1),
    };
    let (turn_ns, turn_ip) = (t.turn_ns.clone(), t.turn_ip.clone());
    t.lab.start_coturn(&turn_ns, &turn_ip, &auth);
    let turn = format!("turn:{turn_ip}:3478");
    let servers = match credentials {
        Credentials::TurnRest => format!(
            "turn_secret = \"{TURN_REST_SECRET}\"\nice_servers = [{{ urls = [\"{turn}\"] }}]"
        ),
        Credentials::Static => format!(
            "ice_servers = [{{ urls = [\"{turn}\"], username = \"{}\", credential = \"{}\" }}]",
            STATIC_USER.0, STATIC_USER.1
        ),
    };
    let daemon_ns = t.daemon_ns.clone();
    t.lab.start_daemon(&daemon_ns, &servers);

    let network = Network {
        policy: RTCIceTransportPolicy::Relay,
        udp_addr: format!("{}:0", t.viewer_ip),
        ..Network::default()
    };
    let relayed = in_netns(&t.viewer_ns, move || watch(daemon_ns, network, true));
    relayed.print(&format!("turn_relay ({tag})"));
    let servers = parse_links(&relayed.links);
    assert_eq!(servers.len(), 1, "one TURN server announced: {:?}", relayed.links);
    let credential = servers[0].credential.clone();
    assert!(!credential.is_empty(), "{:?}", relayed.links);
    assert_eq!(relayed.local.typ, RTCIceCandidateType::Relay, "{}", relayed.pair);
    assert!(!relayed.answered("relay").is_empty(), "the daemon's answer has no relay candidate");
    let log = t.lab.read_log("camrtc.log");
    assert!(log.contains("viewer connected"), "the log is the daemon's debug log");
    for secret in [TURN_REST_SECRET, STATIC_USER.1, &credential] {
        assert!(!log.contains(secret), "the daemon logged the TURN secret or a credential");
    }
    Some(t)
}

#[test]
fn relays_with_turn_rest_credentials() {
    let Some(t) = relays_with(Credentials::TurnRest, "rest", 10) else { return };
    // The same daemon, with a viewer beside it: host candidates, no relay, for comparison.
    let daemon_ns = t.daemon_ns.clone();
    let network = plain_network(&t.daemon_ip);
    let direct = in_netns(&t.daemon_ns, move || watch(daemon_ns, network, false));
    direct.print("turn_relay (no TURN, viewer in the daemon's namespace)");
    assert_eq!(direct.local.typ, RTCIceCandidateType::Host, "{}", direct.pair);
    drop(t);
}

#[test]
fn relays_with_static_credentials() {
    relays_with(Credentials::Static, "static", 20);
}
