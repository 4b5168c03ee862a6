//! Tool arguments as Cedar values, following the tool's typed input.
//!
//! Arguments go straight from `serde_json::Value` to Cedar `RestrictedExpression`s; nothing is
//! serialized and re-parsed. Fields the typed input does not know are projected away (policies
//! cannot see them anyway), and anything that does not fit the type is an error, which the
//! caller turns into a deny: a policy must never be evaluated against arguments it was not
//! written for.

use std::collections::BTreeSet;
use std::fmt;

use cedar_policy::RestrictedExpression;
use serde_json::Value;

use crate::schema::{Field, InputType};

/// Why arguments do not fit a tool's input schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at `{path}`: {problem}")]
pub struct ArgumentError {
    /// Where in the arguments, as `/`-separated keys and indexes (`(arguments)` for the whole).
    pub path: String,
    pub problem: ArgumentProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentProblem {
    #[error("expected {expected}, got {got}")]
    WrongType {
        expected: &'static str,
        got: &'static str,
    },
    #[error("required argument is missing")]
    Missing,
    #[error("integer {0} does not fit in 64 bits")]
    IntegerOutOfRange(String),
    /// Cedar decimals have four fractional digits and a range of about ±9.2e14; rounding a
    /// number to fit could flip a policy's comparison, so it is refused instead.
    #[error(
        "number {0} cannot be represented exactly as a policy decimal (at most 4 fractional digits, magnitude below 922337203685477)"
    )]
    DecimalUnrepresentable(String),
}

/// A path into the arguments, built only when an error is reported.
#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Key(&'a Step<'a>, &'a str),
    Index(&'a Step<'a>, usize),
}

impl fmt::Display for Step<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Root => f.write_str("(arguments)"),
            Step::Key(Step::Root, k) => f.write_str(k),
            Step::Key(parent, k) => write!(f, "{parent}/{k}"),
            Step::Index(Step::Root, i) => write!(f, "{i}"),
            Step::Index(parent, i) => write!(f, "{parent}/{i}"),
        }
    }
}

impl InputType {
    /// The arguments of a call as the Cedar value of `context.input`. A missing (`null`) argument
    /// object counts as `{}`.
    pub fn to_cedar(&self, args: &Value) -> Result<RestrictedExpression, ArgumentError> {
        let empty = Value::Object(serde_json::Map::new());
        let args = if args.is_null() { &empty } else { args };
        convert(self, args, &Step::Root)
    }

    /// Like [`InputType::to_cedar`], but only the top-level fields in `keep` (all, for `None`)
    /// reach the value: every argument is still checked against its type, so a call whose
    /// arguments do not fit is refused whichever fields its policies read.
    pub fn to_cedar_fields(
        &self,
        args: &Value,
        keep: Option<&BTreeSet<String>>,
    ) -> Result<RestrictedExpression, ArgumentError> {
        let empty = Value::Object(serde_json::Map::new());
        let args = if args.is_null() { &empty } else { args };
        match (self, args, keep) {
            (InputType::Record(fields), Value::Object(map), Some(keep)) => {
                record(fields, map, &Step::Root, |name| keep.contains(name))
            }
            _ => convert(self, args, &Step::Root),
        }
    }
}

