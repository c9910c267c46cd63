//! Property tests of the request decoders that see untrusted bytes: AWS JSON members, the two
//! operation parsers, and the EC2 form decoder with its list and filter conventions. Each never
//! panics, answers only with the errors an SDK expects, and stays linear on adversarial shapes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value, json};

use crate::ec2::error::Ec2Code;
use crate::ec2::params::Params;
use crate::error::ErrorCode;
use crate::json::Members;
use crate::ops::{send_serial_console_ssh_public_key as serial, send_ssh_public_key as os_user};

const ED25519: &str = include_str!("../../../testdata/keys/ed25519.pub");
const RSA2048: &str = include_str!("../../../testdata/keys/rsa2048.pub");

/// The default case count, unless `PROPTEST_CASES` says otherwise (`scripts/fuzz.sh`).
fn config(cases: u32) -> Config {
    let base = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        base
    } else {
        Config { cases, ..base }
    }
}

// --- generators ---------------------------------------------------------------------------

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        Just(json!(0)),
        Just(json!(-0.0)),
        Just(json!(1e300)),
        Just(Value::String(ED25519.trim().to_owned())),
        Just(Value::String("i-0123456789abcdef0".to_owned())),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request body as the operations read it: their members, each absent, right or wrong.
fn request_object() -> impl Strategy<Value = Value> {
    let member = |valid: BoxedStrategy<Value>| prop_oneof![2 => valid, 1 => json_value(), 1 => Just(Value::Null)];
    let instance_id = prop_oneof![
        "i-[0-9a-f]{8,30}".prop_map(Value::String),
        "i-[0-9a-zA-Z]{0,40}".prop_map(Value::String),
    ]
    .boxed();
    let key = prop::sample::select(vec![
        ED25519.to_owned(),
        RSA2048.to_owned(),
        ED25519.trim().to_owned(),
        format!("{} extra", ED25519.trim()),
        ED25519[..60].to_owned(),
        ED25519.replace("ssh-ed25519", "ssh-rsa"),
    ])
    .prop_map(Value::String)
    .boxed();
    let port = prop_oneof![Just(json!(0)), any::<i64>().prop_map(Value::from)].boxed();
    let user = prop_oneof![
        "[a-z_][a-z0-9_-]{0,31}".prop_map(Value::String),
        ".{0,40}".prop_map(Value::String),
    ]
    .boxed();
    let az = prop_oneof![
        "[a-z]{2}-[a-z]{4}-[0-9][a-z]".prop_map(Value::String),
        ".{0,40}".prop_map(Value::String),
    ]
    .boxed();
    (
        prop::option::of(member(instance_id)),
        prop::option::of(member(key)),
        prop::option::of(member(port)),
        prop::option::of(member(user)),
        prop::option::of(member(az)),
        prop::collection::btree_map("[A-Za-z]{1,12}", json_value(), 0..3),
    )
        .prop_map(|(id, key, port, user, az, extra)| {
            let mut m: Map<String, Value> = extra.into_iter().collect();
            for (name, v) in [
                ("InstanceId", id),
                ("SSHPublicKey", key),
                ("SerialPort", port),
                ("InstanceOSUser", user),
                ("AvailabilityZone", az),
            ] {
                if let Some(v) = v {
                    m.insert(name.to_owned(), v);
                }
            }
            Value::Object(m)
        })
}

/// What a client may send where JSON is expected: JSON text with bytes flipped, cut short or
/// spliced, or any bytes at all.
fn json_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        request_object().prop_map(|v| v.to_string().into_bytes()),
        (request_object(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(v, at, b)| {
            let mut bytes = v.to_string().into_bytes();
            let i = at.index(bytes.len());
            bytes[i] = b;
            bytes
        }),
        (request_object(), any::<prop::sample::Index>()).prop_map(|(v, at)| {
            let bytes = v.to_string().into_bytes();
            let cut = at.index(bytes.len() + 1);
            bytes[..cut].to_vec()
        }),
        prop::collection::vec(any::<u8>(), 0..64),
        "[\\[\\]{}\",:0-9a-z .eE+-]{0,64}".prop_map(String::into_bytes),
    ]
}

