//! In a VM with real drivers: `camrtc devices` lists vivid's camera with its formats and the
//! snd-aloop card's capture and playback devices under names the config takes, and those names
//! open.

use camrtc_testkit as common;

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
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_camrtc"))
        .arg("devices")
        .output()
        .expect("camrtc devices runs");
    let text = String::from_utf8_lossy(&output.stdout);
    for line in text.lines() {
        println!("MEASURED {line}");
    }
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(text.contains("/dev/video0") && text.contains("vivid"), "vivid listed:\n{text}");
    for format in ["YUYV", "NV12"] {
        assert!(text.contains(format), "vivid's {format} listed:\n{text}");
    }
    for dev in [0, 1] {
        let name = format!("hw:CARD=Loopback,DEV={dev}");
        let line = text.lines().find(|line| line.trim_start().starts_with(&name));
        let line = line.unwrap_or_else(|| panic!("{name} not listed:\n{text}"));
        assert!(line.contains("capture+playback"), "{line}");
    }
    // The listed sound device name opens in camrtc's own ALSA source.
    let source = camrtc::source::alsa::AlsaSource::open("hw:CARD=Loopback,DEV=1");
    assert!(source.is_ok(), "the listed name opens: {source:?}");
}
