//! Webhooks are retried: a receiver that fails the first attempt gets the same event again after
//! the backoff, with kind, time and snapshot URL.

use camrtc_testkit as common;

use axum::body::Bytes;
use axum::http::StatusCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_retried_with_the_same_event() {
    common::init_logs();
    // The receiver: 500 for the first attempt, 204 after; records every body and when.
    let attempts: Arc<Mutex<Vec<(Instant, serde_json::Value)>>> = Arc::default();
    let recorded = attempts.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let recorded = recorded.clone();
            async move {
                let json = serde_json::from_slice(&body).expect("webhook body is JSON");
                let mut attempts = recorded.lock().expect("test mutex");
                attempts.push((Instant::now(), json));
                if attempts.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let mut config = common::demo_config(320, 240);
    config.events.sound.enabled = true;
    config.events.sound.min_duration_ms = 100;
    config.events.webhooks = vec![hook];
    config.events.webhook_backoff_ms = 300;
    config.events.webhook_timeout_ms = 2000;
    config.events.public_url = "http://door.example:8080".to_owned();
    let daemon = common::Daemon::start(config).await;

    let started = Instant::now();
    while attempts.lock().expect("test mutex").len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "no retry within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing more: the second attempt succeeded and the tone is one event.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let attempts = attempts.lock().expect("test mutex").clone();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    let (first_at, first) = &attempts[0];
    let (second_at, second) = &attempts[1];
    assert_eq!(first, second, "the retry carries the same event");
    assert_eq!(first["kind"], "sound");
    assert_eq!(first["snapshot_url"], "http://door.example:8080/snapshot.jpg");
    assert!(first["unix_ms"].as_u64().expect("unix_ms") > 1_600_000_000_000);
    let gap = second_at.duration_since(*first_at);
    assert!(gap >= Duration::from_millis(300), "retried after the backoff, not at once: {gap:?}");
    daemon.stop().await;
}
