//! Refused instance key requests, logged at most once a minute per instance with a count.
//!
//! They are not audited one by one: anyone can send them, and the trail must not grow with
//! junk. The instances are the configured ones, fixed at start, so the counters are bounded;
//! requests that name no configured instance share one counter.

use std::collections::HashMap;

use console::InstanceId;
use console::ops::SampledWarning;

use super::check::Refusal;

/// At most one line per instance this often.
const EVERY_MS: u64 = 60_000;

#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    per_instance: HashMap<InstanceId, SampledWarning>,
    others: SampledWarning,
}

impl RefusalLog {
    pub(crate) fn new(instances: impl IntoIterator<Item = InstanceId>) -> Self {
        Self {
            per_instance: instances
                .into_iter()
                .map(|id| (id, SampledWarning::default()))
                .collect(),
            others: SampledWarning::default(),
        }
    }

    /// Counts `refusal`; logs it when its instance's line is due. Returns whether it logged.
    pub(crate) fn count(&self, refusal: &Refusal, now_ms: u64) -> bool {
        let known = refusal
            .instance
            .as_ref()
            .and_then(|id| Some((id, self.per_instance.get(id)?)));
        let counter = known.map_or(&self.others, |(_, c)| c);
        let Some(unlogged) = counter.due(now_ms, EVERY_MS) else {
            return false;
        };
        let instance = known.map_or("(not a configured instance)", |(id, _)| id.as_str());
        tracing::warn!(
            instance,
            reason = refusal.reason.as_str(),
            refused = unlogged + 1,
            "instance key requests refused since the last report (answered 404; at most one line a minute per instance)"
        );
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::check::Reason;
    use super::*;

    fn refusal(id: &str) -> Refusal {
        Refusal {
            instance: InstanceId::parse(id).ok(),
            reason: Reason::BadProof,
        }
    }

    #[test]
    fn one_line_a_minute_per_instance_and_one_for_all_others() {
        let a = "i-0000000000000000a";
        let log = RefusalLog::new([InstanceId::parse(a).unwrap()]);
        assert!(log.count(&refusal(a), 1_000));
        assert!(!log.count(&refusal(a), 2_000));
        // Unknown and malformed instances share one counter, apart from the known ones.
        assert!(log.count(&refusal("i-0000000000000000b"), 2_000));
        assert!(!log.count(&refusal("i-0000000000000000c"), 3_000));
        assert!(!log.count(&refusal("junk"), 3_000));
        assert!(!log.count(&refusal(a), 60_999));
        assert!(log.count(&refusal(a), 61_000));
    }
}
