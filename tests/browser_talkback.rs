//! Hold to talk in a real browser: headless Chromium's fake microphone plays a 600 Hz WAV, the
//! page (on 127.0.0.1, a secure context) shows the talk button because the daemon answered its
//! audio section sendrecv, the button is held for three seconds, and the tone lands in the raw
//! file behind an ALSA `file` playback PCM at 600 Hz. Before the press, nothing is played.

use camrtc_testkit as common;

use common::alsa::{played_samples, runtime, use_file_speaker, zero_crossing_hz};
use common::{Daemon, demo_config, init_logs};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A mono 48 kHz 16-bit WAV of `seconds` of a `hz` tone at a quarter of full scale.
fn write_tone_wav(path: &Path, hz: f64, seconds: u32) {
    let samples: Vec<i16> = (0..48_000 * seconds)
        .map(|i| {
            let t = f64::from(i) / 48_000.0;
            (0.25 * f64::from(i16::MAX) * (std::f64::consts::TAU * hz * t).sin()).round() as i16
        })
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    // PCM, mono, 48000 Hz, 96000 bytes/s, 2-byte frames, 16 bits.
    for field in [16u32.to_le_bytes().as_slice(), &1u16.to_le_bytes(), &1u16.to_le_bytes()] {
        wav.extend_from_slice(field);
    }
    for field in [48_000u32.to_le_bytes(), 96_000u32.to_le_bytes()] {
        wav.extend_from_slice(&field);
    }
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    std::fs::write(path, wav).expect("write the WAV");
}

#[test]
fn holding_the_button_plays_the_browsers_microphone_on_the_speaker() {
    let dir = std::env::temp_dir().join(format!("camrtc-browser-talk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let speaker = dir.join("speaker.raw");
    let wav = dir.join("tone.wav");
    write_tone_wav(&wav, 600.0, 10);
    use_file_speaker(&dir, &speaker);
    let runtime = runtime();
    runtime.block_on(async {
        init_logs();
        let mut config = demo_config(320, 240);
        config.talkback.enabled = true;
        config.talkback.device = "camrtc_speaker".to_owned();
        let daemon = Daemon::start(config).await;
        let url = daemon.url("/");
        let wav_arg = wav.to_string_lossy().into_owned();
        let output = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/talk.mjs"))
                .args(["--url", &url, "--wav", &wav_arg, "--hold-ms", "3000"])
                .output()
                .expect("node runs (scripts/install-deps.sh --test installs it)")
        })
        .await
        .expect("browser run finished");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "talk.mjs failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
        eprintln!("{report}");
        assert_eq!(report["before"]["label"], "Hold to talk");
        assert_eq!(report["during"]["state"], "talking");
        assert_eq!(report["after"]["state"], "idle", "released: {report}");
        // The player plays out what it buffered within BURST_GAP of the last packet.
        tokio::time::sleep(Duration::from_millis(500)).await;
        daemon.stop().await;
    });

    let played = played_samples(&speaker);
    eprintln!("{} samples played", played.len());
    // About three seconds were held; allow for the microphone's start and the release.
    assert!(played.len() >= 2 * 48_000, "only {} samples reached the speaker", played.len());
    assert!(
        played.len() <= 4 * 48_000,
        "{} samples: more than the button was held (the microphone played before the press?)",
        played.len()
    );
    let loud: Vec<i16> = played.iter().copied().skip_while(|s| s.unsigned_abs() < 1000).collect();
    let steady = &loud[loud.len().min(9600)..loud.len().saturating_sub(9600)];
    let hz = zero_crossing_hz(steady);
    let rms =
        (steady.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / steady.len() as f64).sqrt();
    eprintln!("browser talkback: tone {hz:.1} Hz, RMS {rms:.0}");
    assert!((hz - 600.0).abs() < 10.0, "the speaker played {hz:.1} Hz, expected 600");
    assert!(rms > 500.0, "the tone is audible, RMS {rms:.0}");
    let _ = std::fs::remove_dir_all(&dir);
}
