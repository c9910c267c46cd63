//! serialgate's domain: the rules of EC2 Instance Connect's serial console, free of any protocol.
//!
//! `api` (HTTP/JSON) and `gateway` (SSH) are thin adapters over this crate: they translate their
//! wire format into calls on [`ConsoleService`] and map [`ConsoleError`] back to their protocol.
//! Nothing here performs I/O except through the store traits ([`SlotStore`] with its
//! [`GrantStore`] and [`SessionLeases`], [`SessionDirectory`], [`Throttle`], [`AccountSettings`], [`AuditSink`],
//! [`ConsoleProbe`], [`ConsoleOwnership`], [`SharedStates`]), and time is always read from an injected [`Clock`],
//! so expiry, teardown and session caps are tested without sleeping.

pub mod accounts;
pub mod audit;
pub mod browser;
pub mod clock;
pub mod control;
pub mod directory;
pub mod error;
pub mod grants;
pub mod ids;
pub mod instance_type;
pub mod keys;
pub mod leases;
pub mod memory;
pub mod ops;
pub mod ownership;
pub mod policy;
pub mod probe;
pub mod registry;
pub mod service;
pub mod slots;
pub mod states;
pub mod throttle;

pub use accounts::AccountSettings;
pub use audit::{
    AuditEvent, AuditOutcome, AuditSink, RefusalEvent, SessionEvent, SessionPhase, TracingAudit,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use directory::{EndRequest, MemoryDirectory, SessionDirectory, SessionEntry};
pub use error::{Busy, ConsoleError, Denial, NotFound, StateInvalid, StoreError};
pub use grants::{Grant, GrantKey, GrantStore, GrantTarget};
pub use ids::{AccountId, AvailabilityZone, InstanceId, OsUser, SerialPort};
pub use keys::{KeyError, SshPublicKey};
pub use leases::{Lease, SessionLeases, SlotState, slot_state};
pub use memory::{MemoryOwnership, MemorySlotStore};
pub use ops::CallSubject;
pub use ownership::{ConsoleOwnership, NodeInfo, Owner, check_node_name};
pub use policy::{Action, ActionSet, Identity, Principal};
pub use probe::{AlwaysReachable, ConsoleProbe};
pub use registry::{Account, Instance, InstanceState, Registry};
pub use service::{ConsoleService, RequestContext, Settings};
pub use slots::{OpenDenied, OpenOutcome, PushOutcome, SlotStore};
pub use states::{MemoryStates, Order, SharedState, SharedStates};
pub use throttle::{MemoryThrottle, Throttle, ThrottleConfig};
