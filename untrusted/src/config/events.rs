//! `[events]` (sound, motion, doorbell, webhooks) and `[privacy]`.

use super::{ConfigError, check_not_empty, check_range};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Where events go and how webhooks are delivered; each detector has its own table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// How webhook receivers reach this daemon, for the snapshot URL in each event.
    pub public_url: String,
    pub webhooks: Vec<String>,
    pub webhook_timeout_ms: u32,
    pub webhook_retries: u32,
    pub webhook_backoff_ms: u32,
    pub sound: SoundConfig,
    pub motion: MotionConfig,
    pub doorbell: DoorbellConfig,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            webhooks: Vec::new(),
            webhook_timeout_ms: 5000,
            webhook_retries: 3,
            webhook_backoff_ms: 1000,
            sound: SoundConfig::default(),
            motion: MotionConfig::default(),
            doorbell: DoorbellConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoundConfig {
    pub enabled: bool,
    pub threshold_dbfs: f32,
    pub min_duration_ms: u32,
    pub hold_off_ms: u32,
}

impl Default for SoundConfig {
    fn default() -> Self {
        Self { enabled: false, threshold_dbfs: -30.0, min_duration_ms: 1000, hold_off_ms: 10_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MotionConfig {
    pub enabled: bool,
    /// Left, top, width, height as fractions of the picture.
    pub region: [f32; 4],
    pub pixel_delta: u8,
    pub min_changed_percent: f32,
    pub cooldown_ms: u32,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            region: [0.0, 0.0, 1.0, 1.0],
            pixel_delta: 25,
            min_changed_percent: 3.0,
            cooldown_ms: 10_000,
        }
    }
}

/// `events.doorbell.bias`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BiasChoice {
    AsIs,
    PullUp,
    PullDown,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DoorbellConfig {
    pub enabled: bool,
    pub chip: String,
    pub line: u32,
    pub active_low: bool,
    pub bias: BiasChoice,
    pub debounce_ms: u32,
}

impl Default for DoorbellConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            chip: "/dev/gpiochip0".to_owned(),
            line: 17,
            active_low: true,
            bias: BiasChoice::PullUp,
            debounce_ms: 50,
        }
    }
}

/// The privacy switch's persisted state.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    pub state_file: String,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self { state_file: "/var/lib/camrtc/privacy".to_owned() }
    }
}

impl PrivacyConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_not_empty("privacy.state_file", &self.state_file)
    }
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

impl EventsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.public_url.is_empty() && !is_http_url(&self.public_url, true) {
            return Err(ConfigError::invalid(
                "events.public_url",
                format!(
                    "= {:?} must be an http:// or https:// URL such as \"https://door.example:8443\", or empty",
                    self.public_url
                ),
            ));
        }
        for (i, url) in self.webhooks.iter().enumerate() {
            if !is_http_url(url, false) {
                return Err(ConfigError::invalid(
                    format!("events.webhooks[{i}]"),
                    format!(
                        "= {url:?} must be an http:// URL (webhooks are sent without TLS by this \
                         build; use a receiver on the local network)"
                    ),
                ));
            }
        }
        check_range(
            "events.webhook_timeout_ms",
            self.webhook_timeout_ms.into(),
            100..=60_000,
            false,
        )?;
        check_range("events.webhook_retries", self.webhook_retries.into(), 0..=10, false)?;
        check_range(
            "events.webhook_backoff_ms",
            self.webhook_backoff_ms.into(),
            10..=60_000,
            false,
        )?;
        let sound = &self.sound;
        if !(-100.0..=0.0).contains(&sound.threshold_dbfs) {
            return Err(ConfigError::invalid(
                "events.sound.threshold_dbfs",
                format!("= {} must be between -100.0 and 0.0", sound.threshold_dbfs),
            ));
        }
        check_range(
            "events.sound.min_duration_ms",
            sound.min_duration_ms.into(),
            20..=60_000,
            false,
        )?;
        check_range("events.sound.hold_off_ms", sound.hold_off_ms.into(), 0..=3_600_000, false)?;
        let motion = &self.motion;
        let [left, top, width, height] = motion.region;
        let fraction = |v: f32| (0.0..=1.0).contains(&v);
        if !(fraction(left)
            && fraction(top)
            && width > 0.0
            && height > 0.0
            && left + width <= 1.0 + 1e-6
            && top + height <= 1.0 + 1e-6)
        {
            return Err(ConfigError::invalid(
                "events.motion.region",
                format!(
                    "= {:?} must be [left, top, width, height] as fractions of the picture, with \
                     width and height above 0 and the rectangle inside the picture",
                    motion.region
                ),
            ));
        }
        check_range("events.motion.pixel_delta", motion.pixel_delta.into(), 1..=254, false)?;
        if !(motion.min_changed_percent > 0.0 && motion.min_changed_percent <= 100.0) {
            return Err(ConfigError::invalid(
                "events.motion.min_changed_percent",
                format!("= {} must be above 0 and at most 100", motion.min_changed_percent),
            ));
        }
        check_range("events.motion.cooldown_ms", motion.cooldown_ms.into(), 0..=3_600_000, false)?;
        check_not_empty("events.doorbell.chip", &self.doorbell.chip)?;
        check_range(
            "events.doorbell.debounce_ms",
            self.doorbell.debounce_ms.into(),
            1..=1000,
            false,
        )
    }

    pub fn delivery(&self) -> Delivery {
        Delivery {
            timeout: millis(self.webhook_timeout_ms),
            retries: self.webhook_retries,
            backoff: millis(self.webhook_backoff_ms),
        }
    }

    /// The sound detector's settings, when it is enabled.
    pub fn sound(&self) -> Option<SoundSettings> {
        self.sound.enabled.then(|| SoundSettings {
            threshold_dbfs: self.sound.threshold_dbfs,
            min_duration: millis(self.sound.min_duration_ms),
            hold_off: millis(self.sound.hold_off_ms),
        })
    }

    /// The motion detector's settings, when it is enabled.
    pub fn motion(&self) -> Option<MotionSettings> {
        self.motion.enabled.then(|| MotionSettings {
            region: self.motion.region,
            pixel_delta: self.motion.pixel_delta,
            min_changed_percent: self.motion.min_changed_percent,
            cooldown: millis(self.motion.cooldown_ms),
        })
    }

    /// The doorbell line, when the button is enabled.
    pub fn doorbell(&self) -> Option<GpioSettings> {
        let doorbell = &self.doorbell;
        doorbell.enabled.then(|| GpioSettings {
            chip: doorbell.chip.clone().into(),
            line: doorbell.line,
            active_low: doorbell.active_low,
            bias: match doorbell.bias {
                BiasChoice::AsIs => Bias::AsIs,
                BiasChoice::PullUp => Bias::PullUp,
                BiasChoice::PullDown => Bias::PullDown,
            },
        })
    }
}

