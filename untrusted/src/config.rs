//! The daemon's settings: TOML types with their defaults, and the checks that run once at load.
//!
//! Every error names the key it is about and, when the key is in the file, its line: the person
//! reading it is usually editing /etc/camrtc/camrtc.toml over SSH with nothing else to go on.

use serde::{Deserialize, Deserializer, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

mod events;

pub use events::{
    Bias, BiasChoice, Delivery, DoorbellConfig, EventsConfig, GpioSettings, MotionConfig,
    MotionSettings, PrivacyConfig, SoundConfig, SoundSettings,
};

/// The shipped config file: every key, set to its default, with the documentation users read.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../../config/camrtc.toml");

/// Everything camrtc can be told; each module receives only its own section. What each key means,
/// its units and allowed values are documented once, in config/camrtc.toml.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub video: VideoConfig,
    pub audio: AudioConfig,
    pub webrtc: WebRtcConfig,
    pub auth: AuthConfig,
    pub pipeline: PipelineConfig,
    pub talkback: TalkbackConfig,
    pub snapshot: SnapshotConfig,
    pub events: EventsConfig,
    pub privacy: PrivacyConfig,
}

/// `GET /snapshot.jpg`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// JPEG quality, 1 to 100.
    pub quality: u8,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self { quality: 85 }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(deserialize_with = "deserialize_socket_addr")]
    pub listen: SocketAddr,
    /// Viewer sessions allowed at once; more get 503 with Retry-After.
    pub max_viewers: u32,
    /// New sessions one client address may create a minute; faster gets 429.
    pub max_sessions_per_minute: u32,
    /// HTTP connections served at once.
    pub max_connections: u32,
    /// Time a client has to send a request's headers, and the daemon to answer it.
    pub request_timeout_ms: u32,
    /// Web origins allowed to call the API from other pages; "*" for any.
    pub cors_origins: Vec<String>,
    /// Whether the server speaks HTTPS, and where its certificate comes from.
    pub tls: TlsMode,
    /// PEM certificate chain (read with `tls = "files"`, written with `"self-signed"`).
    pub tls_cert: String,
    /// PEM private key matching `tls_cert`.
    pub tls_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain HTTP.
    #[default]
    Off,
    /// HTTPS with the certificate and key in `tls_cert` and `tls_key`, reloaded on SIGHUP.
    Files,
    /// HTTPS with a certificate generated on first start and kept in `tls_cert` and `tls_key`.
    SelfSigned,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            max_viewers: 10,
            max_sessions_per_minute: 30,
            max_connections: 64,
            request_timeout_ms: 10_000,
            cors_origins: vec!["*".to_owned()],
            tls: TlsMode::Off,
            tls_cert: "/var/lib/camrtc/tls/cert.pem".to_owned(),
            tls_key: "/var/lib/camrtc/tls/key.pem".to_owned(),
        }
    }
}

impl HttpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_range("http.max_viewers", self.max_viewers.into(), 1..=1000, false)?;
        check_range(
            "http.max_sessions_per_minute",
            self.max_sessions_per_minute.into(),
            1..=6000,
            false,
        )?;
        check_range("http.max_connections", self.max_connections.into(), 4..=10_000, false)?;
        check_range(
            "http.request_timeout_ms",
            self.request_timeout_ms.into(),
            500..=120_000,
            false,
        )?;
        for (i, origin) in self.cors_origins.iter().enumerate() {
            let web_origin = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.trim_end_matches('/').contains(['?', '#'])
                && origin.splitn(4, '/').nth(3).is_none_or(str::is_empty);
            if origin != "*" && !web_origin {
                return Err(ConfigError::invalid(
                    format!("http.cors_origins[{i}]"),
                    "must be \"*\" or an origin like \"https://dashboard.home:8123\" (no path)",
                ));
            }
        }
        if self.tls != TlsMode::Off {
            check_not_empty("http.tls_cert", &self.tls_cert)?;
            check_not_empty("http.tls_key", &self.tls_key)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoSourceKind {
    /// A camera through Video4Linux2.
    V4l2,
    /// A generated test pattern carrying a timecode.
    Test,
    /// Annex B H.264 from a command's standard output (`rpicam-vid`, ffmpeg).
    Exec,
}

/// Who turns pictures into H.264.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoEncoderKind {
    /// Passthrough when the camera offers H.264, else the V4L2 hardware encoder when there is
    /// one, else openh264.
    Auto,
    /// Software encoding with openh264.
    Openh264,
    /// The camera's own H.264, untouched.
    Passthrough,
    /// A V4L2 memory-to-memory hardware encoder (Raspberry Pi 4's bcm2835-codec).
    V4l2m2m,
}

/// Which of the camera's pixel formats to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormatChoice {
    /// The best the camera offers for the encoder in use.
    Auto,
    Yuyv,
    Uyvy,
    Nv12,
    Yu12,
    Mjpeg,
    H264,
}

/// A V4L2 control value: a number, a switch, or a menu entry by name (e.g. "50 Hz").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ControlValue {
    Bool(bool),
    Int(i64),
    Menu(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    pub source: VideoSourceKind,
    pub device: String,
    /// The command whose stdout is the H.264 stream, for `source = "exec"`.
    pub command: String,
    pub encoder: VideoEncoderKind,
    pub format: PixelFormatChoice,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Where the H.264 target starts; bandwidth adaptation then moves it within
    /// `min_bitrate_kbps..=max_bitrate_kbps`.
    pub bitrate_kbps: u32,
    /// The lowest target bandwidth adaptation may choose for the shared encoder.
    pub min_bitrate_kbps: u32,
    /// The highest target bandwidth adaptation may choose.
    pub max_bitrate_kbps: u32,
    pub keyframe_interval_ms: u32,
    /// Clockwise degrees: 0, 90, 180 or 270.
    pub rotate: u32,
    pub hflip: bool,
    pub vflip: bool,
    /// V4L2 controls by name, as `camrtc devices` lists them.
    pub controls: std::collections::BTreeMap<String, ControlValue>,
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self {
            source: VideoSourceKind::V4l2,
            device: "/dev/video0".to_owned(),
            command: "rpicam-vid -t 0 --inline --nopreview --codec h264 --profile baseline \
                      --width 1280 --height 720 --framerate 30 --intra 60 -o -"
                .to_owned(),
            encoder: VideoEncoderKind::Auto,
            format: PixelFormatChoice::Auto,
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_kbps: 2000,
            min_bitrate_kbps: 150,
            max_bitrate_kbps: 4000,
            keyframe_interval_ms: 2000,
            rotate: 0,
            hflip: false,
            vflip: false,
            controls: std::collections::BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioSourceKind {
    /// A microphone through ALSA.
    Alsa,
    /// A generated sine tone.
    Test,
    /// No audio track at all.
    None,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioConfig {
    pub source: AudioSourceKind,
    pub device: String,
    pub bitrate_kbps: u32,
    pub test_tone_hz: u32,
    pub echo_cancellation: EchoCancellation,
    pub duck_db: u32,
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            source: AudioSourceKind::Alsa,
            device: "default".to_owned(),
            bitrate_kbps: 32,
            test_tone_hz: 440,
            echo_cancellation: EchoCancellation::Aec,
            duck_db: 30,
        }
    }
}

/// What the microphone path does about talkback the device's speaker plays (`audio.echo_cancellation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EchoCancellation {
    /// WebRTC's AEC3 with the played talkback as reference: full duplex.
    Aec,
    /// Half duplex: the microphone is attenuated by `audio.duck_db` while talkback plays.
    Duck,
    /// The microphone is sent as captured.
    Off,
}

