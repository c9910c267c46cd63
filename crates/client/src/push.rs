//! The key pushes (SendSerialConsoleSSHPublicKey, SendSSHPublicKey, and serialgate's
//! SpectateSerialConsole) and the `push` and `push-os-user-key` commands, which make them with a
//! key from a file and print the RequestId.

use std::path::Path;
use std::time::Duration;

use aws_sdk_ec2instanceconnect::error::{ProvideErrorMetadata as _, SdkError};

use crate::args::{PushArgs, PushOsUserKeyArgs};
use crate::aws::{self, Api, Loaded};
use crate::errors::{Failure, exit, report};
use crate::explain::{self, Context};

/// A refused SendSerialConsoleSSHPublicKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// The port's one session is open or tearing down (`connect --wait` waits this out); the
    /// service may say when it frees.
    Busy {
        retry_in: Option<Duration>,
        failure: Failure,
    },
    Other(Failure),
}

impl From<PushError> for Failure {
    fn from(error: PushError) -> Self {
        match error {
            PushError::Busy { failure, .. } | PushError::Other(failure) => failure,
        }
    }
}

/// Pushes `public_key` for the serial console of `instance`/`port`; returns the RequestId.
pub async fn serial_key(
    api: &Api,
    instance: &str,
    port: u8,
    public_key: &str,
) -> Result<String, PushError> {
    let cx = Context {
        api,
        instance,
        port: Some(port),
        availability_zone: None,
    };
    let output = api
        .client
        .send_serial_console_ssh_public_key()
        .instance_id(instance)
        .serial_port(i32::from(port))
        .ssh_public_key(public_key)
        .send()
        .await
        .map_err(|e| {
            let busy = match &e {
                SdkError::ServiceError(s) if s.err().code() == Some(explain::BUSY) => {
                    Some(explain::retry_in(s.err().message().unwrap_or_default()))
                }
                _ => None,
            };
            let failure = explain::sdk_error(e, &cx);
            match busy {
                Some(retry_in) => PushError::Busy { retry_in, failure },
                None => PushError::Other(failure),
            }
        })?;
    Ok(output.request_id().unwrap_or_default().to_owned())
}

/// Pushes `public_key` as a spectator's of `instance`/`port` (serialgate's
/// SpectateSerialConsole); returns the RequestId.
pub async fn spectator_key(
    loaded: &Loaded,
    instance: &str,
    port: u8,
    public_key: &str,
) -> Result<String, Failure> {
    let body = serde_json::json!({
        "InstanceId": instance,
        "SerialPort": port,
        "SSHPublicKey": public_key,
    });
    let answer = crate::sessions::call(loaded, "SpectateSerialConsole", &body).await?;
    Ok(answer
        .get("RequestId")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned())
}

/// Pushes `public_key` for `os_user` on `instance` (SendSSHPublicKey); returns the RequestId.
pub async fn os_user_key(
    api: &Api,
    instance: &str,
    os_user: &str,
    public_key: &str,
    availability_zone: Option<&str>,
) -> Result<String, Failure> {
    let cx = Context {
        api,
        instance,
        port: None,
        availability_zone,
    };
    let output = api
        .client
        .send_ssh_public_key()
        .instance_id(instance)
        .instance_os_user(os_user)
        .ssh_public_key(public_key)
        .set_availability_zone(availability_zone.map(str::to_owned))
        .send()
        .await
        .map_err(|e| explain::sdk_error(e, &cx))?;
    Ok(output.request_id().unwrap_or_default().to_owned())
}

/// The public key in `path`: a public key file as it is (OpenSSH or RFC 4716; the service
/// checks it), or the public half of an unencrypted OpenSSH private key.
pub fn read_public_key(path: &Path) -> Result<String, Failure> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read the key {shown}: {e}")))?;
    if !text.contains("PRIVATE KEY-----") {
        return Ok(text.trim().to_owned());
    }
    let private = russh::keys::decode_secret_key(&text, None).map_err(|e| {
        Failure::usage(format!(
            "{shown} is a private key this command cannot read ({e}); pass the public key \
             ({shown}.pub) instead"
        ))
    })?;
    private
        .public_key()
        .to_openssh()
        .map_err(|e| Failure::other(format!("cannot encode the public key of {shown}: {e}")))
}

/// `serialgate push`.
pub async fn run_push(args: PushArgs) -> i32 {
    report(
        async {
            let key = read_public_key(&args.key)?;
            let id = if args.spectate {
                let loaded = aws::load(&args.aws).await?;
                spectator_key(&loaded, &args.instance_id, args.port, &key).await?
            } else {
                let api = aws::connect(&args.aws).await?;
                serial_key(&api, &args.instance_id, args.port, &key)
                    .await
                    .map_err(Failure::from)?
            };
            println!("{id}");
            Ok(exit::OK)
        }
        .await,
    )
}

/// `serialgate push-os-user-key`.
pub async fn run_push_os_user_key(args: PushOsUserKeyArgs) -> i32 {
    report(
        async {
            let key = read_public_key(&args.key)?;
            let api = aws::connect(&args.aws).await?;
            let id = os_user_key(
                &api,
                &args.instance_id,
                &args.os_user,
                &key,
                args.availability_zone.as_deref(),
            )
            .await?;
            println!("{id}");
            Ok(exit::OK)
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::{Algorithm, PrivateKey, ssh_key::LineEnding};

    #[test]
    fn public_and_private_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
        let public = key.public_key().to_openssh().unwrap();

        let pub_path = dir.path().join("id.pub");
        std::fs::write(&pub_path, format!("{public} me@host\n")).unwrap();
        assert_eq!(
            read_public_key(&pub_path).unwrap(),
            format!("{public} me@host")
        );

        let priv_path = dir.path().join("id");
        std::fs::write(
            &priv_path,
            key.to_openssh(LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        assert_eq!(read_public_key(&priv_path).unwrap(), public);

        let missing = read_public_key(&dir.path().join("nope")).unwrap_err();
        assert_eq!(missing.code, exit::USAGE);
        assert!(missing.message.contains("cannot read the key"));
    }
}
