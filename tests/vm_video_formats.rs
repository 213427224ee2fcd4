//! In a VM with vivid: camrtc captures from a real V4L2 driver in three raw formats (YUYV, packed
//! 4:2:2; NV12, semi-planar 4:2:0; YU12, planar I420), converts, encodes with openh264, and a
//! WHEP viewer decodes pictures of the negotiated size at about the configured rate.

mod common;

use camrtc::config::{AudioSourceKind, PixelFormatChoice, VideoEncoderKind, VideoSourceKind};
use common::whep_client::WhepClient;
use common::{Daemon, demo_config, vm};
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
            // vivid's webcam input offers 320x180 as its smallest size (no 320x240).
            let mut config = demo_config(320, 180);
            config.video.source = VideoSourceKind::V4l2;
            config.video.device = "/dev/video0".to_owned();
            config.video.encoder = VideoEncoderKind::Openh264;
            config.video.format = format;
            config.video.fps = 15;
            config.video.bitrate_kbps = 300;
            config.audio.source = AudioSourceKind::None;
            let daemon = Daemon::start(config).await;
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
}
