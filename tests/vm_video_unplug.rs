//! In a VM with vivid: the camera is "unplugged" with vivid's Disconnect control while a viewer
//! watches. The device acts gone until camrtc closes it, then comes back; camrtc's supervisor
//! reopens it and the same viewer, never reconnecting, gets pictures again within 2 s. Then a
//! long absence: the driver is unloaded (no /dev/video0 at all) and a viewer waits while the
//! retries back off to their 5 s cap; the driver is loaded again and pictures arrive within 2 s
//! (the supervisor's wait ends when a device node appears).

use camrtc_testkit as common;

use camrtc::config::PixelFormatChoice;
use common::whep_client::{Event, WhepClient};
use common::{Daemon, vm};
use std::time::{Duration, Instant};
use webrtc::peer_connection::RTCPeerConnectionState;

#[test]
fn vm_video_resumes_after_a_camera_disconnect() {
    if vm::in_guest() {
        return guest();
    }
    vm::run_self_and_report("vm_video_resumes_after_a_camera_disconnect", Duration::from_secs(240));
}

/// When the next decoded picture arrives; fails on a connection state change to failed or
/// closed, which would mean the viewer had to reconnect.
async fn next_frame(client: &mut WhepClient, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no picture within {limit:?}");
        match client.next_event(left).await {
            Event::Video(_) => return Instant::now(),
            Event::State(state) => assert!(
                !matches!(
                    state,
                    RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                        | RTCPeerConnectionState::Disconnected
                ),
                "the viewer's connection went {state:?}"
            ),
            _ => {}
        }
    }
}

fn guest() {
    common::alsa::runtime().block_on(async {
        common::init_logs();
        let daemon = Daemon::start(vm::vivid_config(PixelFormatChoice::Yuyv)).await;
        let mut client = WhepClient::new().await;
        client.post(&daemon.url("/whep")).await.expect("201 Created");
        let before = client.collect(Duration::from_secs(60), Duration::from_secs(2)).await;
        assert!(before.frames.len() >= 10, "{} frames before", before.frames.len());

        let status = std::process::Command::new("v4l2-ctl")
            .args(["-d", "/dev/video0", "-c", "disconnect=1"])
            .status()
            .expect("v4l2-ctl runs");
        assert!(status.success(), "vivid's disconnect control: {status}");
        let unplugged = Instant::now();
        // Pictures already in flight may still arrive; the outage is the first gap of 300 ms.
        let mut last = unplugged;
        loop {
            match tokio::time::timeout(Duration::from_millis(300), next_frame(&mut client, Duration::from_secs(30))).await {
                Ok(at) => last = at,
                Err(_) => break,
            }
            assert!(last - unplugged < Duration::from_secs(5), "pictures never stopped");
        }
        let outage_from = last;
        let health = daemon.health().await;
        println!("MEASURED during the outage: video {}", health["video"]);
        let back = next_frame(&mut client, Duration::from_secs(10)).await;
        let resumed_after = back - unplugged;
        println!(
            "MEASURED video resumed {resumed_after:?} after the disconnect (last picture before at +{:?})",
            outage_from - unplugged
        );
        assert!(resumed_after < Duration::from_secs(2), "resumed after {resumed_after:?}");
        let after = client.collect(Duration::from_secs(5), Duration::from_secs(2)).await;
        assert!(after.frames.len() >= 10, "{} frames after", after.frames.len());
        assert_eq!(daemon.health().await["video"]["state"], "running");
        client.close().await;
        daemon.stop().await;

        // The long absence: no node at all while the backoff grows to 5 s.
        vm::modprobe(&["-r", "vivid"]);
        let daemon = Daemon::start(vm::vivid_config(PixelFormatChoice::Yuyv)).await;
        let mut client = WhepClient::new().await;
        client.post(&daemon.url("/whep")).await.expect("201 Created while the camera is away");
        tokio::time::sleep(Duration::from_secs(12)).await;
        println!("MEASURED after 12 s without a camera: video {}", daemon.health().await["video"]);
        vm::modprobe(&["vivid"]);
        let plugged = Instant::now();
        let back = next_frame(&mut client, Duration::from_secs(20)).await;
        let resumed_after = back - plugged;
        println!("MEASURED after a 12 s absence, pictures {resumed_after:?} after modprobe vivid");
        assert!(resumed_after < Duration::from_secs(2), "resumed after {resumed_after:?}");
        client.close().await;
        daemon.stop().await;
    });
}
