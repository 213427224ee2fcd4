//! SIGTERM with viewers connected: the daemon closes every peer connection and exits cleanly
//! within two seconds, and the viewers learn at once rather than after an ICE timeout.

use camrtc_testkit as common;

use common::process::start_daemon;
use common::whep_client::WhepClient;
use rtc::peer_connection::transport::RTCDtlsTransportState;
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_viewers_and_exits_within_two_seconds() {
    let mut daemon = start_daemon().await;
    let mut viewers = Vec::new();
    for _ in 0..2 {
        let mut viewer = WhepClient::new().await;
        viewer.post(&format!("{}/whep", daemon.base)).await.expect("201");
        viewer.collect(Duration::from_secs(10), Duration::from_millis(100)).await;
        viewers.push(viewer);
    }

    let signalled = Instant::now();
    let kill = Command::new("kill").args(["-TERM", &daemon.child.id().to_string()]).status();
    assert!(kill.expect("kill runs").success());
    let status = loop {
        if let Some(status) = daemon.child.try_wait().expect("wait works") {
            break status;
        }
        assert!(signalled.elapsed() < Duration::from_secs(2), "exits within 2 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "clean exit: {status}");
    let exited_after = signalled.elapsed();

    // The DTLS close reaches the viewers; without it they would wait out ICE timeouts. (The
    // crate keeps connectionState "connected" after a close_notify, so ask the transport.)
    for viewer in &viewers {
        let receiver = viewer.pc.get_receivers().await.into_iter().next().expect("a receiver");
        let transport = receiver.transport().await.expect("transport").expect("DTLS transport");
        let deadline = Instant::now() + Duration::from_secs(1);
        while transport.state().await.expect("state") != RTCDtlsTransportState::Closed {
            assert!(Instant::now() < deadline, "the viewer was not told the session ended");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!("daemon exited {exited_after:?} after SIGTERM");
    for viewer in &viewers {
        viewer.close().await;
    }
}
