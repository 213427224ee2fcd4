//! Basic authentication: the page and every API answer 401 with a Basic challenge until a
//! configured user name and password arrive; then the stream plays, and a session belongs to the
//! user who created it.

use camrtc_testkit as common;

use base64::Engine;
use camrtc::auth::hash_password;
use camrtc::config::{AuthMode, BasicUser};
use common::whep_client::{WhepClient, delete_with_authorization};
use common::{Daemon, demo_config, init_logs};
use std::time::Duration;

fn basic(name: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    format!("Basic {encoded}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_users_with_the_right_password_watch() {
    init_logs();
    let mut config = demo_config(320, 240);
    config.auth.mode = AuthMode::Basic;
    config.auth.users = vec![
        BasicUser { name: "grandma".into(), password_hash: hash_password("knit-one-purl-two") },
        BasicUser { name: "uncle".into(), password_hash: hash_password("fishing-trip-1998") },
    ];
    let daemon = Daemon::start(config).await;
    let client = reqwest::Client::new();
    let grandma = basic("grandma", "knit-one-purl-two");

    // The page itself is protected, so a browser asks for the password before anything else.
    let page = client.get(daemon.url("/")).send().await.expect("answers");
    assert_eq!(page.status().as_u16(), 401);
    let challenge = page.headers().get("www-authenticate").expect("challenge");
    assert!(challenge.to_str().expect("ascii").starts_with("Basic realm=\"camrtc\""));
    let page = client.get(daemon.url("/")).header("Authorization", &grandma).send().await;
    assert_eq!(page.expect("answers").status().as_u16(), 200);

    let mut viewer = WhepClient::new().await;
    let refusals = [
        (None, "authorization required"),
        (Some(basic("grandma", "knit-one-purl-three")), "wrong user name or password"),
        (Some(basic("burglar", "knit-one-purl-two")), "wrong user name or password"),
        (Some("Bearer knit-one-purl-two".to_owned()), "must be: Basic"),
    ];
    for (authorization, reason) in refusals {
        let (status, body) = viewer
            .post_with_authorization(&daemon.url("/whep"), authorization.as_deref())
            .await
            .expect_err("refused");
        assert_eq!(status, 401, "{authorization:?}: {body}");
        assert!(body.contains(reason), "{authorization:?}: {body}");
    }

    let created =
        viewer.post_with_authorization(&daemon.url("/whep"), Some(&grandma)).await.expect("201");
    let received = viewer.collect(Duration::from_secs(10), Duration::from_millis(300)).await;
    assert_eq!((received.frames[0].width, received.frames[0].height), (320, 240));

    let resource = daemon.url(&created.location);
    let uncle = basic("uncle", "fishing-trip-1998");
    assert_eq!(delete_with_authorization(&resource, Some(&uncle)).await, 404, "not his session");
    assert_eq!(delete_with_authorization(&resource, Some(&grandma)).await, 200);

    viewer.close().await;
    daemon.stop().await;
}