fn is_http_url(text: &str, https_too: bool) -> bool {
    let Ok(url) = url::Url::parse(text) else { return false };
    let scheme_ok = url.scheme() == "http" || (https_too && url.scheme() == "https");
    scheme_ok && url.host_str().is_some_and(|h| !h.is_empty())
}

// What each detector and the webhook sender run with, derived from the tables above; the event
// modules of camrtc re-export them.

/// What counts as a sound event; from `[events.sound]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoundSettings {
    pub threshold_dbfs: f32,
    /// The level must stay above the threshold this long.
    pub min_duration: Duration,
    /// After an event, the level must stay below the threshold this long before another.
    pub hold_off: Duration,
}

/// What counts as motion; from `[events.motion]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionSettings {
    /// The watched part of the picture: left, top, width, height as fractions of the picture.
    pub region: [f32; 4],
    /// A cell changed when its brightness moved by more than this (0–255 luma steps).
    pub pixel_delta: u8,
    /// Motion when at least this share of the region's cells changed, percent.
    pub min_changed_percent: f32,
    /// After an event, this long without motion before another can fire.
    pub cooldown: Duration,
}

/// Pull resistor for the line; from `events.doorbell.bias`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bias {
    AsIs,
    PullUp,
    PullDown,
}

/// Which line, and how to read it; from `[events.doorbell]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpioSettings {
    pub chip: PathBuf,
    pub line: u32,
    pub active_low: bool,
    pub bias: Bias,
}

/// How deliveries are attempted; from `[events]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Per attempt, from connecting to the end of the answer.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// Wait before the first retry; doubled for each next one.
    pub backoff: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(5), retries: 3, backoff: Duration::from_secs(1) }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn error(text: &str) -> String {
        Config::from_toml_str(text).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn bad_event_settings_name_key_and_line() {
        let cases = [
            (
                "[events]\nwebhooks = [\"ftp://x\"]\n",
                "config line 2: events.webhooks[0] = \"ftp://x\" must be an http:// URL",
            ),
            ("[events]\nwebhooks = [\"https://x/hook\"]\n", "events.webhooks[0]"),
            (
                "[events.sound]\nthreshold_dbfs = 3.0\n",
                "config line 2: events.sound.threshold_dbfs = 3 must be between",
            ),
            (
                "[events.motion]\nregion = [0.5, 0.0, 0.6, 1.0]\n",
                "config line 2: events.motion.region",
            ),
            ("[events.motion]\nregion = [0.0, 0.0]\n", "config line 2: events.motion.region"),
            (
                "[events.motion]\nmin_changed_percent = 0.0\n",
                "events.motion.min_changed_percent = 0 must be above 0",
            ),
            (
                "[events.doorbell]\nbias = \"up\"\n",
                "config line 2: events.doorbell.bias: unknown variant `up`",
            ),
            (
                "[events.doorbell]\ndebounce_ms = 0\n",
                "events.doorbell.debounce_ms = 0 must be between 1 and 1000",
            ),
            ("[events]\npublic_url = \"door\"\n", "events.public_url"),
            ("[events.sound]\nthreshold = 1\n", "unknown key events.sound.threshold (line 2)"),
            (
                "[privacy]\nstate_file = \"\"\n",
                "config line 2: privacy.state_file must not be empty",
            ),
            (
                "[audio]\nsource = \"none\"\n[events.sound]\nenabled = true\n",
                "config line 4: events.sound.enabled = true needs a microphone",
            ),
            (
                "[video]\nencoder = \"passthrough\"\n[events.motion]\nenabled = true\n",
                "config line 4: events.motion.enabled = true needs raw pictures, but video.encoder",
            ),
        ];
        for (text, expected) in cases {
            let message = error(text);
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn webhook_urls_and_a_public_url_are_accepted() {
        let config = Config::from_toml_str(
            "[events]\npublic_url = \"https://door.example:8443/\"\nwebhooks = [\"http://192.168.1.5:8123/api/webhook/door\"]\n",
        )
        .expect("valid");
        assert_eq!(config.events.webhooks.len(), 1);
    }
}
