//! Events: sound, motion, the doorbell button and the privacy switch, told to whoever listens.
//!
//! Detectors live where their data is (the audio thread, a motion thread fed by the video
//! thread, a task reading the GPIO line) and publish with `try_send`, never waiting. One task
//! owns the subscriber list and fans every event out to `GET /events` streams (Server-Sent
//! Events, which the viewer page reads) and to the configured webhooks.

pub mod doorbell;
pub mod motion;
pub mod sound;
pub mod webhook;

use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Events waiting for the owner task; detectors drop (and count) events beyond it.
const BUS_QUEUE: usize = 64;
/// Events queued per `/events` stream; a stream that falls this far behind loses events.
const SUBSCRIBER_QUEUE: usize = 32;
/// Webhook deliveries in flight at once; an event storm beyond it is dropped, not queued forever.
const MAX_DELIVERIES: usize = 16;
/// The path of the picture a webhook receiver can fetch (with credentials) to see what happened.
pub const SNAPSHOT_PATH: &str = "/snapshot.jpg";

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The microphone's level stayed above `events.sound.threshold_dbfs`.
    Sound { level_dbfs: f32 },
    /// Part of the watched region changed.
    Motion { changed_percent: f32 },
    /// The doorbell button was pressed.
    Doorbell,
    /// The privacy switch was turned on (camera and microphone off) or off.
    Privacy { enabled: bool },
}

impl EventKind {
    /// The SSE event name: `sound`, `motion`, `doorbell` or `privacy`.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Sound { .. } => "sound",
            EventKind::Motion { .. } => "motion",
            EventKind::Doorbell => "doorbell",
            EventKind::Privacy { .. } => "privacy",
        }
    }
}

/// One event as `/events` and webhooks deliver it (JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(flatten)]
    pub kind: EventKind,
    /// When it happened, RFC 3339 in UTC.
    pub time: String,
    /// The same moment in Unix milliseconds.
    pub unix_ms: u64,
    /// Where to fetch a picture of it; absent for privacy events (the camera is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_url: Option<String>,
}

impl Event {
    /// `public_url` (`events.public_url`) makes the snapshot URL absolute for webhook receivers.
    pub fn new(kind: EventKind, at: SystemTime, public_url: &str) -> Self {
        let since_epoch = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let time = time::OffsetDateTime::from(at)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| since_epoch.as_secs().to_string());
        let snapshot_url = (!matches!(kind, EventKind::Privacy { .. }))
            .then(|| format!("{}{SNAPSHOT_PATH}", public_url.trim_end_matches('/')));
        Self { kind, time, unix_ms: since_epoch.as_millis() as u64, snapshot_url }
    }
}

enum Message {
    Publish(EventKind, SystemTime),
    Subscribe(oneshot::Sender<mpsc::Receiver<Arc<Event>>>),
}

/// The handle detectors and HTTP handlers hold. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct EventBus {
    tx: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

