//! Talkback playback without a sound card: a 600 Hz tone, Opus-encoded in 20 ms packets as a
//! browser sends it (two pairs swapped in transit), goes through the talkback player and lands in
//! the raw file behind an ALSA `file` playback PCM at the right frequency and volume.

use camrtc_testkit as common;

use camrtc::config::TalkbackConfig;
use camrtc::talkback::player::{Input, Player};
use common::alsa::{played_samples, use_file_speaker, zero_crossing_hz};
use std::f64::consts::TAU;
use std::time::{Duration, Instant};

#[test]
fn an_opus_tone_is_played_on_the_alsa_speaker_at_its_frequency() {
    let dir = std::env::temp_dir().join(format!("camrtc-talkback-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let outfile = dir.join("speaker.raw");
    use_file_speaker(&dir, &outfile);

    let mut encoder =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).expect("encoder");
    let peak = 0.25 * f64::from(i16::MAX);
    let mut packets = Vec::new();
    for n in 0..50u16 {
        let pcm: Vec<i16> = (0..960)
            .map(|i| {
                let t = f64::from(u32::from(n) * 960 + i) / 48_000.0;
                ((TAU * 600.0 * t).sin() * peak).round() as i16
            })
            .collect();
        let payload = encoder.encode_vec(&pcm, 4000).expect("encode");
        packets.push((n.wrapping_add(65_530), payload));
    }
    packets.swap(10, 11);
    packets.swap(30, 32);

    let config = TalkbackConfig {
        enabled: true,
        device: "camrtc_speaker".to_owned(),
        volume: 0.5,
        ..TalkbackConfig::default()
    };
    let player = Player::start(&config).expect("player");
    let sender = player.sender();
    for (seq, payload) in packets {
        assert!(sender.send(Input::Packet { seq, payload }));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sender.send(Input::End));
    drop(sender);

    let expected_bytes = 50 * 960 * 2;
    // Stopping plays out the queue and closes the device, which flushes the file plugin.
    let stopped = Instant::now();
    player.stop();
    eprintln!("player stopped {:?} after the last packet", stopped.elapsed());
    let samples = played_samples(&outfile);
    // Skip the decoder's first 100 ms, as the viewer-side checks do.
    let steady = &samples[4800..samples.len().min(expected_bytes / 2)];
    let hz = zero_crossing_hz(steady);
    let rms =
        (steady.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / steady.len() as f64).sqrt();
    eprintln!("talkback playback: {} samples, tone {hz:.1} Hz, RMS {rms:.0}", samples.len());
    assert!((hz - 600.0).abs() < 5.0, "tone played at {hz:.1} Hz, expected 600");
    // A -12 dBFS sine has an RMS of 5793; volume 0.5 halves it.
    assert!((2300.0..=3500.0).contains(&rms), "RMS {rms:.0}, expected about 2900");
    let _ = std::fs::remove_dir_all(&dir);
}
