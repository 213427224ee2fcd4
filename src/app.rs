//! Wiring: builds the pipeline, hub, session registry and HTTP server from a validated config,
//! and runs them until `shutdown` is cancelled. I/O comes from the caller (the listener), so
//! tests run the whole daemon on `127.0.0.1:0`.

use crate::auth::{AuthError, Authenticator};
use crate::config::{AudioSourceKind, Config, ConfigError, EchoCancellation, HttpConfig, TlsMode};
use crate::echo::{FarEndTap, far_end_channel};
use crate::encode::EncodeError;
use crate::http::server::Transport;
use crate::http::{self, AppState, tls};
use crate::hub::{self, HubSettings};
use crate::ice::IceServers;
use crate::peer::PeerSettings;
use crate::pipeline::{AudioOpener, AudioSettings, EchoSettings, ThreadedPipelineFactory};
use crate::sessions::Sessions;
use crate::source::AudioSource;
use crate::source::alsa::AlsaSource;
use crate::source::health::health_channel;
use crate::source::test_audio::TestToneSource;
use crate::talkback::owner::FloorHandle;
use crate::talkback::player::Player;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

mod video;

/// Answers wait at most this long for our own ICE candidates.
const GATHER_TIMEOUT: Duration = Duration::from_secs(1);
/// Argon2 checks running at once: one per core of a Raspberry Pi 3/4 minus one for the stream.
const PASSWORD_CHECKS_AT_ONCE: usize = 2;
/// On shutdown, sessions get this long to send their DTLS close before we exit anyway.
const SESSION_CLOSE_GRACE: Duration = Duration::from_millis(1500);

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configuration asks for something this build cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// The encoder cannot work with the configured picture size, rate or bitrate.
    #[error(transparent)]
    Encoder(#[from] EncodeError),
    /// The token store is unusable.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// HTTPS cannot be set up.
    #[error(transparent)]
    Tls(#[from] crate::http::tls::TlsError),
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
    /// The talkback player could not start (no Opus decoder, no thread).
    #[error(transparent)]
    Talkback(#[from] crate::talkback::player::PlayerError),
    /// The persisted privacy setting cannot be read.
    #[error(transparent)]
    Privacy(#[from] crate::privacy::PrivacyError),
    /// The doorbell button's GPIO line cannot be opened.
    #[error(transparent)]
    Doorbell(#[from] crate::events::doorbell::DoorbellError),
    /// The motion detector's thread cannot start.
    #[error("cannot start the motion detector: {0}")]
    Motion(std::io::Error),
}

fn audio_opener(config: &Config) -> Option<AudioOpener> {
    let audio = config.audio.clone();
    match audio.source {
        AudioSourceKind::None => None,
        AudioSourceKind::Test => {
            let tone = audio.test_tone_hz;
            Some(Arc::new(move || Ok(Box::new(TestToneSource::new(tone)) as Box<dyn AudioSource>)))
        }
        // Opened when the pipeline starts, and reopened by the audio supervisor: a microphone
        // that is missing now may be plugged in later.
        AudioSourceKind::Alsa => Some(Arc::new(move || {
            Ok(Box::new(AlsaSource::open(&audio.device)?) as Box<dyn AudioSource>)
        })),
    }
}

/// Tells the owner how to get in: the viewer URL with a freshly generated token (once, at first
/// start), or a warning when anyone on the network may watch.
fn announce_access(
    auth: &Authenticator,
    new_token: Option<&str>,
    address: SocketAddr,
    scheme: &str,
    token_file: &str,
) {
    let host = if address.ip().is_unspecified() {
        format!("<this-device>:{}", address.port())
    } else {
        address.to_string()
    };
    if let Some(token) = new_token {
        tracing::info!(
            "generated an access token (kept in {token_file}); open {scheme}://{host}/#token={token} \
             to watch. This is shown only once."
        );
    } else if !auth.is_enabled() && !address.ip().is_loopback() {
        tracing::warn!("auth.mode = \"none\": anyone who can reach {address} can watch and listen");
    }
}

/// Loads (or first generates) the certificate and keeps reloading it on SIGHUP, so a renewed
/// certificate is picked up without dropping viewers; a reload that fails keeps the old one.
async fn start_tls(
    http: &HttpConfig,
    address: SocketAddr,
    shutdown: CancellationToken,
) -> Result<Transport, AppError> {
    let paths = (PathBuf::from(&http.tls_cert), PathBuf::from(&http.tls_key));
    let mode = http.tls;
    if mode == TlsMode::Off {
        tokio::spawn(reload_on_hangup(None, shutdown));
        return Ok(Transport::Plain);
    }
    let load_paths = paths.clone();
    let identity = blocking(move || {
        let (cert, key) = &load_paths;
        if mode == TlsMode::SelfSigned {
            let names = tls::self_signed_names(&tls::host_name(), address);
            if tls::ensure_self_signed(cert, key, &names)? {
                tracing::info!(names = ?names, cert = %cert.display(), "generated a self-signed certificate");
            }
        }
        tls::load(cert, key)
    })
    .await??;
    tracing::info!(
        fingerprint = %identity.fingerprint,
        "HTTPS on; the browser shows this SHA-256 fingerprint for the certificate"
    );
    let (current, receiver) = watch::channel(identity.config);
    tokio::spawn(reload_on_hangup(Some((paths, current)), shutdown));
    Ok(Transport::Tls(receiver))
}

type TlsReload = ((PathBuf, PathBuf), watch::Sender<Arc<rustls::ServerConfig>>);

async fn reload_on_hangup(tls: Option<TlsReload>, shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    // Installed even without TLS: SIGHUP's default action would kill the daemon.
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; certificates will not be reloaded");
        return;
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            received = hangups.recv() => if received.is_none() { return },
        }
        let Some(((cert, key), current)) = &tls else {
            tracing::info!("SIGHUP: HTTPS is off, nothing to reload");
            continue;
        };
        let (cert, key) = (cert.clone(), key.clone());
        match blocking(move || tls::load(&cert, &key)).await {
            Ok(Ok(identity)) => {
                current.send_replace(identity.config);
                tracing::info!(fingerprint = %identity.fingerprint, "SIGHUP: reloaded the certificate");
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "SIGHUP: reload failed; still serving the previous certificate")
            }
            Err(error) => tracing::error!(%error, "SIGHUP: reload failed"),
        }
    }
}

/// Runs file and crypto work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::Unsupported(format!("a start-up task crashed: {e}")))
}

