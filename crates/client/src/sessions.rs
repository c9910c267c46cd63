//! `serialgate sessions list|end`: serialgate's session control, ListSerialConsoleSessions and
//! EndSerialConsoleSession, on the Instance Connect endpoint with the same credentials as a
//! push. The SDK has no such operations, so the calls are signed here (`signed.rs`).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::args::{ListOutput, SessionsArgs, SessionsCommand, SessionsEndArgs, SessionsListArgs};
use crate::aws::{self, Loaded};
use crate::errors::{Failure, exit, report};
use crate::signed::{self, Call};

const TARGET_PREFIX: &str = "AWSEC2InstanceConnectService.";

/// `serialgate sessions …`.
pub async fn run(args: SessionsArgs) -> i32 {
    report(match args.command {
        SessionsCommand::List(a) => list(a).await,
        SessionsCommand::End(a) => end(a).await,
    })
}

async fn list(args: SessionsListArgs) -> Result<i32, Failure> {
    let body = match &args.instance {
        Some(id) => json!({ "InstanceId": id }),
        None => json!({}),
    };
    let loaded = aws::load(&args.aws).await?;
    let answer = call(&loaded, "ListSerialConsoleSessions", &body).await?;
    match args.output {
        ListOutput::Json => println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        ),
        ListOutput::Table => print!("{}", table(&answer)?),
    }
    Ok(exit::OK)
}

async fn end(args: SessionsEndArgs) -> Result<i32, Failure> {
    let mut body = json!({ "InstanceId": args.instance_id, "SerialPort": args.port });
    if let Some(reason) = &args.reason {
        body["Reason"] = json!(reason);
    }
    let loaded = aws::load(&args.aws).await?;
    let answer = call(&loaded, "EndSerialConsoleSession", &body).await?;
    if let Some(id) = answer.get("RequestId").and_then(Value::as_str) {
        println!("{id}");
    }
    Ok(exit::OK)
}

/// Signs and sends one operation; the answer's JSON, or the failure it explains.
pub(crate) async fn call(loaded: &Loaded, operation: &str, body: &Value) -> Result<Value, Failure> {
    let credentials = loaded.credentials().await?;
    let endpoint = loaded
        .custom_endpoint
        .clone()
        .unwrap_or_else(|| crate::endpoints::aws_api_endpoint(&loaded.region));
    let target = format!("{TARGET_PREFIX}{operation}");
    let body = body.to_string();
    let request = Call {
        what: operation,
        endpoint: &endpoint,
        region: &loaded.region,
        service: "ec2-instance-connect",
        content_type: "application/x-amz-json-1.1",
        headers: &[("x-amz-target", target.as_str())],
        body: &body,
    };
    let (status, answer) = signed::send(loaded, credentials, request).await?;
    interpret(operation, status, &answer)
}

/// An AWS JSON error: `__type` (possibly `namespace#Code`) and `Message` or `message`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type")]
    kind: String,
    #[serde(alias = "message", rename = "Message", default)]
    message: String,
}

/// The answer's JSON on success; otherwise a failure with the exit code its error calls for.
pub fn interpret(operation: &str, status: u16, body: &[u8]) -> Result<Value, Failure> {
    if status == 200 {
        return serde_json::from_slice(body).map_err(|e| {
            Failure::other(format!(
                "{operation} answered with something else than JSON: {e}"
            ))
        });
    }
    let Ok(error) = serde_json::from_slice::<ErrorBody>(body) else {
        return Err(Failure::other(format!(
            "{operation} answered HTTP {status} without an AWS error"
        )));
    };
    let code = error.kind.rsplit('#').next().unwrap_or(&error.kind);
    let exit_code = match code {
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "MissingAuthenticationTokenException"
        | "IncompleteSignatureException"
        | "ExpiredTokenException" => exit::CREDENTIALS,
        "UnknownOperationException" => {
            return Err(Failure::new(
                exit::API_REFUSED,
                format!(
                    "{operation} is not supported by this endpoint: it is serialgate's own \
                     (pass --endpoint-url of a serialgate)"
                ),
            ));
        }
        _ => exit::API_REFUSED,
    };
    Err(Failure::new(
        exit_code,
        format!("{operation} refused ({code}): {}", error.message),
    ))
}

