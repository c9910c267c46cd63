//! Property tests of the configuration loader: arbitrary TOML-ish text, and well-formed files
//! with arbitrary values in every known key, load to a configuration or to a `ConfigError`
//! naming the file, never a panic; deep nesting and huge values are refused or accepted in
//! linear time. Files and environment variables the generated configurations name are kept
//! inside a temporary directory or unset, so the tests touch nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use toml::{Table, Value};

use super::{Config, ConfigError, build};

const ORIGIN: &str = "prop.toml";

/// The default case count, unless `PROPTEST_CASES` says otherwise (`scripts/fuzz.sh`).
fn config(cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        base
    } else {
        ProptestConfig { cases, ..base }
    }
}

/// Parses and builds `text`; every error must name the file.
fn load(text: &str) -> Result<(), ConfigError> {
    let result = Config::parse(text, ORIGIN).and_then(|cfg| build(&cfg, ORIGIN).map(drop));
    if let Err(e) = &result {
        assert!(e.0.starts_with(ORIGIN), "error does not name the file: {e}");
    }
    result
}

// --- arbitrary text -------------------------------------------------------------------------

fn toml_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "[",
            "]",
            "[[",
            "]]",
            "=",
            " = ",
            "\"",
            "'",
            "\"\"\"",
            "'''",
            "\n",
            "{",
            "}",
            ",",
            "#",
            ".",
            "\\",
            "\\u",
            "0x",
            "1e9",
            "-",
            "+inf",
            "nan",
            "true",
            "1979-05-27T07:32:00Z",
            "region",
            "api",
            "ssh",
            "accounts",
            "instances",
            "credentials",
            "qemu",
            "tags",
            "listen",
            "escape",
            "id",
            "account",
            "console",
            "sim:",
            "000000000000",
            "i-0123456789abcdef0",
            "access_key_id",
            "secret_access_key",
            "actions",
            "\"*\"",
        ])
        .prop_map(str::to_owned),
        "[ -~]{1,6}",
        ".{1,3}",
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(config(512))]

    /// Any text: a configuration or an error naming the file.
    #[test]
    fn prop_config_arbitrary_text_never_panics(text in prop_oneof![
        toml_soup(),
        // The embedded default with one byte replaced.
        (any::<prop::sample::Index>(), any::<char>()).prop_map(|(at, c)| {
            let mut chars: Vec<char> = super::EMBEDDED_DEFAULT.chars().collect();
            let i = at.index(chars.len());
            chars[i] = c;
            chars.into_iter().collect()
        }),
    ]) {
        let _ = load(&text);
    }
}

// --- arbitrary values in known keys ---------------------------------------------------------

/// Any TOML value, nested a little.
fn any_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        ".{0,12}".prop_map(Value::String),
        any::<i64>().prop_map(Value::Integer),
        prop::sample::select(vec![0i64, 1, -1, 3, 1023, 1024, 65536, 1 << 20, i64::MAX])
            .prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Float),
        prop::sample::select(vec![f64::NAN, f64::INFINITY, -0.0, 0.5]).prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// How far a generated document strays from a working one.
#[derive(Debug, Clone, Copy)]
struct Mood {
    /// Any value in any key, and unknown keys, now and then.
    chaos: bool,
}

impl Mood {
    /// The first of `values` is the usual, working one; the others are rarer, and may be
    /// wrong (so that most documents get past the early checks into the later ones).
    fn s(self, values: &[&str]) -> BoxedStrategy<Value> {
        let usual = Value::String(values[0].to_owned());
        let others: Vec<Value> = values[1..]
            .iter()
            .map(|v| Value::String((*v).to_owned()))
            .collect();
        self.usually(usual, others)
    }

    fn int(self, values: &[i64]) -> BoxedStrategy<Value> {
        let usual = Value::Integer(values[0]);
        let mut others: Vec<Value> = values[1..].iter().map(|v| Value::Integer(*v)).collect();
        others.push(Value::Integer(100_000));
        self.usually(usual, others)
    }

