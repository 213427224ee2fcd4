//! A minimal HTTPS client for tests: TLS through rustls, trusting only the certificates given,
//! then one HTTP/1.1 request. It reports the certificate the server presented, so tests can
//! tell which one a daemon is serving.

use ring::digest::{SHA256, digest};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What an HTTPS request returned.
pub struct HttpsResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
    /// SHA-256 of the server's leaf certificate, `AB:CD:…` as the daemon logs it.
    pub fingerprint: String,
}

/// A client configuration trusting exactly the certificates in these PEM files.
pub fn trusting(cert_files: &[&Path]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for file in cert_files {
        for cert in CertificateDer::pem_file_iter(file).expect("readable PEM") {
            roots.add(cert.expect("valid PEM")).expect("usable certificate");
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// `GET path` over HTTPS to `address`, verifying the certificate for `server_name`.
pub async fn get(
    config: Arc<rustls::ClientConfig>,
    address: SocketAddr,
    server_name: &str,
    path: &str,
    authorization: Option<&str>,
) -> Result<HttpsResponse, String> {
    let tcp = tokio::net::TcpStream::connect(address).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let fingerprint = {
        let (_, connection) = tls.get_ref();
        let leaf = connection.peer_certificates().and_then(|c| c.first()).expect("a certificate");
        fingerprint(leaf)
    };
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {server_name}\r\n{auth}Connection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    // A server may end TLS without close_notify after Connection: close; what was read counts.
    let _ = tls.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or(format!("no HTTP response: {text:?}"))?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("no status")?;
    Ok(HttpsResponse { status, head: head.to_owned(), body: body.to_owned(), fingerprint })
}

pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let hash = digest(&SHA256, cert.as_ref());
    hash.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}
