//! One HTTP/1.1 GET over one connection (plain TCP, or rustls with the system's roots or a
//! given CA file), the response body capped. What `authorized-keys` needs and nothing more: no
//! pool, no retries, no proxy; the caller bounds the whole exchange with one timeout.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Where requests go: `http[s]://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    /// A name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// A path prefix without trailing slash (empty for none), e.g. behind a reverse proxy.
    pub prefix: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("endpoint {url:?} is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(format!(
                    "endpoint {url:?} must start with http:// or https://"
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("endpoint {url:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("endpoint {url:?} must not carry user information"));
        }
        if uri.query().is_some() {
            return Err(format!("endpoint {url:?} must not have a query"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("endpoint {url:?} has no host"));
        }
        Ok(Self {
            tls,
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The `Host` header: the host (IPv6 in brackets), with the port when not the default.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// The TLS client configuration: the certificates of `ca_file` as the only roots, else the
/// system's (OpenSSL's locations, `SSL_CERT_FILE`).
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let shown = path.display();
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read ca_file {shown}: {e}"))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("ca_file {shown}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_file {shown}: unusable certificate: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("ca_file {shown} holds no PEM certificate"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err("no system CA certificates found; set ca_file".to_owned());
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A response: its status and its body (whole, within the cap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// `GET prefix+path` with `headers` (and `Host`, `Connection: close`). `tls` is required for an
/// https endpoint. A body over `max_body` bytes is an error, not a truncated answer.
pub async fn get(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    path: &str,
    headers: &[(&str, &str)],
    max_body: usize,
) -> Result<Answer, String> {
    let mut request = http::Request::get(format!("{}{path}", endpoint.prefix))
        .header(http::header::HOST, endpoint.host_header())
        .header(http::header::CONNECTION, "close");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;

    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", endpoint.host, endpoint.port))?;
    let _ = tcp.set_nodelay(true);
    if !endpoint.tls {
        return exchange(tcp, request, max_body).await;
    }
    let config = tls.ok_or("an https endpoint needs a TLS configuration")?;
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|e| format!("{:?} is not a TLS server name: {e}", endpoint.host))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {}: {e}", endpoint.host))?;
    exchange(stream, request, max_body).await
}

async fn exchange<S>(
    io: S,
    request: http::Request<Empty<Bytes>>,
    max_body: usize,
) -> Result<Answer, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    // The connection is driven by its own task while this one waits for the answer; it ends
    // with the connection (`Connection: close`), or with the runtime.
    let driver = tokio::spawn(connection);
    let outcome = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), max_body)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok(Answer { status, body })
    }
    .await;
    driver.abort();
    outcome
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("https://keys.example.com:8443").unwrap();
        assert_eq!(
            e,
            Endpoint {
                tls: true,
                host: "keys.example.com".into(),
                port: 8443,
                prefix: String::new()
            }
        );
        assert_eq!(e.host_header(), "keys.example.com:8443");
        let e = Endpoint::parse("http://[::1]/serialgate/").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port), (false, "::1", 80));
        assert_eq!(e.prefix, "/serialgate");
        assert_eq!(e.host_header(), "[::1]");
        assert_eq!(Endpoint::parse("https://h").unwrap().port, 443);
        for bad in [
            "ftp://h",
            "h:80",
            "http://u:p@h",
            "http://h/?q=1",
            "not a url",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "no certificates here\n").unwrap();
        let err = tls_config(Some(&path)).unwrap_err();
        assert!(err.contains("no PEM certificate"), "{err}");
        assert!(tls_config(Some(&dir.path().join("absent"))).is_err());
    }

    /// Serves one connection with `response`; returns what the client sent.
    async fn one_shot(response: &'static [u8]) -> (Endpoint, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed early");
                request.extend_from_slice(&buf[..n]);
            }
            socket.write_all(response).await.unwrap();
            socket.shutdown().await.unwrap();
            String::from_utf8(request).unwrap()
        });
        let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}/pre")).unwrap();
        (endpoint, server)
    }

    #[tokio::test]
    async fn a_get_sends_its_headers_and_reads_the_body() {
        let (endpoint, server) =
            one_shot(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").await;
        let answer = get(&endpoint, None, "/x/y", &[("X-Test", "1")], 64)
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(&answer.body[..], b"hello");
        let request = server.await.unwrap().to_ascii_lowercase();
        assert!(
            request.starts_with("get /pre/x/y http/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("\r\nx-test: 1\r\n"), "{request}");
        assert!(request.contains(&format!("\r\nhost: 127.0.0.1:{}\r\n", endpoint.port)));
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_an_error() {
        let (endpoint, _server) =
            one_shot(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789").await;
        let err = get(&endpoint, None, "/", &[], 8).await.unwrap_err();
        assert!(err.contains("reading the answer"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let err = get(&endpoint, None, "/", &[], 8).await.unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");
    }
}
