//! Untrusted WHEP offers: codec choice and the profile rewrite never panic, and a rewritten
//! offer still chooses the same codecs.
#![no_main]

use camrtc_untrusted::sdp::{ProfileLevelId, choose_codecs, rewrite_h264_profile};
use libfuzzer_sys::fuzz_target;

const OURS: ProfileLevelId =
    ProfileLevelId { profile_idc: 0x42, profile_iop: 0xc0, level_idc: 0x1f };

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = std::str::from_utf8(data) else { return };
    if let Ok(choice) = choose_codecs(offer, &OURS) {
        let rewritten = rewrite_h264_profile(offer, choice.video_pt, &OURS);
        let again = choose_codecs(&rewritten, &OURS).expect("a rewritten offer stays usable");
        assert_eq!(again.video_pt, choice.video_pt);
    }
});