/// One entry of the browser's `RTCIceServer` list, also used by our own ICE agent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl IceServer {
    /// A `turn:` entry without its own credentials gets TURN REST credentials from
    /// `webrtc.turn_secret`, fresh for every session.
    pub fn uses_turn_rest(&self) -> bool {
        self.username.is_none()
            && self.credential.is_none()
            && self.urls.iter().any(|url| url.starts_with("turn:"))
    }
}

/// The secret shared with coturn's `static-auth-secret`. Its `Debug` form is redacted, so the
/// secret stays out of logs and panic messages that print the config.
#[derive(Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct TurnSecret(pub String);

impl TurnSecret {
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }
}

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = if self.is_set() { "<redacted>" } else { "<unset>" };
        f.debug_tuple("TurnSecret").field(&format_args!("{shown}")).finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtcConfig {
    pub ice_servers: Vec<IceServer>,
    /// Empty: TURN REST credentials are off.
    pub turn_secret: TurnSecret,
    /// How long each session's TURN REST credentials stay valid.
    pub turn_ttl_s: u32,
    pub include_loopback_candidates: bool,
    /// A viewer whose connection is not up by then is dropped and stops holding the camera.
    pub connect_timeout_ms: u32,
    /// Public addresses (a port-forwarding router's) advertised beside the host candidates.
    pub nat_1to1_ips: Vec<String>,
    /// With `udp_port_max`, the UDP ports ICE sockets use; both 0: any free port.
    pub udp_port_min: u16,
    pub udp_port_max: u16,
    /// Interfaces (by name) whose addresses become host candidates; empty: all.
    pub interfaces: Vec<String>,
    /// Interfaces never used.
    pub exclude_interfaces: Vec<String>,
    /// Also offer IPv6 host candidates.
    pub ipv6: bool,
    /// Also offer passive ICE-TCP host candidates, for viewers whose networks block UDP.
    pub ice_tcp: bool,
    /// The playout-delay maximum sent to browsers that offer the extension (minimum 0), in
    /// milliseconds; 0: not sent.
    pub playout_delay_max_ms: u32,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            turn_secret: TurnSecret::default(),
            turn_ttl_s: 86_400,
            include_loopback_candidates: false,
            connect_timeout_ms: 20_000,
            nat_1to1_ips: Vec::new(),
            udp_port_min: 0,
            udp_port_max: 0,
            interfaces: Vec::new(),
            exclude_interfaces: Vec::new(),
            ipv6: false,
            ice_tcp: false,
            playout_delay_max_ms: 100,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every API call must carry `Authorization: Bearer <token>`.
    #[default]
    Token,
    /// Every request, the viewer page included, must carry a user name and password
    /// (`Authorization: Basic`), checked against Argon2 hashes.
    Basic,
    /// Anyone who can reach the HTTP port may watch.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// SHA-256 digests of the accepted tokens, as `sha256:<64 hex digits>`.
    pub tokens: Vec<String>,
    /// Where the generated token lives when `tokens` is empty.
    pub token_file: String,
    /// Accounts for `mode = "basic"`.
    pub users: Vec<BasicUser>,
}

/// One account for Basic authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicUser {
    pub name: String,
    /// An Argon2 PHC string (`$argon2id$v=19$…`), as `camrtc hash-password` prints it.
    pub password_hash: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::Token,
            tokens: Vec::new(),
            token_file: "/var/lib/camrtc/token".to_owned(),
            users: Vec::new(),
        }
    }
}

impl AuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for (i, token) in self.tokens.iter().enumerate() {
            let key = format!("auth.tokens[{i}]");
            let hex = token.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::invalid(
                    key,
                    "must be \"sha256:\" and 64 hex digits (see `camrtc hash-token`)",
                ));
            }
        }
        if self.mode == AuthMode::Token && self.tokens.is_empty() {
            check_not_empty("auth.token_file", &self.token_file)?;
        }
        for (i, user) in self.users.iter().enumerate() {
            let key = format!("auth.users[{i}]");
            if user.name.is_empty()
                || user.name.contains(':')
                || user.name.chars().any(char::is_control)
            {
                return Err(ConfigError::invalid(
                    format!("{key}.name"),
                    "must be a non-empty name without ':' or control characters",
                ));
            }
            if self.users[..i].iter().any(|other| other.name == user.name) {
                return Err(ConfigError::invalid(format!("{key}.name"), "is listed twice"));
            }
            if !crate::auth::is_argon2_hash(&user.password_hash) {
                return Err(ConfigError::invalid(
                    format!("{key}.password_hash"),
                    "must be an Argon2 hash like \"$argon2id$v=19$…\" (see `camrtc hash-password`)",
                ));
            }
        }
        if self.mode == AuthMode::Basic && self.users.is_empty() {
            return Err(ConfigError::invalid(
                "auth.users",
                "must list at least one user when auth.mode = \"basic\"",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    pub on_demand: bool,
    pub idle_stop_ms: u32,
    pub viewer_queue_frames: usize,
    /// Threads of the async runtime, which carries every viewer's connection (WHEP, ICE, DTLS,
    /// SRTP) and the HTTP server; capture and encoding have threads of their own.
    pub network_threads: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        // One network thread: for the few viewers a doorbell has, a second one costs more in
        // wake-ups between the two than it saves (docs/PERFORMANCE.md, "Runtime threads").
        Self { on_demand: true, idle_stop_ms: 3000, viewer_queue_frames: 60, network_threads: 1 }
    }
}

/// Why a config could not be loaded. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read: missing, not permitted, or not UTF-8.
    // `error` is in the message rather than a `source`, so that chained reports do not print it twice.
    #[error("cannot read {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    /// The text is not valid TOML, so no key can be blamed; the position is where parsing failed.
    #[error("config line {line}, column {column}: invalid TOML: {message}")]
    Syntax { line: usize, column: usize, message: String },
    /// A key camrtc does not have, usually a typo; `expected` lists the keys valid in its place.
    #[error("unknown key {key} (line {line}){}", expected_suffix(.expected))]
    UnknownKey { key: String, line: usize, expected: Option<String> },
    /// A value that cannot be read as its key's type: a string where a number belongs, a name
    /// that is not one of the choices, an address that does not parse.
    #[error("{}{key}: {message}", line_prefix(.line))]
    BadValue { key: String, line: Option<usize>, message: String },
    /// A well-typed value that breaks a rule: out of range, odd, empty, wrong URL scheme,
    /// missing or forbidden credentials. `line` is `None` for configs built in code.
    #[error("{}{key} {problem}", line_prefix(.line))]
    Invalid { key: String, line: Option<usize>, problem: String },
}

fn line_prefix(line: &Option<usize>) -> String {
    line.map(|line| format!("config line {line}: ")).unwrap_or_default()
}

fn expected_suffix(expected: &Option<String>) -> String {
    expected.as_ref().map(|expected| format!("; expected {expected}")).unwrap_or_default()
}

impl ConfigError {
    fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), line: None, problem: problem.into() }
    }
}

