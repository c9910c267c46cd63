//! The AWS side: configuration and credentials through the standard chain (aws-config), and
//! the EC2 Instance Connect client built from them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError as E;
use aws_sdk_ec2instanceconnect::config::{ProvideCredentials as _, Region};
use aws_types::service_config::ServiceConfigKey;

use crate::args::AwsArgs;
use crate::endpoints;
use crate::errors::{Failure, exit, root_cause};

/// Attempts per API call (the SDK's standard retry mode, exponential backoff with jitter):
/// throttling and transient errors are retried before they are explained.
pub const MAX_ATTEMPTS: u32 = 3;

/// How long the credential chain may take (SSO, assume-role, container or instance roles).
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(30);

/// A ready client and what messages need to say about it.
#[derive(Debug, Clone)]
pub struct Api {
    pub client: aws_sdk_ec2instanceconnect::Client,
    pub region: String,
    /// A non-AWS endpoint in effect (flag, AWS_ENDPOINT_URL[_EC2_INSTANCE_CONNECT] or the
    /// profile's `endpoint_url`): then the server is taken to be a serialgate.
    pub custom_endpoint: Option<String>,
    pub profile: Option<String>,
}

impl Api {
    /// The endpoint requests go to, for messages.
    pub fn endpoint(&self) -> String {
        self.custom_endpoint
            .clone()
            .unwrap_or_else(|| endpoints::aws_api_endpoint(&self.region))
    }
}

/// The configuration in effect, before credentials are resolved.
#[derive(Debug, Clone)]
pub struct Loaded {
    sdk: aws_config::SdkConfig,
    pub region: String,
    pub custom_endpoint: Option<String>,
    /// `--ca-bundle` or AWS_CA_BUNDLE: the only roots for HTTPS when set.
    pub ca_bundle: Option<PathBuf>,
    pub profile: Option<String>,
}

/// Resolves region, endpoint and credentials, and builds the client.
pub async fn connect(args: &AwsArgs) -> Result<Api, Failure> {
    load(args).await?.client().await
}

/// Reads the configuration (flags, environment, profile files): region and endpoint.
pub async fn load(args: &AwsArgs) -> Result<Loaded, Failure> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(profile) = &args.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &args.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &args.endpoint_url {
        endpoints::url_host(url).map_err(Failure::usage)?;
        loader = loader.endpoint_url(url);
    }
    let ca_bundle = ca_bundle_path(args.ca_bundle.as_deref(), std::env::var_os("AWS_CA_BUNDLE"));
    if let Some(path) = &ca_bundle {
        loader = loader.http_client(https_client(path)?);
    }
    let sdk = loader.load().await;

    let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
        Failure::usage(
            "no AWS Region configured: pass --region, set AWS_REGION, or set `region` in \
             the profile (~/.aws/config)",
        )
    })?;
    let custom_endpoint = args
        .endpoint_url
        .clone()
        .or_else(|| {
            sdk.service_config().and_then(|c| {
                let key = ServiceConfigKey::builder()
                    .service_id("EC2 Instance Connect")
                    .env("AWS_ENDPOINT_URL")
                    .profile("endpoint_url")
                    .build()
                    .ok()?;
                c.load_config(key)
            })
        })
        .or_else(|| sdk.endpoint_url().map(str::to_owned));
    Ok(Loaded {
        sdk,
        region,
        custom_endpoint,
        ca_bundle,
        profile: args
            .profile
            .clone()
            .or_else(|| std::env::var("AWS_PROFILE").ok()),
    })
}

impl Loaded {
    /// Resolves credentials through the chain and builds the client with them.
    pub async fn client(self) -> Result<Api, Failure> {
        let credentials = self.credentials().await?;
        Ok(self.client_with(credentials))
    }

