//! In a VM with snd-aloop: a 523 Hz stereo tone played by `aplay` into hw:Loopback,0,0 is
//! captured by camrtc's ALSA source on hw:Loopback,1,0 (the other end of the loopback cable),
//! downmixed to mono, encoded to Opus, and a WHEP viewer measures 523 Hz.

use camrtc_testkit as common;

use common::{alsa, vm};
use std::time::Duration;

const TONE_HZ: f64 = 523.0;

#[test]
fn vm_tone_through_the_alsa_loopback() {
    if vm::in_guest() {
        return guest();
    }
    vm::run_self_and_report("vm_tone_through_the_alsa_loopback", Duration::from_secs(240));
}

fn guest() {
    let tone = std::path::Path::new("/tmp/tone.raw");
    alsa::write_tone(tone, TONE_HZ, 60, 2);
    // Stereo on the playback side makes the capture side stereo too (snd-aloop matches the two
    // ends), so camrtc's downmix runs against the real driver.
    let mut player = alsa::play_into_loopback(tone, 2);

    alsa::runtime().block_on(async {
        let (daemon, mut client) = alsa::daemon_and_viewer("hw:Loopback,1,0").await;
        let received = client.collect(Duration::from_secs(60), Duration::from_secs(4)).await;
        let measured = alsa::assert_tone(&received, TONE_HZ);
        println!(
            "MEASURED ALSA loopback: {} samples in 4 s, tone {measured:.1} Hz (played {TONE_HZ} Hz), peak {}",
            received.audio.len(),
            received.audio_peak()
        );
        assert!(received.audio.len() >= 48_000 * 3, "{} samples", received.audio.len());
        let health = daemon.health().await;
        assert_eq!(health["audio"]["state"], "running", "{health}");
        client.close().await;
        daemon.stop().await;
    });
    let _ = player.kill();
    let _ = player.wait();
}
