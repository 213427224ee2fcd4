//! In a VM with real drivers: the ALSA device listing (what `camrtc devices` shows) finds the
//! snd-aloop card with its capture and playback devices, and vivid's cameras are present.

mod common;

use common::vm;
use std::time::Duration;

#[test]
fn vm_lists_the_loopback_card_and_vivid() {
    if vm::in_guest() {
        return guest();
    }
    vm::run_self_and_report("vm_lists_the_loopback_card_and_vivid", Duration::from_secs(180));
}

fn guest() {
    let devices = camrtc::source::alsa::devices::list().expect("ALSA devices can be listed");
    let text = camrtc::source::alsa::devices::format(&devices);
    for line in text.lines() {
        println!("MEASURED {line}");
    }
    for dev in [0, 1] {
        let name = format!("hw:CARD=Loopback,DEV={dev}");
        let pcm = devices.cards.iter().find(|pcm| pcm.name == name);
        let pcm = pcm.unwrap_or_else(|| panic!("{name} not listed:\n{text}"));
        assert!(pcm.capture && pcm.playback, "{name} is both directions: {pcm:?}");
        assert_eq!(pcm.card_name, "Loopback");
    }
    // The listed names open: the first capture device through camrtc's own ALSA source.
    let source = camrtc::source::alsa::AlsaSource::open("hw:CARD=Loopback,DEV=1");
    assert!(source.is_ok(), "the listed name opens: {source:?}");

    let cameras = std::process::Command::new("v4l2-ctl").arg("--list-devices").output();
    let cameras = cameras.expect("v4l2-ctl runs (v4l-utils)");
    let cameras = String::from_utf8_lossy(&cameras.stdout);
    println!("MEASURED {}", cameras.replace('\n', "\nMEASURED "));
    assert!(cameras.contains("vivid") && cameras.contains("/dev/video0"), "{cameras}");
}
