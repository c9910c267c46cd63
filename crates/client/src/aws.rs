//! The AWS side: configuration and credentials through the standard chain (aws-config), and
//! the EC2 Instance Connect client built from them.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
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
        profile: args
            .profile
            .clone()
            .or_else(|| std::env::var("AWS_PROFILE").ok()),
    })
}

impl Loaded {
    /// Resolves credentials through the chain and builds the client with them.
    pub async fn client(self) -> Result<Api, Failure> {
        let provider = self.sdk.credentials_provider().ok_or_else(|| {
            Failure::new(
                exit::CREDENTIALS,
                "no AWS credential provider is configured",
            )
        })?;
        let credentials =
            match tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(credentials_failure(&e, self.profile.as_deref())),
                Err(_) => {
                    return Err(Failure::new(
                        exit::CREDENTIALS,
                        format!(
                            "loading AWS credentials took longer than {} s (SSO, role or \
                             metadata service not answering)",
                            CREDENTIALS_TIMEOUT.as_secs()
                        ),
                    ));
                }
            };
        let mut config = aws_sdk_ec2instanceconnect::config::Builder::from(&self.sdk)
            .credentials_provider(credentials);
        if let Some(url) = &self.custom_endpoint {
            config = config.endpoint_url(url);
        }
        Ok(Api {
            client: aws_sdk_ec2instanceconnect::Client::from_conf(config.build()),
            region: self.region,
            custom_endpoint: self.custom_endpoint,
            profile: self.profile,
        })
    }
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
