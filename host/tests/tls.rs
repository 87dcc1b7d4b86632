//! TLS on both listeners, and the admin API's refusal to be reachable
//! from other machines without both a token and TLS.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Hive, demo_components, install};

/// A self-signed certificate for `localhost` and 127.0.0.1, made with the
/// openssl command line; returns (cert, key).
fn self_signed(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed: run scripts/test.sh, which installs it");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

/// `curl` over TLS trusting only `cert`; returns (status, body).
fn curl(cert: &str, url: &str, extra: &[&str]) -> (String, String) {
    let output = Command::new("curl")
        .args(["-s", "--cacert", cert, "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl is needed: run scripts/test.sh, which installs it");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.to_string(), body.to_string())
}

#[test]
fn both_listeners_serve_https_with_the_given_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    let hive = Hive::start(dir.path(), &["--tls-cert", &cert, "--tls-key", &key]);
    hive.wait_for_log(&["listening on https://"]);
    let port = hive.address().rsplit(':').next().unwrap().to_string();
    let (status, body) = curl(
        &cert,
        &format!("https://localhost:{port}/hello?name=tls"),
        &[],
    );
    assert_eq!(status, "200");
    assert_eq!(body, "Hello, tls!\n");
    // Plain HTTP on the TLS port gets nowhere.
    let plain = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://127.0.0.1:{port}/hello"))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");

    let admin_port = hive.admin.rsplit(':').next().unwrap().to_string();
    let (status, _) = curl(
        &cert,
        &format!("https://localhost:{admin_port}/health"),
        &[],
    );
    assert_eq!(status, "200");
}

#[test]
fn the_admin_api_leaves_loopback_only_with_a_token_and_tls() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let token = certs.path().join("token");
    std::fs::write(&token, "s3cret-token").unwrap();
    let token = token.to_string_lossy().into_owned();
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());

    let open = ["--admin-listen", "0.0.0.0:0"];
    let (ok, log) = Hive::run_to_exit(dir.path(), &open);
    assert!(!ok);
    assert!(log.contains("a token") && log.contains("TLS"), "{log}");
    let (ok, log) = Hive::run_to_exit(
        dir.path(),
        &[&open[..], &["--admin-token-file", &token]].concat(),
    );
    assert!(!ok);
    assert!(log.contains("TLS") && !log.contains("a token"), "{log}");

    let hive = Hive::start(
        dir.path(),
        &[
            &open[..],
            &[
                "--admin-token-file",
                &token,
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
            ],
        ]
        .concat(),
    );
    let admin_port = hive.admin.rsplit(':').next().unwrap().to_string();
    let url = format!("https://localhost:{admin_port}/components");
    let (status, _) = curl(&cert, &url, &[]);
    assert_eq!(status, "401");
    let (status, body) = curl(&cert, &url, &["-H", "Authorization: Bearer s3cret-token"]);
    assert_eq!(status, "200");
    assert!(body.contains("hello"), "{body}");
}

#[test]
fn the_console_origin_over_tls_is_its_own_and_plain_http_is_not() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    let hive = Hive::start(dir.path(), &["--tls-cert", &cert, "--tls-key", &key]);
    let admin_port = hive.admin.rsplit(':').next().unwrap().to_string();
    let url = format!("https://127.0.0.1:{admin_port}/components/hello/rollback");
    let post = |origin: &str| {
        curl(
            &cert,
            &url,
            &["-X", "POST", "-H", &format!("Origin: {origin}")],
        )
    };
    // The page's own origin is https: the rollback is tried (409: there
    // is no earlier version), not refused as another site's.
    let (status, body) = post(&format!("https://127.0.0.1:{admin_port}"));
    assert_eq!(status, "409", "{body}");
    // The same host named with http is another origin.
    let (status, body) = post(&format!("http://127.0.0.1:{admin_port}"));
    assert_eq!(status, "403", "{body}");
}

#[test]
fn an_expired_certificate_is_warned_about_and_an_encrypted_key_named() {
    let certs = tempfile::tempdir().unwrap();
    // Expired yesterday.
    let key_pair = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let expired = params.self_signed(&key_pair).unwrap();
    let (cert, key) = (certs.path().join("old.pem"), certs.path().join("old.key"));
    std::fs::write(&cert, expired.pem()).unwrap();
    std::fs::write(&key, key_pair.serialize_pem()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    install(demo_components(), "hello", dir.path());
    let hive = Hive::start(
        dir.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let line = hive.wait_for_log(&["old.pem", "expired on"]);
    assert!(line.contains("WARN"), "{line}");
    drop(hive);

    // A key that needs a passphrase is named as such, not "no items found".
    let (plain_cert, plain_key) = self_signed(certs.path());
    let encrypted = certs.path().join("encrypted.pem");
    let made = Command::new("openssl")
        .args([
            "pkey",
            "-aes256",
            "-passout",
            "pass:secret",
            "-in",
            &plain_key,
            "-out",
        ])
        .arg(&encrypted)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (ok, log) = Hive::run_to_exit(
        dir.path(),
        &[
            "--tls-cert",
            &plain_cert,
            "--tls-key",
            encrypted.to_str().unwrap(),
        ],
    );
    assert!(!ok, "{log}");
    assert!(log.contains("encrypted with a passphrase"), "{log}");
}
