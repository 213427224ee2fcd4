//! The one place where errors become HTTP statuses. Every error answer is a short plain-text
//! reason, so a human with curl and the viewer page's status line both learn what went wrong.

use crate::auth::AuthError;
use crate::hub::HubError;
use crate::peer::PeerError;
use crate::talkback::owner::TalkError;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Seconds a refused viewer should wait: long enough for a page reload elsewhere to finish.
const RETRY_AFTER_SECONDS: u64 = 10;

/// Everything an API request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong credentials.
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// The request body has the wrong Content-Type.
    #[error("Content-Type must be {expected}")]
    UnsupportedMediaType { expected: &'static str },
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No session has this resource id (never existed, deleted or ended).
    #[error("no such session")]
    NotFound,
    /// As many viewers as `http.max_viewers` allows are already watching.
    #[error("too many viewers (at most {0}); try again later")]
    TooManyViewers(u32),
    /// This client creates sessions faster than `http.max_sessions_per_minute`.
    #[error("too many new sessions from this address; retry in {0} s")]
    TooFast(u64),
    /// No picture could be had (camera unavailable, or an H.264-only source); says why.
    #[error("{0}")]
    NoPicture(String),
    /// Privacy mode is on: the camera is off, so there is no picture to give.
    #[error(
        "privacy mode is on: the camera is off (POST /api/privacy {{\"enabled\": false}} to turn it back on)"
    )]
    Privacy,
    /// The privacy setting could not be changed; says why.
    #[error("{0}")]
    PrivacyNotChanged(String),
    /// The daemon is stopping and cannot take the request.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// Session creation or update failed.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// `/whep/{id}/talk` on a daemon whose `talkback.enabled` is false.
    #[error("talkback is disabled on this camera (talkback.enabled = false)")]
    TalkbackDisabled,
    /// The floor was refused (someone else is talking) or talkback has stopped.
    #[error(transparent)]
    Talk(#[from] TalkError),
}

impl From<HubError> for ApiError {
    fn from(error: HubError) -> Self {
        ApiError::Peer(PeerError::Hub(error))
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooManyViewers(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooFast(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound | ApiError::Peer(PeerError::Ended) | ApiError::TalkbackDisabled => {
                StatusCode::NOT_FOUND
            }
            ApiError::Talk(TalkError::Busy(_)) => StatusCode::CONFLICT,
            ApiError::Peer(PeerError::StaleEtag) => StatusCode::PRECONDITION_FAILED,
            ApiError::Peer(PeerError::Offer(e)) if e.is_unsupported_media() => {
                StatusCode::NOT_ACCEPTABLE
            }
            ApiError::Peer(PeerError::Offer(_) | PeerError::WebRtc(_)) => StatusCode::BAD_REQUEST,
            ApiError::Peer(PeerError::Hub(_) | PeerError::Ports(_))
            | ApiError::ShuttingDown
            | ApiError::Talk(TalkError::Stopped)
            | ApiError::NoPicture(_)
            | ApiError::Privacy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PrivacyNotChanged(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, %status, "request refused");
        }
        let mut response =
            (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{self}\n"))
                .into_response();
        let retry_after = match self {
            ApiError::TooManyViewers(_) | ApiError::Peer(PeerError::Ports(_)) => {
                Some(RETRY_AFTER_SECONDS)
            }
            ApiError::TooFast(seconds) => Some(seconds),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        if let ApiError::Unauthorized(error) = &self
            && let Some(challenge) = error.challenge()
        {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge.header_value()),
            );
        }
        response
    }
}
