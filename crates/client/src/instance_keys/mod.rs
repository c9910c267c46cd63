//! The instance side of `SendSSHPublicKey`'s wire format: the proof an instance sends to fetch
//! its keys, and the signed key records it gets back (`GET /instance-keys/v1/{os_user}`).
//!
//! Invariants: pure (no I/O, time passed in); nothing in a record is believed before its
//! signature by the pinned signer has verified, and a record that fails any check is dropped
//! whole.

pub mod proof;
pub mod records;
