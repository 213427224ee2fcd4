//! HTTPS certificates: loading a PEM pair, generating and keeping a self-signed one for a device
//! on a home network, and the fingerprint an owner compares with what the browser shows.
//!
//! Browsers only give a page the microphone (talkback) in a secure context, so a device reached
//! by its LAN address needs HTTPS even where nobody would buy a certificate for it.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use ring::digest::{SHA256, digest};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A generated certificate stays valid this long; a device outlives any shorter choice, and the
/// owner trusts it by fingerprint rather than by a CA.
const SELF_SIGNED_VALIDITY: time::Duration = time::Duration::days(10 * 365);

/// Why HTTPS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file cannot be read.
    #[error("{key} {}: {error}", path.display())]
    Read { key: &'static str, path: PathBuf, error: std::io::Error },
    /// The file holds no usable PEM block of the expected kind.
    #[error("{key} {}: {problem}", path.display())]
    Pem { key: &'static str, path: PathBuf, problem: String },
    /// The certificate and key do not work together (they do not match, or the algorithm is
    /// unsupported).
    #[error("http.tls_cert and http.tls_key are not a usable pair: {0}")]
    Pair(rustls::Error),
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(rcgen::Error),
    /// The generated certificate or key cannot be stored.
    #[error("{key} {}: cannot write: {error}", path.display())]
    Write { key: &'static str, path: PathBuf, error: std::io::Error },
}

/// A loaded certificate, ready for the server.
pub struct Identity {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the leaf certificate, as browsers display it (`AB:CD:…`).
    pub fingerprint: String,
}

/// Reads the PEM certificate chain and private key and builds the server configuration.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<Identity, TlsError> {
    let read = |key: &'static str, path: &Path| {
        std::fs::read(path).map_err(|error| TlsError::Read { key, path: path.to_owned(), error })
    };
    let pem_error = |key: &'static str, path: &Path, problem: String| TlsError::Pem {
        key,
        path: path.to_owned(),
        problem,
    };
    let cert_pem = read("http.tls_cert", cert_path)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("http.tls_cert", cert_path, format!("not valid PEM: {e}")))?;
    let Some(leaf) = certs.first() else {
        return Err(pem_error(
            "http.tls_cert",
            cert_path,
            "contains no \"BEGIN CERTIFICATE\" block".into(),
        ));
    };
    let fingerprint = fingerprint(leaf);
    let key_pem = read("http.tls_key", key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        pem_error("http.tls_key", key_path, format!("contains no usable private key: {e}"))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Pair)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Pair)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity { config: Arc::new(config), fingerprint })
}

/// Makes sure a self-signed pair exists at the two paths, generating one for `names` when
/// either file is missing. Returns whether a new pair was made. Existing files are never
/// overwritten: if they are broken, [`load`] says so and the owner decides.
pub fn ensure_self_signed(
    cert_path: &Path,
    key_path: &Path,
    names: &[String],
) -> Result<bool, TlsError> {
    if cert_path.exists() && key_path.exists() {
        return Ok(false);
    }
    let mut params = CertificateParams::new(names.to_vec()).map_err(TlsError::Generate)?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, format!("camrtc on {}", names.get(1).map_or("", |n| n)));
    params.distinguished_name = subject;
    let now = time::OffsetDateTime::now_utc();
    // A day of slack for a viewer whose clock runs behind the device's.
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + SELF_SIGNED_VALIDITY;
    let key = KeyPair::generate().map_err(TlsError::Generate)?;
    let cert = params.self_signed(&key).map_err(TlsError::Generate)?;
    // The key first: a crash between the two writes leaves no certificate, so the next start
    // generates a fresh pair instead of loading a certificate without its key.
    let write = |key: &'static str, path: &Path, text: String, mode| {
        crate::state_file::write_atomically(path, text.as_bytes(), mode)
            .map_err(|error| TlsError::Write { key, path: path.to_owned(), error })
    };
    write("http.tls_key", key_path, key.serialize_pem(), 0o600)?;
    write("http.tls_cert", cert_path, cert.pem(), 0o644)?;
    Ok(true)
}

