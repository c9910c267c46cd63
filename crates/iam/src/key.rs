//! Condition key names, compiled: lowercased (keys are case-insensitive) and hashed once, so a
//! context lookup compares one integer per entry before it compares any text.

/// A lowercase condition key with its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    hash: u64,
    name: Box<str>,
}

impl Key {
    pub(crate) fn new(name: &str) -> Self {
        let name: Box<str> = name.to_lowercase().into();
        Self {
            hash: fnv1a(name.as_bytes()),
            name,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Same key: the hash first, the text only when the hashes agree.
    pub(crate) fn same(&self, other: &Key) -> bool {
        self.hash == other.hash && self.name == other.name
    }
}

/// FNV-1a, 64-bit: short keys, no allocation, and only ever a filter before a text comparison,
/// so collisions cost time, never correctness.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive() {
        assert!(Key::new("aws:PrincipalTag/Team").same(&Key::new("AWS:principaltag/team")));
        assert!(!Key::new("aws:username").same(&Key::new("aws:userid")));
        assert_eq!(Key::new("A:B").name(), "a:b");
    }
}
