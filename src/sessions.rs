//! The registry of live viewer sessions, owned by one task.
//!
//! HTTP handlers look sessions up by their resource id; sessions remove themselves when they end.

use crate::auth::Principal;
use crate::peer::SessionHandle;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// A live session as the WHEP resource sees it.
#[derive(Clone)]
pub struct SessionEntry {
    pub handle: SessionHandle,
    /// The entity tag of the session's ICE state, for PATCH If-Match.
    pub etag: String,
    /// Who created it: only the same credentials may change or end it.
    pub owner: Principal,
}

enum Message {
    Reserve(usize, oneshot::Sender<bool>),
    Release,
    Insert(String, SessionEntry),
    Get(String, oneshot::Sender<Option<SessionEntry>>),
    Remove(String, oneshot::Sender<Option<SessionEntry>>),
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
    pub fn spawn() -> Self {
        let (messages, mut inbox) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut sessions: HashMap<String, SessionEntry> = HashMap::new();
            // Places promised to sessions still being set up: counting them keeps the limit
            // exact when many offers arrive at once.
            let mut reserved = 0usize;
            while let Some(message) = inbox.recv().await {
                match message {
                    Message::Reserve(limit, reply) => {
                        let granted = sessions.len() + reserved < limit;
                        if granted {
                            reserved += 1;
                        }
                        if reply.send(granted).is_err() && granted {
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
                    Message::Remove(id, reply) => {
                        let _ = reply.send(sessions.remove(&id));
                    }
                    Message::Count(reply) => {
                        let _ = reply.send(sessions.len());
                    }
                }
            }
        });
        Self { messages }
    }

    /// Holds a place for a new session if fewer than `limit` exist or are being set up.
    pub async fn reserve(&self, limit: usize) -> Option<Reservation> {
        let (reply, answer) = oneshot::channel();
        self.messages.send(Message::Reserve(limit, reply)).ok()?;
        answer.await.unwrap_or(false).then(|| Reservation { sessions: self.clone(), used: false })
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

    pub async fn remove(&self, id: &str) -> Option<SessionEntry> {
        let (reply, answer) = oneshot::channel();
        self.messages.send(Message::Remove(id.to_owned(), reply)).ok()?;
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
