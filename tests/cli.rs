//! The command line: default config printing, config checking, the device listing, and a demo
//! that starts, serves the viewer page and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn camrtc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_camrtc"))
}

#[test]
fn print_default_config_is_the_shipped_file() {
    let output = camrtc().arg("print-default-config").output().expect("runs");
    assert!(output.status.success());
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/camrtc.toml"))
            .expect("shipped config exists");
    assert_eq!(String::from_utf8_lossy(&output.stdout), shipped);
}

#[test]
fn devices_lists_every_kind_of_device_even_when_there_are_none() {
    let output = camrtc().arg("devices").output().expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    // This machine has no cameras or hardware encoder; the sections still say so.
    assert!(text.starts_with("Cameras (video.source = \"v4l2\""), "{text}");
    assert!(text.contains("Hardware H.264 encoder"), "{text}");
    assert!(text.contains("ALSA sound cards"), "{text}");
}

#[test]
fn check_config_names_the_bad_key_and_line() {
    let dir = std::env::temp_dir().join(format!("camrtc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = dir.join("good.toml");
    std::fs::write(&good, "[video]\nsource = \"test\"\n").expect("write");
    let output = camrtc().arg("check-config").arg(&good).output().expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[http]\nlisten = \"0.0.0.0:8080\"\n\n[video]\nwidth = 1281\n")
        .expect("write");
    let output = camrtc().arg("check-config").arg(&bad).output().expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("video.width") && stderr.contains("line 5"), "{stderr}");

    let missing = camrtc().arg("check-config").arg(dir.join("absent.toml")).output().expect("runs");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("absent.toml"));
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn hash_token_prints_the_digest_the_config_accepts() {
    use std::io::Write;
    let mut child = camrtc()
        .arg("hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("runs");
    child.stdin.take().expect("piped").write_all(b"front-door-token-0123\n").expect("writes");
    let output = child.wait_with_output().expect("finishes");
    assert!(output.status.success());
    let digest = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(digest, camrtc::auth::token_digest_string("front-door-token-0123"));
    let config = format!("[auth]\nmode = \"token\"\ntokens = [\"{digest}\"]\n");
    assert!(camrtc::config::Config::from_toml_str(&config).is_ok());
}

#[test]
fn hash_password_prints_a_hash_that_accepts_the_password() {
    use base64::Engine;
    use std::io::Write;
    let mut child = camrtc()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child.stdin.take().expect("piped").write_all(b"two words \n").expect("writes");
    let output = child.wait_with_output().expect("finishes");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let config = format!(
        "[auth]\nmode = \"basic\"\nusers = [{{ name = \"a\", password_hash = \"{hash}\" }}]\n"
    );
    let config = camrtc::config::Config::from_toml_str(&config).expect("the config accepts it");
    let auth = camrtc::auth::Authenticator::with_users(&config.auth.users);
    // Inner and trailing spaces belong to the password; only the line ending is not.
    let header = |password: &str| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("a:{password}"));
        format!("Basic {encoded}")
    };
    assert!(auth.check(Some(&header("two words "))).is_ok());
    assert!(auth.check(Some(&header("two words"))).is_err());

    let short = camrtc().arg("hash-password").stdin(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let mut short = short.expect("runs");
    short.stdin.take().expect("piped").write_all(b"short\n").expect("writes");
    let output = short.wait_with_output().expect("finishes");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 8 characters"));
}

#[test]
fn demo_prints_the_viewer_url_serves_the_page_and_stops_on_sigterm() {
    let mut child = camrtc()
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("prints a line");
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no viewer URL in {line:?}"))
        .to_owned();

    let page = http_get(&url);
    assert!(page.contains("<video"), "the viewer page is served at /");

    let signalled = Instant::now();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(status.expect("kill runs").success());
    loop {
        if let Some(status) = child.try_wait().expect("wait works") {
            assert!(status.success(), "clean exit on SIGTERM, got {status}");
            break;
        }
        assert!(signalled.elapsed() < Duration::from_secs(2), "exits within 2 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A GET over a plain socket, so this test needs no async runtime.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(authority).expect("connects");
    write!(stream, "GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
        .expect("sends");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    assert!(response.starts_with("HTTP/1.1 200"), "{}", &response[..response.len().min(200)]);
    response
}
