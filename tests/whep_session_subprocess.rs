//! `camrtc run` as a separate process serves a whole WHEP session: a decodable picture of the
//! configured size with its timecode, and the test tone. With `CAMRTC_TEST_DAEMON` set to a
//! command (the cross stage sets `qemu-aarch64 target/aarch64-…/camrtc`), the daemon under test
//! is that one, e.g. an arm64 build under qemu-user, while this client runs natively.

use camrtc_testkit as common;

use common::process::{free_port, spawn_run, wait_listening};
use common::whep_client::WhepClient;
use std::process::Command;
use std::time::Duration;

fn daemon_command() -> (Command, bool) {
    match std::env::var("CAMRTC_TEST_DAEMON") {
        Ok(line) if !line.trim().is_empty() => {
            let mut words = line.split_whitespace();
            let mut command = Command::new(words.next().expect("a non-empty command line"));
            command.args(words);
            (command, true)
        }
        _ => (Command::new(env!("CARGO_BIN_EXE_camrtc")), false),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_daemon_process_serves_picture_and_tone() {
    let (command, emulated) = daemon_command();
    // Emulation is 5-20x slower: a small picture at a low rate, and patience.
    let patience = if emulated { 12 } else { 1 };
    let port = free_port();
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n\
         [video]\nsource = \"test\"\nwidth = 320\nheight = 240\nfps = 10\nbitrate_kbps = 300\n\
         [audio]\nsource = \"test\"\n[webrtc]\ninclude_loopback_candidates = true\n\
         connect_timeout_ms = 60000\n[auth]\nmode = \"none\"\n"
    );
    let daemon = spawn_run("subprocess", &config, port, command);
    wait_listening(&daemon, Duration::from_secs(10 * patience)).await;

    let mut viewer = WhepClient::new().await;
    viewer.post(&format!("{}/whep", daemon.base)).await.expect("201");
    let received =
        viewer.collect(Duration::from_secs(10 * patience), Duration::from_millis(2000)).await;
    eprintln!(
        "first frame after {:?}, {} frames, tone {:.0} Hz",
        received.first_frame_after,
        received.frames.len(),
        received.tone_hz()
    );
    assert!(received.frames.len() >= 5, "{} frames in 2 s at 10 fps", received.frames.len());
    assert!(received.frames.iter().all(|f| (f.width, f.height) == (320, 240)));
    assert!(received.frames.iter().any(|f| f.timecode.is_some()), "timecode readable");
    let tone = received.tone_hz();
    assert!((tone - 440.0).abs() < 20.0, "tone at {tone:.0} Hz");
    viewer.close().await;
}
