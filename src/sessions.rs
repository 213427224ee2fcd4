//! The registry of live viewer sessions, owned by one task.
//!
//! HTTP handlers look sessions up by their resource id; sessions remove themselves when they end.

use crate::auth::Principal;
use crate::peer::SessionHandle;
use crate::ratelimit::SessionRateLimit;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// A live session as the WHEP resource sees it.
#[derive(Clone)]
pub struct SessionEntry {
    pub handle: SessionHandle,
    /// Who created it: only the same credentials may change or end it.
    pub owner: Principal,
    /// How the talkback floor knows this session.
    pub talker: crate::talkback::floor::TalkerId,
    /// Whether the session receives the viewer's microphone, without which it may not talk.
    pub receives_talk: bool,
}

/// Why a new session was not given a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The session limit is reached.
    Full,
    /// This client created sessions too fast; it may try again after this long.
    TooFast(Duration),
}

enum Message {
    Reserve {
        limit: usize,
        client: IpAddr,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    Release,
    Insert(String, SessionEntry),
    Get(String, oneshot::Sender<Option<SessionEntry>>),
    /// Removes the session; with an owner, only if it belongs to them.
    Remove(String, Option<Principal>, oneshot::Sender<Option<SessionEntry>>),
    Count(oneshot::Sender<usize>),
}

/// A place held for a session being set up; dropping it unused gives the place back.
pub struct Reservation {
    sessions: Sessions,
    used: bool,
}

impl Reservation {
    /// Turns the reservation into a registered session.
    pub fn insert(mut self, id: String, entry: SessionEntry) {
        self.used = true;
        let _ = self.sessions.messages.send(Message::Insert(id, entry));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.used {
            let _ = self.sessions.messages.send(Message::Release);
        }
    }
}

/// Handle to the registry task; it stops when the last handle is dropped.
#[derive(Clone)]
pub struct Sessions {
    messages: mpsc::UnboundedSender<Message>,
}

impl Sessions {
    /// `per_minute`: how many sessions one client address may create a minute.
    pub fn spawn(per_minute: u32) -> Self {
        let (messages, mut inbox) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut sessions: HashMap<String, SessionEntry> = HashMap::new();
            let mut rate = SessionRateLimit::new(per_minute);
            // Places promised to sessions still being set up: counting them keeps the limit
            // exact when many offers arrive at once.
            let mut reserved = 0usize;
            while let Some(message) = inbox.recv().await {
                match message {
                    Message::Reserve { limit, client, reply } => {
                        let verdict = if sessions.len() + reserved >= limit {
                            Err(Refusal::Full)
                        } else {
                            rate.allow(client, Instant::now()).map_err(Refusal::TooFast)
                        };
                        if verdict.is_ok() {
                            reserved += 1;
                        }
                        if reply.send(verdict).is_err() && verdict.is_ok() {
                            reserved -= 1;
                        }
                    }
                    Message::Release => reserved = reserved.saturating_sub(1),
                    Message::Insert(id, entry) => {
                        reserved = reserved.saturating_sub(1);
                        sessions.insert(id, entry);
                    }
                    Message::Get(id, reply) => {
                        let _ = reply.send(sessions.get(&id).cloned());
                    }
                    Message::Remove(id, owner, reply) => {
                        let owned = sessions.get(&id).is_some_and(|entry| {
                            owner.is_none_or(|principal| entry.owner == principal)
                        });
                        let _ = reply.send(if owned { sessions.remove(&id) } else { None });
                    }
                    Message::Count(reply) => {
                        let _ = reply.send(sessions.len());
                    }
                }
            }
        });
        Self { messages }
    }

    /// Holds a place for a new session from `client` if fewer than `limit` exist or are being
    /// set up and the client is within its rate.
    pub async fn reserve(&self, limit: usize, client: IpAddr) -> Result<Reservation, Refusal> {
        let (reply, answer) = oneshot::channel();
        // A registry that is gone (shutdown) has no places left.
        self.messages.send(Message::Reserve { limit, client, reply }).map_err(|_| Refusal::Full)?;
        answer.await.map_err(|_| Refusal::Full)??;
        Ok(Reservation { sessions: self.clone(), used: false })
    }

    pub async fn get(&self, id: &str) -> Option<SessionEntry> {
        let (reply, answer) = oneshot::channel();
        self.messages.send(Message::Get(id.to_owned(), reply)).ok()?;
        answer.await.ok().flatten()
    }

    /// The session, if it exists and belongs to `principal`. Someone else's session looks
    /// exactly like a missing one, so ids cannot be probed.
    pub async fn get_owned(&self, id: &str, principal: Principal) -> Option<SessionEntry> {
        self.get(id).await.filter(|entry| entry.owner == principal)
    }

    /// Forgets a session that has ended.
    pub async fn remove(&self, id: &str) -> Option<SessionEntry> {
        self.remove_as(id, None).await
    }

    /// Removes the session if it belongs to `principal`, in one step so that ownership cannot
    /// change between the check and the removal.
    pub async fn remove_owned(&self, id: &str, principal: Principal) -> Option<SessionEntry> {
        self.remove_as(id, Some(principal)).await
    }

    async fn remove_as(&self, id: &str, owner: Option<Principal>) -> Option<SessionEntry> {
        let (reply, answer) = oneshot::channel();
        self.messages.send(Message::Remove(id.to_owned(), owner, reply)).ok()?;
        answer.await.ok().flatten()
    }

    pub async fn count(&self) -> usize {
        let (reply, answer) = oneshot::channel();
        if self.messages.send(Message::Count(reply)).is_err() {
            return 0;
        }
        answer.await.unwrap_or(0)
    }
}
