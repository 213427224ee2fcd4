//! A viewer on a link whose delay jitters keeps a smooth picture with the default playout-delay
//! setting, and the figures of both settings are printed side by side
//! (`cargo test --test browser_jitter -- --nocapture`).
//!
//! Namespaces the test creates: "device" (the daemon, 10.96.7.1, HTTP on all its addresses) and
//! "viewer" (Chromium, 10.96.7.2), joined through the netem VM (tests/common/netem.rs), which
//! delays what the daemon sends by 40 ms ± 15 ms (normal distribution, so packets reorder as they
//! do on a busy Wi-Fi link) and what the viewer sends by 5 ms. Needs root, `ip netns`, qemu and
//! Debian's kernel (scripts/install-deps.sh --test); without them the test says so and skips.

use camrtc_testkit as common;

use common::browser::{self, PageReport};
use common::netem::{End, NetemLink, unavailable};
use common::netns::Lab;

const SECONDS: u32 = 8;

fn watch(lab: &mut Lab, device: &str, viewer: &str, playout_delay_max_ms: u32) -> PageReport {
    let webrtc = format!("playout_delay_max_ms = {playout_delay_max_ms}");
    lab.start_daemon_listening(device, "0.0.0.0:8080", &webrtc);
    let mut pages = browser::view_in_netns(viewer, "http://10.96.7.1:8080/", 1, SECONDS, &[]);
    let page = pages.pop().expect("one page");
    let latency = page.latency_ms.as_ref().expect("--timecode");
    println!(
        "browser_jitter: playout_delay_max_ms = {playout_delay_max_ms:3}: {:?} fps, freezes {} \
         ({:.3} s), jitter buffer {:?} ms, glass-to-glass p50 {} / p95 {} / max {} ms, first \
         frame {} ms after POST",
        page.fps,
        page.freezes.count,
        page.freezes.seconds,
        page.jitter_buffer_ms,
        latency.p50,
        latency.p95,
        latency.max,
        page.first_frame_ms,
    );
    page
}

#[test]
fn chromium_on_a_jittery_link_keeps_a_smooth_picture() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED browser_jitter: {reason}");
        return;
    }
    let mut lab = Lab::new("jitter");
    let (device, viewer) = (lab.namespace("device"), lab.namespace("viewer"));
    let _link = NetemLink::start(
        End { netns: &device, ifname: "lan", address: "10.96.7.1/24" },
        End { netns: &viewer, ifname: "lan", address: "10.96.7.2/24" },
        "delay 40ms 15ms distribution normal limit 1000",
        "delay 5ms",
    );

    let default = watch(&mut lab, &device, &viewer, 100);
    let off = watch(&mut lab, &device, &viewer, 0);

    for (setting, page) in [("default", &default), ("off", &off)] {
        assert_eq!((page.width, page.height), (320, 240), "{setting}: {page:?}");
        assert!(page.audio.packets_received >= 100, "{setting}: audio {:?}", page.audio);
        assert!(page.fps.is_some_and(|fps| fps >= 12.0), "{setting}: {:?} fps", page.fps);
    }
    // The default asks Chromium to skip its smoothing, not its reordering: with packets 25-55 ms
    // late and out of order, frames must still come whole and nearly all in time.
    let latency = default.latency_ms.as_ref().expect("--timecode");
    assert!(latency.p95 < 150.0, "glass-to-glass p95 {} ms on a 40 ± 15 ms link", latency.p95);
    assert!(
        default.freezes.seconds < 0.5,
        "the picture froze {} times for {} s in {SECONDS} s",
        default.freezes.count,
        default.freezes.seconds
    );
}