/// An EC2 Query form: known names (lists, filters, flags), arbitrary names and values, and
/// raw separators.
fn form_bytes() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        Just("Action".to_owned()),
        Just("Version".to_owned()),
        Just("DryRun".to_owned()),
        Just("Latest".to_owned()),
        Just("InstanceId".to_owned()),
        "InstanceId\\.[0-9]{0,11}",
        "InstanceId\\.[0-9a-z.+-]{0,6}",
        "Filter\\.[0-9]{0,11}\\.(Name|Value\\.[0-9]{0,11}|Value|Other)",
        "Filter\\.[0-9a-z.]{0,8}",
        ".{0,10}",
    ];
    let value = prop_oneof![
        "i-[0-9a-f]{8,17}",
        "(true|false|TRUE|yes|)",
        "(instance-id|instance-state-name|tag:Team|tag:|tag-key|owner-id|bogus)",
        ".{0,12}",
    ];
    let pair = (name, value).prop_map(|(k, v)| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair(&k, &v)
            .finish()
    });
    prop_oneof![
        prop::collection::vec(
            prop_oneof![
                8 => pair,
                1 => "[=&%+]{1,4}",
                1 => "%[0-9a-fA-FgG]{0,2}",
            ],
            0..10
        )
        .prop_map(|parts| parts.join("&").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

// --- properties -----------------------------------------------------------------------------

/// The codes a body alone may produce: a JSON type error or a missing/invalid member.
fn body_error(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::SerializationException | ErrorCode::InvalidArgsException
    )
}

proptest! {
    #![proptest_config(config(256))]

    /// Any body: the decoder and both operation parsers answer with a body error, never a
    /// panic or another code.
    #[test]
    fn prop_json_bodies_never_panic(body in json_bytes()) {
        if let Err(e) = Members::parse(&body) {
            prop_assert_eq!(e.code, ErrorCode::SerializationException);
        }
        if let Err(e) = serial::parse(&body) {
            prop_assert!(body_error(e.code), "{:?}", e.code);
        }
        if let Err(e) = os_user::parse(&body) {
            prop_assert!(body_error(e.code), "{:?}", e.code);
        }
    }

    /// The protocol's split: a member of the wrong JSON type is a `SerializationException`, a
    /// missing or invalid one is `InvalidArgsException`; `null` counts as absent; a request
    /// that parses carries exactly the values sent.
    #[test]
    fn prop_json_members_are_typed_like_aws(body in request_object()) {
        let m = body.as_object().unwrap();
        let get = |k: &str| m.get(k).filter(|v| !v.is_null());
        let text = body.to_string();
        match serial::parse(text.as_bytes()) {
            Ok(req) => {
                prop_assert_eq!(Some(req.instance_id.as_str()), get("InstanceId").and_then(Value::as_str));
                prop_assert_eq!(req.port.get(), 0);
                prop_assert!(get("SerialPort").is_none_or(|p| p.as_i64() == Some(0)));
            }
            Err(e) => {
                // Members are read in this order; the first wrong type decides the code.
                let first_wrong_type = ["InstanceId", "SSHPublicKey"]
                    .iter()
                    .map(|k| get(k).is_some_and(|v| !v.is_string()))
                    .chain([get("SerialPort").is_some_and(|v| v.as_i64().is_none())])
                    .any(|wrong| wrong);
                if first_wrong_type {
                    prop_assert!(body_error(e.code), "{:?}", e.code);
                } else {
                    prop_assert_eq!(e.code, ErrorCode::InvalidArgsException, "{}", e.message);
                }
            }
        }
        if let Err(e) = os_user::parse(text.as_bytes()) {
            prop_assert!(body_error(e.code), "{:?}", e.code);
        }
    }

    /// Any form decodes, and every accessor the EC2 operations use answers without panicking,
    /// with the errors EC2 documents for bad parameters.
    #[test]
    fn prop_ec2_forms_never_panic(body in form_bytes()) {
        let p = Params::parse(&body);
        let _ = p.get("Action");
        let _ = p.list("InstanceId");
        let _ = p.list("Filter");
        if let Err(e) = p.instance_ids() {
            prop_assert_eq!(e.code, Ec2Code::InvalidInstanceIdMalformed);
        }
        if let Err(e) = p.filters() {
            prop_assert_eq!(e.code, Ec2Code::MissingParameter);
        }
        for flag in ["DryRun", "Latest", "Force"] {
            if let Err(e) = p.flag(flag) {
                prop_assert_eq!(e.code, Ec2Code::InvalidParameterValue);
            }
        }
        let _ = p.required("InstanceId");
    }

    /// Form round trip: pairs encoded as SDKs encode them decode to the same names and values
    /// (the last of a repeated name wins), and `prefix.N` lists come back in index order.
    #[test]
    fn prop_ec2_form_round_trip(
        pairs in prop::collection::vec((".{0,8}", ".{0,8}"), 0..8),
        items in prop::collection::vec((1u32..1000, ".{0,8}"), 0..8),
    ) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &pairs {
            form.append_pair(k, v);
            expected.insert(k.clone(), v.clone());
        }
        let mut list: BTreeMap<u32, String> = BTreeMap::new();
        for (n, v) in &items {
            form.append_pair(&format!("Item.{n}"), v);
            list.insert(*n, v.clone());
        }
        let p = Params::parse(form.finish().as_bytes());
        for (k, v) in &expected {
            if !k.starts_with("Item.") {
                prop_assert_eq!(p.get(k), Some(v.as_str()));
            }
        }
        // A generated name may also look like `Item.N`; drop those from the check.
        prop_assume!(!pairs.iter().any(|(k, _)| k.starts_with("Item")));
        let want: Vec<&str> = list.values().map(String::as_str).collect();
        prop_assert_eq!(p.list("Item"), want);
    }

    /// Filters come back in index order with their values in index order; a value without a
    /// name is `MissingParameter`.
    #[test]
    fn prop_ec2_filters_in_index_order(
        filters in prop::collection::btree_map(
            1u32..50,
            (prop::option::of("[a-z:-]{1,10}"), prop::collection::btree_map(1u32..50, "[a-z0-9*?]{0,6}", 0..4)),
            0..5,
        ),
    ) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (n, (name, values)) in &filters {
            if let Some(name) = name {
                form.append_pair(&format!("Filter.{n}.Name"), name);
            }
            for (m, v) in values {
                form.append_pair(&format!("Filter.{n}.Value.{m}"), v);
            }
        }
        let p = Params::parse(form.finish().as_bytes());
        let nameless = filters.values().any(|(name, values)| name.is_none() && !values.is_empty());
        match p.filters() {
            Ok(got) => {
                prop_assert!(!nameless);
                let want: Vec<(String, Vec<String>)> = filters
                    .values()
                    .filter_map(|(name, values)| {
                        Some((name.clone()?, values.values().cloned().collect()))
                    })
                    .collect();
                let got: Vec<(String, Vec<String>)> =
                    got.into_iter().map(|f| (f.name, f.values)).collect();
                prop_assert_eq!(got, want);
            }
            Err(e) => {
                prop_assert!(nameless);
                prop_assert_eq!(e.code, Ec2Code::MissingParameter);
            }
        }
    }
}

