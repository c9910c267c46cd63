//! The open-file limit and the connection caps derived from it.
//!
//! Every connection costs descriptors: one per API connection, two per SSH connection plus its
//! console. When they run out, both listeners fail to accept anyone. So `serve` raises the soft
//! `RLIMIT_NOFILE` to the hard limit at start-up, and the caps not set in the configuration are
//! derived from the result N: B = N − 64 descriptors go to connections (the rest stay for files,
//! consoles and stores), half of them to the API, a sixth to SSH.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept back from connections: files, consoles, stores, logs.
const RESERVED: u64 = 64;

/// Descriptors one SSH connection may hold: two for the connection itself and one for its
/// session's console.
const SSH_DESCRIPTORS: u64 = 3;

/// The API's default cap: half the budget, within these bounds.
const API_BOUNDS: (usize, usize) = (16, 16_384);

/// The SSH default cap: a sixth of the budget, within these bounds.
const SSH_BOUNDS: (usize, usize) = (8, 4096);

/// The default connection caps for an open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Derived {
    /// The soft open-file limit they derive from (`u64::MAX`: unlimited).
    pub open_files: u64,
    pub api_max_connections: usize,
    pub ssh_max_connections: usize,
}

impl Derived {
    pub fn from_open_files(open_files: u64) -> Self {
        let budget = open_files.saturating_sub(RESERVED);
        Self {
            open_files,
            api_max_connections: clamp(budget / 2, API_BOUNDS),
            ssh_max_connections: clamp(budget / 6, SSH_BOUNDS),
        }
    }

    /// Whether `api` and `ssh` connections at once could need more descriptors than the
    /// budget (the limit less the reserve).
    pub fn exceeded_by(&self, api: usize, ssh: usize) -> bool {
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let demand = wide(api).saturating_add(wide(ssh).saturating_mul(SSH_DESCRIPTORS));
        demand > self.open_files.saturating_sub(RESERVED)
    }
}

fn clamp(value: u64, (low, high): (usize, usize)) -> usize {
    usize::try_from(value)
        .unwrap_or(usize::MAX)
        .clamp(low, high)
}

/// Raises the soft open-file limit to the hard one and returns the soft limit in force after
/// (`u64::MAX` when unlimited). Failing to raise it is logged and not fatal.
pub fn raise_open_file_limit() -> u64 {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let soft = current.unwrap_or(u64::MAX);
    // An unlimited hard limit cannot be the soft limit for descriptors (Linux caps it at
    // fs.nr_open, by default 2^20; macOS at OPEN_MAX): aim for the common ceiling instead.
    let target = maximum.unwrap_or(1 << 20);
    if target <= soft {
        return soft;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum,
        },
    ) {
        Ok(()) => {
            tracing::info!(
                from = soft,
                to = target,
                "raised the open-file limit (RLIMIT_NOFILE)"
            );
            target
        }
        Err(e) => {
            tracing::warn!(
                "cannot raise the open-file limit (RLIMIT_NOFILE) from {soft} to {target}: {e}"
            );
            soft
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn caps_follow_the_limit_within_bounds() {
        let d = Derived::from_open_files(1024);
        // B = 960: half for the API, a sixth for SSH.
        assert_eq!((d.api_max_connections, d.ssh_max_connections), (480, 160));
        let d = Derived::from_open_files(65_536);
        assert_eq!(
            (d.api_max_connections, d.ssh_max_connections),
            (16_384, 4096)
        );
        let d = Derived::from_open_files(1 << 20);
        assert_eq!(
            (d.api_max_connections, d.ssh_max_connections),
            (16_384, 4096)
        );
        // Tiny or unusable limits still leave a few connections.
        for n in [0, 1, 64, 90] {
            let d = Derived::from_open_files(n);
            assert_eq!(
                (d.api_max_connections, d.ssh_max_connections),
                (16, 8),
                "{n}"
            );
        }
        let d = Derived::from_open_files(u64::MAX);
        assert_eq!(
            (d.api_max_connections, d.ssh_max_connections),
            (16_384, 4096)
        );
    }

    #[test]
    fn derived_caps_fit_the_budget_and_configured_ones_may_not() {
        for n in [256, 1024, 4096, 65_536, 1 << 20] {
            let d = Derived::from_open_files(n);
            assert!(
                !d.exceeded_by(d.api_max_connections, d.ssh_max_connections),
                "{n}"
            );
        }
        let d = Derived::from_open_files(1024);
        assert!(d.exceeded_by(961, 0));
        assert!(d.exceeded_by(0, 321));
        assert!(!d.exceeded_by(960, 0));
        assert!(Derived::from_open_files(1024).exceeded_by(usize::MAX, usize::MAX));
    }

    #[test]
    fn raising_leaves_a_usable_limit() {
        let before = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        let after = raise_open_file_limit();
        assert!(after >= before);
        assert_eq!(
            getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX),
            after
        );
    }
}
