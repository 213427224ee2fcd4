//! The one task that owns the [`Floor`]: sessions ask it for the floor, hand it every packet
//! their viewer sends, and let go through it. Packets from anyone but the holder never reach the
//! speaker; they are counted, so a second viewer pressing "talk" shows up in `/api/status`.

use super::floor::{Floor, FloorError, FloorState, TalkerId};
use super::player::Input;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Packets from one talker arrive 50 a second; this is seconds of slack for a busy runtime.
const INBOX: usize = 256;

/// What `/api/status` says about talkback.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FloorStatus {
    /// Someone is talking now.
    pub talking: bool,
    /// For how long, when someone is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talking_for_s: Option<u64>,
    /// Seconds until `max_talk_s` cuts the talker off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<u64>,
    /// Packets handed to the speaker.
    pub played_packets: u64,
    /// Packets from viewers who did not hold the floor, dropped.
    pub dropped_packets: u64,
    /// Packets of the holder dropped because the speaker thread was behind or gone.
    pub overflow_packets: u64,
}

enum Message {
    Request(TalkerId, oneshot::Sender<Result<Duration, FloorError>>),
    Release(TalkerId, Option<oneshot::Sender<bool>>),
    State(oneshot::Sender<FloorStatus>),
    Packet { talker: TalkerId, seq: u16, payload: Vec<u8> },
}

/// How sessions and the HTTP layer reach the floor. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FloorHandle {
    messages: mpsc::Sender<Message>,
}

/// Why the floor owner could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TalkError {
    /// Another viewer holds the floor.
    #[error(transparent)]
    Busy(#[from] FloorError),
    /// The floor task has stopped (the daemon is shutting down).
    #[error("talkback has stopped")]
    Stopped,
}

impl FloorHandle {
    /// Asks for the floor; on success, how long the turn may last.
    pub async fn request(&self, talker: TalkerId) -> Result<Duration, TalkError> {
        let (reply, answer) = oneshot::channel();
        self.messages
            .send(Message::Request(talker, reply))
            .await
            .map_err(|_| TalkError::Stopped)?;
        Ok(answer.await.map_err(|_| TalkError::Stopped)??)
    }

    /// Lets go of the floor; returns whether `talker` held it.
    pub async fn release(&self, talker: TalkerId) -> Result<bool, TalkError> {
        let (reply, answer) = oneshot::channel();
        self.messages
            .send(Message::Release(talker, Some(reply)))
            .await
            .map_err(|_| TalkError::Stopped)?;
        answer.await.map_err(|_| TalkError::Stopped)
    }

    /// Lets go without waiting: for a session that is ending.
    pub fn release_later(&self, talker: TalkerId) {
        let messages = self.messages.clone();
        tokio::spawn(async move {
            let _ = messages.send(Message::Release(talker, None)).await;
        });
    }

    pub async fn status(&self) -> Result<FloorStatus, TalkError> {
        let (reply, answer) = oneshot::channel();
        self.messages.send(Message::State(reply)).await.map_err(|_| TalkError::Stopped)?;
        answer.await.map_err(|_| TalkError::Stopped)
    }

    /// Hands over one packet a viewer sent; never blocks the caller's receive loop for long
    /// (waits for room only while the floor task is busy).
    pub async fn packet(&self, talker: TalkerId, seq: u16, payload: Vec<u8>) -> bool {
        self.messages.send(Message::Packet { talker, seq, payload }).await.is_ok()
    }
}

