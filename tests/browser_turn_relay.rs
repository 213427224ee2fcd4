//! Chromium with `iceTransportPolicy: 'relay'` (the viewer page's `?ice=relay`) still plays,
//! through a real coturn with TURN REST credentials: the browser can only have got the TURN
//! server and its credentials from camrtc's WHEP `Link` headers, and with the relay policy its
//! media cannot take any other path.
//!
//! Daemon, coturn and Chromium share one network namespace the test creates, with coturn on an
//! address of its own (coturn refuses loopback peers). Needs root and `ip netns`; without them
//! the test says so and skips.

use camrtc_testkit as common;

use common::browser;
use common::netns::{DAEMON_HTTP, Lab, unavailable};

const SECRET: &str = "browser-relay-secret";

#[test]
fn chromium_with_relay_only_policy_plays_through_coturn() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED browser_turn_relay: {reason}");
        return;
    }
    let mut lab = Lab::new("brelay");
    let ns = lab.namespace("all");
    // A non-loopback address for everyone's host candidates: a veth pair with both ends here.
    lab.link((&ns, "lan0", Some("10.99.60.2/24")), (&ns, "lan1", None));
    lab.ip(&ns, &["addr", "add", "10.99.61.1/32", "dev", "lo"]);
    lab.start_coturn(&ns, "10.99.61.1", &format!("use-auth-secret\nstatic-auth-secret={SECRET}\n"));
    lab.start_daemon(
        &ns,
        &format!(
            "turn_secret = \"{SECRET}\"\nice_servers = [{{ urls = [\"turn:10.99.61.1:3478\"] }}]"
        ),
    );

    let url = format!("{DAEMON_HTTP}/?ice=relay");
    let pages = browser::view_in_netns(&ns, &url, 1, 2, &[]);
    let page = &pages[0];
    eprintln!("{page:?}");
    let pair = page.selected_pair.as_ref().expect("a selected candidate pair");
    println!(
        "browser_turn_relay: selected pair browser {:?} {} <-> daemon {:?} {}; first frame {} ms \
         after POST",
        pair.local, pair.local_address, pair.remote, pair.remote_address, page.first_frame_ms
    );
    assert_eq!(pair.local.as_deref(), Some("relay"), "{pair:?}");
    assert!(pair.local_address.starts_with("10.99.61.1:"), "relayed by our coturn: {pair:?}");
    assert_eq!((page.width, page.height), (320, 240));
    assert!(page.frames_decoded >= 30, "frames decoded: {}", page.frames_decoded);
    assert!(page.audio.packets_received >= 50, "audio: {:?}", page.audio);
    let coturn = lab.read_log("turnserver.log");
    assert!(coturn.contains("ALLOCATE processed, success"), "no allocation in coturn's log");
}
