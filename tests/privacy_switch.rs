//! The privacy switch stops capture entirely and says so, survives a daemon restart, and
//! switching it off brings the picture back. The daemon runs as a subprocess, restarted on the
//! same state file.

use camrtc_testkit as common;

use common::process::{DaemonProcess, NO_AUTH, free_port, spawn_run, wait_listening};
use common::sse::EventStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn start(port: u16, state_file: &std::path::Path) -> DaemonProcess {
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n\
         [video]\nsource = \"test\"\nwidth = 320\nheight = 240\nfps = 15\n\
         [audio]\nsource = \"test\"\n\
         [auth]\n{NO_AUTH}\n\
         [pipeline]\non_demand = false\n\
         [privacy]\nstate_file = \"{}\"\n",
        state_file.display()
    );
    spawn_run(&format!("privacy-{port}"), &config, port, Command::new(env!("CARGO_BIN_EXE_camrtc")))
}

async fn status(base: &str) -> serde_json::Value {
    reqwest::get(format!("{base}/api/status")).await.expect("status").json().await.expect("JSON")
}

async fn set_privacy(base: &str, enabled: bool) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/privacy"))
        .body(format!("{{\"enabled\": {enabled}}}"))
        .send()
        .await
        .expect("POST /api/privacy answers")
}

/// Waits until `/api/status` satisfies `ready`, or fails after 5 s saying what was wanted.
async fn wait_status(
    base: &str,
    what: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let status = status(base).await;
        if ready(&status) {
            return status;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{what}: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_stops_capture_persists_across_restart_and_resumes() {
    let dir = std::env::temp_dir().join(format!("camrtc-privacy-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state_file = dir.join("state").join("privacy");
    let port = free_port();
    let daemon = start(port, &state_file);
    wait_listening(&daemon, Duration::from_secs(10)).await;
    let base = daemon.base.clone();
    wait_status(&base, "capture runs (always on)", |s| s["video_frames"].as_u64() > Some(3)).await;

    let mut events = EventStream::open(&format!("{base}/events"), None).await;
    assert_eq!(events.next(Duration::from_secs(5)).await.expect("state").data["privacy"], false);
    assert_eq!(set_privacy(&base, true).await.status(), 200);
    let event = events.next(Duration::from_secs(5)).await.expect("privacy event");
    assert_eq!(
        (event.event.as_str(), &event.data["enabled"]),
        ("privacy", &serde_json::json!(true))
    );

    // The camera and microphone are closed: no pipeline, sources stopped, frames stand still.
    let off = wait_status(&base, "capture stops", |s| {
        s["privacy"] == true && s["pipeline_running"] == false && s["video"]["state"] == "stopped"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = status(&base).await;
    assert_eq!(later["video_frames"], off["video_frames"], "no new pictures in privacy mode");
    assert_eq!(later["audio_frames"], off["audio_frames"], "no new sound in privacy mode");
    assert_eq!(later["audio"]["state"], "stopped");
    let snapshot = reqwest::get(format!("{base}/snapshot.jpg")).await.expect("answers");
    assert_eq!(snapshot.status(), 503);
    assert!(snapshot.text().await.expect("reason").contains("privacy mode is on"));
    assert_eq!(std::fs::read_to_string(&state_file).expect("saved").trim(), "on");
    let refused = reqwest::Client::new()
        .post(format!("{base}/api/privacy"))
        .body("{\"enable\": false}")
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), 400, "a misspelt key is refused, not ignored");

    // Restarted (as after a power cut or an upgrade): still private, the camera never opens.
    drop(events);
    drop(daemon);
    let daemon = start(port, &state_file);
    wait_listening(&daemon, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = status(&base).await;
    assert_eq!(restarted["privacy"], true, "{restarted}");
    assert_eq!(restarted["pipeline_running"], false);
    assert_eq!(restarted["video_frames"], 0, "the camera was never opened");

    // Switched off: the picture comes back, and so do snapshots.
    assert_eq!(set_privacy(&base, false).await.status(), 200);
    wait_status(&base, "capture resumes", |s| {
        s["privacy"] == false && s["video_frames"].as_u64() > Some(3)
    })
    .await;
    let snapshot = reqwest::get(format!("{base}/snapshot.jpg")).await.expect("answers");
    assert_eq!(snapshot.status(), 200);
    assert_eq!(&snapshot.bytes().await.expect("JPEG")[..2], &[0xff, 0xd8]);
    assert_eq!(std::fs::read_to_string(&state_file).expect("saved").trim(), "off");
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
