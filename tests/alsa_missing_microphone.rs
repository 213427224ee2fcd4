//! A microphone missing when the viewer connects: video plays at once, /healthz reports the
//! audio source retrying with the reason, and when the device appears the same viewer starts
//! hearing it without reconnecting. The "device" is ALSA's `file` plugin, whose open fails while
//! its input file does not exist.

use camrtc_testkit as common;

use common::alsa;
use common::whep_client::Event;
use std::time::{Duration, Instant};

#[test]
fn audio_resumes_when_the_microphone_appears() {
    let dir = std::env::temp_dir().join(format!("camrtc-alsa-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let infile = dir.join("later.raw");
    alsa::use_file_pcm(&dir, "camrtc_later", &infile);

    alsa::runtime().block_on(async {
        let (daemon, mut client) = alsa::daemon_and_viewer("camrtc_later").await;
        let before = client.collect(Duration::from_secs(10), Duration::from_secs(1)).await;
        assert!(!before.frames.is_empty(), "video plays without the microphone");
        assert!(before.audio.is_empty(), "no audio yet: {} samples", before.audio.len());

        let health = daemon.health().await;
        assert_eq!(health["audio"]["state"], "retrying", "{health}");
        assert_eq!(health["status"], "degraded", "{health}");
        let error = health["audio"]["error"].as_str().expect("error text");
        assert!(error.contains("camrtc_later"), "the error names the device: {error}");
        assert!(error.contains("later.raw for reading failed"), "and ALSA's reason: {error}");

        // The microphone is "plugged in"; the supervisor retries at most 5 s apart.
        let tmp = dir.join("later.raw.tmp");
        alsa::write_tone(&tmp, 440.0, 30, 1);
        std::fs::rename(&tmp, &infile).expect("publish the tone file");
        let plugged = Instant::now();
        let mut audio = Vec::new();
        while audio.len() < 48_000 * 2 {
            assert!(plugged.elapsed() < Duration::from_secs(12), "audio never resumed");
            if let Event::Audio(pcm) = client.next_event(Duration::from_secs(12)).await {
                audio.extend(pcm);
            }
        }
        let resumed_after = plugged.elapsed();
        let crossings = audio[4800..].windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        let tone = crossings as f64 / 2.0 / ((audio.len() - 4800) as f64 / 48_000.0);
        eprintln!("audio resumed {resumed_after:?} after the device appeared; tone {tone:.1} Hz");
        assert!((tone - 440.0).abs() < 8.0, "tone measured at {tone:.1} Hz");
        let health = daemon.health().await;
        assert_eq!(health["audio"]["state"], "running", "{health}");
        assert_eq!(health["status"], "ok", "{health}");

        client.close().await;
        daemon.stop().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}
