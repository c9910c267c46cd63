//! Links already spent, remembered until they expire: a presigned URL opens the console once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// Spent links remembered at most. Only a valid signature adds one, so reaching this takes an
/// authenticated caller making links faster than they expire; past it, the oldest are
/// forgotten first (each expires within the server's maximum link age anyway).
const MAX_REMEMBERED: usize = 100_000;

#[derive(Debug, Default)]
pub(super) struct SpentLinks {
    spent: Mutex<HashMap<[u8; 32], SystemTime>>,
}

impl SpentLinks {
    /// Spends the link with `signature`, valid until `until`; false when it was spent before.
    pub(super) fn spend(&self, signature: &[u8; 32], until: SystemTime, now: SystemTime) -> bool {
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        if spent.len() >= MAX_REMEMBERED {
            spent.retain(|_, expiry| *expiry >= now);
            if spent.len() >= MAX_REMEMBERED
                && let Some(oldest) = spent.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k)
            {
                spent.remove(&oldest);
            }
        }
        match spent.get(signature) {
            Some(expiry) if *expiry >= now => false,
            _ => {
                spent.insert(*signature, until);
                true
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_link_is_spent_once() {
        let links = SpentLinks::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let until = now + Duration::from_secs(60);
        assert!(links.spend(&[1; 32], until, now));
        assert!(!links.spend(&[1; 32], until, now + Duration::from_secs(30)));
        assert!(links.spend(&[2; 32], until, now));
    }
}