/// Starts the floor task. `speaker` takes what should be played and returns false when it had
/// to drop it; it is dropped (ending playback) when `shutdown` fires or every handle is gone.
pub fn spawn(
    max_talk: Duration,
    mut speaker: impl FnMut(Input) -> bool + Send + 'static,
    shutdown: CancellationToken,
) -> FloorHandle {
    let (messages, mut inbox) = mpsc::channel(INBOX);
    tokio::spawn(async move {
        let mut floor = Floor::new(max_talk);
        let mut counts = FloorStatus::default();
        loop {
            let deadline = match floor.state(now()) {
                FloorState::Taken { until, .. } => Some(Instant::from_std(until)),
                FloorState::Free => None,
            };
            let message = tokio::select! {
                () = shutdown.cancelled() => break,
                () = sleep_until(deadline) => {
                    if let Some(talker) = floor.expire(now()) {
                        tracing::info!(talker, max_talk_s = max_talk.as_secs(), "talker cut off");
                        speaker(Input::End);
                    }
                    continue;
                }
                message = inbox.recv() => match message {
                    Some(message) => message,
                    None => break,
                },
            };
            match message {
                Message::Request(talker, reply) => {
                    let now = now();
                    let granted = floor.request(talker, now).map(|until| until - now);
                    if granted.is_ok() {
                        tracing::info!(talker, "viewer talking");
                    }
                    let _ = reply.send(granted);
                }
                Message::Release(talker, reply) => {
                    let held = floor.release(talker);
                    if held {
                        tracing::info!(talker, "viewer stopped talking");
                        speaker(Input::End);
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(held);
                    }
                }
                Message::State(reply) => {
                    let now = now();
                    let mut status = counts.clone();
                    if let Some(left) = floor.time_left(now) {
                        status.talking = true;
                        status.seconds_left = Some(left.as_secs());
                        status.talking_for_s = Some(max_talk.saturating_sub(left).as_secs());
                    }
                    let _ = reply.send(status);
                }
                Message::Packet { talker, seq, payload } => {
                    if !floor.may_play(talker, now()) {
                        counts.dropped_packets += 1;
                    } else if speaker(Input::Packet { seq, payload }) {
                        counts.played_packets += 1;
                    } else {
                        counts.overflow_packets += 1;
                    }
                }
            }
        }
    });
    FloorHandle { messages }
}

/// The floor's clock: tokio's, so tests can pause and advance it.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What reached the speaker: packets by sequence number, `None` for an end of burst.
    type Played = Arc<Mutex<Vec<Option<u16>>>>;

    fn start(max_talk_s: u64) -> (FloorHandle, Played, CancellationToken) {
        let played: Played = Arc::default();
        let sink = played.clone();
        let shutdown = CancellationToken::new();
        let handle = spawn(
            Duration::from_secs(max_talk_s),
            move |input| {
                let entry = match input {
                    Input::Packet { seq, .. } => Some(seq),
                    Input::End => None,
                };
                sink.lock().expect("no panic while held").push(entry);
                true
            },
            shutdown.clone(),
        );
        (handle, played, shutdown)
    }

    fn played(played: &Played) -> Vec<Option<u16>> {
        played.lock().expect("no panic while held").clone()
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_holder_is_played_and_others_are_counted() {
        let (floor, speaker, _shutdown) = start(30);
        assert_eq!(floor.request(1).await, Ok(Duration::from_secs(30)));
        assert_eq!(
            floor.request(2).await,
            Err(TalkError::Busy(FloorError::Busy { for_s: 0 })),
            "a second talker is refused"
        );
        floor.packet(1, 10, vec![1]).await;
        floor.packet(2, 500, vec![2]).await;
        floor.packet(1, 11, vec![1]).await;
        tokio::time::advance(Duration::from_secs(4)).await;
        let status = floor.status().await.unwrap();
        assert_eq!(
            status,
            FloorStatus {
                talking: true,
                talking_for_s: Some(4),
                seconds_left: Some(26),
                played_packets: 2,
                dropped_packets: 1,
                overflow_packets: 0,
            }
        );
        assert_eq!(floor.release(2).await, Ok(false), "only the holder can let go");
        assert_eq!(floor.release(1).await, Ok(true));
        assert_eq!(played(&speaker), [Some(10), Some(11), None]);
        assert!(!floor.status().await.unwrap().talking);
        assert!(floor.request(2).await.is_ok(), "free again");
    }

    #[tokio::test(start_paused = true)]
    async fn max_talk_ends_the_turn_on_its_own() {
        let (floor, speaker, _shutdown) = start(5);
        floor.request(7).await.unwrap();
        floor.packet(7, 1, vec![0]).await;
        tokio::time::sleep(Duration::from_millis(5_001)).await;
        assert_eq!(played(&speaker), [Some(1), None], "the speaker was told the burst ended");
        floor.packet(7, 2, vec![0]).await;
        let status = floor.status().await.unwrap();
        assert!(!status.talking);
        assert_eq!(status.dropped_packets, 1, "a cut-off talker is not played");
        assert!(floor.request(8).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn an_ending_session_lets_go_and_shutdown_stops_the_task() {
        let (floor, speaker, shutdown) = start(5);
        floor.request(3).await.unwrap();
        floor.release_later(3);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(played(&speaker), [None]);
        assert!(floor.request(4).await.is_ok());
        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(floor.request(5).await, Err(TalkError::Stopped));
    }
}
