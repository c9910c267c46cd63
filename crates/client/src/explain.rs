//! API errors explained: each EC2 Instance Connect exception (and the front-door errors every
//! AWS service returns) as one line saying what happened, then the next step, with an exit code.

use std::time::Duration;

use aws_sdk_ec2instanceconnect::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2instanceconnect::operation::RequestId;

use crate::aws::{Api, MAX_ATTEMPTS};
use crate::errors::{Failure, exit, root_cause};

/// What the call was about, for the messages.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub api: &'a Api,
    pub instance: &'a str,
    pub port: Option<u8>,
    /// The Availability Zone the caller named (SendSSHPublicKey only).
    pub availability_zone: Option<&'a str>,
}

/// The error code of a push refused because the port's one session is open or tearing down.
pub const BUSY: &str = "SerialConsoleSessionLimitExceededException";

/// When the service says the port frees: serialgate's "… try again in N s." (AWS's messages
/// give no time).
pub fn retry_in(message: &str) -> Option<Duration> {
    let (_, rest) = message.rsplit_once("try again in ")?;
    let digits = rest
        .strip_suffix(" s.")
        .or_else(|| rest.strip_suffix(" s"))?;
    digits.parse().ok().map(Duration::from_secs)
}

/// The explanation of a refused call, by error code.
pub fn exception(code: &str, message: &str, cx: &Context<'_>) -> Failure {
    let (i, region) = (cx.instance, cx.api.region.as_str());
    let port = cx.port.unwrap_or(0);
    let said = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    let (exit_code, next) = match code {
        "SerialConsoleAccessDisabledException" => (
            exit::API_REFUSED,
            format!(
                "Serial console access is disabled for this account in {region}. An \
                 administrator can enable it with `aws ec2 enable-serial-console-access --region \
                 {region}` (or an organization's declarative policy manages it)."
            ),
        ),
        "EC2InstanceTypeInvalidException" => (
            exit::API_REFUSED,
            format!(
                "{i}'s instance type does not support the serial console: only Nitro-based \
                 instance types (and most *.metal types) do. Change the instance type or use \
                 another instance."
            ),
        ),
        BUSY => (
            exit::API_REFUSED,
            match retry_in(message) {
                Some(wait) => format!(
                    "The previous session on {i} port {port} ended moments ago; the port is free \
                     again in {} s. Try again then, or connect with --wait to wait for it.",
                    wait.as_secs()
                ),
                None => format!(
                    "A serial console session is already open on {i} port {port}, or one ended \
                     less than 30 seconds ago. Close the other session (Enter ~.) or wait 30 \
                     seconds, then try again, or connect with --wait to wait for it."
                ),
            },
        ),
        "EC2InstanceStateInvalidException" => (
            exit::API_REFUSED,
            format!(
                "{i} is not running. Start it (`aws ec2 start-instances --instance-ids {i}`) \
                 and connect once it is running."
            ),
        ),
        "EC2InstanceNotFoundException" => (
            exit::API_REFUSED,
            match cx.availability_zone {
                // SendSSHPublicKey looks the instance up in the zone the caller names.
                Some(az) => format!(
                    "There is no instance {i} in the Availability Zone {az} (for these \
                     credentials' account). Check the instance id and the instance's Availability \
                     Zone (`aws ec2 describe-instances --instance-ids {i} --query \
                     'Reservations[].Instances[].Placement.AvailabilityZone'`), or leave out \
                     --availability-zone."
                ),
                None => format!(
                    "There is no instance {i} in {region} (for these credentials' account). \
                     Check the instance id and the Region (--region, AWS_REGION)."
                ),
            },
        ),
        "AuthException" | "AccessDeniedException" | "UnauthorizedOperation" => (
            exit::API_REFUSED,
            format!(
                "These credentials may not push keys to {i}: the caller needs \
                 ec2-instance-connect:{action} on arn:aws:ec2:{region}:<account>:instance/{i} in \
                 its IAM policy, and the instance must belong to the credentials' account.",
                action = if cx.port.is_some() {
                    "SendSerialConsoleSSHPublicKey"
                } else {
                    "SendSSHPublicKey"
                }
            ),
        ),
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" => (
            exit::API_REFUSED,
            format!(
                "The request was throttled ({MAX_ATTEMPTS} attempts with backoff). Wait a few \
                 seconds and try again; if it persists, slow down whatever else calls the API \
                 with these credentials."
            ),
        ),
        "EC2InstanceUnavailableException" => (
            exit::API_REFUSED,
            "The instance (or its console) is unavailable right now. Wait a minute and try \
             again."
                .to_owned(),
        ),
        "SerialConsoleSessionUnavailableException" | "ServiceException" => (
            exit::API_REFUSED,
            "The service could not start the session right now. Try again in a moment.".to_owned(),
        ),
        "SerialConsoleSessionUnsupportedException" => (
            exit::API_REFUSED,
            format!(
                "{i}'s firmware (BIOS) does not support the serial console. Reboot the instance \
                 to update it, then try again."
            ),
        ),
        "InvalidArgsException" => (
            exit::API_REFUSED,
            "A parameter was refused. Check the instance id (i- and 8 to 30 hex digits), the \
             serial port (AWS: 0 only) and the key (ssh-ed25519, or ssh-rsa 2048 to 4096 bits)."
                .to_owned(),
        ),
        "UnrecognizedClientException" | "InvalidClientTokenId" => (
            exit::CREDENTIALS,
            format!(
                "The service does not know this access key. Check AWS_ACCESS_KEY_ID or the \
                 profile{}, and that {} is where this key belongs.",
                cx.api
                    .profile
                    .as_deref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default(),
                cx.api.endpoint()
            ),
        ),
        "InvalidSignatureException" | "SignatureDoesNotMatch" | "IncompleteSignatureException" => (
            exit::CREDENTIALS,
            if message.contains("scoped to a valid region") {
                format!(
                    "The endpoint serves another Region than {region}, the one these requests \
                     were signed for. Pass the Region it expects with --region (or AWS_REGION)."
                )
            } else {
                format!(
                    "The request signature was refused. Check the secret access key, the Region \
                     ({region}) and this machine's clock."
                )
            },
        ),
        "ExpiredTokenException" | "ExpiredToken" | "RequestExpired" => (
            exit::CREDENTIALS,
            "The session credentials have expired. Refresh them (e.g. `aws sso login`, or a \
             new role session) and try again."
                .to_owned(),
        ),
        "MissingAuthenticationTokenException" => (
            exit::CREDENTIALS,
            "The request was not signed. Check the credentials configuration.".to_owned(),
        ),
        _ => (
            exit::API_REFUSED,
            format!("The service refused the request with {code}."),
        ),
    };
    Failure::new(exit_code, format!("{code}{said}\n{next}"))
}