impl Config {
    /// Parses and validates a config; on error, says which key and line are at fault.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let document = DeTable::parse(text).map_err(|error| syntax_error(text, &error))?;
        let index = KeyIndex::new(document.get_ref());
        let config = Config::deserialize(toml::de::Deserializer::from(document))
            .map_err(|error| index.deserialize_error(text, &error))?;
        config.validate().map_err(|error| index.locate(text, error))?;
        Ok(config)
    }

    /// Reads, parses and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::Read { path: path.to_owned(), error })?;
        Self::from_toml_str(&text)
    }

    /// Checks the rules types cannot express; returns the first broken one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate()?;
        self.video.validate()?;
        self.audio.validate()?;
        self.webrtc.validate()?;
        if let Some(ports) = self.webrtc.udp_ports()
            && ports.len() < self.http.max_viewers as usize
        {
            // Each viewer's ICE sockets need a port of their own (see peer/nat.rs).
            return Err(ConfigError::invalid(
                "webrtc.udp_port_max",
                format!(
                    "= {}: the range {}-{} has {} ports, fewer than http.max_viewers = {} \
                     (each viewer needs its own port)",
                    ports.end(),
                    ports.start(),
                    ports.end(),
                    ports.len(),
                    self.http.max_viewers
                ),
            ));
        }
        self.auth.validate()?;
        self.pipeline.validate()?;
        self.talkback.validate()?;
        check_range("snapshot.quality", self.snapshot.quality.into(), 1..=100, false)?;
        self.events.validate()?;
        if let (true, Some(why)) = (self.events.motion.enabled, self.video.delivers_h264()) {
            return Err(ConfigError::invalid(
                "events.motion.enabled",
                format!("= true needs raw pictures, but {why}"),
            ));
        }
        if self.events.sound.enabled && self.audio.source == AudioSourceKind::None {
            return Err(ConfigError::invalid(
                "events.sound.enabled",
                "= true needs a microphone: audio.source is \"none\"",
            ));
        }
        self.privacy.validate()
    }

    /// A config that needs no hardware: test pattern and tone, small enough for any machine, and
    /// reachable from a browser on the same host even without a network.
    pub fn demo(listen: SocketAddr) -> Config {
        Config {
            http: HttpConfig { listen, ..HttpConfig::default() },
            video: VideoConfig {
                source: VideoSourceKind::Test,
                width: 640,
                height: 480,
                fps: 30,
                bitrate_kbps: 1000,
                ..VideoConfig::default()
            },
            audio: AudioConfig { source: AudioSourceKind::Test, ..AudioConfig::default() },
            webrtc: WebRtcConfig { include_loopback_candidates: true, ..WebRtcConfig::default() },
            auth: AuthConfig { mode: AuthMode::None, ..AuthConfig::default() },
            pipeline: PipelineConfig::default(),
            talkback: TalkbackConfig::default(),
            snapshot: SnapshotConfig::default(),
            events: EventsConfig::default(),
            privacy: PrivacyConfig::default(),
        }
    }
}

impl VideoConfig {
    /// Why the video thread will see no raw pictures (which orientation and motion detection
    /// need), if it will not.
    fn delivers_h264(&self) -> Option<&'static str> {
        match self.source {
            VideoSourceKind::Exec => Some("video.source = \"exec\" delivers H.264"),
            _ if self.encoder == VideoEncoderKind::Passthrough => {
                Some("video.encoder = \"passthrough\" sends the camera's H.264 untouched")
            }
            _ => None,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        check_not_empty("video.device", &self.device)?;
        check_not_empty("video.command", &self.command)?;
        check_range("video.width", self.width.into(), 256..=1920, true)?;
        check_range("video.height", self.height.into(), 144..=1080, true)?;
        check_range("video.fps", self.fps.into(), 1..=60, false)?;
        check_range("video.bitrate_kbps", self.bitrate_kbps.into(), 100..=20_000, false)?;
        check_range("video.min_bitrate_kbps", self.min_bitrate_kbps.into(), 100..=20_000, false)?;
        check_range("video.max_bitrate_kbps", self.max_bitrate_kbps.into(), 100..=20_000, false)?;
        if self.min_bitrate_kbps > self.bitrate_kbps {
            return Err(ConfigError::invalid(
                "video.min_bitrate_kbps",
                format!(
                    "= {} must not exceed video.bitrate_kbps = {}",
                    self.min_bitrate_kbps, self.bitrate_kbps
                ),
            ));
        }
        if self.max_bitrate_kbps < self.bitrate_kbps {
            return Err(ConfigError::invalid(
                "video.max_bitrate_kbps",
                format!(
                    "= {} must not be below video.bitrate_kbps = {}",
                    self.max_bitrate_kbps, self.bitrate_kbps
                ),
            ));
        }
        check_range(
            "video.keyframe_interval_ms",
            self.keyframe_interval_ms.into(),
            250..=60_000,
            false,
        )?;
        if ![0, 90, 180, 270].contains(&self.rotate) {
            return Err(ConfigError::invalid(
                "video.rotate",
                format!("= {} must be 0, 90, 180 or 270", self.rotate),
            ));
        }
        let reorients = self.rotate != 0 || self.hflip || self.vflip;
        if let (true, Some(why)) = (reorients, self.delivers_h264()) {
            let key = if self.rotate != 0 { "video.rotate" } else { "video.hflip" };
            return Err(ConfigError::invalid(
                key,
                format!("needs raw pictures, but {why}; rotate or flip in the camera instead"),
            ));
        }
        if self.source == VideoSourceKind::Exec
            && !matches!(self.encoder, VideoEncoderKind::Auto | VideoEncoderKind::Passthrough)
        {
            return Err(ConfigError::invalid(
                "video.encoder",
                "must be \"auto\" or \"passthrough\" with source = \"exec\" (its output is H.264)",
            ));
        }
        let wants_raw =
            matches!(self.encoder, VideoEncoderKind::Openh264 | VideoEncoderKind::V4l2m2m);
        match (self.format, self.encoder) {
            (PixelFormatChoice::H264, _) if wants_raw => Err(ConfigError::invalid(
                "video.format",
                "= \"h264\" needs video.encoder = \"passthrough\" or \"auto\"",
            )),
            (f, VideoEncoderKind::Passthrough)
                if !matches!(f, PixelFormatChoice::Auto | PixelFormatChoice::H264) =>
            {
                Err(ConfigError::invalid(
                    "video.format",
                    "must be \"auto\" or \"h264\" with video.encoder = \"passthrough\"",
                ))
            }
            _ => Ok(()),
        }
    }
}

impl AudioConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_not_empty("audio.device", &self.device)?;
        check_range("audio.bitrate_kbps", self.bitrate_kbps.into(), 6..=510, false)?;
        check_range("audio.test_tone_hz", self.test_tone_hz.into(), 20..=20_000, false)?;
        // 96 dB takes full-scale 16-bit audio below one step: anything more is the same mute.
        check_range("audio.duck_db", self.duck_db.into(), 0..=96, false)
    }
}

