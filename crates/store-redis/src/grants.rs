//! [`GrantStore`] on Redis: one hash per grant (`key principal_arn request_id exp used`),
//! expiring with the grant (`PEXPIREAT`). Grants are written only by the scripts of
//! [`SlotStore`](console::SlotStore) (`slots.rs`).

use async_trait::async_trait;
use console::{Grant, GrantKey, GrantStore, SshPublicKey, StoreError};

use crate::RedisSlots;

/// The hash fields of a grant, in the order [`from_fields`] reads them.
pub(crate) const FIELDS: [&str; 5] = ["key", "principal_arn", "request_id", "exp", "used"];

/// A grant from its hash fields (`HMGET` of [`FIELDS`]); `None` when there is no grant. The key
/// is kept in OpenSSH form (public material, not a secret); numbers are decimal strings.
fn from_fields(v: Vec<Option<String>>) -> Result<Option<Grant>, StoreError> {
    let [key, principal_arn, request_id, exp, used]: [Option<String>; 5] = v
        .try_into()
        .map_err(|v: Vec<_>| StoreError::new(format!("redis returned {} grant fields", v.len())))?;
    let (Some(key), Some(principal_arn), Some(request_id), Some(exp)) =
        (key, principal_arn, request_id, exp)
    else {
        return Ok(None);
    };
    let key = SshPublicKey::parse(&key)
        .map_err(|e| StoreError::new(format!("stored grant has an unusable key: {e}")))?;
    let expires_at_ms = exp
        .parse()
        .map_err(|_| StoreError::new(format!("stored grant has a bad expiry {exp:?}")))?;
    Ok(Some(Grant {
        key,
        principal_arn,
        request_id,
        expires_at_ms,
        // Anything but a clear "unused" opens nothing.
        used: used.as_deref() != Some("0"),
    }))
}

#[async_trait]
impl GrantStore for RedisSlots {
    async fn find(&self, key: &GrantKey, now_ms: u64) -> Result<Option<Grant>, StoreError> {
        let mut conn = self.store.conn.clone();
        let name = self.store.keys.grant(key);
        let fields: Vec<Option<String>> = self
            .store
            .bounded("HMGET grant", async move {
                redis::cmd("HMGET")
                    .arg(&name)
                    .arg(&FIELDS[..])
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        // Redis expires on its own clock; the domain's clock decides.
        Ok(from_fields(fields)?.filter(|g| g.is_live(now_ms)))
    }

    async fn take(&self, key: &GrantKey, request_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.store.conn.clone();
        let name = self.store.keys.grant(key);
        let script = &self.store.scripts.take;
        let removed: i64 = self
            .store
            .bounded("take grant", async move {
                script
                    .key(&name)
                    .arg(request_id)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(removed == 1)
    }

    async fn purge_expired(&self, _now_ms: u64) -> Result<usize, StoreError> {
        // Redis drops grants at their expiry (PEXPIREAT).
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = include_str!("../../../testdata/keys/ed25519.pub");

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn a_grant_reads_back_from_its_fields() {
        let g = from_fields(vec![
            some(ED25519.trim()),
            some("arn:aws:iam::111122223333:root"),
            some("req-1"),
            some("1800000060000"),
            some("0"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(g.request_id, "req-1");
        assert_eq!(g.expires_at_ms, 1_800_000_060_000);
        assert!(!g.used);
    }

    #[test]
    fn missing_fields_are_no_grant_and_odd_flags_are_spent() {
        assert_eq!(from_fields(vec![None; 5]).unwrap(), None);
        let g = from_fields(vec![
            some(ED25519.trim()),
            some("arn"),
            some("req-1"),
            some("5"),
            None,
        ])
        .unwrap()
        .unwrap();
        assert!(g.used);
        assert!(from_fields(vec![None; 4]).is_err());
        assert!(
            from_fields(vec![
                some("junk"),
                some("a"),
                some("r"),
                some("5"),
                some("0")
            ])
            .is_err()
        );
    }
}
