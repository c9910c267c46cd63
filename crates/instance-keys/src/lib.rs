//! The exchange between serialgate and an instance fetching the keys pushed for it with
//! `SendSSHPublicKey`, in one place for both sides: the server formats and signs records and
//! checks proofs; the instance-side helper computes proofs, parses records and verifies them.
//!
//! Request: `GET /instance-keys/v1/{os_user}` with [`INSTANCE_HEADER`] (the instance id) and
//! [`PROOF_HEADER`] (`t=<unix seconds>,sig=<hex HMAC-SHA256>`, see [`proof`]). Answer: `200`
//! with zero or more records (see [`record`]), or `404` with an empty body for every failure.

pub mod proof;
pub mod record;

pub use proof::{Proof, format_proof, parse_proof, proof_message, proof_tag};
pub use record::{
    FormatError, Record, Rejected, SignedRecord, format_record, parse_records, signed_data,
};

/// The path every request starts with; the OS user name follows.
pub const PATH_PREFIX: &str = "/instance-keys/v1/";

/// The header naming the instance (`i-…`).
pub const INSTANCE_HEADER: &str = "x-serialgate-instance";

/// The header carrying the instance's proof.
pub const PROOF_HEADER: &str = "x-serialgate-proof";

/// How far a proof's time may be from the server's clock, either way, in seconds.
pub const PROOF_WINDOW_SECONDS: u64 = 300;

/// The comment of the signer's public key line (`ssh-ed25519 AAAA… serialgate-signer`).
pub const SIGNER_COMMENT: &str = "serialgate-signer";

/// The signer's public key as one OpenSSH line, `ssh-ed25519 AAAA… serialgate-signer`, the
/// form an instance pins.
pub fn signer_public_line(signer: &ssh_key::PrivateKey) -> Result<String, ssh_key::Error> {
    let mut public = signer.public_key().clone();
    public.set_comment(SIGNER_COMMENT);
    public.to_openssh()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_signer_line_parses_back_to_the_signer() {
        let key = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[3; 32]));
        let line = signer_public_line(&key).unwrap();
        assert!(line.starts_with("ssh-ed25519 AAAA"), "{line}");
        assert!(line.ends_with(" serialgate-signer"), "{line}");
        let parsed = ssh_key::PublicKey::from_openssh(&line).unwrap();
        assert_eq!(parsed.key_data(), key.public_key().key_data());
    }
}