impl WebRtcConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let turn_rest = self.turn_secret.is_set();
        for (i, server) in self.ice_servers.iter().enumerate() {
            server.validate(&format!("webrtc.ice_servers[{i}]"), turn_rest)?;
        }
        if turn_rest && !self.ice_servers.iter().any(IceServer::uses_turn_rest) {
            return Err(ConfigError::invalid(
                "webrtc.turn_secret",
                "is set but no webrtc.ice_servers entry uses it: add a turn: entry without \
                 username and credential",
            ));
        }
        // coturn refuses expired usernames even on allocation refreshes, so a session's relay
        // stops working once its credentials expire: the TTL bounds how long a viewer can watch.
        check_range("webrtc.turn_ttl_s", self.turn_ttl_s.into(), 60..=604_800, false)?;
        check_range(
            "webrtc.connect_timeout_ms",
            self.connect_timeout_ms.into(),
            1000..=120_000,
            false,
        )?;
        for (i, text) in self.nat_1to1_ips.iter().enumerate() {
            let usable = text
                .parse::<IpAddr>()
                .is_ok_and(|ip| !(ip.is_unspecified() || ip.is_loopback() || ip.is_multicast()));
            if !usable {
                return Err(ConfigError::invalid(
                    format!("webrtc.nat_1to1_ips[{i}]"),
                    format!(
                        "= {text:?} must be an IPv4 or IPv6 address such as \"203.0.113.7\" \
                         (no host names, ports, loopback or 0.0.0.0)"
                    ),
                ));
            }
        }
        for (key, names) in
            [("interfaces", &self.interfaces), ("exclude_interfaces", &self.exclude_interfaces)]
        {
            for (i, name) in names.iter().enumerate() {
                // Linux interface names: 1 to 15 bytes, no '/' and no whitespace.
                if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', '\t', '\n']) {
                    return Err(ConfigError::invalid(
                        format!("webrtc.{key}[{i}]"),
                        format!("= {name:?} is not an interface name like \"eth0\" or \"wlan0\""),
                    ));
                }
            }
        }
        // The extension carries 10 ms units, and libwebrtc renders at once only up to 500 ms.
        if self.playout_delay_max_ms != 0 {
            check_range(
                "webrtc.playout_delay_max_ms",
                self.playout_delay_max_ms.into(),
                10..=500,
                false,
            )?;
            if !self.playout_delay_max_ms.is_multiple_of(10) {
                return Err(ConfigError::invalid(
                    "webrtc.playout_delay_max_ms",
                    format!(
                        "= {} must be a multiple of 10 (the extension counts in 10 ms units),                          or 0 to not send it",
                        self.playout_delay_max_ms
                    ),
                ));
            }
        }
        match (self.udp_port_min, self.udp_port_max) {
            (0, 0) => Ok(()),
            // Named by the key that is in the file, so the error points at a line.
            (0, _) => Err(ConfigError::invalid(
                "webrtc.udp_port_max",
                "is set but webrtc.udp_port_min is not: set both (or neither: any free port)",
            )),
            (_, 0) => Err(ConfigError::invalid(
                "webrtc.udp_port_min",
                "is set but webrtc.udp_port_max is not: set both (or neither: any free port)",
            )),
            (min, max) => {
                check_range("webrtc.udp_port_min", min.into(), 1024..=65_535, false)?;
                check_range("webrtc.udp_port_max", max.into(), u64::from(min)..=65_535, false)
            }
        }
    }

    /// `nat_1to1_ips`, parsed.
    pub fn public_ips(&self) -> Vec<IpAddr> {
        let parse = |text: &String| text.parse().expect("validated at load: an IP address");
        self.nat_1to1_ips.iter().map(parse).collect()
    }

    /// The fixed UDP port range, if one is configured.
    pub fn udp_ports(&self) -> Option<RangeInclusive<u16>> {
        (self.udp_port_min != 0).then_some(self.udp_port_min..=self.udp_port_max)
    }
}

impl IceServer {
    fn validate(&self, key: &str, turn_rest: bool) -> Result<(), ConfigError> {
        if self.urls.is_empty() {
            return Err(ConfigError::invalid(format!("{key}.urls"), "must list at least one URL"));
        }
        let (mut stun, mut turn) = (false, false);
        for (j, url) in self.urls.iter().enumerate() {
            let host = match url.split_once(':') {
                Some(("stun", host)) => {
                    stun = true;
                    host
                }
                Some(("turn", host)) => {
                    turn = true;
                    host
                }
                Some(("turns", _)) => {
                    return Err(ConfigError::invalid(
                        format!("{key}.urls[{j}]"),
                        format!("= {url:?}: {UDP_ONLY_TURN}"),
                    ));
                }
                _ => {
                    return Err(ConfigError::invalid(
                        format!("{key}.urls[{j}]"),
                        format!("= {url:?} must start with stun: or turn:"),
                    ));
                }
            };
            let transport = host
                .split_once('?')
                .and_then(|(_, query)| query.split('&').find_map(|p| p.strip_prefix("transport=")));
            if transport.is_some_and(|transport| !transport.eq_ignore_ascii_case("udp")) {
                return Err(ConfigError::invalid(
                    format!("{key}.urls[{j}]"),
                    format!("= {url:?}: {UDP_ONLY_TURN}"),
                ));
            }
            if host.is_empty() {
                return Err(ConfigError::invalid(
                    format!("{key}.urls[{j}]"),
                    format!("= {url:?} needs a host after the scheme"),
                ));
            }
        }
        // TURN needs credentials and STUN must not have them, so one entry cannot serve both.
        if stun && turn {
            return Err(ConfigError::invalid(
                format!("{key}.urls"),
                "mixes stun: and turn: URLs; put them in separate entries",
            ));
        }
        if turn && turn_rest && self.uses_turn_rest() {
            return Ok(());
        }
        for (name, value) in [("username", &self.username), ("credential", &self.credential)] {
            if turn && value.as_deref().is_none_or(str::is_empty) {
                return Err(ConfigError::invalid(
                    format!("{key}.{name}"),
                    "is required for turn: URLs, unless both it and the other are left out \
                     and webrtc.turn_secret is set",
                ));
            }
            if stun && value.is_some() {
                return Err(ConfigError::invalid(
                    format!("{key}.{name}"),
                    "must not be set for stun: URLs, which take no credentials",
                ));
            }
        }
        Ok(())
    }
}

impl PipelineConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_range("pipeline.idle_stop_ms", self.idle_stop_ms.into(), 0..=600_000, false)?;
        check_range(
            "pipeline.viewer_queue_frames",
            self.viewer_queue_frames as u64,
            2..=1000,
            false,
        )?;
        check_range("pipeline.network_threads", self.network_threads as u64, 1..=16, false)
    }
}

// ---- [talkback] (two-way audio) ----

/// Sound from a viewer's microphone played on the device's speaker.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TalkbackConfig {
    /// Viewers may send their microphone ("hold to talk" on the page).
    pub enabled: bool,
    /// ALSA playback device.
    pub device: String,
    /// Gain applied to the viewer's voice: 0.0 (silent) to 4.0.
    pub volume: f64,
    /// The longest one viewer may hold the floor before being cut off.
    pub max_talk_s: u32,
    /// Sound held back before playing starts, so late packets still play in order.
    pub jitter_ms: u32,
}

impl Default for TalkbackConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            device: "default".to_owned(),
            volume: 1.0,
            max_talk_s: 60,
            jitter_ms: 60,
        }
    }
}

impl TalkbackConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_not_empty("talkback.device", &self.device)?;
        if !(0.0..=4.0).contains(&self.volume) {
            return Err(ConfigError::invalid(
                "talkback.volume",
                format!("= {} must be between 0.0 and 4.0", self.volume),
            ));
        }
        check_range("talkback.max_talk_s", self.max_talk_s.into(), 1..=3600, false)?;
        check_range("talkback.jitter_ms", self.jitter_ms.into(), 20..=1000, false)?;
        if !self.jitter_ms.is_multiple_of(20) {
            return Err(ConfigError::invalid(
                "talkback.jitter_ms",
                format!("= {} must be a multiple of 20 (one Opus packet)", self.jitter_ms),
            ));
        }
        Ok(())
    }
}

/// Checked in webrtc 0.21's TURN relayer (peer_connection/transport/turn_relayer.rs), which
/// skips secure and non-UDP TURN URLs with only a log line: accepting them here would leave a
/// viewer behind a UDP-blocking firewall without a picture and without a clue.
const UDP_ONLY_TURN: &str = "is not supported: the WebRTC stack's TURN client only speaks \
     turn: over UDP (no turns:/TLS, no ?transport=tcp); use a turn:host:port URL";

