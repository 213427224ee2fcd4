//! A daemon behind a masquerading home router gathers a server-reflexive candidate from a real
//! STUN server, and a viewer on the public side connects through it.
//!
//! Namespaces: "home" (the daemon, 10.97.<net>.2, default route via the router), "router"
//! (forwards; nftables masquerades everything leaving its public side as 10.97.<net+1>.1) and
//! "public" (coturn answering STUN on 10.97.<net+1>.2, and the viewer on the same address). The
//! public side has no route into the home network, so the daemon's host candidate is useless to
//! the viewer. Candidate pairs and setup time are printed (`-- --nocapture`).
//!
//! Needs root, `ip netns`, nftables and coturn (scripts/install-deps.sh --test); skips without
//! root or `ip netns`.

use camrtc_testkit as common;

use common::netns::{Lab, in_netns, plain_network, unavailable, watch};

#[test]
fn stun_through_a_masquerading_router() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED stun_nat: {reason}");
        return;
    }
    let net = 10;
    let mut lab = Lab::new("stunnat");
    let (home, router, public) = lab.home_behind_router(net);
    let (router_public, public_ip) =
        (format!("10.97.{}.1", net + 1), format!("10.97.{}.2", net + 1));
    lab.nft(
        &router,
        "table ip nat {\n  chain postrouting {\n    type nat hook postrouting priority srcnat;\n    \
         oifname \"wan\" masquerade\n  }\n}\n",
    );
    lab.assert_no_route(&public, &format!("10.97.{net}.2"));
    lab.start_coturn(&public, &public_ip, "");
    lab.start_daemon(&home, &format!("ice_servers = [{{ urls = [\"stun:{public_ip}:3478\"] }}]"));

    let (signal, network) = (home.clone(), plain_network(&public_ip));
    let outcome = in_netns(&public, move || watch(signal, network, false));
    outcome.print("stun_nat");
    let reflexive = outcome.answered("srflx");
    assert!(
        reflexive.iter().any(|(address, _)| *address == router_public),
        "the daemon gathered no server-reflexive candidate with the router's address: {}",
        outcome.answer
    );
    // The viewer may learn the same address from the daemon's checks before it applies the
    // answer (then it is peer-reflexive to the viewer), but it is the STUN-mapped one.
    let used = (outcome.remote.address.clone(), outcome.remote.port);
    assert!(
        reflexive.contains(&used),
        "the selected pair uses the srflx candidate: {}",
        outcome.pair
    );
    println!("stun_nat: remote candidate type as the viewer knows it: {}", outcome.remote.typ);
}