fn about(config: &Config) -> http::About {
    let video = &config.video;
    let audio = &config.audio;
    http::About {
        version: env!("CARGO_PKG_VERSION"),
        started: std::time::Instant::now(),
        config: serde_json::json!({
            "video": {
                "source": video.source,
                "width": video.width,
                "height": video.height,
                "fps": video.fps,
                "bitrate_kbps": video.bitrate_kbps,
            },
            "audio": (audio.source != AudioSourceKind::None).then(|| serde_json::json!({
                "source": audio.source,
                "bitrate_kbps": audio.bitrate_kbps,
            })),
        }),
        https: config.http.tls != TlsMode::Off,
        auth: match config.auth.mode {
            crate::config::AuthMode::Token => "token",
            crate::config::AuthMode::Basic => "basic",
            crate::config::AuthMode::None => "none",
        },
    }
}

/// The async runtime the daemon runs on: `pipeline.network_threads` workers, named `camrtc-rt`
/// (as are its blocking-pool threads) so `top -H` tells them from capture and encoding.
pub fn runtime(config: &Config) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.pipeline.network_threads)
        .enable_all()
        .thread_name("camrtc-rt")
        .build()
}

/// Runs the daemon on `listener` until `shutdown` is cancelled. `ready` is called once the
/// server accepts connections, with the address it listens on.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), AppError> {
    config.validate()?;
    crate::peer::rtp::media_epoch();
    let crate::auth::Loaded { authenticator: auth, new_token } = Authenticator::load(&config.auth)?;
    let events = &config.events;
    let bus = crate::events::spawn(
        crate::events::Fanout {
            public_url: events.public_url.clone(),
            webhooks: events.webhooks.clone(),
            delivery: events.delivery(),
        },
        shutdown.clone(),
    );
    let privacy_file = PathBuf::from(&config.privacy.state_file);
    let private = {
        let file = privacy_file.clone();
        blocking(move || crate::privacy::load(&file)).await??
    };
    if private {
        tracing::info!("privacy mode is on (saved): camera and microphone stay off");
    }
    let mut video = video::setup(&config.video).await?;
    if let Some(motion) = events.motion() {
        video.track.motion =
            Some(crate::events::motion::spawn(motion, bus.clone()).map_err(AppError::Motion)?);
    }
    let doorbell = match events.doorbell() {
        Some(gpio) => {
            Some(blocking(move || crate::events::doorbell::GpioLine::open(&gpio)).await??)
        }
        None => None,
    };
    let (video_health, video_health_watch) = health_channel();
    let (audio_health, audio_health_watch) = health_channel();
    let (echo, far_end_tap) = echo_settings(&config);
    let audio = audio_opener(&config).map(|open| AudioSettings {
        open,
        bitrate_kbps: config.audio.bitrate_kbps,
        health: audio_health,
        sound: events.sound().map(|sound| (sound, bus.clone())),
        echo,
    });
    let has_audio = audio.is_some();
    let wedge_video_after = crate::systemd::test_wedge_from_env().map_err(AppError::Unsupported)?;

    let video_profile = video.profile.borrow().to_owned();
    tracing::info!(
        source = ?config.video.source,
        profile_level_id = %video_profile.to_hex(),
        audio = has_audio,
        "media pipeline configured"
    );

    let bitrate = video::bitrate_limits(&config.video, &video.track.raw_encoder);
    let (hub, hub_task) = hub::spawn(
        HubSettings {
            on_demand: config.pipeline.on_demand,
            idle_stop: Duration::from_millis(u64::from(config.pipeline.idle_stop_ms)),
            viewer_queue_frames: config.pipeline.viewer_queue_frames,
            bitrate,
            private,
        },
        Box::new(ThreadedPipelineFactory {
            video: video.track,
            video_health,
            audio,
            wedge_video_after,
        }),
        shutdown.clone(),
    );
    // Detectors watch and listen while nobody else does (privacy mode still stops everything).
    let _detectors_hold =
        (events.motion.enabled || (events.sound.enabled && has_audio)).then(|| hub.hold_capture());
    if let Some(line) = doorbell {
        let debounce = Duration::from_millis(u64::from(events.doorbell.debounce_ms));
        tokio::spawn(crate::events::doorbell::run(line, debounce, bus.clone(), shutdown.clone()));
    }
    let privacy =
        crate::privacy::spawn(private, privacy_file, hub.clone(), bus.clone(), shutdown.clone());
    let sessions = Sessions::spawn(config.http.max_sessions_per_minute);
    let (talkback, player) = start_talkback(&config, far_end_tap, shutdown.clone())?;
    let peer = PeerSettings {
        include_loopback_candidates: config.webrtc.include_loopback_candidates,
        video_profile: video.profile,
        audio: has_audio,
        connect_timeout: Duration::from_millis(u64::from(config.webrtc.connect_timeout_ms)),
        gather_timeout: GATHER_TIMEOUT,
        bitrate,
        public_ips: config.webrtc.public_ips(),
        interfaces: Arc::new(crate::peer::InterfaceChoice {
            only: config.webrtc.interfaces.clone(),
            exclude: config.webrtc.exclude_interfaces.clone(),
            ipv6: config.webrtc.ipv6,
            loopback: config.webrtc.include_loopback_candidates,
        }),
        udp_ports: config.webrtc.udp_ports().map(crate::peer::nat::PortPool::new),
        ice_tcp: config.webrtc.ice_tcp,
        playout_delay_max_ms: config.webrtc.playout_delay_max_ms,
        talkback,
    };
    let state = AppState {
        hub,
        sessions: sessions.clone(),
        peer: Arc::new(peer),
        ice: Arc::new(IceServers::from_config(&config.webrtc)),
        shutdown: shutdown.clone(),
        auth: Arc::new(auth.clone()),
        password_checks: Arc::new(tokio::sync::Semaphore::new(PASSWORD_CHECKS_AT_ONCE)),
        max_viewers: config.http.max_viewers,
        cors: Arc::new(http::CorsOrigins::from_config(&config.http.cors_origins)),
        sources: http::SourceWatches {
            video: video_health_watch,
            audio: has_audio.then_some(audio_health_watch),
        },
        about: Arc::new(about(&config)),
        still: video.still,
        snapshot_quality: config.snapshot.quality,
        events: bus,
        privacy,
    };

    let address = listener.local_addr().map_err(AppError::Serve)?;
    let transport = start_tls(&config.http, address, shutdown.clone()).await?;
    let scheme = if matches!(transport, Transport::Plain) { "http" } else { "https" };
    announce_access(&auth, new_token.as_deref(), address, scheme, &config.auth.token_file);
    ready(address);
    let (alive_checks, alive) = tokio::sync::mpsc::channel(1);
    let notifier = crate::systemd::Notifier::from_env();
    if let Some(notifier) = notifier {
        // The listener is bound and everything the config names has been checked; connections
        // already queue in the backlog, so systemd may consider us up.
        notifier.ready();
        let watched = crate::systemd::Watched {
            hub: state.hub.clone(),
            sessions: sessions.clone(),
            http: alive_checks,
        };
        tokio::spawn(crate::systemd::supervise(notifier, watched, shutdown.clone()));
    } else {
        drop(alive_checks);
    }
    let limits = http::server::ServerLimits {
        max_connections: config.http.max_connections as usize,
        request_timeout: Duration::from_millis(u64::from(config.http.request_timeout_ms)),
    };
    let served = http::server::serve(
        listener,
        http::router(state),
        transport,
        limits,
        alive,
        shutdown.clone(),
    )
    .await;
    // Whatever ended the server, make sure everything else ends too.
    shutdown.cancel();
    if let Some(notifier) = notifier {
        notifier.stopping();
    }
    let deadline = tokio::time::Instant::now() + SESSION_CLOSE_GRACE;
    while sessions.count().await > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = hub_task.await;
    if let Some(player) = player {
        // Joins the playback thread once the floor task has let go of it (on `shutdown`).
        let _ = tokio::task::spawn_blocking(move || player.stop()).await;
    }
    served.map_err(AppError::Serve)
}

