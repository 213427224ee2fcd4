//! HTTP: the WHEP endpoint, the embedded viewer page and health. Handlers only parse requests
//! and map results to responses; sessions and media live elsewhere.

mod error;
mod events;
pub mod metrics;
pub mod server;
pub mod tls;

pub use camrtc_untrusted::trickle;
pub use error::ApiError;

use crate::auth::{Authenticator, Principal};
use crate::config::IceServer;
use crate::hub::HubHandle;
use crate::ice::{self, IceServers};
use crate::peer::{self, PeerSettings};
use crate::sessions::{Refusal, SessionEntry, Sessions};
use crate::source::health::{HealthWatch, SourceHealth};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// The viewer page, compiled into the binary so the device serves it with nothing else installed.
pub const VIEWER_HTML: &str = include_str!("viewer.html");
/// An SDP offer is a few kilobytes; anything far larger is a mistake or an attack.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// What the handlers share. Every field is a handle to a task or immutable data.
#[derive(Clone)]
pub struct AppState {
    pub hub: HubHandle,
    pub sessions: Sessions,
    pub peer: Arc<PeerSettings>,
    /// The ICE servers, from which each session gets its own list (and credentials).
    pub ice: Arc<IceServers>,
    pub shutdown: CancellationToken,
    pub auth: Arc<Authenticator>,
    /// Password checks allowed at once (see [`authorize`]).
    pub password_checks: Arc<tokio::sync::Semaphore>,
    pub max_viewers: u32,
    pub cors: Arc<CorsOrigins>,
    pub sources: SourceWatches,
    pub about: Arc<About>,
    /// The latest raw picture the video thread produced, for `/snapshot.jpg`.
    pub still: tokio::sync::watch::Receiver<Option<Arc<crate::media::RawFrame>>>,
    /// `snapshot.quality`.
    pub snapshot_quality: u8,
    /// Where `/events` subscribes.
    pub events: crate::events::EventBus,
    /// The privacy switch's owner.
    pub privacy: crate::privacy::Privacy,
}

/// Facts about this daemon that do not change while it runs, for `/api/status` and `/metrics`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct About {
    pub version: &'static str,
    #[serde(skip)]
    pub started: std::time::Instant,
    /// What the configuration asks of the camera and encoder (`video`) and of the microphone
    /// (`audio`, null without audio). The sources' live state is in the health part.
    pub config: serde_json::Value,
    pub https: bool,
    pub auth: &'static str,
}

/// The latest state of each source, published by the threads that supervise them.
#[derive(Clone)]
pub struct SourceWatches {
    pub video: HealthWatch,
    /// None when the config has no audio track.
    pub audio: Option<HealthWatch>,
}

impl SourceWatches {
    /// Each source's current state, by track.
    pub fn snapshot(&self) -> Vec<(&'static str, SourceHealth)> {
        let video = ("video", self.video.borrow().clone());
        let audio = self.audio.iter().map(|audio| ("audio", audio.borrow().clone()));
        std::iter::once(video).chain(audio).collect()
    }
}

/// Checks the request's credentials. Password hashes take real CPU time, so those checks run on
/// the blocking pool, a few at a time: a burst of guesses delays other guesses, not the stream.
async fn authorize(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let header = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    if !state.auth.is_expensive() {
        return Ok(state.auth.check(header)?);
    }
    let header = header.map(str::to_owned);
    let _slot = state.password_checks.acquire().await.map_err(|_| ApiError::ShuttingDown)?;
    let auth = state.auth.clone();
    tokio::task::spawn_blocking(move || auth.check(header.as_deref()))
        .await
        .map_err(|_| ApiError::ShuttingDown)?
        .map_err(ApiError::from)
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(viewer_page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus_metrics))
        .route("/api/status", get(api_status))
        .route("/snapshot.jpg", get(snapshot))
        .route("/events", get(events::stream))
        .route("/api/privacy", post(events::set_privacy).get(events::get_privacy))
        .route("/whep", post(create_session).options(whep_options))
        .route(
            "/whep/{id}",
            axum::routing::patch(patch_session).delete(delete_session).options(session_options),
        )
        .route("/whep/{id}/talk", post(take_floor).delete(leave_floor).options(talk_options))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors))
        .with_state(state)
}

/// Which web pages, besides our own, may call the API from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    Only(Vec<String>),
}

