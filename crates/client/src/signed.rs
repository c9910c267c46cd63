//! One POST signed with SigV4 (`aws-sigv4`) and sent with the SDK's HTTP client, for the calls
//! no SDK client of ours makes: EC2's DescribeInstances and serialgate's session control.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::tls::{self, TlsContext};
use aws_smithy_runtime_api::client::http::HttpConnector as _;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};

use crate::aws::{self, Loaded};
use crate::errors::{Failure, root_cause};

/// The answers read here are small; anything near this is not what was asked for.
const MAX_ANSWER: usize = 1024 * 1024;
/// The whole call (connect, TLS, answer).
const TIMEOUT: Duration = Duration::from_secs(30);

/// A request to sign: `what` names it in messages (`DescribeInstances`).
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub what: &'a str,
    pub endpoint: &'a str,
    pub region: &'a str,
    /// The SigV4 service name (`ec2`, `ec2-instance-connect`).
    pub service: &'a str,
    pub content_type: &'a str,
    /// Extra headers, signed (`x-amz-target`).
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a str,
}

/// Sends `call` signed with `credentials`; the answer's HTTP status and body.
pub async fn send(
    loaded: &Loaded,
    credentials: Credentials,
    call: Call<'_>,
) -> Result<(u16, Bytes), Failure> {
    let request = signed_request(call, credentials)?;
    let context = match &loaded.ca_bundle {
        Some(path) => aws::tls_context(path)?,
        None => TlsContext::default(),
    };
    let connector = aws_smithy_http_client::Connector::builder()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build();
    let (what, endpoint) = (call.what, call.endpoint);
    let exchange = async {
        let response = connector
            .call(request)
            .await
            .map_err(|e| Failure::network(format!("{what} on {endpoint}: {}", root_cause(&e))))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| {
                Failure::network(format!("{what} on {endpoint}: reading the answer: {e}"))
            })?
            .to_bytes();
        Ok::<_, Failure>((status, body))
    };
    tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| {
        Failure::network(format!(
            "{what} on {endpoint}: no answer within {} s",
            TIMEOUT.as_secs()
        ))
    })?
}

/// The POST, signed for `call.service` in `call.region`.
pub fn signed_request(
    call: Call<'_>,
    credentials: Credentials,
) -> Result<aws_smithy_runtime_api::http::Request<SdkBody>, Failure> {
    let Call { what, endpoint, .. } = call;
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| Failure::usage(format!("the endpoint {endpoint:?} is not a URL: {e}")))?;
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| Failure::usage(format!("the endpoint {endpoint:?} has no host")))?;
    let mut headers = vec![("host", host.as_str()), ("content-type", call.content_type)];
    headers.extend_from_slice(call.headers);
    let identity = Identity::from(credentials);
    let failed = |e: &dyn std::fmt::Display| Failure::other(format!("cannot sign {what}: {e}"));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(call.region)
        .name(call.service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        uri.to_string(),
        headers.iter().copied(),
        SignableBody::Bytes(call.body.as_bytes()),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    let mut builder = http::Request::post(uri);
    for (name, value) in &headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder
        .body(SdkBody::from(call.body.to_owned()))
        .map_err(|e| failed(&e))?;
    instructions.apply_to_request_http1x(&mut request);
    request.try_into().map_err(|e| failed(&e))
}