    fn usually(self, usual: Value, others: Vec<Value>) -> BoxedStrategy<Value> {
        if others.is_empty() {
            return Just(usual).boxed();
        }
        let rare = if self.chaos { 1 } else { 12 };
        prop_oneof![rare => Just(usual), 1 => prop::sample::select(others)].boxed()
    }

    fn boolean(self) -> BoxedStrategy<Value> {
        any::<bool>().prop_map(Value::Boolean).boxed()
    }

    fn list(self, item: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
        prop::collection::vec(item, 0..3)
            .prop_map(Value::Array)
            .boxed()
    }

    /// A table with the given keys, each (rarely) absent or a value from its generator; in
    /// chaos also any value at all, and an unknown key.
    fn table(self, fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Table> {
        let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
            .into_iter()
            .map(|(key, value)| {
                let value = value.prop_map(move |v| Some((key.to_owned(), v)));
                if self.chaos {
                    prop_oneof![
                        1 => Just(None),
                        6 => value,
                        1 => any_value().prop_map(move |v| Some((key.to_owned(), v))),
                    ]
                    .boxed()
                } else {
                    prop_oneof![1 => Just(None), 40 => value].boxed()
                }
            })
            .collect();
        let unknown = if self.chaos {
            prop::option::weighted(0.1, ("[a-z_]{1,10}", any_value())).boxed()
        } else {
            Just(None).boxed()
        };
        (fields, unknown)
            .prop_map(|(fields, unknown)| fields.into_iter().flatten().chain(unknown).collect())
            .boxed()
    }

    fn section(self, fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
        self.table(fields).prop_map(Value::Table).boxed()
    }

    fn tables(self, inner: BoxedStrategy<Table>, max: usize) -> BoxedStrategy<Value> {
        prop::collection::vec(inner, 0..max)
            .prop_map(|t| Value::Array(t.into_iter().map(Value::Table).collect()))
            .boxed()
    }
}

/// A whole configuration whose every key may hold anything. Paths point into `dir` (a readable
/// file, a missing one, the directory itself); environment variables are ones nobody sets.
fn document(dir: &Path, chaos: bool) -> BoxedStrategy<Table> {
    let m = Mood { chaos };
    let d = dir.display().to_string();
    let (file, missing, below) = (
        format!("{d}/file"),
        format!("{d}/missing"),
        format!("{d}/file/below"),
    );
    let path = || m.s(&[&file, &missing, &below, &d, ""]);
    let count = || m.int(&[64, 0, 1, 16, 128, 1024, 1 << 20]);
    let seconds = || m.int(&[30, 0, 1, 3, 10, 3600]);
    let account_id = || m.s(&["000000000000", "111122223333", "12345", "00000000000a"]);
    let api = m.section(vec![
        (
            "listen",
            m.s(&["127.0.0.1:4580", "[::1]:0", "0.0.0.0:1", ":80"]),
        ),
        (
            "max_body_bytes",
            m.int(&[65536, 0, 1023, 1024, 1 << 20, (1 << 20) + 1]),
        ),
        ("tls_cert_file", path()),
        ("tls_key_file", path()),
        ("max_connections", count()),
        ("max_connections_per_ip", count()),
        ("header_read_timeout_seconds", seconds()),
        ("idle_timeout_seconds", seconds()),
        ("request_timeout_seconds", seconds()),
        ("max_header_bytes", m.int(&[16384, 0, 8191, 8192, 1 << 20])),
        ("max_headers", m.int(&[64, 0, 15, 16, 10_000])),
    ]);
    let ssh = m.section(vec![
        ("listen", m.s(&["127.0.0.1:2222", "[::]:22", "x"])),
        (
            "escape",
            m.s(&["~", "none", "", "ab", "B", ".", "é", "^]", " "]),
        ),
        ("login_grace_seconds", seconds()),
        ("max_unauthenticated_per_ip", count()),
        ("max_connections", count()),
        ("max_connections_per_ip", count()),
        ("keepalive_interval_seconds", seconds()),
        ("keepalive_max", m.int(&[3, 0, 1, 1 << 20])),
    ]);
    // One source per secret, as documented; sometimes two, or none.
    let secret = |name: &'static str, file_key: &'static str, env_key: &'static str| {
        let (file, missing) = (file.clone(), missing.clone());
        prop_oneof![
            6 => Just(vec![(name, Value::String("secret".into()))]),
            1 => Just(vec![(name, Value::String(String::new()))]),
            1 => prop::sample::select(vec![file, missing]).prop_map(move |p| vec![(file_key, Value::String(p))]),
            1 => Just(vec![(env_key, Value::String("SERIALGATE_PROPTEST_UNSET".into()))]),
            1 => Just(vec![
                (name, Value::String("secret".into())),
                (env_key, Value::String("SERIALGATE_PROPTEST_UNSET".into())),
            ]),
            1 => Just(vec![]),
        ]
    };
    let credential = (
        m.table(vec![
            ("access_key_id", m.s(&["AKIDEXAMPLE", "test", "", "AK ID"])),
            ("user", m.s(&["alice", "", "a b", &"u".repeat(65)])),
            (
                "principal_arn",
                m.s(&["arn:aws:iam::000000000000:role/r", "role"]),
            ),
            (
                "instances",
                m.list(m.s(&[
                    "i-0123456789abcdef0",
                    "i-*",
                    "*",
                    "arn:aws:ec2:*:*:instance/i-?*",
                    "",
                ])),
            ),
            (
                "actions",
                m.list(m.s(&[
                    "*",
                    "ec2:*",
                    "ec2:Describe*",
                    "SendSSHPublicKey",
                    "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
                    "ec2:StartInstances",
                    "ec2:Nothing*",
                    "Bogus",
                    "?",
                    "",
                ])),
            ),
        ]),
        secret(
            "secret_access_key",
            "secret_access_key_file",
            "secret_access_key_env",
        ),
        prop::option::weighted(
            0.2,
            secret("session_token", "session_token_file", "session_token_env"),
        ),
    )
        .prop_map(|(mut t, secret, token)| {
            for (k, v) in secret.into_iter().chain(token.into_iter().flatten()) {
                t.insert(k.to_owned(), v);
            }
            t
        })
        .boxed();
    let account = m.table(vec![
        ("id", account_id()),
        ("serial_console_access", m.boolean()),
        ("credentials", m.tables(credential, 3)),
    ]);
    let qemu = m.section(vec![
        ("kernel", path()),
        ("initrd", path()),
        ("disk", path()),
        ("memory_mib", m.int(&[256, 0, 16, 1 << 21])),
        ("cpus", m.int(&[1, 0, 256, 257])),
        ("append", m.s(&["console=ttyS0", ""])),
        ("accel", m.s(&["tcg", "auto", "kvm", "hvf"])),
        ("stop_timeout_seconds", seconds()),
        ("binary", m.s(&["qemu-system-x86_64", ""])),
        (
            "ssh_forward",
            m.s(&["127.0.0.1:2201", "127.0.0.1:0", "[::1]:22", "x"]),
        ),
    ]);
    let console = m.s(&[
        "sim:",
        "sim:demo",
        "unix:/run/x.sock",
        "tcp:127.0.0.1:1",
        "telnet:h:23",
        "exec:true",
        "exec:'",
        "tty:/dev/ttyS0?baud=0",
        "bogus",
    ]);
    // An instance names a console or (rarely) a VM, or (rarely) both or neither.
    let backend = prop_oneof![
        8 => console.prop_map(|c| vec![("console", c)]),
        1 => qemu.clone().prop_map(|q| vec![("qemu", q)]),
        1 => (m.s(&["sim:"]), qemu).prop_map(|(c, q)| vec![("console", c), ("qemu", q)]),
        1 => Just(vec![]),
    ];
    let instance = (
        m.table(vec![
            (
                "id",
                m.s(&["i-0123456789abcdef0", "i-00000000000000001", "i-XYZ", ""]),
            ),
            ("account", account_id()),
            ("instance_type", m.s(&["t3.micro", "t2.micro", "m5", ""])),
            (
                "state",
                m.s(&["running", "stopped", "terminated", "Running", ""]),
            ),
            (
                "availability_zone",
                m.s(&["us-east-1a", "eu-west-3c", "x", ""]),
            ),
            (
                "tags",
                prop::collection::btree_map("[A-Za-z:]{1,8}", ".{0,8}", 0..3)
                    .prop_map(|m| {
                        Value::Table(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
                    })
                    .boxed(),
            ),
            ("unsupported_bios", m.boolean()),
        ]),
        backend,
    )
        .prop_map(|(mut t, backend)| {
            for (k, v) in backend {
                t.insert(k.to_owned(), v);
            }
            t
        })
        .boxed();
    m.table(vec![
        (
            "region",
            m.s(&[
                "us-east-1",
                "eu-west-3",
                "us-gov-west-1",
                "US-EAST-1",
                "moon",
                "",
            ]),
        ),
        ("state_dir", m.s(&[&format!("{d}/state")])),
        ("api", api),
        ("ssh", ssh),
        (
            "keys",
            m.section(vec![("ttl_seconds", m.int(&[60, 0, 1, 86_400]))]),
        ),
        (
            "sessions",
            m.section(vec![
                ("max_duration_seconds", m.int(&[3600, 0, 1])),
                ("teardown_seconds", seconds()),
            ]),
        ),
        (
            "throttle",
            m.section(vec![
                (
                    "rate_per_second",
                    m.usually(
                        Value::Float(20.0),
                        [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-300]
                            .into_iter()
                            .map(Value::Float)
                            .collect(),
                    ),
                ),
                ("burst", m.int(&[40, 0, 1])),
            ]),
        ),
        (
            "store",
            m.section(vec![
                (
                    "redis",
                    m.s(&["redis://127.0.0.1:1/0", "unix:///x", "http://x", ""]),
                ),
                ("lease_seconds", m.int(&[15, 0, 2, 3])),
                ("timeout_ms", m.int(&[2000, 0, 1])),
            ]),
        ),
        (
            "audit",
            m.section(vec![(
                "postgres",
                m.s(&["postgres://u@127.0.0.1:1/db", "mysql://x"]),
            )]),
        ),
        ("accounts", m.tables(account, 3)),
        ("instances", m.tables(instance, 3)),
    ])
}

/// A directory holding one readable (owner-only) file, for the `*_file` and qemu paths.
fn fixture_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "secret-from-file\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    dir
}

