//! The access keys the API accepts, and the principal each one authenticates as.

use std::collections::HashMap;
use std::sync::Arc;

use console::Principal;
use sigv4::{SecretKey, SecretLookup, SigningSecret};

/// One configured access key.
#[derive(Debug, Clone)]
pub struct CredentialEntry {
    pub access_key_id: String,
    pub secret_access_key: SecretKey,
    /// When set, requests must carry it in `X-Amz-Security-Token`.
    pub session_token: Option<SecretKey>,
    pub principal: Principal,
}

/// Access key id → credential. Built once at startup; lookups are a hash probe.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_key: Arc<HashMap<String, CredentialEntry>>,
}

impl Credentials {
    pub fn new(entries: impl IntoIterator<Item = CredentialEntry>) -> Self {
        let by_key = entries
            .into_iter()
            .map(|e| (e.access_key_id.clone(), e))
            .collect();
        Self {
            by_key: Arc::new(by_key),
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The principal `access_key_id` authenticates as.
    pub fn principal(&self, access_key_id: &str) -> Option<Principal> {
        self.by_key.get(access_key_id).map(|e| e.principal.clone())
    }

    /// Whether `access_key_id` is configured.
    pub fn contains(&self, access_key_id: &str) -> bool {
        self.by_key.contains_key(access_key_id)
    }
}

impl SecretLookup for Credentials {
    type Principal = Principal;

    fn lookup(&self, access_key_id: &str) -> Option<SigningSecret<Principal>> {
        self.by_key.get(access_key_id).map(|e| SigningSecret {
            secret: e.secret_access_key.clone(),
            session_token: e.session_token.clone(),
            principal: e.principal.clone(),
        })
    }
}