/// The sessions as a table, one per line, with a header; a line saying so when there are none.
pub fn table(answer: &Value) -> Result<String, Failure> {
    let bad = || Failure::other("ListSerialConsoleSessions answered without a Sessions list");
    let sessions = answer
        .get("Sessions")
        .and_then(Value::as_array)
        .ok_or_else(bad)?;
    if sessions.is_empty() {
        return Ok("No live sessions.\n".to_owned());
    }
    let text = |s: &Value, k: &str| s.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
    let number = |s: &Value, k: &str| {
        s.get(k)
            .and_then(Value::as_u64)
            .map_or("-".to_owned(), |n| n.to_string())
    };
    let mut rows = vec![
        [
            "INSTANCE",
            "PORT",
            "PRINCIPAL",
            "SOURCE",
            "STARTED",
            "NODE",
            "SPECTATORS",
        ]
        .map(str::to_owned),
    ];
    for s in sessions {
        let started = s
            .get("StartTime")
            .and_then(Value::as_f64)
            .map_or("-".to_owned(), utc);
        rows.push([
            text(s, "InstanceId"),
            number(s, "SerialPort"),
            text(s, "Principal"),
            text(s, "SourceAddress"),
            started,
            text(s, "Node"),
            number(s, "Spectators"),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    Ok(out)
}

/// Epoch seconds as `2026-12-01T08:09:34Z`.
fn utc(seconds: f64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    // Whole seconds are enough for a table; the JSON output keeps the milliseconds.
    #[allow(clippy::cast_possible_truncation)]
    let whole = seconds.floor() as i64;
    time::OffsetDateTime::from_unix_timestamp(whole)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_becomes_an_aligned_table() {
        let answer = json!({"Sessions": [{
            "InstanceId": "i-0123456789abcdef0", "SerialPort": 0,
            "Principal": "arn:aws:iam::111122223333:user/alice",
            "SourceAddress": "192.0.2.7:50022", "StartTime": 1_764_576_574.25,
            "Node": "n1", "Spectators": 0
        }]});
        let t = table(&answer).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("INSTANCE             PORT  PRINCIPAL"),
            "{t}"
        );
        assert!(
            lines[1].contains("192.0.2.7:50022  2025-12-01T08:09:34Z  n1"),
            "{t}"
        );
        assert_eq!(
            table(&json!({"Sessions": []})).unwrap(),
            "No live sessions.\n"
        );
        assert_eq!(table(&json!({})).unwrap_err().code, exit::OTHER);
    }

    #[test]
    fn errors_get_the_exit_code_they_call_for() {
        let refused =
            |body: &str| interpret("EndSerialConsoleSession", 400, body.as_bytes()).unwrap_err();
        let f = refused(r#"{"__type":"ResourceNotFoundException","Message":"no session"}"#);
        assert_eq!(f.code, exit::API_REFUSED);
        assert!(
            f.message.contains("ResourceNotFoundException"),
            "{}",
            f.message
        );
        let f = refused(r#"{"__type":"com.amazon#AccessDeniedException","Message":"no"}"#);
        assert!(
            f.message.contains("(AccessDeniedException)"),
            "{}",
            f.message
        );
        assert_eq!(
            refused(r#"{"__type":"UnrecognizedClientException","message":"bad"}"#).code,
            exit::CREDENTIALS
        );
        assert!(
            refused(r#"{"__type":"UnknownOperationException"}"#)
                .message
                .contains("serialgate's own")
        );
        assert_eq!(refused("<html>").code, exit::OTHER);
        assert_eq!(
            interpret("X", 200, br#"{"RequestId":"r","Success":true}"#).unwrap()["Success"],
            json!(true)
        );
    }
}
