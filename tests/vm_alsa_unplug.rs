//! In a VM with snd-aloop: the sound card vanishes while a viewer listens (its platform device
//! is unbound, which is what a USB microphone's removal looks like to ALSA) and comes back. The
//! video never stops, /healthz says the microphone is retrying and why, and once the card is
//! back the same viewer hears the tone again without reconnecting.

use camrtc_testkit as common;

use common::whep_client::{Event, WhepClient};
use common::{alsa, vm};
use std::time::{Duration, Instant};

const DRIVER: &str = "/sys/bus/platform/drivers/snd_aloop";

#[test]
fn vm_audio_resumes_after_the_sound_card_returns() {
    if vm::in_guest() {
        return guest();
    }
    vm::run_self_and_report(
        "vm_audio_resumes_after_the_sound_card_returns",
        Duration::from_secs(240),
    );
}

/// The next `count` audio packets, decoded; video and state events are passed over.
async fn audio_packets(client: &mut WhepClient, count: usize, limit: Duration) -> Vec<Vec<i16>> {
    let deadline = Instant::now() + limit;
    let mut packets = Vec::new();
    while packets.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only {} audio packets within {limit:?}", packets.len());
        if let Event::Audio(pcm) = client.next_event(left).await {
            packets.push(pcm);
        }
    }
    packets
}

/// Waits for a packet of audible sound (the tone, not the silence a reopened loopback capture
/// gives before anything plays into it).
async fn audible(client: &mut WhepClient, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no audible audio within {limit:?}");
        if let Event::Audio(pcm) = client.next_event(left).await
            && pcm.iter().any(|s| s.unsigned_abs() > 2000)
        {
            return;
        }
    }
}

fn guest() {
    let tone = std::path::Path::new("/tmp/tone.raw");
    alsa::write_tone(tone, 440.0, 120, 1);
    let mut player = alsa::play_into_loopback(tone, 1);
    alsa::runtime().block_on(async {
        let (daemon, mut client) = alsa::daemon_and_viewer("hw:Loopback,1,0").await;
        let first = client.collect(Duration::from_secs(60), Duration::from_secs(2)).await;
        let hz = alsa::assert_tone(&first, 440.0);
        println!("MEASURED before unplug: tone {hz:.1} Hz");

        // Unbinding waits until every handle on the card is closed, camrtc's included: from a
        // thread, so the daemon gets to notice the card is gone and close it.
        let unplugged = Instant::now();
        let unbind =
            std::thread::spawn(|| std::fs::write(format!("{DRIVER}/unbind"), "snd_aloop.0"));
        let mut health = daemon.health().await;
        while health["audio"]["state"] != "retrying" {
            assert!(unplugged.elapsed() < Duration::from_secs(10), "never retrying: {health}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            health = daemon.health().await;
        }
        println!("MEASURED unplug noticed after {:?}: {}", unplugged.elapsed(), health["audio"]);
        unbind.join().expect("unbind thread").expect("unbind the card");
        let _ = player.kill();
        let _ = player.wait();

        let during = client.collect(Duration::from_secs(10), Duration::from_secs(2)).await;
        assert!(during.frames.len() >= 5, "video goes on: {} frames in 2 s", during.frames.len());
        assert_eq!(daemon.health().await["audio"]["state"], "retrying");

        std::fs::write(format!("{DRIVER}/bind"), "snd_aloop.0").expect("bind the card again");
        let replugged = Instant::now();
        player = alsa::play_into_loopback(tone, 1);
        // Capture reopens as soon as the card's device nodes appear, usually before aplay has
        // started; the loopback gives silence until then, so "resumed" means the tone is heard.
        audible(&mut client, Duration::from_secs(15)).await;
        let resumed_after = replugged.elapsed();
        // The tone's frequency over the next 2 s, from sound packets only: under TCG, aplay
        // (started just now) underruns for a while and the loopback fills those gaps with
        // silence, which is the test rig's doing, not the capture's.
        let more = audio_packets(&mut client, 100, Duration::from_secs(15)).await;
        let sounding: Vec<&Vec<i16>> = more
            .iter()
            .filter(|packet| packet.chunks(240).all(|q| q.iter().any(|s| s.unsigned_abs() > 2000)))
            .collect();
        let crossings: usize = sounding
            .iter()
            .map(|packet| packet.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count())
            .sum();
        let samples: usize = sounding.iter().map(|packet| packet.len() - 1).sum();
        let hz = crossings as f64 / 2.0 / (samples.max(1) as f64 / 48_000.0);
        println!("MEASURED after replug: {} of {} packets sounding", sounding.len(), more.len());
        assert!(sounding.len() >= 50, "the tone is heard in at least half the packets");
        println!(
            "MEASURED audio resumed {resumed_after:?} after the card returned; tone {hz:.1} Hz"
        );
        assert!((hz - 440.0).abs() < 8.0, "tone after replug {hz:.1} Hz");
        assert_eq!(daemon.health().await["audio"]["state"], "running");
        client.close().await;
        daemon.stop().await;
    });
    let _ = player.kill();
    let _ = player.wait();
}
