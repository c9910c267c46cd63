//! `serialgate console-url`: a presigned link that opens an instance's serial console in a
//! browser (serialgate's `OpenSerialConsole`), signed here with the caller's credentials. The
//! link is valid for `--expires` seconds (the server allows 60 unless configured otherwise)
//! and opens the console once.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::args::{ConnectArgs, ConsoleUrlArgs};
use crate::aws;
use crate::errors::{Failure, exit, report};

/// The signing name of serialgate's API (EC2 Instance Connect's).
const SERVICE: &str = "ec2-instance-connect";

/// `serialgate console-url …`: prints the link.
pub async fn run(args: ConsoleUrlArgs) -> i32 {
    report(print_url(args).await)
}

async fn print_url(args: ConsoleUrlArgs) -> Result<i32, Failure> {
    let url = make_url(&args).await?;
    println!("{url}");
    Ok(exit::OK)
}

/// `serialgate connect --browser`: a link valid for the usual 60 s, opened in the system's
/// browser; the link is printed too, for a browser on another machine.
pub async fn open_in_browser(args: &ConnectArgs) -> Result<i32, Failure> {
    let url = make_url(&ConsoleUrlArgs {
        instance_id: args.instance_id.clone(),
        port: args.port,
        expires: 60,
        aws: args.aws.clone(),
    })
    .await?;
    println!("{url}");
    let opener = browser_command();
    let status = std::process::Command::new(&opener)
        .arg(&url)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            Failure::other(format!(
                "cannot run {opener} to open the link ({e}); open the link above in a browser \
                 within 60 seconds, or set $BROWSER"
            ))
        })?;
    if !status.success() {
        return Err(Failure::other(format!(
            "{opener} could not open the link ({status}); open the link above in a browser \
             within 60 seconds"
        )));
    }
    Ok(exit::OK)
}

/// `$BROWSER` (its first entry: it may list several, colon-separated), else the desktop's
/// opener.
fn browser_command() -> String {
    std::env::var("BROWSER")
        .ok()
        .and_then(|b| b.split(':').next().map(str::to_owned))
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| {
            if cfg!(target_os = "macos") {
                "open".to_owned()
            } else {
                "xdg-open".to_owned()
            }
        })
}

/// The presigned link for `args`.
pub async fn make_url(args: &ConsoleUrlArgs) -> Result<String, Failure> {
    if !(1..=604_800).contains(&args.expires) {
        return Err(Failure::usage(
            "--expires must be between 1 and 604800 seconds",
        ));
    }
    let loaded = aws::load(&args.aws).await?;
    let Some(endpoint) = loaded.custom_endpoint.clone() else {
        return Err(Failure::usage(
            "console links are a serialgate feature: give serialgate's endpoint with \
             --endpoint-url (or AWS_ENDPOINT_URL)",
        ));
    };
    let credentials = loaded.credentials().await?;
    let base = endpoint.trim_end_matches('/');
    let url = format!("{base}/console/{}/{}", args.instance_id, args.port);
    presign(
        &url,
        &loaded.region,
        credentials,
        args.expires,
        SystemTime::now(),
    )
}

/// Signs `GET url` in its query string (`X-Amz-…`), for `host` only.
pub fn presign(
    url: &str,
    region: &str,
    credentials: aws_credential_types::Credentials,
    expires_secs: u64,
    now: SystemTime,
) -> Result<String, Failure> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| Failure::usage(format!("{url:?} is not a URL: {e}")))?;
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| Failure::usage(format!("{url:?} has no host")))?;
    let identity = Identity::from(credentials);
    let failed = |e: &dyn std::fmt::Display| Failure::other(format!("cannot sign the link: {e}"));
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires_secs));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let headers = [("host", host.as_str())];
    let signable = SignableRequest::new(
        "GET",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    let query: Vec<String> = instructions
        .params()
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    Ok(format!("{url}?{}", query.join("&")))
}

/// Percent-encodes everything but the unreserved characters, as SigV4 canonicalises.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_link_carries_its_signature_in_the_query() {
        let creds =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "t");
        let url = presign(
            "http://127.0.0.1:4580/console/i-0123456789abcdef0/0",
            "us-east-1",
            creds,
            60,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160),
        )
        .unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:4580/console/i-0123456789abcdef0/0?"),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fec2-instance-connect%2Faws4_request",
            "X-Amz-Date=20150830T123600Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
    }
}