/// `even` is for picture sizes: I420 and H.264 halve both dimensions for chroma.
fn check_range(
    key: &str,
    value: u64,
    range: RangeInclusive<u64>,
    even: bool,
) -> Result<(), ConfigError> {
    if range.contains(&value) && (!even || value.is_multiple_of(2)) {
        return Ok(());
    }
    let even = if even { "even and " } else { "" };
    Err(ConfigError::invalid(
        key,
        format!("= {value} must be {even}between {} and {}", range.start(), range.end()),
    ))
}

fn check_not_empty(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::invalid(key, "must not be empty"));
    }
    Ok(())
}

/// serde's own `SocketAddr` error ("invalid socket address syntax") does not say what is
/// expected, and a host name is the usual mistake.
fn deserialize_socket_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not an ip:port address such as \"0.0.0.0:8080\" or \"[::]:8080\" \
             (host names are not accepted)"
        ))
    })
}

fn syntax_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let (line, column) = line_column(text, error.span().map_or(0, |span| span.start));
    ConfigError::Syntax { line, column, message: one_line(error.message()) }
}

/// Where each key of the parsed document sits in the text, so that errors found after
/// deserialising, which know only a byte offset or only a key, can name both key and line.
struct KeyIndex {
    entries: Vec<IndexEntry>,
}

struct IndexEntry {
    /// Dotted path as a user would write it, with `[i]` for array elements.
    path: String,
    key: Range<usize>,
    value: Range<usize>,
}

impl KeyIndex {
    fn new(document: &DeTable<'_>) -> Self {
        let mut index = Self { entries: Vec::new() };
        index.add_table("", document);
        index
    }

    fn add_table(&mut self, prefix: &str, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            let path = join_key(prefix, key.get_ref());
            self.entries.push(IndexEntry {
                path: path.clone(),
                key: key.span(),
                value: value.span(),
            });
            self.add_value(&path, value.get_ref());
        }
    }

    fn add_value(&mut self, path: &str, value: &DeValue<'_>) {
        match value {
            DeValue::Table(table) => self.add_table(path, table),
            DeValue::Array(array) => {
                for (i, element) in array.iter().enumerate() {
                    let path = format!("{path}[{i}]");
                    let span = element.span();
                    self.entries.push(IndexEntry {
                        path: path.clone(),
                        key: span.clone(),
                        value: span,
                    });
                    self.add_value(&path, element.get_ref());
                }
            }
            _ => {}
        }
    }

    /// The key whose name or value most tightly encloses `offset`.
    fn key_at(&self, offset: usize) -> Option<&str> {
        self.entries
            .iter()
            .flat_map(|entry| [(entry, &entry.key), (entry, &entry.value)])
            .filter(|(_, span)| span.contains(&offset))
            .min_by_key(|(_, span)| span.len())
            .map(|(entry, _)| entry.path.as_str())
    }

    /// Where `path` starts in the text; for a key the file left out (a missing credential), where
    /// its closest enclosing key starts, which is still the right place to look.
    fn offset_of(&self, mut path: &str) -> Option<usize> {
        loop {
            if let Some(entry) = self.entries.iter().find(|entry| entry.path == path) {
                return Some(entry.key.start);
            }
            path = &path[..path.rfind(['.', '['])?];
        }
    }

    fn deserialize_error(&self, text: &str, error: &toml::de::Error) -> ConfigError {
        let message = one_line(error.message());
        let offset = error.span().map(|span| span.start);
        let line = offset.map(|offset| line_column(text, offset).0);
        // An error no key encloses is about the document as a whole.
        let key = offset.and_then(|offset| self.key_at(offset)).unwrap_or("(top level)").to_owned();
        // serde words this error itself, so the wording is stable across formats and versions.
        if let (Some(line), Some(rest)) = (line, message.strip_prefix("unknown field ")) {
            let expected = rest.split_once(", expected ").map(|(_, expected)| expected.to_owned());
            return ConfigError::UnknownKey { key, line, expected };
        }
        ConfigError::BadValue { key, line, message }
    }

    /// Adds the line of the offending key to a validation error.
    fn locate(&self, text: &str, error: ConfigError) -> ConfigError {
        match error {
            ConfigError::Invalid { key, line: None, problem } => {
                let line = self.offset_of(&key).map(|offset| line_column(text, offset).0);
                ConfigError::Invalid { key, line, problem }
            }
            other => other,
        }
    }
}

/// Extends a dotted path, quoting keys that would not read back as one bare TOML key.
fn join_key(prefix: &str, key: &str) -> String {
    let bare =
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare { key.to_owned() } else { format!("{key:?}") };
    if prefix.is_empty() { key } else { format!("{prefix}.{key}") }
}