fn convert(
    ty: &InputType,
    value: &Value,
    at: &Step<'_>,
) -> Result<RestrictedExpression, ArgumentError> {
    let wrong = |expected| {
        error(
            at,
            ArgumentProblem::WrongType {
                expected,
                got: json_kind(value),
            },
        )
    };
    match (ty, value) {
        (InputType::String, Value::String(s)) => Ok(RestrictedExpression::new_string(s.clone())),
        (InputType::Bool, Value::Bool(b)) => Ok(RestrictedExpression::new_bool(*b)),
        (InputType::Long, Value::Number(n)) => {
            long(n).map(RestrictedExpression::new_long).ok_or_else(|| {
                if n.is_f64() && !is_integral(n) {
                    wrong("an integer")
                } else {
                    error(at, ArgumentProblem::IntegerOutOfRange(n.to_string()))
                }
            })
        }
        (InputType::Decimal, Value::Number(n)) => decimal_literal(n)
            .map(RestrictedExpression::new_decimal)
            .ok_or_else(|| error(at, ArgumentProblem::DecimalUnrepresentable(n.to_string()))),
        (InputType::Set(item), Value::Array(values)) => {
            let elements = values
                .iter()
                .enumerate()
                .map(|(i, v)| convert(item, v, &Step::Index(at, i)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RestrictedExpression::new_set(elements))
        }
        (InputType::Record(fields), Value::Object(map)) => record(fields, map, at, |_| true),
        (InputType::String, _) => Err(wrong("a string")),
        (InputType::Bool, _) => Err(wrong("a boolean")),
        (InputType::Long, _) => Err(wrong("an integer")),
        (InputType::Decimal, _) => Err(wrong("a number")),
        (InputType::Set(_), _) => Err(wrong("an array")),
        (InputType::Record(_), _) => Err(wrong("an object")),
    }
}

/// Only the typed fields survive: the rest is projected away, and of the typed ones, those
/// `keep` refuses are checked but left out.
fn record(
    fields: &[Field],
    map: &serde_json::Map<String, Value>,
    at: &Step<'_>,
    keep: impl Fn(&str) -> bool,
) -> Result<RestrictedExpression, ArgumentError> {
    let mut attrs = Vec::with_capacity(fields.len());
    for field in fields {
        match map.get(&field.name) {
            Some(v) => {
                let value = convert(&field.ty, v, &Step::Key(at, &field.name))?;
                if keep(&field.name) {
                    attrs.push((field.name.clone(), value));
                }
            }
            None if field.required => {
                return Err(error(&Step::Key(at, &field.name), ArgumentProblem::Missing));
            }
            None => {}
        }
    }
    // Field names come from a JSON object, so they are unique and this cannot fail; map the
    // impossible case to an error anyway rather than panic.
    RestrictedExpression::new_record(attrs).map_err(|_| {
        error(
            at,
            ArgumentProblem::WrongType {
                expected: "an object with unique keys",
                got: "duplicate keys",
            },
        )
    })
}

fn error(at: &Step<'_>, problem: ArgumentProblem) -> ArgumentError {
    ArgumentError {
        path: at.to_string(),
        problem,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn is_integral(n: &serde_json::Number) -> bool {
    n.as_f64()
        .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

/// An integer argument; `3.0` counts as 3 (JSON Schema's `integer` accepts it).
fn long(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.is_f64() && is_integral(n) {
        let f = n.as_f64()?;
        // i64::MAX is not exactly representable as f64; stay strictly inside the range.
        if (-9.223_372_036_854_775e18..9.223_372_036_854_775e18).contains(&f) {
            #[allow(clippy::cast_possible_truncation)]
            return Some(f as i64);
        }
    }
    None
}

/// Cedar's decimal literal (`"12.5000"`) for a JSON number, when it fits exactly.
fn decimal_literal(n: &serde_json::Number) -> Option<String> {
    const SCALE: i64 = 10_000;
    // Cedar decimals are i64 values scaled by 10^4.
    let scaled: i64 = if let Some(i) = n.as_i64() {
        i.checked_mul(SCALE)?
    } else if n.is_u64() {
        return None; // beyond i64, so beyond i64 * 10^4 as well
    } else {
        let f = n.as_f64()?;
        let scaled = f * 1e4;
        let rounded = scaled.round();
        // f64 noise (1.0001 * 1e4 = 10000.999999999998) is not extra precision; anything
        // further from the grid than that is.
        let noise = 1e-9 * rounded.abs().max(1.0);
        if !scaled.is_finite() || (scaled - rounded).abs() > noise || rounded.abs() >= 9.2e18 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)]
        let r = rounded as i64;
        r
    };
    let sign = if scaled < 0 { "-" } else { "" };
    let magnitude = scaled.unsigned_abs();
    let unit = SCALE.unsigned_abs();
    Some(format!(
        "{sign}{}.{:04}",
        magnitude / unit,
        magnitude % unit
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(v: Value) -> serde_json::Number {
        match v {
            Value::Number(n) => n,
            other => panic!("not a number: {other}"),
        }
    }

    #[test]
    fn numbers_become_exact_decimal_literals() {
        assert_eq!(decimal_literal(&num(json!(12))).as_deref(), Some("12.0000"));
        assert_eq!(
            decimal_literal(&num(json!(-0.5))).as_deref(),
            Some("-0.5000")
        );
        assert_eq!(
            decimal_literal(&num(json!(1.0001))).as_deref(),
            Some("1.0001")
        );
        assert_eq!(decimal_literal(&num(json!(0.00001))), None, "too precise");
        assert_eq!(decimal_literal(&num(json!(1e300))), None, "too large");
        assert_eq!(decimal_literal(&num(json!(u64::MAX))), None, "too large");
    }

    #[test]
    fn integral_floats_count_as_integers() {
        assert_eq!(long(&num(json!(3.0))), Some(3));
        assert_eq!(long(&num(json!(3.5))), None);
        assert_eq!(long(&num(json!(u64::MAX))), None);
    }

    #[test]
    fn errors_name_the_path_of_the_bad_argument() {
        let ty = InputType::Record(vec![Field {
            name: "items".into(),
            required: true,
            ty: InputType::Set(Box::new(InputType::Long)),
        }]);
        let err = ty.to_cedar(&json!({"items": [1, "two"]})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at `items/1`: expected an integer, got a string"
        );
        let err = ty.to_cedar(&json!({})).unwrap_err();
        assert_eq!(err.to_string(), "at `items`: required argument is missing");
        let err = ty.to_cedar(&json!([1])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at `(arguments)`: expected an object, got an array"
        );
    }

    #[test]
    fn an_argument_no_policy_reads_is_still_type_checked_but_left_out() {
        let ty = InputType::Record(vec![
            Field {
                name: "amount".into(),
                required: true,
                ty: InputType::Long,
            },
            Field {
                name: "note".into(),
                required: false,
                ty: InputType::String,
            },
        ]);
        let keep = BTreeSet::from(["amount".to_owned()]);
        let err = ty
            .to_cedar_fields(&json!({"amount": 5, "note": 7}), Some(&keep))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "at `note`: expected a string, got an integer"
        );
        let kept = ty
            .to_cedar_fields(&json!({"amount": 5, "note": "hi"}), Some(&keep))
            .unwrap();
        let all = ty.to_cedar(&json!({"amount": 5})).unwrap();
        assert_eq!(format!("{kept:?}"), format!("{all:?}"));
    }
}
