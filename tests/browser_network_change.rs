//! A real network change under a playing viewer page (Wi-Fi → mobile): the viewer's interface
//! and address disappear and another network comes up. The page must notice on its own, restart
//! ICE on the same WHEP session over the new network, and keep playing, without a new session.
//!
//! Namespaces the test creates: "home" (the daemon, 10.96.1.2, behind a router), "router"
//! (forwarding between home, "wifi" 10.96.2.0/24 and "mobile" 10.96.3.0/24) and "viewer"
//! (Chromium, first on wifi only; the test then deletes the wifi link and gives it an address
//! and default route on mobile). Needs root and `ip netns`; without them the test says so and
//! skips.

use camrtc_testkit as common;

use common::browser;
use common::netns::{Lab, unavailable};
use std::time::{Duration, Instant};

#[test]
fn viewer_page_survives_a_network_change_by_restarting_ice() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED browser_network_change: {reason}");
        return;
    }
    let mut lab = Lab::new("netchange");
    let (home, router, viewer) =
        (lab.namespace("home"), lab.namespace("router"), lab.namespace("viewer"));
    lab.link((&router, "lan", Some("10.96.1.1/24")), (&home, "to-router", Some("10.96.1.2/24")));
    lab.link((&router, "wifi", Some("10.96.2.1/24")), (&viewer, "wifi", Some("10.96.2.2/24")));
    lab.link((&router, "mobile", Some("10.96.3.1/24")), (&viewer, "mobile", None));
    lab.ip(&home, &["route", "add", "default", "via", "10.96.1.1"]);
    lab.ip(&viewer, &["route", "add", "default", "via", "10.96.2.1"]);
    lab.forward(&router, true);
    lab.start_daemon_listening(&home, "0.0.0.0:8080", "");

    let ready = lab.dir.join("frames-showing");
    let (ns, flag) = (viewer.clone(), ready.display().to_string());
    let run = std::thread::spawn(move || {
        browser::view_in_netns(&ns, "http://10.96.1.2:8080/", 1, 2, &["--network-change", &flag])
    });
    let waiting = Instant::now();
    while !ready.exists() {
        assert!(!run.is_finished(), "the browser run ended before showing frames");
        assert!(waiting.elapsed() < Duration::from_secs(40), "no frames in the page within 40 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Wi-Fi gone (the link with its address and route), mobile data up.
    lab.ip(&viewer, &["link", "del", "wifi"]);
    lab.ip(&viewer, &["addr", "add", "10.96.3.2/24", "dev", "mobile"]);
    lab.ip(&viewer, &["route", "add", "default", "via", "10.96.3.1"]);

    let pages = run.join().expect("browser run finished");
    let page = &pages[0];
    eprintln!("{page:?}");
    let pair = page.selected_pair.as_ref().expect("a selected candidate pair");
    println!(
        "browser_network_change: {} ICE restart(s) tried, {} succeeded; now browser {:?} {} <-> \
         daemon {:?} {} at {:?} fps; media on the new network {:?} ms after the change began",
        page.restarts.tried,
        page.restarts.succeeded,
        pair.local,
        pair.local_address,
        pair.remote,
        pair.remote_address,
        page.fps,
        pair.restart_ms
    );
    assert!(page.restarts.succeeded >= 1, "{:?}", page.restarts);
    assert!(pair.local_address.starts_with("10.96.3.2:"), "media over mobile: {pair:?}");
    assert!(pair.ufrag_before.is_some() && pair.local_ufrag != pair.ufrag_before, "{pair:?}");
    assert_eq!(page.sessions, 1, "the same WHEP session, not a reconnect");
    assert!(page.fps.is_some_and(|fps| fps > 15.0), "fps after the change: {:?}", page.fps);
}
