//! TLS for both listeners, for what crosses machines: a certificate chain
//! and a private key in PEM files (`--tls-cert`, `--tls-key`), served with
//! rustls. HTTP/1.1 only, as the listeners speak.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;

/// An acceptor serving the chain in `cert` with the key in `key`. A
/// certificate outside its validity is served (clients will refuse it, and
/// an operator may be mid-renewal) but warned about.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
    if let Some(problem) = validity_problem(&chain[0], SystemTime::now()) {
        tracing::warn!("the TLS certificate {}: {problem}", cert.display());
    }
    let key = read_key(key)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The private key in the PEM file `path`. An encrypted key cannot be
/// used (there is no one to ask for its passphrase), and says so.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let text =
        std::fs::read(path).with_context(|| format!("reading the TLS key {}", path.display()))?;
    let encrypted = |marker: &[u8]| text.windows(marker.len()).any(|w| w == marker);
    if encrypted(b"BEGIN ENCRYPTED PRIVATE KEY") || encrypted(b"Proc-Type: 4,ENCRYPTED") {
        anyhow::bail!(
            "the TLS key {} is encrypted with a passphrase, which Hive cannot ask for; \
             decrypt it first (openssl pkey -in KEY -out PLAIN) and keep the file private",
            path.display()
        );
    }
    PrivateKeyDer::from_pem_slice(&text).with_context(|| {
        format!(
            "reading the TLS key {}: no private key in PEM form (BEGIN PRIVATE KEY, \
             BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY) was found",
            path.display()
        )
    })
}

/// What is wrong with `cert`'s validity at `now`, if anything: expired, or
/// not valid yet.
fn validity_problem(cert: &CertificateDer<'_>, now: SystemTime) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let validity = parsed.validity();
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    if now > validity.not_after.timestamp() {
        return Some(format!(
            "it expired on {}; clients will refuse it",
            validity.not_after
        ));
    }
    if now < validity.not_before.timestamp() {
        return Some(format!(
            "it is not valid until {}; clients will refuse it",
            validity.not_before
        ));
    }
    None
}
