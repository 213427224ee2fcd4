//! In a VM with vivid: camrtc captures from a real V4L2 driver in three raw formats (YUYV, packed
//! 4:2:2; NV12, semi-planar 4:2:0; YU12, planar I420), converts, encodes with openh264, and a
//! WHEP viewer decodes pictures of the negotiated size at about the configured rate. A camera
//! that only speaks the multi-planar API (vivid with multiplanar=2) is refused with a reason
//! that says so and points to the exec source.

use camrtc_testkit as common;

use camrtc::config::PixelFormatChoice;
use common::whep_client::WhepClient;
use common::{Daemon, vm};
use std::time::Duration;

#[test]
fn vm_vivid_raw_formats_reach_the_viewer() {
    if vm::in_guest() {
        return guest();
    }
    vm::run_self_and_report("vm_vivid_raw_formats_reach_the_viewer", Duration::from_secs(300));
}

fn guest() {
    let runtime = common::alsa::runtime();
    for format in [PixelFormatChoice::Yuyv, PixelFormatChoice::Nv12, PixelFormatChoice::Yu12] {
        runtime.block_on(async {
            common::init_logs();
            let daemon = Daemon::start(vm::vivid_config(format)).await;
            let mut client = WhepClient::new().await;
            client.post(&daemon.url("/whep")).await.expect("201 Created");
            let received = client.collect(Duration::from_secs(60), Duration::from_secs(3)).await;
            let first = &received.frames[0];
            println!(
                "MEASURED vivid {format:?}: {}x{}, {} frames in 3 s, first after {:?}",
                first.width,
                first.height,
                received.frames.len(),
                received.first_frame_after.unwrap_or_default()
            );
            assert_eq!((first.width, first.height), (320, 180), "{format:?}");
            assert!(received.frames.iter().all(|f| (f.width, f.height) == (320, 180)));
            // 15 fps for 3 s under TCG: only that pictures keep coming.
            assert!(received.frames.len() >= 15, "{format:?}: {} frames", received.frames.len());
            client.close().await;
            daemon.stop().await;
        });
    }
    vm::modprobe(&["-r", "vivid"]);
    vm::modprobe(&["vivid", "multiplanar=2"]);
    runtime.block_on(async {
        let daemon = Daemon::start(vm::vivid_config(PixelFormatChoice::Auto)).await;
        let client = WhepClient::new().await;
        client.post(&daemon.url("/whep")).await.expect("201 Created: audio-less, video stopped");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let video = loop {
            let video = daemon.health().await["video"].clone();
            if video["state"] == "stopped" || std::time::Instant::now() > deadline {
                break video;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        println!("MEASURED multi-planar vivid: video {video}");
        assert_eq!(video["state"], "stopped", "a configuration error is not retried: {video}");
        let error = video["error"].as_str().unwrap_or_default();
        assert!(error.contains("multi-planar") && error.contains("exec"), "{error}");
        client.close().await;
        daemon.stop().await;
    });
}
