//! The instance's IP addresses from EC2's DescribeInstances: one EC2 Query request signed with
//! SigV4 (service `ec2`) and sent with the SDK's HTTP client (`signed.rs`), the answer read by a small XML
//! reader. The EC2 SDK would cost more to build than everything else here together.

use aws_credential_types::Credentials;

use super::xml::{Described, describe_answer};
use crate::aws::Loaded;
use crate::errors::{Failure, exit};
use crate::signed::{self, Call};

/// The EC2 API version serialgate and AWS both answer.
const VERSION: &str = "2016-11-15";

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
    let body = query(instance);
    let (status, body) =
        signed::send(loaded, credentials, call(endpoint, &loaded.region, &body)).await?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        Failure::other(format!(
            "DescribeInstances on {endpoint}: the answer (HTTP {status}) is not text"
        ))
    })?;
    interpret(status, text, instance)
}

/// The request, for service `ec2`.
fn call<'a>(endpoint: &'a str, region: &'a str, body: &'a str) -> Call<'a> {
    Call {
        what: "DescribeInstances",
        endpoint,
        region,
        service: "ec2",
        content_type: "application/x-www-form-urlencoded; charset=utf-8",
        headers: &[],
        body,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_signed_for_ec2() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let body = query("i-0123456789abcdef0");
        let request = signed::signed_request(
            call("http://127.0.0.1:4580", "eu-west-1", &body),
            credentials,
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
