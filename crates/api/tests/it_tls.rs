//! The API over HTTPS: a test CA and a server certificate made with `openssl` at test time, the
//! real AWS SDK for Rust trusting that CA, the handshake counted in the header-read timeout,
//! and certificate/key problems reported with the file at fault.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use api::ApiLimits;
use aws_sdk_ec2instanceconnect::Client;
use aws_sdk_ec2instanceconnect::config::retry::RetryConfig;
use aws_sdk_ec2instanceconnect::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A private CA, and a server certificate it signed for `127.0.0.1` and `localhost`.
struct TestPki {
    dir: PathBuf,
    ca: PathBuf,
    ca_key: PathBuf,
    /// The server certificate followed by the CA certificate (a chain, as operators deploy).
    chain: PathBuf,
    key: PathBuf,
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn test_pki(name: &str) -> TestPki {
    let dir = std::env::temp_dir().join(format!("api-it-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
            &["-subj", "/CN=serialgate test CA"],
        ]
        .concat(),
    );
    openssl(
        &dir,
        &[
            &["req"][..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr"],
            &["-subj", "/CN=localhost"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
    let chain = [
        std::fs::read(dir.join("server.pem")).unwrap(),
        std::fs::read(dir.join("ca.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    TestPki {
        ca: dir.join("ca.pem"),
        ca_key: dir.join("ca.key"),
        chain: dir.join("chain.pem"),
        key: dir.join("server.key"),
        dir,
    }
}

async fn start_tls(pki: &TestPki, limits: ApiLimits) -> Server {
    let config = api::tls::server_config(&pki.chain, &pki.key).unwrap();
    start_limited(limits, Some(config)).await
}

fn sdk_client(url: &str, ca_pem: Vec<u8>) -> Client {
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(ca_pem);
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .unwrap(),
        )
        .build_https();
    let conf = aws_sdk_ec2instanceconnect::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
        .http_client(http)
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

#[tokio::test]
async fn the_sdk_pushes_a_key_over_https() {
    let pki = test_pki("sdk");
    let s = start_tls(&pki, ApiLimits::default()).await;
    assert!(s.url().starts_with("https://127.0.0.1:"));
    let client = sdk_client(&s.url(), std::fs::read(&pki.ca).unwrap());
    let out = client
        .send_serial_console_ssh_public_key()
        .instance_id(RUNNING)
        .serial_port(0)
        .ssh_public_key(ED25519)
        .send()
        .await
        .unwrap();
    assert!(out.success());
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_refused_by_itself() {
    let pki = test_pki("untrusted");
    let other = test_pki("other");
    let s = start_tls(&pki, ApiLimits::default()).await;
    let client = sdk_client(&s.url(), std::fs::read(&other.ca).unwrap());
    let err = client
        .send_serial_console_ssh_public_key()
        .instance_id(RUNNING)
        .serial_port(0)
        .ssh_public_key(ED25519)
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{:?}", err).to_lowercase().contains("certificate"),
        "{err:?}"
    );
}

/// Waits until the server closes `sock`.
async fn closed_by_server(mut sock: TcpStream) {
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), sock.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the server kept the connection open");
}

#[tokio::test]
async fn the_handshake_counts_against_the_header_timeout() {
    let pki = test_pki("handshake");
    let s = start_tls(
        &pki,
        ApiLimits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(600),
            request_timeout: Duration::from_secs(600),
            ..ApiLimits::default()
        },
    )
    .await;
    // Silent after connecting.
    closed_by_server(TcpStream::connect(s.addr).await.unwrap()).await;
    // The start of a ClientHello, then nothing.
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    sock.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    closed_by_server(sock).await;
}

#[tokio::test]
async fn plain_http_to_the_https_listener_is_closed() {
    let pki = test_pki("plain");
    let s = start_tls(&pki, ApiLimits::default()).await;
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    sock.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), sock.read_to_end(&mut buf))
        .await
        .expect("the server kept the connection open");
    assert!(!String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"));
}

#[test]
fn certificate_problems_name_the_file() {
    let pki = test_pki("errors");
    // A key where the certificate should be.
    let e = api::tls::server_config(&pki.key, &pki.key).unwrap_err();
    assert!(
        e.to_string().starts_with(&pki.key.display().to_string()),
        "{e}"
    );
    assert!(e.to_string().contains("no PEM certificate"), "{e}");
    // A certificate where the key should be.
    let e = api::tls::server_config(&pki.chain, &pki.chain).unwrap_err();
    assert!(
        e.to_string().starts_with(&pki.chain.display().to_string()),
        "{e}"
    );
    assert!(e.to_string().contains("no PEM private key"), "{e}");
    // A key that is not the certificate's.
    let e = api::tls::server_config(&pki.chain, &pki.ca_key).unwrap_err();
    assert!(
        e.to_string().starts_with(&pki.chain.display().to_string()),
        "{e}"
    );
    assert!(
        e.to_string().contains(&pki.ca_key.display().to_string()),
        "{e}"
    );
}