impl CorsOrigins {
    pub fn from_config(origins: &[String]) -> Self {
        if origins.iter().any(|o| o == "*") {
            CorsOrigins::Any
        } else {
            CorsOrigins::Only(origins.iter().map(|o| o.trim_end_matches('/').to_owned()).collect())
        }
    }

    /// The Access-Control-Allow-Origin value for a request from `origin`, if it is allowed.
    fn allow(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match self {
            CorsOrigins::Any => Some(HeaderValue::from_static("*")),
            CorsOrigins::Only(list) => {
                let origin = origin?;
                let text = origin.to_str().ok()?;
                list.iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(text))
                    .then(|| origin.clone())
            }
        }
    }
}

/// Pages served from elsewhere (a home dashboard, a WHEP player) may call the API when
/// `http.cors_origins` allows them; credentials are still required. Our own OPTIONS handlers
/// answer preflights, because WHEP also uses OPTIONS for discovery (Accept-Post, ICE servers),
/// which a generic CORS layer would swallow.
async fn cors(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let allowed = state.cors.allow(request.headers().get(header::ORIGIN));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Some(allowed) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Location, Link, ETag, Accept-Post, Accept-Patch"),
        );
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

fn preflight(methods: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ALLOW, HeaderValue::from_static(methods));
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization, If-Match"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    headers
}

async fn session_options() -> Response {
    let mut headers = preflight("PATCH, DELETE, OPTIONS");
    headers.insert(HeaderName::from_static("accept-patch"), HeaderValue::from_static(SDPFRAG));
    (StatusCode::NO_CONTENT, headers).into_response()
}

/// With Basic auth the page itself is protected, so the browser asks for the password once and
/// then sends it with every API call the page makes.
async fn viewer_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if state.auth.protects_page() {
        authorize(&state, &headers).await?;
    }
    Ok(([(header::CACHE_CONTROL, "no-cache")], Html(VIEWER_HTML)))
}

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
    sessions: usize,
    video: SourceHealth,
    /// Absent without an audio track.
    #[serde(skip_serializing_if = "Option::is_none")]
    audio: Option<SourceHealth>,
    #[serde(flatten)]
    hub: crate::hub::HubStatus,
}

async fn healthz(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Health>, ApiError> {
    authorize(&state, &headers).await?;
    let hub = state.hub.status().await?;
    let video = state.sources.video.borrow().clone();
    let audio = state.sources.audio.as_ref().map(|a| a.borrow().clone());
    let failing = |h: &SourceHealth| h.error.is_some();
    let degraded =
        hub.last_pipeline_error.is_some() || failing(&video) || audio.as_ref().is_some_and(failing);
    let status = if degraded { "degraded" } else { "ok" };
    Ok(Json(Health { status, sessions: state.sessions.count().await, video, audio, hub }))
}

/// Prometheus scrape: authenticated like every API (Prometheus sends a bearer token with
/// `authorization: { credentials: … }`).
async fn prometheus_metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers).await?;
    let hub = state.hub.status().await?;
    let snapshot = metrics::Snapshot {
        hub,
        sessions: state.sessions.count().await,
        sources: state.sources.snapshot(),
    };
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], metrics::render(snapshot)).into_response())
}

#[derive(serde::Serialize)]
struct Status {
    #[serde(flatten)]
    about: About,
    uptime_seconds: u64,
    #[serde(flatten)]
    health: Health,
    talkback: TalkbackStatus,
}

/// Whether viewers may talk, and whether one is: pages show "someone is talking" from it.
#[derive(serde::Serialize)]
struct TalkbackStatus {
    enabled: bool,
    #[serde(flatten)]
    floor: Option<crate::talkback::owner::FloorStatus>,
}

/// Everything `/healthz` says plus what the daemon is configured to do and for how long it has
/// been up: one document for a person with curl, a dashboard, or the viewer page.
async fn api_status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Status>, ApiError> {
    let Json(health) = healthz(State(state.clone()), headers).await?;
    let uptime_seconds = state.about.started.elapsed().as_secs();
    let floor = match &state.peer.talkback {
        Some(floor) => Some(floor.status().await?),
        None => None,
    };
    let talkback = TalkbackStatus { enabled: floor.is_some(), floor };
    Ok(Json(Status { about: About::clone(&state.about), uptime_seconds, health, talkback }))
}