/// 1-based line and column (in characters) of byte `offset`; offsets past the end clamp to it.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    // Counting bytes that start a UTF-8 character needs no char boundary at `offset`.
    let column = before[line_start..].iter().filter(|&&b| b & 0xC0 != 0x80).count() + 1;
    (line, column)
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match Config::from_toml_str(text) {
            Ok(config) => panic!("accepted {text:?} as {config:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn shipped_config_and_empty_text_are_the_defaults() {
        assert_eq!(Config::from_toml_str(DEFAULT_CONFIG_TOML).unwrap(), Config::default());
        assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
        Config::default().validate().unwrap();
    }

    #[test]
    fn load_reads_the_shipped_file_and_names_a_missing_one() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/camrtc.toml");
        assert_eq!(Config::load(&shipped).unwrap(), Config::default());

        let missing = Path::new("/nonexistent/camrtc/camrtc.toml");
        let message = Config::load(missing).unwrap_err().to_string();
        assert!(message.starts_with("cannot read /nonexistent/camrtc/camrtc.toml: "), "{message}");
        assert!(message.contains("No such file or directory"), "{message}");
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let cases: &[(&str, &[&str])] = &[
            // Keys that do not exist.
            ("[videoo]\nwidth = 1\n", &["unknown key videoo (line 1)", "expected one of `http`"]),
            (
                "# comment\n[video]\nwidth = 640\ncolour = \"red\"\n",
                &["unknown key video.colour (line 4)", "`keyframe_interval_ms`"],
            ),
            ("\nvideo.colour = 1\n", &["unknown key video.colour (line 2)"]),
            (
                "[webrtc]\nice_servers = [{ urls = [\"stun:h\"], password = \"p\" }]\n",
                &["unknown key webrtc.ice_servers[0].password (line 2)", "`credential`"],
            ),
            // Values of the wrong type or not among the choices.
            ("[video]\nwidth = \"big\"\n", &["config line 2: video.width: invalid type: string"]),
            ("[video]\nfps = -5\n", &["config line 2: video.fps: invalid value: integer `-5`"]),
            ("video = 5\n", &["config line 1: video: invalid type"]),
            ("[pipeline]\non_demand = \"yes\"\n", &["config line 2: pipeline.on_demand:"]),
            (
                "[audio]\nsource = \"pulse\"\n",
                &["config line 2: audio.source: unknown variant `pulse`"],
            ),
            (
                "[audio]\necho_cancellation = \"speex\"\n",
                &["config line 2: audio.echo_cancellation: unknown variant `speex`", "`duck`"],
            ),
            ("[video]\nsource = \"usb\"\n", &["config line 2: video.source:", "`test`, `exec`"]),
            (
                "[http]\ncors_origins = [\"dashboard.home\"]\n",
                &["config line 2: http.cors_origins[0] must be \"*\" or an origin"],
            ),
            (
                "[http]\nrequest_timeout_ms = 100\n",
                &["config line 2: http.request_timeout_ms = 100 must be between 500 and 120000"],
            ),
            (
                "[http]\nmax_sessions_per_minute = 0\n",
                &["config line 2: http.max_sessions_per_minute = 0 must be between 1 and 6000"],
            ),
            (
                "[http]\nmax_viewers = 0\n",
                &["config line 2: http.max_viewers = 0 must be between 1 and 1000"],
            ),
            ("[auth]\nmode = \"open\"\n", &["config line 2: auth.mode: unknown variant `open`"]),
            (
                "[auth]\ntokens = [\"sha256:abc\"]\n",
                &["config line 2: auth.tokens[0] must be \"sha256:\" and 64 hex digits"],
            ),
            ("[auth]\ntoken_file = \"\"\n", &["config line 2: auth.token_file must not be empty"]),
            (
                "[auth]\nmode = \"basic\"\n",
                &["auth.users must list at least one user when auth.mode = \"basic\""],
            ),
            (
                "[auth]\nmode = \"basic\"\n[[auth.users]]\nname = \"a\"\npassword_hash = \"hunter2\"\n",
                &["config line 5: auth.users[0].password_hash must be an Argon2 hash"],
            ),
            (
                "[[auth.users]]\nname = \"a:b\"\npassword_hash = \"x\"\n",
                &["config line 2: auth.users[0].name must be a non-empty name without ':'"],
            ),
            (
                "[[auth.users]]\nname = \"a\"\npassword = \"x\"\n",
                &[
                    "unknown key auth.users[0].password (line 3); expected `name` or `password_hash`",
                ],
            ),
            ("[http]\ntls = \"on\"\n", &["config line 2: http.tls: unknown variant `on`"]),
            (
                "[http]\ntls = \"files\"\ntls_key = \"\"\n",
                &["config line 3: http.tls_key must not be empty"],
            ),
            ("[http]\nlisten = \"localhost:8080\"\n", &["config line 2: http.listen:", "ip:port"]),
            ("http.listen = \"0.0.0.0\"\n", &["config line 1: http.listen:", "\"0.0.0.0\""]),
            (
                "[webrtc]\nice_servers = [{ urls = \"stun:h\" }]\n",
                &["config line 2: webrtc.ice_servers[0].urls: invalid type"],
            ),
            // Well-typed values that break a rule.
            (
                "[video]\n\nwidth = 1281\n",
                &["config line 3: video.width = 1281 must be even and between 256 and 1920"],
            ),
            (
                "[video]\nwidth = 128\n",
                &["config line 2: video.width = 128 must be even and between"],
            ),
            (
                "video.height = 100\n",
                &["config line 1: video.height = 100 must be even and between 144 and 1080"],
            ),
            ("[video]\nheight = 721\n", &["config line 2: video.height = 721 must be even"]),
            ("[video]\nfps = 0\n", &["config line 2: video.fps = 0 must be between 1 and 60"]),
            (
                "[video]\nbitrate_kbps = 20001\n",
                &["config line 2: video.bitrate_kbps = 20001 must be between 100 and 20000"],
            ),
            (
                "[video]\nbitrate_kbps = 1000\nmin_bitrate_kbps = 1500\n",
                &[
                    "config line 3: video.min_bitrate_kbps = 1500 must not exceed video.bitrate_kbps = 1000",
                ],
            ),
            (
                "[video]\nmax_bitrate_kbps = 1000\n",
                &[
                    "config line 2: video.max_bitrate_kbps = 1000 must not be below video.bitrate_kbps = 2000",
                ],
            ),
            (
                "[video]\nmin_bitrate_kbps = 50\n",
                &["config line 2: video.min_bitrate_kbps = 50 must be between 100 and 20000"],
            ),
            (
                "[video]\nkeyframe_interval_ms = 249\n",
                &["config line 2: video.keyframe_interval_ms = 249 must be between 250"],
            ),
            ("[video]\ndevice = \"\"\n", &["config line 2: video.device must not be empty"]),
            (
                "[video]\nrotate = 45\n",
                &["config line 2: video.rotate = 45 must be 0, 90, 180 or 270"],
            ),
            (
                "[video]\nsource = \"exec\"\nhflip = true\n",
                &["config line 3: video.hflip needs raw pictures", "source = \"exec\""],
            ),
            (
                "[video]\nsource = \"exec\"\nencoder = \"openh264\"\n",
                &["config line 3: video.encoder must be \"auto\" or \"passthrough\""],
            ),
            (
                "[video]\nencoder = \"openh264\"\nformat = \"h264\"\n",
                &["config line 3: video.format = \"h264\" needs video.encoder"],
            ),
            ("[video]\nencoder = \"x264\"\n", &["video.encoder", "`passthrough`"]),
            ("[audio]\ndevice = \"\"\n", &["config line 2: audio.device must not be empty"]),
            (
                "[audio]\nbitrate_kbps = 5\n",
                &["config line 2: audio.bitrate_kbps = 5 must be between 6 and 510"],
            ),
            (
                "[audio]\ntest_tone_hz = 20001\n",
                &["config line 2: audio.test_tone_hz = 20001 must be between 20 and 20000"],
            ),
            (
                "[audio]\nduck_db = 97\n",
                &["config line 2: audio.duck_db = 97 must be between 0 and 96"],
            ),
            (
                "[pipeline]\nidle_stop_ms = 600001\n",
                &["config line 2: pipeline.idle_stop_ms = 600001 must be between 0 and 600000"],
            ),
            (
                "[webrtc]\nconnect_timeout_ms = 500\n",
                &["config line 2: webrtc.connect_timeout_ms = 500 must be between 1000 and 120000"],
            ),
            (
                "[snapshot]\nquality = 0\n",
                &["config line 2: snapshot.quality = 0 must be between 1 and 100"],
            ),
            (
                "[pipeline]\nviewer_queue_frames = 1\n",
                &["config line 2: pipeline.viewer_queue_frames = 1 must be between 2 and 1000"],
            ),
            (
                "[pipeline]\nnetwork_threads = 0\n",
                &["config line 2: pipeline.network_threads = 0 must be between 1 and 16"],
            ),
            (
                "[webrtc]\nice_servers = [{ urls = [\"stun:h\", \"http://h\"] }]\n",
                &[
                    "config line 2: webrtc.ice_servers[0].urls[1] = \"http://h\" must start with stun: or turn:",
                ],
            ),
            (
                "[webrtc]\nice_servers = [{ urls = [\"stun:\"] }]\n",
                &["config line 2: webrtc.ice_servers[0].urls[0] = \"stun:\" needs a host"],
            ),
            (
                "[webrtc]\nice_servers = [{ urls = [] }]\n",
                &["config line 2: webrtc.ice_servers[0].urls must list at least one URL"],
            ),
            (
                "[webrtc]\nice_servers = [{}]\n",
                &["config line 2: webrtc.ice_servers[0].urls must list"],
            ),
            (
                // The missing key is blamed on the line of the entry that lacks it.
                "[webrtc]\nice_servers = [\n  { urls = [\"stun:h\"] },\n  { urls = [\"turn:h\"], username = \"u\" },\n]\n",
                &["config line 4: webrtc.ice_servers[1].credential is required for turn: URLs"],
            ),
            (
                "[[webrtc.ice_servers]]\nurls = [\"turn:h:5349\"]\ncredential = \"\"\n",
                &["config line 1: webrtc.ice_servers[0].username is required"],
            ),
            (
                "[[webrtc.ice_servers]]\nurls = [\"turn:h\"]\n",
                &[
                    "config line 1: webrtc.ice_servers[0].username is required for turn: URLs",
                    "webrtc.turn_secret is set",
                ],
            ),
            (
                "[webrtc]\nturn_secret = \"s\"\nice_servers = [{ urls = [\"turn:h\"], username = \"u\" }]\n",
                &["config line 3: webrtc.ice_servers[0].credential is required"],
            ),
            (
                "[[webrtc.ice_servers]]\nurls = [\"turn:h\",\n  \"turns:h:5349\"]\nusername = \"u\"\ncredential = \"p\"\n",
                &[
                    "config line 3: webrtc.ice_servers[0].urls[1] = \"turns:h:5349\": is not supported",
                    "only speaks turn: over UDP",
                ],
            ),
            (
                "[webrtc]\nice_servers = [{ urls = [\"turn:h:443?transport=tcp\"], username = \"u\", credential = \"p\" }]\n",
                &[
                    "config line 2: webrtc.ice_servers[0].urls[0] = \"turn:h:443?transport=tcp\": is not supported",
                    "no ?transport=tcp",
                ],
            ),
            (
                "[webrtc]\nturn_secret = \"s\"\nice_servers = [{ urls = [\"stun:h\"] }]\n",
                &[
                    "config line 2: webrtc.turn_secret is set but no webrtc.ice_servers entry uses it",
                ],
            ),
            (
                "[webrtc]\nnat_1to1_ips = [\"203.0.113.7\",\n  \"router.example\"]\n",
                &["config line 3: webrtc.nat_1to1_ips[1] = \"router.example\" must be an IPv4"],
            ),
            (
                "[webrtc]\nnat_1to1_ips = [\"0.0.0.0\"]\n",
                &["config line 2: webrtc.nat_1to1_ips[0] = \"0.0.0.0\" must be", "no host names"],
            ),
            (
                "[webrtc]\nudp_port_max = 40009\n",
                &["config line 2: webrtc.udp_port_max is set but webrtc.udp_port_min is not"],
            ),
            (
                "[webrtc]\nudp_port_min = 40000\n",
                &["config line 2: webrtc.udp_port_min is set but webrtc.udp_port_max is not"],
            ),
            (
                "[webrtc]\nudp_port_min = 80\nudp_port_max = 90\n",
                &["config line 2: webrtc.udp_port_min = 80 must be between 1024 and 65535"],
            ),
            (
                "[webrtc]\nudp_port_min = 40010\nudp_port_max = 40000\n",
                &["config line 3: webrtc.udp_port_max = 40000 must be between 40010 and 65535"],
            ),
            (
                "[webrtc]\nudp_port_min = 40000\nudp_port_max = 40004\n",
                &[
                    "config line 3: webrtc.udp_port_max = 40004: the range 40000-40004 has 5 ports, \
                     fewer than http.max_viewers = 10",
                ],
            ),
            ("[webrtc]\nudp_port_min = 70000\n", &["config line 2: webrtc.udp_port_min"]),
            (
                "[webrtc]\ninterfaces = [\"eth0\", \"\"]\n",
                &["config line 2: webrtc.interfaces[1] = \"\" is not an interface name"],
            ),
            (
                "[webrtc]\nexclude_interfaces = [\"a/b\"]\n",
                &["config line 2: webrtc.exclude_interfaces[0] = \"a/b\" is not an interface"],
            ),
            ("[webrtc]\nipv6 = \"yes\"\n", &["config line 2: webrtc.ipv6: invalid type"]),
            (
                "[webrtc]\nturn_ttl_s = 59\n",
                &["config line 2: webrtc.turn_ttl_s = 59 must be between 60 and 604800"],
            ),
            (
                "[[webrtc.ice_servers]]\nurls = [\"turn:h\"]\nusername = \"u\"\ncredential = \"\"\n",
                &["config line 4: webrtc.ice_servers[0].credential is required"],
            ),
            (
                "[webrtc]\nice_servers = [{ urls = [\"stun:h\"],\n  username = \"u\" }]\n",
                &["config line 3: webrtc.ice_servers[0].username must not be set for stun: URLs"],
            ),
            (
                "[webrtc]\nice_servers = [{ urls = [\"stun:h\", \"turn:h\"], username = \"u\", credential = \"p\" }]\n",
                &["config line 2: webrtc.ice_servers[0].urls mixes stun: and turn: URLs"],
            ),
        ];
        for (text, expected) in cases {
            let message = error(text);
            for part in *expected {
                assert!(message.contains(part), "{text:?}\n gave {message:?}\n without {part:?}");
            }
            assert!(!message.contains('\n'), "{message:?} spans several lines");
        }
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let message = error("[video]\nwidth = 1280\nheight = \n");
        assert!(message.starts_with("config line 3, column 10: invalid TOML: "), "{message}");
        let message = error("[video\n");
        assert!(message.starts_with("config line 1, column 7: invalid TOML: "), "{message}");
        let message = error("[video]\nwidth = 640\nwidth = 480\n");
        assert!(
            message.starts_with("config line 3, column 1: invalid TOML: duplicate key"),
            "{message}"
        );
    }

    #[test]
    fn custom_config_round_trips() {
        let text = r#"
            http.listen = "[::1]:9000"
            http.max_viewers = 3
            http.max_sessions_per_minute = 5
            http.max_connections = 8
            http.request_timeout_ms = 2000
            http.cors_origins = ["https://dashboard.home:8123"]
            http.tls = "self-signed"
            http.tls_cert = "/srv/cert.pem"
            http.tls_key = "/srv/key.pem"

            [video]
            source = "test"
            device = "/dev/video2"
            command = "cat /tmp/stream.h264"
            encoder = "openh264"
            format = "nv12"
            width = 1920
            height = 1080
            fps = 60
            bitrate_kbps = 8000
            min_bitrate_kbps = 500
            max_bitrate_kbps = 9000
            keyframe_interval_ms = 1000
            rotate = 270
            hflip = true
            vflip = true

            [video.controls]
            brightness = 10
            white_balance_automatic = false
            power_line_frequency = "50 Hz"

            [audio]
            source = "none"
            device = "hw:1,0"
            bitrate_kbps = 64
            test_tone_hz = 1000
            echo_cancellation = "duck"
            duck_db = 40

            [webrtc]
            turn_secret = "north"
            turn_ttl_s = 3600
            include_loopback_candidates = true
            connect_timeout_ms = 5000
            nat_1to1_ips = ["203.0.113.7", "2001:db8::7"]
            udp_port_min = 40000
            udp_port_max = 40099
            interfaces = ["eth0", "wlan0"]
            exclude_interfaces = ["docker0"]
            ipv6 = true
            ice_tcp = true
            playout_delay_max_ms = 0

            [[webrtc.ice_servers]]
            urls = ["stun:stun.example.org:3478", "stun:[2001:db8::1]:3478"]

            [[webrtc.ice_servers]]
            urls = ["turn:turn.example.org:3478?transport=udp", "turn:[2001:db8::2]:3478"]
            username = "u"
            credential = "p"

            [[webrtc.ice_servers]]
            urls = ["turn:rest.example.org:3478"]

            [auth]
            mode = "basic"

            [[auth.users]]
            name = "grandma"
            password_hash = "$argon2id$v=19$m=19456,t=2,p=1$YWJjZGVmZ2hpamtsbW5vcA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

            [pipeline]
            on_demand = false
            idle_stop_ms = 0
            viewer_queue_frames = 2
            network_threads = 4

            [talkback]
            enabled = false
            device = "plughw:CARD=Speaker,DEV=0"
            volume = 0.5
            max_talk_s = 30
            jitter_ms = 100
            [snapshot]
            quality = 60
        "#;
        let expected = Config {
            http: HttpConfig {
                listen: "[::1]:9000".parse().unwrap(),
                max_viewers: 3,
                max_sessions_per_minute: 5,
                max_connections: 8,
                request_timeout_ms: 2000,
                cors_origins: vec!["https://dashboard.home:8123".to_owned()],
                tls: TlsMode::SelfSigned,
                tls_cert: "/srv/cert.pem".to_owned(),
                tls_key: "/srv/key.pem".to_owned(),
            },
            video: VideoConfig {
                source: VideoSourceKind::Test,
                device: "/dev/video2".to_owned(),
                command: "cat /tmp/stream.h264".to_owned(),
                encoder: VideoEncoderKind::Openh264,
                format: PixelFormatChoice::Nv12,
                width: 1920,
                height: 1080,
                fps: 60,
                bitrate_kbps: 8000,
                min_bitrate_kbps: 500,
                max_bitrate_kbps: 9000,
                keyframe_interval_ms: 1000,
                rotate: 270,
                hflip: true,
                vflip: true,
                controls: [
                    ("brightness".to_owned(), ControlValue::Int(10)),
                    ("white_balance_automatic".to_owned(), ControlValue::Bool(false)),
                    ("power_line_frequency".to_owned(), ControlValue::Menu("50 Hz".to_owned())),
                ]
                .into(),
            },
            audio: AudioConfig {
                source: AudioSourceKind::None,
                device: "hw:1,0".to_owned(),
                bitrate_kbps: 64,
                test_tone_hz: 1000,
                echo_cancellation: EchoCancellation::Duck,
                duck_db: 40,
            },
            webrtc: WebRtcConfig {
                ice_servers: vec![
                    IceServer {
                        urls: vec![
                            "stun:stun.example.org:3478".to_owned(),
                            "stun:[2001:db8::1]:3478".to_owned(),
                        ],
                        username: None,
                        credential: None,
                    },
                    IceServer {
                        urls: vec![
                            "turn:turn.example.org:3478?transport=udp".to_owned(),
                            "turn:[2001:db8::2]:3478".to_owned(),
                        ],
                        username: Some("u".to_owned()),
                        credential: Some("p".to_owned()),
                    },
                    IceServer {
                        urls: vec!["turn:rest.example.org:3478".to_owned()],
                        username: None,
                        credential: None,
                    },
                ],
                turn_secret: TurnSecret("north".to_owned()),
                turn_ttl_s: 3600,
                include_loopback_candidates: true,
                connect_timeout_ms: 5000,
                nat_1to1_ips: vec!["203.0.113.7".to_owned(), "2001:db8::7".to_owned()],
                udp_port_min: 40_000,
                udp_port_max: 40_099,
                interfaces: vec!["eth0".to_owned(), "wlan0".to_owned()],
                exclude_interfaces: vec!["docker0".to_owned()],
                ipv6: true,
                ice_tcp: true,
                playout_delay_max_ms: 0,
            },
            auth: AuthConfig {
                mode: AuthMode::Basic,
                users: vec![BasicUser {
                    name: "grandma".to_owned(),
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$YWJjZGVmZ2hpamtsbW5vcA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
                }],
                ..AuthConfig::default()
            },
            pipeline: PipelineConfig {
                on_demand: false,
                idle_stop_ms: 0,
                viewer_queue_frames: 2,
                network_threads: 4,
            },
            talkback: TalkbackConfig {
                enabled: false,
                device: "plughw:CARD=Speaker,DEV=0".to_owned(),
                volume: 0.5,
                max_talk_s: 30,
                jitter_ms: 100,
            },
            snapshot: SnapshotConfig { quality: 60 },
            events: EventsConfig::default(),
            privacy: PrivacyConfig::default(),
        };
        let config = Config::from_toml_str(text).unwrap();
        assert_eq!(config, expected);

        // Serialize must write what from_toml_str reads, e.g. for printing the effective config.
        let written = toml::to_string(&config).unwrap();
        assert_eq!(Config::from_toml_str(&written).unwrap(), expected, "{written}");
        let written = toml::to_string(&Config::default()).unwrap();
        assert_eq!(Config::from_toml_str(&written).unwrap(), Config::default(), "{written}");
    }

    #[test]
    fn talkback_values_out_of_range_name_their_key_and_line() {
        for (text, key) in [
            ("[talkback]\nvolume = 5.0\n", "talkback.volume"),
            ("[talkback]\nmax_talk_s = 0\n", "talkback.max_talk_s"),
            ("[talkback]\njitter_ms = 50\n", "talkback.jitter_ms"),
            ("[talkback]\ndevice = \"\"\n", "talkback.device"),
        ] {
            let message = Config::from_toml_str(text).unwrap_err().to_string();
            assert!(message.contains(key) && message.contains("line 2"), "{text}: {message}");
        }
        let message = Config::from_toml_str("[talkback]\nspeaker = \"x\"\n").unwrap_err();
        assert!(message.to_string().contains("speaker"), "{message}");
    }

    #[test]
    fn playout_delay_is_off_or_tens_of_milliseconds_up_to_500() {
        for ms in [0, 10, 100, 500] {
            let text = format!("[webrtc]\nplayout_delay_max_ms = {ms}\n");
            assert_eq!(Config::from_toml_str(&text).unwrap().webrtc.playout_delay_max_ms, ms);
        }
        for (ms, wanted) in [(5, "between 10 and 500"), (510, "between"), (55, "multiple of 10")] {
            let text = format!("[webrtc]\nplayout_delay_max_ms = {ms}\n");
            let message = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(
                message.contains("webrtc.playout_delay_max_ms")
                    && message.contains("line 2")
                    && message.contains(wanted),
                "{ms}: {message}"
            );
        }
    }

    #[test]
    fn turn_secret_is_redacted_in_debug_output() {
        let config = Config::from_toml_str(
            "[webrtc]\nturn_secret = \"hunter2-north\"\nice_servers = [{ urls = [\"turn:h\"] }]\n",
        )
        .unwrap();
        let printed = format!("{config:?} {config:#?}");
        assert!(!printed.contains("hunter2-north"), "{printed}");
        assert!(printed.contains("TurnSecret(<redacted>)"), "{printed}");
        assert!(format!("{:?}", TurnSecret::default()).contains("<unset>"));
    }

    #[test]
    fn demo_is_valid_and_needs_no_hardware() {
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let demo = Config::demo(listen);
        demo.validate().unwrap();
        assert_eq!(demo.http.listen, listen);
        assert_eq!(demo.video.source, VideoSourceKind::Test);
        assert_eq!((demo.video.width, demo.video.height, demo.video.fps), (640, 480, 30));
        assert_eq!(demo.video.bitrate_kbps, 1000);
        assert_eq!(demo.audio.source, AudioSourceKind::Test);
        assert!(demo.webrtc.include_loopback_candidates);
    }

    #[test]
    fn validate_works_on_configs_built_in_code() {
        let mut config = Config::default();
        config.video.width = 1281;
        let message = config.validate().unwrap_err().to_string();
        assert_eq!(message, "video.width = 1281 must be even and between 256 and 1920");
    }

    #[test]
    fn no_input_panics() {
        // Every truncation of the shipped file cuts keys, strings and tables mid-way.
        for end in
            (0..=DEFAULT_CONFIG_TOML.len()).filter(|&end| DEFAULT_CONFIG_TOML.is_char_boundary(end))
        {
            let _ = Config::from_toml_str(&DEFAULT_CONFIG_TOML[..end]);
        }
        let deep_table = format!("{} = 1\n", vec!["a"; 10_000].join("."));
        let deep_array = format!("a = {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
        for text in [
            "\u{0}",
            "\u{feff}",
            "é = 1",
            "[video]\nwidth = 1e99",
            "=",
            "[[video]]",
            &deep_table,
            &deep_array,
        ] {
            let _ = Config::from_toml_str(text);
        }
    }
}
