//! Secrets given inline, in a file, or in an environment variable — exactly one of the three.

use std::path::Path;

use super::ConfigError;

/// Resolves a secret for `key` (e.g. `accounts[0].credentials[1].secret_access_key`).
/// `required` makes "none given" an error.
pub fn resolve(
    origin: &str,
    key: &str,
    inline: Option<&str>,
    file: Option<&Path>,
    env: Option<&str>,
    required: bool,
) -> Result<Option<String>, ConfigError> {
    let given =
        usize::from(inline.is_some()) + usize::from(file.is_some()) + usize::from(env.is_some());
    if given > 1 {
        return Err(ConfigError(format!(
            "{origin}: {key}: give only one of {key}, {key}_file, {key}_env"
        )));
    }
    let value = if let Some(v) = inline {
        Some(v.to_owned())
    } else if let Some(path) = file {
        warn_if_readable_by_others(origin, key, path);
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "{origin}: {key}_file: cannot read {}: {e}",
                path.display()
            ))
        })?;
        Some(text.trim_end_matches(['\r', '\n']).to_owned())
    } else if let Some(var) = env {
        Some(std::env::var(var).map_err(|_| {
            ConfigError(format!(
                "{origin}: {key}_env: environment variable {var} is not set (or not UTF-8)"
            ))
        })?)
    } else {
        None
    };
    match value {
        Some(v) if v.is_empty() => Err(ConfigError(format!("{origin}: {key}: must not be empty"))),
        None if required => Err(ConfigError(format!(
            "{origin}: {key}: missing; give {key}, {key}_file or {key}_env"
        ))),
        other => Ok(other),
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(origin: &str, key: &str, path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "{origin}: {key}_file {} is accessible by group or others; chmod 600 it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_origin: &str, _key: &str, _path: &Path) {}
