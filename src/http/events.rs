//! `GET /events` (Server-Sent Events) and the privacy switch, `GET`/`POST /api/privacy`.

use super::{ApiError, AppState, authorize};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::time::Duration;

/// Comments sent on an idle stream, so proxies and NAT boxes keep the connection open and a
/// dead one is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PrivacySetting {
    enabled: bool,
}

/// Every event from now on, as `event: <kind>` with the event's JSON as data. The first message
/// is `event: state` with the current privacy setting, so a page knows where it stands at once.
pub(super) async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers).await?;
    let events = state.events.subscribe().await.ok_or(ApiError::ShuttingDown)?;
    let current = serde_json::json!({ "privacy": state.privacy.enabled() }).to_string();
    let first = SseEvent::default().event("state").data(current);
    let following = futures_util::stream::unfold(events, |mut events| async move {
        let event = events.recv().await?;
        let data = serde_json::to_string(&*event).unwrap_or_default();
        Some((SseEvent::default().event(event.kind.name()).data(data), events))
    });
    let all = futures_util::StreamExt::map(
        futures_util::StreamExt::chain(futures_util::stream::iter([first]), following),
        Ok::<_, Infallible>,
    );
    Ok(Sse::new(all).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

pub(super) async fn get_privacy(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<PrivacySetting>, ApiError> {
    authorize(&state, &headers).await?;
    Ok(Json(PrivacySetting { enabled: state.privacy.enabled() }))
}

/// `{"enabled": true}` stops capture entirely (camera and microphone closed) until
/// `{"enabled": false}`; the setting is saved first and survives restarts.
pub(super) async fn set_privacy(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PrivacySetting>, ApiError> {
    authorize(&state, &headers).await?;
    let wanted: PrivacySetting = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"enabled\": true}} or {{\"enabled\": false}}: {e}"
        ))
    })?;
    state.privacy.set(wanted.enabled).await.map_err(|e| match e {
        crate::privacy::PrivacyError::Stopped => ApiError::ShuttingDown,
        other => ApiError::PrivacyNotChanged(other.to_string()),
    })?;
    Ok(Json(PrivacySetting { enabled: state.privacy.enabled() }))
}
