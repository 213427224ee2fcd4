//! In a VM with snd-aloop: the sound card runs at 44.1 kHz (the playback side was started at
//! that rate, and snd-aloop holds the capture side to it), so `hw:Loopback,1,0` cannot capture
//! at 48 kHz. camrtc reopens it as `plughw:Loopback,1,0`, ALSA resamples, and a 1 kHz tone still
//! arrives at the viewer as 1 kHz.

use camrtc_testkit as common;

use common::{alsa, vm};
use std::time::Duration;

const TONE_HZ: f64 = 1000.0;

#[test]
fn vm_a_44100_hz_card_is_resampled_to_48000() {
    if vm::in_guest() {
        return guest();
    }
    vm::run_self_and_report("vm_a_44100_hz_card_is_resampled_to_48000", Duration::from_secs(240));
}

fn guest() {
    let tone = std::path::Path::new("/tmp/tone44.raw");
    alsa::write_tone_at(tone, TONE_HZ, 60, 1, 44_100);
    let mut player = alsa::play_into_loopback_at(tone, 1, 44_100);
    // The playback side must be configured before capture opens, so that it sets the rate.
    let params = "/proc/asound/Loopback/pcm0p/sub0/hw_params";
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(params).is_ok_and(|p| p.contains("rate: 44100")) {
        assert!(started.elapsed() < Duration::from_secs(20), "aplay never configured {params}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let direct = camrtc::source::alsa::AlsaSource::open("hw:Loopback,1,0").expect("opens");
    assert_eq!(direct.device(), "plughw:Loopback,1,0", "fell back to ALSA's conversion");
    drop(direct);

    alsa::runtime().block_on(async {
        let (daemon, mut client) = alsa::daemon_and_viewer("hw:Loopback,1,0").await;
        let received = client.collect(Duration::from_secs(60), Duration::from_secs(4)).await;
        let measured = alsa::assert_tone(&received, TONE_HZ);
        println!(
            "MEASURED 44.1 kHz card through plughw: {} samples in 4 s, tone {measured:.1} Hz (played {TONE_HZ} Hz)",
            received.audio.len()
        );
        assert!(received.audio.len() >= 48_000 * 3, "{} samples", received.audio.len());
        client.close().await;
        daemon.stop().await;
    });
    let _ = player.kill();
    let _ = player.wait();
}