/// Turns an SDK error into a failure: an exception, or a network problem reaching the API.
pub fn sdk_error<E, R>(error: SdkError<E, R>, cx: &Context<'_>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let endpoint = cx.api.endpoint();
    match &error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let code = err.code().unwrap_or("UnknownError");
            let mut failure = exception(code, err.message().unwrap_or_default(), cx);
            if let Some(id) = err.meta().request_id() {
                failure.message = failure
                    .message
                    .replacen('\n', &format!(" (request {id})\n"), 1);
            }
            failure
        }
        SdkError::TimeoutError(_) => Failure::network(format!(
            "the EC2 Instance Connect API at {endpoint} did not answer in time; check the \
             network and the endpoint, then try again"
        )),
        SdkError::DispatchFailure(dispatch) => {
            let cause = root_cause(&error);
            let what = if dispatch.is_timeout() {
                "timed out"
            } else {
                "failed"
            };
            let hint = if cause.to_ascii_lowercase().contains("certificate") {
                "\nIf the endpoint's certificate comes from a private CA, pass --ca-bundle FILE \
                 (or set AWS_CA_BUNDLE) with that CA's certificate."
            } else {
                ""
            };
            Failure::network(format!(
                "cannot reach the EC2 Instance Connect API at {endpoint}: connection {what}: \
                 {cause}{hint}"
            ))
        }
        SdkError::ConstructionFailure(_) => Failure::usage(format!(
            "cannot build the API request: {}",
            root_cause(&error)
        )),
        _ => Failure::other(format!(
            "unexpected response from {endpoint}: {}",
            root_cause(&error)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Api {
        let conf = aws_sdk_ec2instanceconnect::Config::builder()
            .behavior_version(aws_sdk_ec2instanceconnect::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2instanceconnect::config::Region::new("eu-west-1"))
            .build();
        Api {
            client: aws_sdk_ec2instanceconnect::Client::from_conf(conf),
            region: "eu-west-1".into(),
            custom_endpoint: None,
            profile: Some("ops".into()),
        }
    }

    fn explain(code: &str) -> Failure {
        let api = api();
        let cx = Context {
            api: &api,
            instance: "i-0123456789abcdef0",
            port: Some(0),
            availability_zone: None,
        };
        exception(code, "the service's text", &cx)
    }

    #[test]
    fn a_busy_port_says_when_it_frees_and_names_wait() {
        let api = api();
        let cx = Context {
            api: &api,
            instance: "i-0123456789abcdef0",
            port: Some(0),
            availability_zone: None,
        };
        let torn = "The previous session on i-0123456789abcdef0.port0 is being torn down; try \
                    again in 3 s.";
        assert_eq!(retry_in(torn), Some(Duration::from_secs(3)));
        let f = exception(BUSY, torn, &cx);
        assert!(f.message.contains("free again in 3 s"), "{}", f.message);
        assert!(f.message.contains("--wait"), "{}", f.message);
        let held = "A session is connected to i-0123456789abcdef0.port0.";
        assert_eq!(retry_in(held), None);
        let f = exception(BUSY, held, &cx);
        assert!(f.message.contains("already open") && f.message.contains("--wait"));
        assert_eq!(retry_in("try again in x s."), None);
    }

    #[test]
    fn az_mismatch_talks_about_the_zone() {
        let api = api();
        let cx = Context {
            api: &api,
            instance: "i-0123456789abcdef0",
            port: None,
            availability_zone: Some("eu-west-1c"),
        };
        let f = exception(
            "EC2InstanceNotFoundException",
            "Instance i-0123456789abcdef0 is not in availability zone eu-west-1c.",
            &cx,
        );
        let next = f.message.lines().nth(1).unwrap_or_default();
        assert!(next.contains("Availability Zone eu-west-1c"), "{next}");
        assert!(next.contains("--availability-zone"), "{next}");
        assert!(!next.contains("Region"), "{next}");
    }

    #[test]
    fn wrong_region_says_to_pass_the_expected_one() {
        let api = api();
        let cx = Context {
            api: &api,
            instance: "i-0123456789abcdef0",
            port: Some(0),
            availability_zone: None,
        };
        let f = exception(
            "InvalidSignatureException",
            "Credential should be scoped to a valid region, not 'eu-west-1'; expecting \
             'us-east-1'.",
            &cx,
        );
        assert_eq!(f.code, exit::CREDENTIALS);
        assert!(f.message.contains("expecting 'us-east-1'"), "{}", f.message);
        assert!(f.message.contains("--region"), "{}", f.message);
    }

    #[test]
    fn every_exception_says_what_to_do() {
        let cases = [
            (
                "SerialConsoleAccessDisabledException",
                exit::API_REFUSED,
                "aws ec2 enable-serial-console-access --region eu-west-1",
            ),
            (
                "EC2InstanceTypeInvalidException",
                exit::API_REFUSED,
                "Nitro",
            ),
            (
                "SerialConsoleSessionLimitExceededException",
                exit::API_REFUSED,
                "30 seconds",
            ),
            (
                "EC2InstanceStateInvalidException",
                exit::API_REFUSED,
                "aws ec2 start-instances --instance-ids i-0123456789abcdef0",
            ),
            (
                "EC2InstanceNotFoundException",
                exit::API_REFUSED,
                "Check the instance id and the Region",
            ),
            (
                "AuthException",
                exit::API_REFUSED,
                "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
            ),
            (
                "ThrottlingException",
                exit::API_REFUSED,
                "3 attempts with backoff",
            ),
            (
                "EC2InstanceUnavailableException",
                exit::API_REFUSED,
                "try again",
            ),
            (
                "SerialConsoleSessionUnavailableException",
                exit::API_REFUSED,
                "Try again",
            ),
            (
                "SerialConsoleSessionUnsupportedException",
                exit::API_REFUSED,
                "Reboot",
            ),
            ("InvalidArgsException", exit::API_REFUSED, "instance id"),
            ("UnrecognizedClientException", exit::CREDENTIALS, "(ops)"),
            ("InvalidSignatureException", exit::CREDENTIALS, "clock"),
            ("ExpiredTokenException", exit::CREDENTIALS, "aws sso login"),
            (
                "SomethingNewException",
                exit::API_REFUSED,
                "SomethingNewException",
            ),
        ];
        for (code, exit_code, hint) in cases {
            let f = explain(code);
            assert_eq!(f.code, exit_code, "{code}");
            assert!(
                f.message
                    .starts_with(&format!("{code}: the service's text\n")),
                "{code}: {}",
                f.message
            );
            assert!(f.message.contains(hint), "{code}: {}", f.message);
            assert_eq!(f.message.lines().count(), 2, "{code}: {}", f.message);
        }
    }
}