/// The names a generated certificate covers: localhost, this device's host name and its mDNS
/// `.local` name, the loopback addresses and the listen address when it is a specific one.
pub fn self_signed_names(host_name: &str, listen: SocketAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    let host = host_name.trim();
    if !host.is_empty() && host != "localhost" {
        names.push(host.to_owned());
        if !host.contains('.') {
            names.push(format!("{host}.local"));
        }
    }
    let mut addresses = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
    if !listen.ip().is_unspecified() && !addresses.contains(&listen.ip()) {
        addresses.push(listen.ip());
    }
    names.extend(addresses.iter().map(IpAddr::to_string));
    names
}

/// This machine's host name (empty if it cannot be read).
pub fn host_name() -> String {
    nix::unistd::gethostname().ok().and_then(|name| name.into_string().ok()).unwrap_or_default()
}

fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let hash = digest(&SHA256, cert.as_ref());
    hash.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("camrtc-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn self_signed_pair_is_generated_once_kept_private_and_loads() {
        let dir = temp_dir("generate");
        let (cert, key) = (dir.join("tls/cert.pem"), dir.join("tls/key.pem"));
        let names = self_signed_names("doorbell", "0.0.0.0:8443".parse().expect("address"));
        assert!(ensure_self_signed(&cert, &key, &names).expect("generates"));
        let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the service user may read the key");
        let first = load(&cert, &key).expect("loads");
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1, "{}", first.fingerprint);

        assert!(!ensure_self_signed(&cert, &key, &names).expect("keeps"), "no second pair");
        assert_eq!(load(&cert, &key).expect("loads").fingerprint, first.fingerprint);

        // A lost certificate (crash between the writes, say) means a fresh pair.
        std::fs::remove_file(&cert).expect("remove");
        assert!(ensure_self_signed(&cert, &key, &names).expect("regenerates"));
        assert_ne!(load(&cert, &key).expect("loads").fingerprint, first.fingerprint);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn names_cover_local_ways_of_reaching_the_device() {
        let names = self_signed_names("doorbell\n", "192.168.1.20:8443".parse().expect("address"));
        assert_eq!(
            names,
            ["localhost", "doorbell", "doorbell.local", "127.0.0.1", "::1", "192.168.1.20"]
        );
        let names = self_signed_names("", "[::]:8443".parse().expect("address"));
        assert_eq!(names, ["localhost", "127.0.0.1", "::1"]);
    }

    #[test]
    fn broken_files_are_reported_with_their_key() {
        let dir = temp_dir("broken");
        std::fs::create_dir_all(&dir).expect("dir");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let error = |cert: &Path, key: &Path| load(cert, key).err().expect("refused").to_string();

        assert!(error(&cert, &key).starts_with("http.tls_cert "), "missing cert");
        std::fs::write(&cert, "not a certificate").expect("write");
        assert!(error(&cert, &key).contains("no \"BEGIN CERTIFICATE\" block"));

        let names = vec!["localhost".to_owned()];
        let (good_cert, good_key) = (dir.join("good-cert.pem"), dir.join("good-key.pem"));
        ensure_self_signed(&good_cert, &good_key, &names).expect("generates");
        let message = error(&good_cert, &key);
        assert!(message.starts_with("http.tls_key ") && message.contains("No such file"));
        std::fs::write(&key, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .expect("write");
        assert!(error(&good_cert, &key).contains("contains no usable private key"));

        let (other_cert, other_key) = (dir.join("other-cert.pem"), dir.join("other-key.pem"));
        ensure_self_signed(&other_cert, &other_key, &names).expect("generates");
        let message = error(&good_cert, &other_key);
        assert!(message.starts_with("http.tls_cert and http.tls_key are not a usable pair"));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
