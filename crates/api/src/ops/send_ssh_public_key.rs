//! `SendSSHPublicKey`: `{"InstanceId", "InstanceOSUser", "SSHPublicKey", "AvailabilityZone"?}`.

use axum::response::Response;
use console::ops::PushOsUserKey;
use console::service::RequestContext;
use console::{AvailabilityZone, ConsoleService, InstanceId, OsUser, SshPublicKey};

use crate::error::ApiError;
use crate::json::Members;
use crate::ops::{TargetMember, invalid, refused_by_parse, success};

const OPERATION: &str = "SendSSHPublicKey";

/// Parse: JSON body → validated domain request.
pub fn parse(body: &[u8]) -> Result<PushOsUserKey, ApiError> {
    let m = Members::parse(body)?;
    let instance_id = m.required_string("InstanceId")?;
    let os_user = m.required_string("InstanceOSUser")?;
    let key = m.required_string("SSHPublicKey")?;
    let az = m.optional_string("AvailabilityZone")?;
    Ok(PushOsUserKey {
        instance_id: invalid(InstanceId::parse(instance_id))?,
        os_user: invalid(OsUser::parse(os_user))?,
        key: invalid(SshPublicKey::parse(key))?,
        availability_zone: az
            .map(AvailabilityZone::parse)
            .transpose()
            .map_err(ApiError::invalid_args)?,
    })
}

/// Handle + encode.
pub async fn handle(
    service: &ConsoleService,
    ctx: &RequestContext,
    body: &[u8],
) -> Result<Response, ApiError> {
    let req = match parse(body) {
        Ok(req) => req,
        Err(e) => {
            let target = TargetMember::OsUser;
            return Err(refused_by_parse(service, ctx, OPERATION, body, target, e).await);
        }
    };
    // The domain operation records the call from here on, whatever its outcome.
    let receipt = service.push_os_user_key(ctx, req).await?;
    Ok(success(&receipt.request_id))
}
