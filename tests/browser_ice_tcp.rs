//! ICE-TCP for viewers whose network blocks UDP: with `webrtc.ice_tcp = true`, Chromium in a
//! namespace whose firewall drops every UDP packet still plays, over a TCP candidate pair.
//!
//! Namespaces the test creates: "device" (the daemon, 10.96.5.1, HTTP on all its addresses) and
//! "viewer" (Chromium, 10.96.5.2, nftables dropping UDP both ways). Needs root and `ip netns`;
//! without them the test says so and skips.

use camrtc_testkit as common;

use common::browser;
use common::netns::{Lab, unavailable};

#[test]
fn chromium_behind_a_udp_blocking_firewall_plays_over_ice_tcp() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED browser_ice_tcp: {reason}");
        return;
    }
    let mut lab = Lab::new("icetcp");
    let (device, viewer) = (lab.namespace("device"), lab.namespace("viewer"));
    lab.link((&device, "lan", Some("10.96.5.1/24")), (&viewer, "lan", Some("10.96.5.2/24")));
    lab.nft(
        &viewer,
        "table inet no_udp {\n\
           chain input { type filter hook input priority 0; meta l4proto udp drop; }\n\
           chain output { type filter hook output priority 0; meta l4proto udp drop; }\n\
         }\n",
    );
    lab.start_daemon_listening(&device, "0.0.0.0:8080", "ice_tcp = true");

    let pages = browser::view_in_netns(&viewer, "http://10.96.5.1:8080/", 1, 2, &[]);
    let page = &pages[0];
    eprintln!("{page:?}");
    let pair = page.selected_pair.as_ref().expect("a selected candidate pair");
    println!(
        "browser_ice_tcp: selected pair browser {:?} {} <-> daemon {:?} {} over {:?}; first frame \
         {} ms after POST, {:?} fps",
        pair.local,
        pair.local_address,
        pair.remote,
        pair.remote_address,
        pair.protocol,
        page.first_frame_ms,
        page.fps
    );
    assert_eq!(pair.protocol.as_deref(), Some("tcp"), "{pair:?}");
    assert!(pair.remote_address.starts_with("10.96.5.1:"), "{pair:?}");
    assert_eq!((page.width, page.height), (320, 240));
    assert!(page.fps.is_some_and(|fps| fps > 15.0), "fps over TCP: {:?}", page.fps);
    assert!(page.audio.packets_received >= 50, "audio: {:?}", page.audio);
}
