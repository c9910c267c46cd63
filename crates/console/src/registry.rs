//! The accounts and instances serialgate knows, loaded from configuration.
//!
//! Identity and placement are fixed at startup; the two things EC2 calls may change at run time
//! — an account's serial console switch and an instance's state — sit behind interior locks.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::ids::{AccountId, AvailabilityZone, InstanceId};

/// EC2 instance states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

impl InstanceState {
    /// EC2's name for the state (`running`, `shutting-down`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
        }
    }

    /// EC2's numeric state code.
    pub fn code(self) -> u16 {
        match self {
            InstanceState::Pending => 0,
            InstanceState::Running => 16,
            InstanceState::ShuttingDown => 32,
            InstanceState::Terminated => 48,
            InstanceState::Stopping => 64,
            InstanceState::Stopped => 80,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => InstanceState::Pending,
            "running" => InstanceState::Running,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            "shutting-down" => InstanceState::ShuttingDown,
            "terminated" => InstanceState::Terminated,
            _ => return None,
        })
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An AWS account as serialgate models it.
#[derive(Debug)]
pub struct Account {
    pub id: AccountId,
    serial_console_access: AtomicBool,
}

impl Account {
    pub fn new(id: AccountId, serial_console_access: bool) -> Self {
        Self {
            id,
            serial_console_access: AtomicBool::new(serial_console_access),
        }
    }

    pub fn serial_console_access(&self) -> bool {
        self.serial_console_access.load(Ordering::SeqCst)
    }

    pub fn set_serial_console_access(&self, on: bool) {
        self.serial_console_access.store(on, Ordering::SeqCst);
    }
}

/// An instance and where its console is.
#[derive(Debug)]
pub struct Instance {
    pub id: InstanceId,
    pub account: AccountId,
    pub instance_type: String,
    pub availability_zone: AvailabilityZone,
    pub tags: BTreeMap<String, String>,
    /// Flags the instance as having firmware without serial console support.
    pub unsupported_bios: bool,
    /// The console backend URI (`unix:…`, `sim:`, …), interpreted by the gateway.
    pub console: String,
    /// The IPv4 addresses DescribeInstances reports (`ipAddress`, `privateIpAddress`), where
    /// `serialgate ssh` connects.
    pub public_ip: Option<Ipv4Addr>,
    pub private_ip: Option<Ipv4Addr>,
    /// The condition keys AWS sets from the instance (`aws:ResourceTag/K`, `ec2:ResourceTag/K`,
    /// `ec2:InstanceType`, `ec2:AvailabilityZone`), converted once.
    pub(crate) iam_context: Arc<iam::Context>,
    state: RwLock<InstanceState>,
}

impl Instance {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: InstanceId,
        account: AccountId,
        instance_type: String,
        availability_zone: AvailabilityZone,
        tags: BTreeMap<String, String>,
        unsupported_bios: bool,
        console: String,
        state: InstanceState,
    ) -> Self {
        let mut iam_context = iam::Context::new();
        iam_context
            .insert("ec2:InstanceType", instance_type.clone())
            .insert("ec2:AvailabilityZone", availability_zone.to_string());
        for (k, v) in &tags {
            iam_context
                .insert(&format!("aws:ResourceTag/{k}"), v.clone())
                .insert(&format!("ec2:ResourceTag/{k}"), v.clone());
        }
        Self {
            iam_context: Arc::new(iam_context),
            id,
            account,
            instance_type,
            availability_zone,
            tags,
            unsupported_bios,
            console,
            public_ip: None,
            private_ip: None,
            state: RwLock::new(state),
        }
    }

    /// The instance with these IP addresses.
    pub fn with_addresses(mut self, public: Option<Ipv4Addr>, private: Option<Ipv4Addr>) -> Self {
        self.public_ip = public;
        self.private_ip = private;
        self
    }

    pub fn state(&self) -> InstanceState {
        *self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_state(&self, state: InstanceState) {
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

/// All accounts and instances.
#[derive(Debug, Default)]
pub struct Registry {
    accounts: HashMap<AccountId, Arc<Account>>,
    instances: HashMap<InstanceId, Arc<Instance>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_account(&mut self, account: Account) {
        self.accounts.insert(account.id.clone(), Arc::new(account));
    }

    pub fn add_instance(&mut self, instance: Instance) {
        self.instances
            .insert(instance.id.clone(), Arc::new(instance));
    }

    pub fn account(&self, id: &AccountId) -> Option<&Arc<Account>> {
        self.accounts.get(id)
    }

    pub fn instance(&self, id: &InstanceId) -> Option<&Arc<Instance>> {
        self.instances.get(id)
    }

    pub fn instances(&self) -> impl Iterator<Item = &Arc<Instance>> {
        self.instances.values()
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.accounts.values()
    }
}
