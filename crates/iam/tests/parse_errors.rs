//! Documents that must be refused at load, with the statement named and the message an operator
//! reads after the file name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use iam::{ParseErrorKind, Policy};

fn err(document: &str) -> iam::ParseError {
    Policy::parse("p", document).expect_err(document)
}

/// A one-statement 2012 document around the statement members `members`.
fn stmt(members: &str) -> String {
    format!(r#"{{"Version": "2012-10-17", "Statement": [{{{members}}}]}}"#)
}

const OK: &str = r#""Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*""#;

#[test]
fn messages() {
    let cases: Vec<(String, &str)> = vec![
        (
            "not json".into(),
            "invalid JSON at line 1 column 2: expected ident",
        ),
        (
            "[]".into(),
            "a policy document must be a JSON object, not an array",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": [], "Statement": []}"#.into(),
            "invalid JSON at line 1 column 54: duplicate member `Statement`",
        ),
        (r#"{"Version": "2012-10-17"}"#.into(), "missing Statement"),
        (
            r#"{"Version": "2012-10-17", "Statement": []}"#.into(),
            "Statement is empty",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": "x"}"#.into(),
            "Statement must be an object or an array of objects, not a string",
        ),
        (
            r#"{"Version": "2012-10-18", "Statement": []}"#.into(),
            r#"Version "2012-10-18" is not supported (expected "2012-10-17" or "2008-10-17")"#,
        ),
        (
            r#"{"Version": 2012, "Statement": []}"#.into(),
            "Version must be a string, not a number",
        ),
        (
            r#"{"version": "2012-10-17", "Statement": []}"#.into(),
            "unknown element `version` (expected one of: Version, Id, Statement)",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": [1]}"#.into(),
            "Statement[0]: a statement must be an object, not a number",
        ),
        (
            stmt(r#""Sid": "S1", "Effect": "Block", "Action": "ec2:X", "Resource": "*""#),
            r#"Statement[0] (Sid "S1"): Effect must be "Allow" or "Deny", not "Block""#,
        ),
        (
            stmt(r#""Effect": "allow", "Action": "ec2:X", "Resource": "*""#),
            r#"Statement[0]: Effect must be "Allow" or "Deny", not "allow""#,
        ),
        (
            stmt(r#""Action": "ec2:X", "Resource": "*""#),
            "Statement[0]: missing Effect",
        ),
        (
            stmt(r#""Effect": "Allow", "Resource": "*""#),
            "Statement[0]: missing Action or NotAction",
        ),
        (
            stmt(r#""Effect": "Allow", "Action": "ec2:X""#),
            "Statement[0]: missing Resource or NotResource",
        ),
        (
            stmt(
                r#""Sid": "Both", "Effect": "Allow", "Action": "ec2:X", "NotAction": "ec2:Y", "Resource": "*""#,
            ),
            r#"Statement[0] (Sid "Both"): `Action` and `NotAction` cannot be used together"#,
        ),
        (
            stmt(r#""Effect": "Allow", "Action": "ec2:X", "Resource": "*", "NotResource": "*""#),
            "Statement[0]: `Resource` and `NotResource` cannot be used together",
        ),
        (
            stmt(r#""Effect": "Allow", "Action": [], "Resource": "*""#),
            "Statement[0]: Action is empty",
        ),
        (
            stmt(r#""Effect": "Allow", "Action": ["ec2:X", 3], "Resource": "*""#),
            "Statement[0]: Action must be a string or an array of strings, not a number",
        ),
        (
            stmt(r#""Effect": "Allow", "Action": "DescribeInstances", "Resource": "*""#),
            r#"Statement[0]: action "DescribeInstances" is not `*` or `service:action`"#,
        ),
        (
            stmt(r#""Effect": "Allow", "Action": "ec2:", "Resource": "*""#),
            r#"Statement[0]: action "ec2:" is not `*` or `service:action`"#,
        ),
        (
            stmt(r#""Effect": "Allow", "Action": "ec2:a b", "Resource": "*""#),
            r#"Statement[0]: action "ec2:a b" is not `*` or `service:action`"#,
        ),
        (
            stmt(&format!(r#"{OK}, "Principal": {{"AWS": "*"}}"#)),
            "Statement[0]: `Principal` is not allowed in an identity-based policy",
        ),
        (
            stmt(&format!(r#"{OK}, "Effects": "Allow""#)),
            "Statement[0]: unknown element `Effects` (expected one of: Sid, Effect, Action, NotAction, Resource, NotResource, Condition)",
        ),
        (
            stmt(&format!(r#""Sid": "Has space", {OK}"#)),
            r#"Statement[0]: Sid "Has space" must contain only ASCII letters and digits"#,
        ),
        (
            format!(
                r#"{{"Version": "2012-10-17", "Statement": [{{"Sid": "A", {OK}}}, {{"Sid": "A", {OK}}}]}}"#
            ),
            r#"Statement[1] (Sid "A"): Sid "A" is used by more than one statement"#,
        ),
        (
            stmt(&format!(
                r#""Sid": "C", {OK}, "Condition": {{"StringEqual": {{"k": "v"}}}}"#
            )),
            r#"Statement[0] (Sid "C"): unknown condition operator `StringEqual`"#,
        ),
        (
            stmt(&format!(
                r#"{OK}, "Condition": {{"NullIfExists": {{"k": "true"}}}}"#
            )),
            "Statement[0]: condition operator `NullIfExists`: Null has no IfExists form",
        ),
        (
            stmt(&format!(
                r#"{OK}, "Condition": {{"ForAllValues:Null": {{"k": "true"}}}}"#
            )),
            "Statement[0]: condition operator `ForAllValues:Null`: Null takes no ForAnyValue/ForAllValues qualifier",
        ),
        (
            stmt(&format!(r#"{OK}, "Condition": {{"StringEquals": "v"}}"#)),
            "Statement[0]: Condition StringEquals must be an object, not a string",
        ),
        (
            stmt(&format!(r#"{OK}, "Condition": {{"StringEquals": {{}}}}"#)),
            "Statement[0]: Condition StringEquals is empty",
        ),
        (
            stmt(&format!(
                r#"{OK}, "Condition": {{"StringEquals": {{"k": []}}}}"#
            )),
            r#"Statement[0]: Condition StringEquals "k" is empty"#,
        ),
        (
            stmt(&format!(
                r#"{OK}, "Condition": {{"StringEquals": {{"k": {{"a": 1}}}}}}"#
            )),
            r#"Statement[0]: Condition StringEquals "k" must be a string, number or boolean, not an object"#,
        ),
        (
            stmt(&format!(
                r#"{OK}, "Condition": {{"NumericLessThan": {{"k": "ten"}}}}"#
            )),
            r#"Statement[0]: condition NumericLessThan on "k": "ten" is not a number"#,
        ),
        (
            stmt(&format!(
                r#"{OK}, "Condition": {{"DateLessThan": {{"k": "2024-02-30"}}}}"#
            )),
            r#"Statement[0]: condition DateLessThan on "k": "2024-02-30" is not an ISO 8601 date or epoch seconds"#,
        ),
        (
            stmt(&format!(r#"{OK}, "Condition": {{"Bool": {{"k": "yes"}}}}"#)),
            r#"Statement[0]: condition Bool on "k": "yes" is not true or false"#,
        ),
        (
            stmt(&format!(
                r#"{OK}, "Condition": {{"IpAddress": {{"k": "10.0.0.0/33"}}}}"#
            )),
            r#"Statement[0]: condition IpAddress on "k": "10.0.0.0/33" is not an IP address or CIDR block"#,
        ),
        (
            stmt(&format!(
                r#"{OK}, "Condition": {{"Null": {{"k": "maybe"}}}}"#
            )),
            r#"Statement[0]: condition Null on "k": "maybe" is not true or false"#,
        ),
        (
            stmt(
                r#""Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::home/${aws:username""#,
            ),
            r#"Statement[0]: Resource "arn:aws:s3:::home/${aws:username": `${` is not closed by `}`"#,
        ),
        (
            stmt(
                r#""Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::${}""#,
            ),
            r#"Statement[0]: NotResource "arn:aws:s3:::${}": `${}` names no key"#,
        ),
        (
            stmt(&format!(
                r#"{OK}, "Condition": {{"StringEquals": {{"k": "${{a, b}}"}}}}"#
            )),
            r#"Statement[0]: Condition StringEquals "k" "${a, b}": `${a, b}` is not a key name, or a key name followed by `, 'default value'`"#,
        ),
    ];
    let mut failures = Vec::new();
    for (document, expected) in &cases {
        let got = err(document).to_string();
        if got != *expected {
            failures.push(format!(
                "{document}\n  expected: {expected}\n  got:      {got}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn structured_location() {
    let document = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{{OK}}}, {{"Sid": "Second", "Effect": "Maybe", "Action": "a:b", "Resource": "*"}}]}}"#
    );
    let e = err(&document);
    assert_eq!(e.statement_index(), Some(1));
    assert_eq!(e.sid(), Some("Second"));
    assert_eq!(e.kind(), &ParseErrorKind::InvalidEffect("Maybe".into()));

    let e = err("{}");
    assert_eq!((e.statement_index(), e.sid()), (None, None));
    assert_eq!(e.kind(), &ParseErrorKind::Missing("Statement"));

    // A start-up error prints it after the file name.
    assert_eq!(
        format!("policy file /etc/serialgate/ops.json: {e}"),
        "policy file /etc/serialgate/ops.json: missing Statement"
    );
}

#[test]
fn json_errors_carry_line_and_column() {
    let e = err("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n}");
    match e.kind() {
        ParseErrorKind::Json { line, .. } => assert_eq!(*line, 4, "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn accepted_forms() {
    // A lone statement object, Id, numbers and booleans as condition values, escapes, no Sid.
    let document = r#"{"Version": "2012-10-17", "Id": "x", "Statement": {
        "Effect": "Deny", "NotAction": ["ec2:*"], "NotResource": ["arn:aws:s3:::${*}"],
        "Condition": {"NumericLessThan": {"k": 5}, "Bool": {"b": true}, "ForAnyValue:StringLikeIfExists": {"t": ["a*", 1]}}}}"#;
    let policy = Policy::parse("p", document).unwrap();
    assert_eq!(policy.statement_count(), 1);
    assert_eq!(policy.statement(0), Some((None, iam::Effect::Deny)));
    // Without Version, `${` is plain text, so even a malformed variable loads.
    let old =
        r#"{"Statement": {"Effect": "Allow", "Action": "a:b", "Resource": "arn:aws:s3:::${x"}}"#;
    assert_eq!(
        Policy::parse("p", old).unwrap().version(),
        iam::Version::V2008_10_17
    );
    // Unknown condition keys are no parse error.
    let unknown_key = stmt(&format!(
        r#"{OK}, "Condition": {{"StringEquals": {{"no:SuchKey": "v"}}}}"#
    ));
    assert!(Policy::parse("p", &unknown_key).is_ok());
}
