//! Key names (the layout is documented in the crate docs). One place, so the hash tags stay
//! consistent: every key a script touches must share its tag.

use std::sync::Arc;

use console::leases::Slot;
use console::{AccountId, GrantKey, GrantTarget, InstanceId};

#[derive(Debug, Clone)]
pub(crate) struct Keys {
    ns: Arc<str>,
}

impl Keys {
    pub(crate) fn new(namespace: &str) -> Self {
        Self {
            ns: Arc::from(namespace),
        }
    }

    pub(crate) fn grant(&self, key: &GrantKey) -> String {
        match &key.target {
            GrantTarget::SerialPort(port) => {
                format!("{}:{{{}}}:grant:port{}", self.ns, key.instance, port.get())
            }
            GrantTarget::OsUser(user) => {
                format!("{}:{{{}}}:grant:user:{user}", self.ns, key.instance)
            }
            GrantTarget::Spectator { port, fingerprint } => format!(
                "{}:{{{}}}:grant:spectate:port{}:{fingerprint}",
                self.ns,
                key.instance,
                port.get()
            ),
        }
    }

    fn slot(&self, slot: &Slot, what: &str) -> String {
        format!(
            "{}:{{{}}}:port{}:{what}",
            self.ns,
            slot.instance,
            slot.port.get()
        )
    }

    pub(crate) fn lease(&self, slot: &Slot) -> String {
        self.slot(slot, "lease")
    }

    pub(crate) fn teardown(&self, slot: &Slot) -> String {
        self.slot(slot, "teardown")
    }

    pub(crate) fn fence(&self, slot: &Slot) -> String {
        self.slot(slot, "fence")
    }

    /// When this Redis first saw the instance (see `scripts.rs`, `epoch_end`).
    pub(crate) fn epoch(&self, instance: &InstanceId) -> String {
        format!("{}:{{{instance}}}:epoch", self.ns)
    }

    /// The instance's console ownership lease.
    pub(crate) fn owner(&self, instance: &InstanceId) -> String {
        format!("{}:{{{instance}}}:owner", self.ns)
    }

    /// The last fencing token handed out for the instance's console ownership.
    pub(crate) fn owner_fence(&self, instance: &InstanceId) -> String {
        format!("{}:{{{instance}}}:owner_fence", self.ns)
    }

    /// A node's announcement. The name is checked (`console::check_node_name`): no separator
    /// or hash tag can come from it. Every registry key shares the `{nodes}` hash tag, so one
    /// script can read the names and the announcements together.
    pub(crate) fn node(&self, name: &str) -> String {
        format!("{}:{{nodes}}:node:{name}", self.ns)
    }

    /// The set of announced node names.
    pub(crate) fn node_names(&self) -> String {
        format!("{}:{{nodes}}:names", self.ns)
    }

    /// Every instance's shared EC2 state (a hash: instance id → `state seq order`), read whole
    /// by every node of a cluster.
    pub(crate) fn instance_states(&self) -> String {
        format!("{}:{{states}}:instances", self.ns)
    }

    /// Every live session of the namespace (a hash: `i-…:PORT` → entry), read whole by
    /// `ListSerialConsoleSessions`.
    pub(crate) fn sessions(&self) -> String {
        format!("{}:{{sessions}}:live", self.ns)
    }

    /// The pub/sub channel of the namespace's session end requests (a channel, not a key).
    /// Spectators present: `i-…:PORT|ID → expiry (ms)`.
    pub(crate) fn watchers(&self) -> String {
        format!("{}:{{sessions}}:watchers", self.ns)
    }

    pub(crate) fn end_channel(&self) -> String {
        format!("{}:sessions:end", self.ns)
    }

    pub(crate) fn bucket(&self, account: &AccountId) -> String {
        format!("{}:{{acct:{account}}}:bucket", self.ns)
    }

    pub(crate) fn serial_console_access(&self, account: &AccountId) -> String {
        format!("{}:{{acct:{account}}}:serial-console-access", self.ns)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use console::{OsUser, SerialPort};

    #[test]
    fn keys_share_their_instance_hash_tag() {
        let k = Keys::new("sg");
        let i = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let slot = Slot {
            instance: i.clone(),
            port: SerialPort::ZERO,
        };
        assert_eq!(
            k.grant(&GrantKey::serial(i.clone(), SerialPort::ZERO)),
            "sg:{i-0123456789abcdef0}:grant:port0"
        );
        assert_eq!(
            k.grant(&GrantKey {
                instance: i,
                target: GrantTarget::OsUser(OsUser::parse("ec2-user").unwrap()),
            }),
            "sg:{i-0123456789abcdef0}:grant:user:ec2-user"
        );
        assert_eq!(k.lease(&slot), "sg:{i-0123456789abcdef0}:port0:lease");
        assert_eq!(k.teardown(&slot), "sg:{i-0123456789abcdef0}:port0:teardown");
        assert_eq!(k.fence(&slot), "sg:{i-0123456789abcdef0}:port0:fence");
        assert_eq!(k.epoch(&slot.instance), "sg:{i-0123456789abcdef0}:epoch");
        assert_eq!(k.owner(&slot.instance), "sg:{i-0123456789abcdef0}:owner");
        assert_eq!(
            k.owner_fence(&slot.instance),
            "sg:{i-0123456789abcdef0}:owner_fence"
        );
        assert_eq!(k.node("n-1.a"), "sg:{nodes}:node:n-1.a");
        assert_eq!(k.node_names(), "sg:{nodes}:names");
        assert_eq!(k.sessions(), "sg:{sessions}:live");
        assert_eq!(k.end_channel(), "sg:sessions:end");
        let a = AccountId::parse("111122223333").unwrap();
        assert_eq!(k.bucket(&a), "sg:{acct:111122223333}:bucket");
        assert_eq!(
            k.serial_console_access(&a),
            "sg:{acct:111122223333}:serial-console-access"
        );
    }
}