// --- linear time on adversarial shapes ------------------------------------------------------
//
// Deterministic inputs of about 1 MB (the body limit is 64 KiB by default, but an operator may
// raise `max_body_bytes`). A quadratic decoder takes minutes here; a linear one milliseconds.

const BIG: usize = 1 << 20;

fn repeat_to(unit: &str, len: usize) -> String {
    unit.repeat(len / unit.len() + 1)
}

#[test]
fn prop_linear_json_deep_nesting_is_refused() {
    for (open, close) in [("[", "]"), ("{\"a\":", "}"), ("[{\"a\":", "}]")] {
        for depth in [10_000, 100_000] {
            let body = format!("{}0{}", open.repeat(depth), close.repeat(depth));
            let e = Members::parse(body.as_bytes()).unwrap_err();
            assert_eq!(e.code, ErrorCode::SerializationException);
            let e = serial::parse(body.as_bytes()).unwrap_err();
            assert_eq!(e.code, ErrorCode::SerializationException);
        }
        // Unclosed, as an attacker would not bother to close it.
        let body = open.repeat(BIG / open.len());
        assert!(Members::parse(body.as_bytes()).is_err());
    }
}

#[test]
fn prop_linear_json_wide_and_long() {
    // 1 MB of members, most of them repeats of one name; long strings of escapes; long arrays.
    let members = (0..BIG / 16)
        .map(|i| format!("\"m{}\":{i}", i % 7))
        .collect::<Vec<_>>()
        .join(",");
    for body in [
        format!("{{{members}}}"),
        format!(
            "{{\"InstanceId\":\"{}\"}}",
            repeat_to("\\u0000\\n\\\"", BIG)
        ),
        format!("{{\"SSHPublicKey\":\"{}\"}}", repeat_to("A", BIG)),
        format!("{{\"A\":[{}0]}}", repeat_to("0,", BIG)),
        format!("{{\"SerialPort\":{}}}", repeat_to("9", BIG)),
        repeat_to(" ", BIG),
    ] {
        if let Err(e) = serial::parse(body.as_bytes()) {
            assert!(body_error(e.code), "{:?}", e.code);
        }
        if let Err(e) = os_user::parse(body.as_bytes()) {
            assert!(body_error(e.code), "{:?}", e.code);
        }
    }
}

#[test]
fn prop_linear_ec2_forms() {
    for unit in [
        "a=&",
        "&",
        "=",
        "%",
        "%%",
        "+",
        "InstanceId.1=i-0123456789&",
    ] {
        let p = Params::parse(repeat_to(unit, BIG).as_bytes());
        let _ = p.instance_ids();
        let _ = p.filters();
        let _ = p.list("InstanceId");
    }
    // Distinct list items and filters, as many as fit in 1 MB.
    let ids = (1..)
        .map(|n| format!("InstanceId.{n}=i-{n:017x}&"))
        .scan(0, |len, item| {
            *len += item.len();
            (*len < BIG).then_some(item)
        })
        .collect::<String>();
    let ids = Params::parse(ids.as_bytes()).instance_ids().unwrap();
    assert!(ids.len() > 20_000);
    let filters = (1..)
        .map(|n| format!("Filter.{n}.Name=tag:k{n}&Filter.{n}.Value.{n}=v&"))
        .scan(0, |len, item| {
            *len += item.len();
            (*len < BIG).then_some(item)
        })
        .collect::<String>();
    assert!(Params::parse(filters.as_bytes()).filters().unwrap().len() > 10_000);
    let values = (1..)
        .map(|n| format!("Filter.1.Value.{n}=v{n}&"))
        .take(BIG / 20)
        .collect::<String>();
    let p = Params::parse(format!("Filter.1.Name=tag:k&{values}").as_bytes());
    assert_eq!(p.filters().unwrap()[0].values.len(), BIG / 20);
}