/// Echo control exists only with talkback (nothing else plays on the device's speaker): then
/// the channel from the talkback player to the microphone thread, unless it is switched off.
fn echo_settings(config: &Config) -> (Option<EchoSettings>, Option<FarEndTap>) {
    if !config.talkback.enabled || config.audio.echo_cancellation == EchoCancellation::Off {
        return (None, None);
    }
    let (tap, far_end) = far_end_channel();
    let settings = EchoSettings {
        mode: config.audio.echo_cancellation,
        duck_db: config.audio.duck_db,
        far_end,
    };
    (Some(settings), Some(tap))
}

/// With `talkback.enabled`: the speaker's thread and the floor task that feeds it.
fn start_talkback(
    config: &Config,
    far_end: Option<FarEndTap>,
    shutdown: CancellationToken,
) -> Result<(Option<FloorHandle>, Option<Player>), AppError> {
    if !config.talkback.enabled {
        return Ok((None, None));
    }
    let player = Player::start_with_far_end(&config.talkback, far_end)?;
    let speaker = player.sender();
    let max_talk = Duration::from_secs(u64::from(config.talkback.max_talk_s));
    let floor = crate::talkback::owner::spawn(max_talk, move |input| speaker.send(input), shutdown);
    tracing::info!(device = %config.talkback.device, "talkback enabled");
    Ok((Some(floor), Some(player)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_has_the_configured_network_threads() {
        let mut config = Config::default();
        assert_eq!(runtime(&config).expect("runtime").metrics().num_workers(), 1);
        config.pipeline.network_threads = 3;
        assert_eq!(runtime(&config).expect("runtime").metrics().num_workers(), 3);
    }
}