#[test]
fn prop_config_arbitrary_values_in_known_keys() {
    let dir = fixture_dir();
    let path = dir.path().to_owned();
    let documents = any::<bool>().prop_flat_map(move |chaos| document(&path, chaos));
    proptest!(config(256), |(doc in documents)| {
        // Serialising cannot fail for these values; it is what an operator could have written.
        let text = toml::to_string(&doc).unwrap();
        let _ = load(&text);
    });
}

// --- linear time on adversarial shapes ------------------------------------------------------

#[test]
fn prop_linear_config_deep_nesting_and_huge_values() {
    const BIG: usize = 1 << 20;
    for text in [
        format!("region = {}", "[".repeat(10_000)),
        format!("region = {}1{}", "[".repeat(10_000), "]".repeat(10_000)),
        format!("region = {}", "{a=".repeat(10_000)),
        "[a.".repeat(10_000),
        format!("region = \"{}\"", "a".repeat(BIG)),
        format!("region = \"{}\"", "\\u0041".repeat(BIG / 6)),
        format!("[{}]", "a.".repeat(BIG / 2)),
        "[[accounts]]\nid = \"000000000000\"\n".repeat(BIG / 32),
        format!("[[instances]]\n{}", "tags.a = 1\n".repeat(BIG / 11)),
        "#".repeat(BIG),
        "\n".repeat(BIG),
    ] {
        let _ = load(&text);
    }
}
