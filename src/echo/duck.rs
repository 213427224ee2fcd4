//! Half-duplex ducking: while the speaker plays talkback, the outgoing microphone is turned down,
//! so the talker does not hear themselves. It costs next to nothing (for devices too slow for
//! AEC) but whoever is at the device cannot be heard while the viewer talks.

use std::time::{Duration, Instant};

/// Ducking stays on this long after the last far-end sound: the echo of a word outlasts it by
/// the room's reverberation and by any error in the speaker's play-out estimate.
pub const HOLD: Duration = Duration::from_millis(250);
/// Then the gain comes back over this long, in dB steps, so the return is not a click.
pub const RELEASE: Duration = Duration::from_millis(150);
/// A far-end frame whose RMS is below this (about -50 dBFS) is silence, comfort noise or a
/// decoder's concealment tail, not speech that would echo audibly.
pub const ACTIVITY_RMS: f64 = 100.0;

/// The gain for the microphone at `now`, given when far-end sound last played and the
/// configured attenuation. 1.0 is untouched.
pub fn duck_gain(now: Instant, last_far_end: Option<Instant>, attenuation_db: u32) -> f32 {
    let Some(last) = last_far_end else { return 1.0 };
    let since = now.saturating_duration_since(last);
    let fraction = if since <= HOLD {
        1.0
    } else if since < HOLD + RELEASE {
        1.0 - (since - HOLD).as_secs_f32() / RELEASE.as_secs_f32()
    } else {
        return 1.0;
    };
    10f32.powf(-(attenuation_db as f32) * fraction / 20.0)
}

/// Whether a far-end frame carries sound worth ducking for.
pub fn is_active(samples: &[i16]) -> bool {
    if samples.is_empty() {
        return false;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / samples.len() as f64).sqrt() >= ACTIVITY_RMS
}

/// Multiplies samples by `gain` (at most 1, so nothing clips), rounding toward zero so that
/// 96 dB, which leaves less than one step of full scale, is silence.
pub fn apply_gain(samples: &mut [i16], gain: f32) {
    if gain >= 1.0 {
        return;
    }
    for sample in samples {
        *sample = (f32::from(*sample) * gain) as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(gain: f32) -> f32 {
        20.0 * gain.log10()
    }

    #[test]
    fn untouched_without_far_end_sound() {
        let now = Instant::now();
        assert_eq!(duck_gain(now, None, 30), 1.0);
        assert_eq!(duck_gain(now + HOLD + RELEASE, Some(now), 30), 1.0);
        assert_eq!(duck_gain(now + Duration::from_secs(10), Some(now), 30), 1.0);
    }

    #[test]
    fn full_attenuation_while_playing_and_during_the_hold() {
        let t = Instant::now();
        assert!((db(duck_gain(t, Some(t), 30)) + 30.0).abs() < 0.01);
        assert!((db(duck_gain(t + HOLD, Some(t), 30)) + 30.0).abs() < 0.01);
        // A far-end frame stamped a little in the future (already written, not yet heard).
        assert!((db(duck_gain(t, Some(t + Duration::from_millis(5)), 30)) + 30.0).abs() < 0.01);
        // 96 dB is below one step of 16-bit audio: a mute.
        let mut loud = [32767i16, -32768];
        apply_gain(&mut loud, duck_gain(t, Some(t), 96));
        assert_eq!(loud, [0, 0]);
    }

    #[test]
    fn gain_returns_gradually_over_the_release() {
        let t = Instant::now();
        let halfway = duck_gain(t + HOLD + RELEASE / 2, Some(t), 30);
        assert!((db(halfway) + 15.0).abs() < 0.1, "{}", db(halfway));
        let mut previous = duck_gain(t + HOLD, Some(t), 30);
        for ms in 1..=150 {
            let gain = duck_gain(t + HOLD + Duration::from_millis(ms), Some(t), 30);
            assert!(gain >= previous);
            previous = gain;
        }
    }

    #[test]
    fn zero_db_changes_nothing() {
        let t = Instant::now();
        assert_eq!(duck_gain(t, Some(t), 0), 1.0);
    }

    #[test]
    fn activity_is_speech_level_not_comfort_noise() {
        assert!(!is_active(&[]));
        assert!(!is_active(&[30; 480]));
        assert!(is_active(&[300; 480]));
        assert!(is_active(&[-1000; 480]));
    }
}