/// How old the latest picture may be to be served as is; older, the request waits for the next.
const SNAPSHOT_FRESH: std::time::Duration = std::time::Duration::from_millis(500);
/// How long a snapshot waits for capture to deliver (on demand, the camera starts first).
const SNAPSHOT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The latest picture as a JPEG. With nobody watching, capture is started for it and stops again
/// after `pipeline.idle_stop_ms`.
async fn snapshot(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&state, &headers).await?;
    if state.privacy.enabled() {
        return Err(ApiError::Privacy);
    }
    let _hold = state.hub.hold_capture();
    let mut still = state.still.clone();
    let fresh = |frame: &Option<Arc<crate::media::RawFrame>>| {
        frame.as_ref().is_some_and(|f| f.captured.instant.elapsed() < SNAPSHOT_FRESH)
    };
    let frame = tokio::time::timeout(SNAPSHOT_WAIT, still.wait_for(fresh))
        .await
        .map_err(|_| {
            let video = state.sources.video.borrow().clone();
            let why = video.error.unwrap_or_else(|| {
                "the video source delivered no raw picture (H.264 sources cannot be snapshotted yet)"
                    .to_owned()
            });
            ApiError::NoPicture(format!("no picture within {} s: {why}", SNAPSHOT_WAIT.as_secs()))
        })?
        .map_err(|_| ApiError::ShuttingDown)?
        .clone()
        .expect("wait_for returned a value the predicate accepted, which is Some");
    let quality = state.snapshot_quality;
    let jpeg = tokio::task::spawn_blocking(move || crate::snapshot::jpeg_of(&frame, quality))
        .await
        .map_err(|_| ApiError::ShuttingDown)?
        .map_err(|e| ApiError::NoPicture(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "no-store")], jpeg)
        .into_response())
}

/// Preflight and WHEP discovery: which body type POST takes, and the ICE servers (so a page can
/// configure its peer connection before making the offer). TURN REST credentials handed out
/// here are fresh too; the page uses them for its own relay allocation.
async fn whep_options(State(state): State<AppState>) -> Response {
    let mut headers = preflight("POST, OPTIONS");
    headers.insert(HeaderName::from_static("accept-post"), HeaderValue::from_static(SDP));
    for link in ice_server_links(&state.ice.for_session(SystemTime::now())) {
        headers.append(header::LINK, link);
    }
    (StatusCode::NO_CONTENT, headers).into_response()
}

fn require_content_type(headers: &HeaderMap, expected: &'static str) -> Result<(), ApiError> {
    let actual = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = actual.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType { expected })
    }
}

async fn create_session(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let owner = authorize(&state, &headers).await?;
    require_content_type(&headers, SDP)?;
    let offer = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the offer is not UTF-8 text".into()))?;
    if offer.trim().is_empty() {
        return Err(ApiError::BadRequest("the offer is empty".into()));
    }
    let reservation =
        state.sessions.reserve(state.max_viewers as usize, client.ip()).await.map_err(
            |refusal| match refusal {
                Refusal::Full => ApiError::TooManyViewers(state.max_viewers),
                Refusal::TooFast(wait) => ApiError::TooFast(wait.as_secs().max(1)),
            },
        )?;
    let id = random_token();
    let sessions = state.sessions.clone();
    let ended_id = id.clone();
    // The daemon's agent and the viewer get the same fresh credentials for this session.
    let ice_servers = state.ice.for_session(SystemTime::now());
    let talker = rand::random();
    let peer::Created { handle, answer, etag, receives_talk } = peer::create_session(
        offer,
        talker,
        &state.peer,
        ice::to_rtc(&ice_servers),
        state.hub.clone(),
        state.shutdown.child_token(),
        move |_end| {
            tokio::spawn(async move {
                sessions.remove(&ended_id).await;
            });
        },
    )
    .await?;
    reservation.insert(id.clone(), SessionEntry { handle, owner, talker, receives_talk });

    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    headers.insert(header::LOCATION, header_value(&format!("/whep/{id}"))?);
    headers.insert(header::ETAG, header_value(&etag)?);
    headers.insert(HeaderName::from_static("accept-patch"), HeaderValue::from_static(SDPFRAG));
    for link in ice_server_links(&ice_servers) {
        headers.append(header::LINK, link);
    }
    Ok(response)
}

