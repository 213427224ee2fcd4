//! ALSA capture end to end without a sound card: a 700 Hz tone served by ALSA's `file` PCM
//! plugin is captured by the daemon's ALSA source (audio.source = "alsa"), encoded to Opus and
//! arrives at a WHEP viewer at the right frequency and level, in real time, while /healthz shows
//! the microphone running.

use camrtc_testkit as common;

use common::alsa;
use std::time::Duration;

#[test]
fn tone_from_an_alsa_capture_device_reaches_the_viewer() {
    let dir = std::env::temp_dir().join(format!("camrtc-alsa-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let infile = dir.join("tone.raw");
    alsa::write_tone(&infile, 700.0, 30, 1);
    alsa::use_file_pcm(&dir, "camrtc_tone", &infile);

    alsa::runtime().block_on(async {
        let (daemon, mut client) = alsa::daemon_and_viewer("camrtc_tone").await;
        let received = client.collect(Duration::from_secs(10), Duration::from_secs(3)).await;
        let tone = alsa::assert_tone(&received, 700.0);
        eprintln!("ALSA file capture: {} samples in 3 s, tone {tone:.1} Hz", received.audio.len());
        // The file plugin is paced to real time, not drained at once.
        let samples = received.audio.len();
        assert!((120_000..=200_000).contains(&samples), "{samples} samples in 3 s");

        let health = daemon.health().await;
        assert_eq!(health["audio"]["state"], "running", "{health}");
        assert_eq!(health["status"], "ok", "{health}");
        client.close().await;
        daemon.stop().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}
