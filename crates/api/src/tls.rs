//! TLS for the API listener: the server configuration from a PEM certificate chain and key.
//!
//! The crypto provider is named explicitly (aws-lc-rs, the one the rest of the binary already
//! links) rather than taken from a process-wide default, so nothing depends on which other
//! crate installed one first.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate or key that cannot be used, with the file it came from.
#[derive(Debug)]
pub struct TlsError {
    /// The file at fault, when one is.
    pub file: Option<PathBuf>,
    pub problem: String,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}: {}", file.display(), self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

impl std::error::Error for TlsError {}

/// The server side of TLS: `cert_file` holds the certificate, optionally followed by its chain;
/// `key_file` the private key (PKCS #8, PKCS #1 or SEC1). HTTP/1.1 is the only protocol offered.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let in_file = |file: &Path, problem: String| TlsError {
        file: Some(file.to_owned()),
        problem,
    };
    let certs = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| in_file(cert_file, pem_problem(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| in_file(cert_file, pem_problem(&e)))?;
    if certs.is_empty() {
        return Err(in_file(
            cert_file,
            "no PEM certificate (BEGIN CERTIFICATE) found".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => in_file(
            key_file,
            "no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) found"
                .into(),
        ),
        other => in_file(key_file, pem_problem(&other)),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError {
            file: None,
            problem: format!("TLS setup: {e}"),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError {
            file: Some(cert_file.to_owned()),
            problem: format!("cannot be used with the key in {}: {e}", key_file.display()),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => format!("cannot read: {io}"),
        other => format!("not valid PEM: {other}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("api-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();

        let e = server_config(&missing, &junk).unwrap_err();
        assert!(
            e.to_string().starts_with(&missing.display().to_string()),
            "{e}"
        );
        assert!(e.to_string().contains("cannot read"), "{e}");

        let e = server_config(&junk, &junk).unwrap_err();
        assert_eq!(e.file.as_deref(), Some(junk.as_path()));
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
