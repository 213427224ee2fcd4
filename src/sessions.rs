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
    Insert(String, SessionEntry),
    Get(String, oneshot::Sender<Option<SessionEntry>>),
    Remove(String, oneshot::Sender<Option<SessionEntry>>),
    Count(oneshot::Sender<usize>),
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
            while let Some(message) = inbox.recv().await {
                match message {
                    Message::Insert(id, entry) => {
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

    pub fn insert(&self, id: String, entry: SessionEntry) {
        let _ = self.messages.send(Message::Insert(id, entry));
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
