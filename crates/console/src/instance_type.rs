//! Which instance types have a serial console: AWS supports it on Nitro instances only.

/// Xen-based families (no serial console). Everything else of a well-formed type is treated as
/// Nitro, which is true for every family launched since 2017.
const XEN_FAMILIES: &[&str] = &[
    "a1", "c1", "c3", "c4", "cc1", "cc2", "cg1", "cr1", "d2", "f1", "g2", "g3", "g3s", "h1", "hi1",
    "hs1", "i2", "i3", "m1", "m2", "m3", "m4", "p2", "p3", "r3", "r4", "t1", "t2", "x1", "x1e",
];

/// Bare-metal types AWS documents as unsupported.
const METAL_EXCEPTIONS: &[&str] = &[
    "a1.metal",
    "mac1.metal",
    "mac2.metal",
    "g5g.metal",
    "u-6tb1.metal",
    "u-9tb1.metal",
    "u-12tb1.metal",
    "u-18tb1.metal",
    "u-24tb1.metal",
];

/// True when `instance_type` (e.g. `t3.micro`) supports the serial console.
pub fn supports_serial_console(instance_type: &str) -> bool {
    let Some((family, size)) = instance_type.split_once('.') else {
        return false;
    };
    if family.is_empty() || size.is_empty() {
        return false;
    }
    if size == "metal" || size.starts_with("metal-") {
        return !METAL_EXCEPTIONS.contains(&instance_type);
    }
    // i3.metal is Nitro but i3.large is Xen: the metal check above must come first.
    !XEN_FAMILIES.contains(&family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nitro_table() {
        for ok in [
            "t3.micro",
            "m5.large",
            "c7g.xlarge",
            "i3.metal",
            "m5.metal",
            "t4g.nano",
            "u-3tb1.56xlarge",
        ] {
            assert!(supports_serial_console(ok), "{ok}");
        }
        for bad in [
            "t2.micro",
            "m4.large",
            "c4.xlarge",
            "i3.large",
            "x1.16xlarge",
            "mac1.metal",
            "a1.metal",
            "a1.large",
            "bogus",
            "t3.",
        ] {
            assert!(!supports_serial_console(bad), "{bad}");
        }
    }
}