/// Trickle ICE (204) or, when the fragment carries new ICE credentials, an ICE restart (200 with
/// our new credentials and candidates, and a new ETag). The session checks If-Match, because
/// the entity tag changes with every restart and the session owns it.
async fn patch_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let principal = authorize(&state, &headers).await?;
    let entry = state.sessions.get_owned(&id, principal).await.ok_or(ApiError::NotFound)?;
    require_content_type(&headers, SDPFRAG)?;
    let if_match = headers.get(header::IF_MATCH).map(|v| v.to_str().unwrap_or("").to_owned());
    let fragment =
        trickle::parse_sdpfrag(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let patched = entry.handle.patch(if_match, fragment.credentials, fragment.candidates).await?;
    Ok(match patched {
        peer::Patched::Trickled => StatusCode::NO_CONTENT.into_response(),
        peer::Patched::Restarted { fragment, etag } => {
            let headers = [
                (header::CONTENT_TYPE, HeaderValue::from_static(SDPFRAG)),
                (header::ETAG, header_value(&etag)?),
            ];
            (StatusCode::OK, headers, fragment).into_response()
        }
    })
}

async fn delete_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let principal = authorize(&state, &headers).await?;
    let entry = state.sessions.remove_owned(&id, principal).await.ok_or(ApiError::NotFound)?;
    entry.handle.close().await;
    Ok(StatusCode::OK)
}

async fn talk_options() -> Response {
    (StatusCode::NO_CONTENT, preflight("POST, DELETE, OPTIONS")).into_response()
}

/// The session's floor and the session itself, checked like PATCH and DELETE check them.
async fn session_floor(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
) -> Result<(crate::talkback::owner::FloorHandle, SessionEntry), ApiError> {
    let principal = authorize(state, headers).await?;
    let floor = state.peer.talkback.clone().ok_or(ApiError::TalkbackDisabled)?;
    let entry = state.sessions.get_owned(id, principal).await.ok_or(ApiError::NotFound)?;
    Ok((floor, entry))
}

/// "Hold to talk" pressed: 200 with the seconds the turn may last, or 409 when someone else is
/// talking. The viewer's audio reaches the speaker only while it holds the floor.
async fn take_floor(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (floor, entry) = session_floor(&state, &id, &headers).await?;
    if !entry.receives_talk {
        // Holding the floor without sending anything would only silence everyone else.
        return Err(ApiError::BadRequest(
            "this session did not offer a microphone (its audio section is not sendrecv)".into(),
        ));
    }
    let granted = floor.request(entry.talker).await?;
    Ok(Json(serde_json::json!({ "seconds_left": granted.as_secs() })).into_response())
}

/// "Hold to talk" released. Says whether this session held the floor (it may have been cut off
/// by `talkback.max_talk_s` already).
async fn leave_floor(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (floor, entry) = session_floor(&state, &id, &headers).await?;
    let held = floor.release(entry.talker).await?;
    Ok(Json(serde_json::json!({ "held": held })).into_response())
}

fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text).map_err(|_| ApiError::BadRequest("unrepresentable header".into()))
}

/// 128 random bits, hex: session resource ids must be unguessable.
fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Link` header values announcing ICE servers, as the WHEP draft specifies.
pub fn ice_server_links(servers: &[IceServer]) -> Vec<HeaderValue> {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    servers
        .iter()
        .flat_map(|server| {
            server.urls.iter().map(move |url| {
                let mut link = format!("<{url}>; rel=\"ice-server\"");
                if let (Some(username), Some(credential)) = (&server.username, &server.credential) {
                    link.push_str(&format!(
                        "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                        quote(username),
                        quote(credential)
                    ));
                }
                link
            })
        })
        .filter_map(|link| HeaderValue::from_str(&link).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ice_servers_become_link_headers_with_credentials() {
        let servers = vec![
            IceServer { urls: vec!["stun:h:3478".into()], username: None, credential: None },
            IceServer {
                urls: vec!["turn:h:3478".into(), "turn:h:3479".into()],
                username: Some("u".into()),
                credential: Some("p\"q".into()),
            },
        ];
        let links: Vec<String> = ice_server_links(&servers)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect();
        assert_eq!(
            links,
            vec![
                "<stun:h:3478>; rel=\"ice-server\"".to_owned(),
                "<turn:h:3478>; rel=\"ice-server\"; username=\"u\"; credential=\"p\\\"q\"; credential-type=\"password\"".to_owned(),
                "<turn:h:3479>; rel=\"ice-server\"; username=\"u\"; credential=\"p\\\"q\"; credential-type=\"password\"".to_owned(),
            ]
        );
    }

    #[test]
    fn content_type_parameters_and_case_are_tolerated() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/SDP; charset=utf-8"),
        );
        assert!(require_content_type(&headers, SDP).is_ok());
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(require_content_type(&headers, SDP).is_err());
    }
}
