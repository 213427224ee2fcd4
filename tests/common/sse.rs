//! A minimal Server-Sent Events reader for `GET /events`.

use std::time::Duration;

/// One message: its `event:` name and its `data:` parsed as JSON.
#[derive(Debug, Clone)]
pub struct Message {
    pub event: String,
    pub data: serde_json::Value,
}

pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// Opens `url` (with `token` as a bearer token when given) and checks it is an event stream.
    pub async fn open(url: &str, token: Option<&str>) -> EventStream {
        let mut request = reqwest::Client::new().get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("GET /events answers");
        assert_eq!(response.status(), 200, "GET /events");
        let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        EventStream { response, buffer: String::new() }
    }

    /// The next message within `limit`, skipping keep-alive comments; `None` on timeout.
    pub async fn next(&mut self, limit: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                let data = serde_json::from_str(&data).expect("event data is JSON");
                return Some(Message { event, data });
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await.ok()?;
            let bytes = chunk.expect("stream readable").expect("stream still open");
            self.buffer.push_str(std::str::from_utf8(&bytes).expect("UTF-8"));
        }
    }
}
