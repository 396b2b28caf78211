//! Kazoo's validation error shapes (kazoo-behaviour.md 1.4), the one home for them: event
//! ingest (`ingest::validate_event`) and the API's document checks (`api::validate` and
//! the handlers) both write their failures with what is here.
//!
//! A validation error is `path -> rule -> detail`: the field's path (dotted), the rule it
//! broke (`required`, `type`, `enum`, `wrong_format`, ...) and a detail object with a
//! `message` and, by rule, `target` (what the rule wants), `value` (what it got),
//! `format` or `cause`. A [`Violation`] is one rule with its detail; its constructors
//! write each of the schema rules' messages and fields once. [`Errors`] collects
//! violations by path, as a 400 answer shows them.
//!
//! What it must not do: decide what is valid (its callers do), or know HTTP, `ApiError`
//! or events (the API turns [`Errors`] into its error; ingest keeps its problems per
//! event). It imports nothing of ours.

use serde_json::{json, Map, Value};

/// One rule a field broke, with its detail as Kazoo writes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Violation {
    /// The rule's name: the key under the field's path.
    pub(crate) rule: &'static str,
    /// The `message` and the rule's other fields.
    pub(crate) detail: Value,
}

impl Violation {
    /// A rule the constructors below do not cover (a Crossbar module's own check), with
    /// its detail as that module writes it.
    pub(crate) fn new(rule: &'static str, detail: Value) -> Self {
        Violation { rule, detail }
    }

    /// `required`: the field is missing.
    pub(crate) fn required() -> Self {
        Violation::new(
            "required",
            json!({"message": "Field is required but missing"}),
        )
    }

    /// `required` as Crossbar's document validation writes it: with the document that
    /// was validated as the `value`.
    pub(crate) fn required_in(document: &Map<String, Value>) -> Self {
        Violation::new(
            "required",
            json!({"message": "Field is required but missing", "value": document}),
        )
    }

    /// `type`: the value is not of the JSON type(s) `want` names.
    pub(crate) fn wrong_type(want: &str, value: &Value) -> Self {
        Violation::new(
            "type",
            json!({"message": format!("Value did not match type(s): {want}"), "target": want, "value": value}),
        )
    }

    /// `enum`: the value is not one of `allowed`.
    pub(crate) fn not_in_enum(allowed: &[&str], value: &Value) -> Self {
        Violation::new(
            "enum",
            json!({"message": "Value not found in enumerated list of values", "target": allowed, "value": value}),
        )
    }

    /// `wrong_format`: a string that is not in `format` (described for people).
    pub(crate) fn wrong_format(value: &str, format: &str) -> Self {
        Violation::new(
            "wrong_format",
            json!({"message": "Field is not in the correct format", "value": value, "format": format}),
        )
    }

    /// `minLength`: a string shorter than `min` characters.
    pub(crate) fn min_length(min: usize, value: &str) -> Self {
        Violation::new(
            "minLength",
            json!({"message": format!("String must be at least {min} characters"), "target": min, "value": value}),
        )
    }

    /// `maxLength`: a string longer than `max` characters (add its length with
    /// [`Violation::with_cause`]).
    pub(crate) fn max_length(max: usize) -> Self {
        Violation::new(
            "maxLength",
            json!({"message": format!("String must not be more than {max} characters"), "target": max}),
        )
    }

    /// `minimum`: a number below `min`.
    pub(crate) fn minimum(min: i64, value: i64) -> Self {
        Violation::new(
            "minimum",
            json!({"message": format!("Value must be at least {min}"), "target": min, "value": value}),
        )
    }

    /// `maximum`: a number above `max`.
    pub(crate) fn maximum(max: i64, value: i64) -> Self {
        Violation::new(
            "maximum",
            json!({"message": format!("Value must be at most {max}"), "target": max, "value": value}),
        )
    }

    /// Adds a `cause` (what made the rule fail) to the detail.
    pub(crate) fn with_cause(mut self, cause: impl Into<Value>) -> Self {
        if let Value::Object(detail) = &mut self.detail {
            detail.insert("cause".to_owned(), cause.into());
        }
        self
    }
}

/// Validation failures keyed by field path, then by rule: the `data` of a 400
/// validation error.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Errors(Map<String, Value>);

impl Errors {
    /// The failures of one field.
    pub(crate) fn one(path: &str, violation: Violation) -> Self {
        let mut errors = Errors::default();
        errors.add(path, violation);
        errors
    }

    /// Records that the field at `path` broke a rule (replacing an earlier detail of the
    /// same rule).
    pub(crate) fn add(&mut self, path: &str, violation: Violation) {
        let entry = self
            .0
            .entry(path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(rules) = entry {
            rules.insert(violation.rule.to_owned(), violation.detail);
        }
    }

    /// `Ok(())` when nothing failed, the failures otherwise.
    pub(crate) fn into_result(self) -> Result<(), Errors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// `path -> rule -> detail`, as the answer shows it.
    pub(crate) fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

#[cfg(test)]
mod tests;