impl EventBus {
    /// Hands an event to the owner task without waiting; if the owner is behind, the event is
    /// dropped and counted (a detector thread must never stall on it).
    pub fn publish(&self, kind: EventKind) {
        tracing::info!(event = kind.name(), ?kind, "event");
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.tx.try_send(Message::Publish(kind, SystemTime::now()))
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A stream of every event from now on; `None` once the daemon is stopping.
    pub async fn subscribe(&self) -> Option<mpsc::Receiver<Arc<Event>>> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Message::Subscribe(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Events lost because the owner task was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Where events go besides `/events`; from `[events]`.
#[derive(Debug, Clone)]
pub struct Fanout {
    pub public_url: String,
    pub webhooks: Vec<String>,
    pub delivery: webhook::Delivery,
}

impl Fanout {
    /// Events for `/events` streams only: no webhooks.
    pub fn streams_only() -> Self {
        Self {
            public_url: String::new(),
            webhooks: Vec::new(),
            delivery: webhook::Delivery::default(),
        }
    }
}

/// Starts the owner task; it ends with `shutdown`.
pub fn spawn(fanout: Fanout, shutdown: CancellationToken) -> EventBus {
    let (tx, rx) = mpsc::channel(BUS_QUEUE);
    tokio::spawn(run(fanout, rx, shutdown));
    EventBus { tx, dropped: Arc::new(AtomicU64::new(0)) }
}

async fn run(fanout: Fanout, mut messages: mpsc::Receiver<Message>, shutdown: CancellationToken) {
    let mut subscribers: Vec<mpsc::Sender<Arc<Event>>> = Vec::new();
    let deliveries = Arc::new(tokio::sync::Semaphore::new(MAX_DELIVERIES));
    let client = webhook::client(&fanout.delivery);
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return,
            message = messages.recv() => match message { Some(m) => m, None => return },
        };
        match message {
            Message::Subscribe(reply) => {
                let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
                if reply.send(rx).is_ok() {
                    subscribers.push(tx);
                }
            }
            Message::Publish(kind, at) => {
                let event = Arc::new(Event::new(kind, at, &fanout.public_url));
                subscribers.retain(|subscriber| match subscriber.try_send(event.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(
                            event = event.kind.name(),
                            "an /events reader is not keeping up; event skipped for it"
                        );
                        true
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
                let Some(client) = &client else { continue };
                let body = match serde_json::to_vec(&*event) {
                    Ok(body) => bytes::Bytes::from(body),
                    Err(error) => {
                        tracing::error!(%error, "cannot serialise an event");
                        continue;
                    }
                };
                for url in &fanout.webhooks {
                    let Ok(slot) = deliveries.clone().try_acquire_owned() else {
                        tracing::warn!(
                            url,
                            event = event.kind.name(),
                            "too many webhook deliveries in flight; event not sent"
                        );
                        continue;
                    };
                    let (client, url, body, delivery) =
                        (client.clone(), url.clone(), body.clone(), fanout.delivery);
                    let stop = shutdown.clone();
                    tokio::spawn(async move {
                        let _slot = slot;
                        tokio::select! {
                            () = stop.cancelled() => {}
                            result = webhook::deliver(&client, &url, body, delivery) => {
                                if let Err(error) = result {
                                    tracing::warn!(url, %error, "webhook not delivered");
                                }
                            }
                        }
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_kind_time_and_snapshot() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let event = Event::new(EventKind::Doorbell, at, "https://door.example/");
        let json = serde_json::to_value(&event).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "doorbell",
                "time": "2023-11-14T22:13:20.123Z",
                "unix_ms": 1_700_000_000_123u64,
                "snapshot_url": "https://door.example/snapshot.jpg",
            })
        );
        let privacy = Event::new(EventKind::Privacy { enabled: true }, at, "");
        let json = serde_json::to_value(&privacy).expect("serialises");
        assert_eq!(json["enabled"], true);
        assert!(json.get("snapshot_url").is_none());
        let sound = Event::new(EventKind::Sound { level_dbfs: -12.5 }, at, "");
        assert_eq!(
            serde_json::to_value(&sound).expect("serialises")["snapshot_url"],
            "/snapshot.jpg"
        );
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_event_and_a_gone_one_is_forgotten() {
        let shutdown = CancellationToken::new();
        let bus = spawn(Fanout::streams_only(), shutdown.clone());
        let mut first = bus.subscribe().await.expect("subscribes");
        let second = bus.subscribe().await.expect("subscribes");
        drop(second);
        bus.publish(EventKind::Doorbell);
        bus.publish(EventKind::Motion { changed_percent: 5.0 });
        assert_eq!(first.recv().await.expect("first").kind, EventKind::Doorbell);
        assert_eq!(first.recv().await.expect("second").kind.name(), "motion");
        shutdown.cancel();
        assert!(first.recv().await.is_none(), "streams end with the daemon");
    }
}
