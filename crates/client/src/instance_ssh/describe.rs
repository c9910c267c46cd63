//! The instance's IP addresses from EC2's DescribeInstances: one EC2 Query request signed with
//! SigV4 (service `ec2`) and sent with the SDK's HTTP client, the answer read by a small XML
//! reader. The EC2 SDK would cost more to build than everything else here together.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::tls::{self, TlsContext};
use aws_smithy_runtime_api::client::http::HttpConnector as _;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::body::SdkBody;
use http_body_util::{BodyExt as _, Limited};

use super::xml::{Described, describe_answer};
use crate::aws::{self, Loaded};
use crate::errors::{Failure, exit, root_cause};

/// The EC2 API version serialgate and AWS both answer.
const VERSION: &str = "2016-11-15";
/// The answer for one instance is a few KiB; anything near this is not what was asked for.
const MAX_ANSWER: usize = 1024 * 1024;
/// The whole call (connect, TLS, answer).
const TIMEOUT: Duration = Duration::from_secs(30);

/// An instance's addresses as DescribeInstances reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    pub public: Option<String>,
    pub private: Option<String>,
}

/// The body of the request.
pub fn query(instance: &str) -> String {
    // An instance id is `i-` and hex (checked before): nothing to escape.
    format!("Action=DescribeInstances&Version={VERSION}&InstanceId.1={instance}")
}

/// Calls DescribeInstances on `endpoint` for `instance`.
pub async fn addresses(
    loaded: &Loaded,
    credentials: Credentials,
    endpoint: &str,
    instance: &str,
) -> Result<Addresses, Failure> {
    let request = signed_request(endpoint, &loaded.region, credentials, instance)?;
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
    let call = async {
        let response = connector.call(request).await.map_err(|e| {
            Failure::network(format!(
                "DescribeInstances on {endpoint}: {}",
                root_cause(&e)
            ))
        })?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| {
                Failure::network(format!(
                    "DescribeInstances on {endpoint}: reading the answer: {e}"
                ))
            })?
            .to_bytes();
        Ok::<_, Failure>((status, body))
    };
    let (status, body) = tokio::time::timeout(TIMEOUT, call).await.map_err(|_| {
        Failure::network(format!(
            "DescribeInstances on {endpoint}: no answer within {} s",
            TIMEOUT.as_secs()
        ))
    })??;
    let text = std::str::from_utf8(&body).map_err(|_| {
        Failure::other(format!(
            "DescribeInstances on {endpoint}: the answer (HTTP {status}) is not text"
        ))
    })?;
    interpret(status, text, instance)
}

/// What the answer means for this command.
pub fn interpret(status: u16, text: &str, instance: &str) -> Result<Addresses, Failure> {
    let described = describe_answer(text, instance).map_err(|e| {
        Failure::other(format!(
            "DescribeInstances answered HTTP {status} with something else than EC2's XML: {e}"
        ))
    })?;
    match described {
        Described::Found { public, private } if status == 200 => Ok(Addresses { public, private }),
        Described::NotFound if status == 200 => Err(Failure::new(
            exit::API_REFUSED,
            format!(
                "DescribeInstances does not list {instance}: check the instance id and the Region"
            ),
        )),
        Described::Error { code, message } => {
            let exit_code = match code.as_str() {
                "AuthFailure"
                | "SignatureDoesNotMatch"
                | "InvalidClientTokenId"
                | "ExpiredToken"
                | "RequestExpired" => exit::CREDENTIALS,
                _ => exit::API_REFUSED,
            };
            Err(Failure::new(
                exit_code,
                format!("DescribeInstances refused ({code}): {message}"),
            ))
        }
        _ => Err(Failure::other(format!(
            "DescribeInstances answered HTTP {status} without an error"
        ))),
    }
}

/// The POST, signed for service `ec2` in `region`.
fn signed_request(
    endpoint: &str,
    region: &str,
    credentials: Credentials,
    instance: &str,
) -> Result<aws_smithy_runtime_api::http::Request<SdkBody>, Failure> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| Failure::usage(format!("the EC2 endpoint {endpoint:?} is not a URL: {e}")))?;
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| Failure::usage(format!("the EC2 endpoint {endpoint:?} has no host")))?;
    let body = query(instance);
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let headers = [("host", host.as_str()), ("content-type", content_type)];
    let identity = Identity::from(credentials);
    let failed =
        |e: &dyn std::fmt::Display| Failure::other(format!("cannot sign DescribeInstances: {e}"));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("ec2")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        uri.to_string(),
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    let mut request = http::Request::post(uri)
        .header(http::header::HOST, &host)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(SdkBody::from(body))
        .map_err(|e| failed(&e))?;
    instructions.apply_to_request_http1x(&mut request);
    request.try_into().map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_signed_for_ec2() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let request = signed_request(
            "http://127.0.0.1:4580",
            "eu-west-1",
            credentials,
            "i-0123456789abcdef0",
        )
        .unwrap();
        let header = |name: &str| request.headers().get(name).unwrap_or_default().to_owned();
        let auth = header("authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-1/ec2/aws4_request"), "{auth}");
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date"),
            "{auth}"
        );
        assert_eq!(header("host"), "127.0.0.1:4580");
        assert_eq!(request.method(), "POST");
        assert_eq!(
            request.body().bytes(),
            Some(
                &b"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0"[..]
            )
        );
    }

    #[test]
    fn answers_become_addresses_or_failures() {
        let found = "<DescribeInstancesResponse><reservationSet><item><instancesSet><item>\
                     <instanceId>i-1234567890</instanceId><privateIpAddress>10.1.2.3</privateIpAddress>\
                     </item></instancesSet></item></reservationSet></DescribeInstancesResponse>";
        assert_eq!(
            interpret(200, found, "i-1234567890").unwrap(),
            Addresses {
                public: None,
                private: Some("10.1.2.3".into())
            }
        );
        let missing = interpret(200, found, "i-9999999999").unwrap_err();
        assert_eq!(missing.code, exit::API_REFUSED);
        let auth = "<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able \
                    to validate the provided access credentials</Message></Error></Errors></Response>";
        assert_eq!(
            interpret(401, auth, "i-1").unwrap_err().code,
            exit::CREDENTIALS
        );
        let denied = auth.replace("AuthFailure", "UnauthorizedOperation");
        let f = interpret(403, &denied, "i-1").unwrap_err();
        assert_eq!(f.code, exit::API_REFUSED);
        assert!(f.message.contains("UnauthorizedOperation"), "{}", f.message);
        assert_eq!(
            interpret(502, "<html>bad gateway", "i-1").unwrap_err().code,
            exit::OTHER
        );
        assert_eq!(
            interpret(500, found, "i-1234567890").unwrap_err().code,
            exit::OTHER
        );
    }
}
