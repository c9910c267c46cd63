//! Reading AWS JSON request members with the protocol's error split: a member of the wrong JSON
//! type is a `SerializationException`; a missing or out-of-range one is the service's
//! `InvalidArgsException`. Unknown members are ignored, and `null` counts as absent, as in AWS.

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};

/// A parsed request body: a JSON object.
#[derive(Debug)]
pub struct Members(Map<String, Value>);

impl Members {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        // AWS JSON treats an empty body as an empty object.
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::verbatim(
                ErrorCode::SerializationException,
                "Start of structure or map found where not expected.",
            )),
            Err(e) => Err(ApiError::verbatim(
                ErrorCode::SerializationException,
                format!("Unable to parse the request body as JSON: {e}"),
            )),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub fn optional_string(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(type_error(name, "string", other)),
        }
    }

    pub fn required_string(&self, name: &str) -> Result<&str, ApiError> {
        self.optional_string(name)?.ok_or_else(|| {
            ApiError::invalid_args(format!("The request must contain the parameter {name}."))
        })
    }

    /// An integer member; JSON numbers with a fraction or out of range are type errors.
    pub fn optional_integer(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => Err(type_error(name, "integer", &Value::Number(n.clone()))),
            },
            Some(other) => Err(type_error(name, "integer", other)),
        }
    }
}

fn type_error(name: &str, expected: &str, got: &Value) -> ApiError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    ApiError::verbatim(
        ErrorCode::SerializationException,
        format!("Member {name} must be a {expected}, got {got}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_presence() {
        let m = Members::parse(br#"{"A":"x","B":0,"C":1.5,"D":null,"E":true}"#).unwrap();
        assert_eq!(m.required_string("A").unwrap(), "x");
        assert_eq!(m.optional_integer("B").unwrap(), Some(0));
        assert_eq!(
            m.optional_integer("C").unwrap_err().code,
            ErrorCode::SerializationException
        );
        assert_eq!(m.optional_string("D").unwrap(), None);
        assert_eq!(
            m.required_string("D").unwrap_err().code,
            ErrorCode::InvalidArgsException
        );
        assert_eq!(
            m.required_string("E").unwrap_err().code,
            ErrorCode::SerializationException
        );
        assert_eq!(
            Members::parse(b"[1]").unwrap_err().code,
            ErrorCode::SerializationException
        );
        assert_eq!(
            Members::parse(b"{\"A\":").unwrap_err().code,
            ErrorCode::SerializationException
        );
        assert!(Members::parse(b"").is_ok());
    }
}