    /// Resolves credentials through the chain (bounded by [`CREDENTIALS_TIMEOUT`]).
    pub async fn credentials(&self) -> Result<Credentials, Failure> {
        let provider = self.sdk.credentials_provider().ok_or_else(|| {
            Failure::new(
                exit::CREDENTIALS,
                "no AWS credential provider is configured",
            )
        })?;
        match tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(credentials_failure(&e, self.profile.as_deref())),
            Err(_) => Err(Failure::new(
                exit::CREDENTIALS,
                format!(
                    "loading AWS credentials took longer than {} s (SSO, role or metadata \
                     service not answering)",
                    CREDENTIALS_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    /// The EC2 Instance Connect client, signing with `credentials`.
    pub fn client_with(self, credentials: Credentials) -> Api {
        let mut config = aws_sdk_ec2instanceconnect::config::Builder::from(&self.sdk)
            .credentials_provider(credentials);
        if let Some(url) = &self.custom_endpoint {
            config = config.endpoint_url(url);
        }
        Api {
            client: aws_sdk_ec2instanceconnect::Client::from_conf(config.build()),
            region: self.region,
            custom_endpoint: self.custom_endpoint,
            profile: self.profile,
        }
    }

    /// The EC2 API endpoint: `--endpoint-url` (a serialgate answers both APIs on one
    /// listener), else AWS_ENDPOINT_URL_EC2 or the profile's `ec2` service `endpoint_url`, else
    /// the global AWS_ENDPOINT_URL / `endpoint_url`, else AWS's.
    pub fn ec2_endpoint(&self, flag: Option<&str>) -> String {
        flag.map(str::to_owned)
            .or_else(|| {
                self.sdk.service_config().and_then(|c| {
                    let key = ServiceConfigKey::builder()
                        .service_id("EC2")
                        .env("AWS_ENDPOINT_URL")
                        .profile("endpoint_url")
                        .build()
                        .ok()?;
                    c.load_config(key)
                })
            })
            .or_else(|| self.sdk.endpoint_url().map(str::to_owned))
            .unwrap_or_else(|| endpoints::aws_ec2_endpoint(&self.region))
    }
}

/// The CA bundle in effect: `--ca-bundle`, else a non-empty `AWS_CA_BUNDLE` (as the AWS CLI).
pub fn ca_bundle_path(flag: Option<&Path>, env: Option<OsString>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
}

/// The SDK's HTTPS client (rustls, as the default one) trusting only the certificates in the
/// PEM file at `path`.
fn https_client(
    path: &Path,
) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient, Failure> {
    use aws_smithy_http_client::tls;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(tls_context(path)?)
        .build_https())
}

/// The TLS context of the SDK's HTTPS client: the certificates in the PEM file at `path` as the
/// only roots.
pub fn tls_context(path: &Path) -> Result<aws_smithy_http_client::tls::TlsContext, Failure> {
    use aws_smithy_http_client::tls::{TlsContext, TrustStore};
    let what = || format!("the CA bundle {}", path.display());
    let pem =
        std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read {}: {e}", what())))?;
    let usable = trust_anchors_pem(&pem).map_err(|e| Failure::usage(format!("{}: {e}", what())))?;
    TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(usable))
        .build()
        .map_err(|e| Failure::usage(format!("{}: {e}", what())))
}

/// The certificates of a PEM bundle that can serve as trust anchors, as PEM again. The SDK
/// parses the bundle only when it first connects, and stops the process on anything it cannot
/// parse: everything it gets has been parsed here first. Other PEM sections (keys, CRLs) are
/// skipped, as OpenSSL does; a certificate that cannot be a trust anchor is skipped as the SDK
/// does for the system's store; a bundle left empty is an error.
pub fn trust_anchors_pem(pem: &[u8]) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    let mut out = Vec::new();
    let mut found = 0usize;
    for (n, item) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let der = item.map_err(|e| format!("certificate {} is not valid PEM: {e}", n + 1))?;
        found += 1;
        if rustls::RootCertStore::empty().add(der.clone()).is_err() {
            continue;
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        out.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    if out.is_empty() {
        return Err(if found == 0 {
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".to_owned()
        } else {
            format!("none of its {found} certificates can be parsed")
        });
    }
    Ok(out)
}

/// One line for a credential chain failure, and what to do about it.
fn credentials_failure(error: &E, profile: Option<&str>) -> Failure {
    let cause = root_cause(error);
    let message = match error {
        // The chain's own text lists every provider it tried, over several lines.
        E::CredentialsNotLoaded(_) => "no AWS credentials found (environment, profile, web \
             identity, container and instance roles were tried). Set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, pass --profile (or set AWS_PROFILE), or sign in with \
             `aws sso login`"
            .to_owned(),
        E::ProviderTimedOut(_) => format!(
            "loading AWS credentials timed out ({cause}); check the network path to SSO, STS \
             or the metadata service"
        ),
        E::InvalidConfiguration(_) => format!(
            "the AWS credentials configuration{} is not usable: {cause}",
            profile
                .map(|p| format!(" (profile {p})"))
                .unwrap_or_default()
        ),
        _ => format!("cannot load AWS credentials: {cause}"),
    };
    Failure::new(exit::CREDENTIALS, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA (openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256).
    const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBnzCCAUWgAwIBAgIUZTE/HWQItLCzIoPhzwxsKAY/d/kwCgYIKoZIzj0EAwIw
JDEiMCAGA1UEAwwZc2VyaWFsZ2F0ZSBjbGllbnQgdGVzdCBDQTAgFw0yNjExMzAx
OTM5MzNaGA8yMTI2MTEwNjE5MzkzM1owJDEiMCAGA1UEAwwZc2VyaWFsZ2F0ZSBj
bGllbnQgdGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABA5nwB8ERkDI
RfNYWluZOz+SuxpUqk6llaCd+hsQoSYrxhICfxJ79zNf+s5qRcF4adJYvd3zEg2r
9twpbluxDyqjUzBRMB0GA1UdDgQWBBTDgWDcjspcJr0DCy9lygzBzpBDSzAfBgNV
HSMEGDAWgBTDgWDcjspcJr0DCy9lygzBzpBDSzAPBgNVHRMBAf8EBTADAQH/MAoG
CCqGSM49BAMCA0gAMEUCIQDIB0Ns4TELI5LOsaXoevF6ph0G77pS9eJ5TZpmEK4U
1AIgEgfZznehiNpQ2YdAmu7KCjZBs4kYyabb29wj6ouWNuA=
-----END CERTIFICATE-----
";

    /// A PEM envelope around bytes that are no certificate.
    const NOT_A_CERTIFICATE: &str =
        "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n";

    fn ders(pem: &[u8]) -> Vec<Vec<u8>> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        CertificateDer::pem_slice_iter(pem)
            .map(|c| c.map(|c| c.as_ref().to_vec()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn ca_bundle_flag_wins_over_the_environment() {
        let env = Some(OsString::from("/env.pem"));
        assert_eq!(
            ca_bundle_path(Some(Path::new("/flag.pem")), env.clone()),
            Some(PathBuf::from("/flag.pem"))
        );
        assert_eq!(ca_bundle_path(None, env), Some(PathBuf::from("/env.pem")));
        assert_eq!(ca_bundle_path(None, Some(OsString::new())), None);
        assert_eq!(ca_bundle_path(None, None), None);
    }

    #[test]
    fn a_bundle_keeps_its_certificates_and_drops_other_sections() {
        let bundle = format!(
            "comment line\n{CA}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{CA}"
        );
        let out = trust_anchors_pem(bundle.as_bytes()).unwrap_or_default();
        let want = ders(CA.as_bytes());
        assert_eq!(want.len(), 1);
        assert_eq!(ders(&out), [want.clone(), want].concat());
    }

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        let err = trust_anchors_pem(b"just text\n").err().unwrap_or_default();
        assert!(err.contains("no PEM certificate"), "{err}");
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(trust_anchors_pem(key_only).is_err());
    }

    #[test]
    fn certificates_that_cannot_be_parsed_are_never_handed_on() {
        // The SDK would abort the process on these when it first connects.
        let err = trust_anchors_pem(NOT_A_CERTIFICATE.as_bytes())
            .err()
            .unwrap_or_default();
        assert!(err.contains("none of its 1 certificates"), "{err}");
        let mixed = format!("{NOT_A_CERTIFICATE}{CA}");
        let out = trust_anchors_pem(mixed.as_bytes()).unwrap_or_default();
        assert_eq!(ders(&out), ders(CA.as_bytes()));
    }

    #[test]
    fn an_unreadable_bundle_is_a_usage_error() {
        let err = https_client(Path::new("/nonexistent/ca.pem"))
            .err()
            .map(|f| (f.code, f.message));
        let (code, message) = err.unwrap_or_default();
        assert_eq!(code, crate::errors::exit::USAGE);
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    }
}
