//! IAM policy documents: parsing (raw or URL-encoded JSON) and normalisation, so that a
//! document read back from AWS and the one the stack declares compare equal whenever they
//! mean the same thing.
//!
//! AWS hands documents back in whatever shape it likes: IAM returns them URL-encoded, S3
//! collapses one-element lists to plain strings, and people write `"Action": "s3:GetObject"`
//! and `"Action": ["s3:GetObject"]` interchangeably. Without normalisation every such
//! difference would show up in `plan` as drift.
//!
//! What [`normalize_policy`] does:
//! - object keys sorted at every level (the output is canonical whatever serde_json's
//!   map order is);
//! - `Statement`: a single object becomes a one-element list; statements are normalised, then
//!   sorted by their canonical JSON and deduplicated. IAM evaluates every statement (an explicit
//!   deny wins whatever its position), so statement order carries no meaning, and treating a
//!   reordering as a no-op is what users expect. Terraform's AWS provider keeps the order and
//!   shows such edits as changes, a long-standing complaint we deliberately do not copy;
//! - in a statement, `Action`, `NotAction`, `Resource` and `NotResource`: a string becomes a
//!   one-element list; lists are sorted and deduplicated;
//! - `Principal` / `NotPrincipal` maps (`{"Service": "x"}`): each value likewise. The bare
//!   wildcard `"Principal": "*"` stays as it is;
//! - `Condition` values (`{"StringEquals": {"aws:SourceAccount": "1"}}`): likewise, since a
//!   condition key's values are a set (any of them matches);
//! - everything else (`Version`, `Id`, `Sid`, `Effect`, …) is kept unchanged.
//!
//! Values are never rewritten (no case folding of actions, no account-id to ARN expansion of
//! principals): the plan shows the document the way the user wrote it.

use std::cmp::Ordering;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

/// Why a policy document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyParseError {
    #[error("the policy document is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the URL-decoded policy document is not valid UTF-8: {0}")]
    Utf8(#[from] std::str::Utf8Error),
}

/// Parses a policy document given either as raw JSON or as URL-encoded JSON (what IAM's
/// `GetPolicyVersion`, `GetRole` and `GetUserPolicy` return). Does not normalise: pass the
/// result to [`normalize_policy`].
pub fn parse_policy(text: &str) -> Result<Value, PolicyParseError> {
    match serde_json::from_str(text) {
        Ok(doc) => Ok(doc),
        // Raw JSON is tried first because a raw document may itself contain `%` (in a
        // resource ARN, say) and must not be decoded.
        Err(raw_err) if !text.contains('%') => Err(raw_err.into()),
        Err(_) => {
            let decoded = percent_decode_str(text).decode_utf8()?;
            Ok(serde_json::from_str(&decoded)?)
        }
    }
}

/// Returns the canonical form of a policy document (see the module documentation). Input
/// that is not a JSON object is returned with sorted keys but otherwise as it is: validation,
/// not normalisation, is where malformed documents are reported.
pub fn normalize_policy(doc: &Value) -> Value {
    let Value::Object(fields) = doc else {
        return canonical(doc);
    };
    let mut out = Map::new();
    for (key, value) in sorted_entries(fields) {
        let value = if key == "Statement" {
            normalize_statements(value)
        } else {
            canonical(value)
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

fn normalize_statements(value: &Value) -> Value {
    let mut statements: Vec<Value> = match value {
        Value::Array(items) => items.iter().map(normalize_statement).collect(),
        Value::Object(_) => vec![normalize_statement(value)],
        other => return canonical(other),
    };
    sort_dedup(&mut statements);
    Value::Array(statements)
}

fn normalize_statement(statement: &Value) -> Value {
    let Value::Object(fields) = statement else {
        return canonical(statement);
    };
    let mut out = Map::new();
    for (key, value) in sorted_entries(fields) {
        let value = match key.as_str() {
            "Action" | "NotAction" | "Resource" | "NotResource" => value_set(value),
            "Principal" | "NotPrincipal" => map_of_sets(value),
            "Condition" => match value {
                // operator -> (condition key -> values)
                Value::Object(operators) => Value::Object(
                    sorted_entries(operators)
                        .map(|(op, keys)| (op.clone(), map_of_sets(keys)))
                        .collect(),
                ),
                other => canonical(other),
            },
            _ => canonical(value),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

/// `{"k": "v"}` and `{"k": ["v"]}` -> `{"k": ["v"]}`; anything but a map (`"*"`) unchanged.
fn map_of_sets(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            sorted_entries(fields)
                .map(|(key, values)| (key.clone(), value_set(values)))
                .collect(),
        ),
        other => canonical(other),
    }
}

/// A scalar or a list, as a sorted list without duplicates.
fn value_set(value: &Value) -> Value {
    let mut items = match value {
        Value::Array(items) => items.iter().map(canonical).collect(),
        scalar => vec![canonical(scalar)],
    };
    sort_dedup(&mut items);
    Value::Array(items)
}

fn sort_dedup(items: &mut Vec<Value>) {
    items.sort_by(compare);
    items.dedup();
}

/// A total order on JSON values: strings by their text (the common case: actions, ARNs),
/// before everything else, which compares by its compact canonical JSON.
fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::String(_), _) => Ordering::Less,
        (_, Value::String(_)) => Ordering::Greater,
        // Both are already canonical, so their text is too.
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// The value with every object's keys in sorted order. serde_json keeps insertion order when
/// its `preserve_order` feature is on (a dependency may enable it), so sort explicitly.
pub(crate) fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            sorted_entries(fields)
                .map(|(key, value)| (key.clone(), canonical(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        scalar => scalar.clone(),
    }
}

fn sorted_entries(fields: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    let mut entries: Vec<_> = fields.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries.into_iter()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn same(a: Value, b: Value) {
        assert_eq!(normalize_policy(&a), normalize_policy(&b), "{a} vs {b}");
    }

    fn differ(a: Value, b: Value) {
        assert_ne!(normalize_policy(&a), normalize_policy(&b), "{a} vs {b}");
    }

    #[test]
    fn single_statement_object_becomes_a_list() {
        let doc = json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
        });
        assert_eq!(
            normalize_policy(&doc),
            json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]
            })
        );
    }

    #[test]
    fn action_and_resource_string_equals_one_element_list() {
        for key in ["Action", "NotAction", "Resource", "NotResource"] {
            same(
                json!({"Statement": [{"Effect": "Allow", key: "s3:GetObject"}]}),
                json!({"Statement": [{"Effect": "Allow", key: ["s3:GetObject"]}]}),
            );
        }
    }

    #[test]
    fn lists_are_sorted_and_deduplicated() {
        let doc = json!({"Statement": [{
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:PutObject"],
            "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::b"]
        }]});
        assert_eq!(
            normalize_policy(&doc),
            json!({"Statement": [{
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]
            }]})
        );
    }

    #[test]
    fn principal_values_string_equals_list() {
        same(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}]}),
        );
        same(
            json!({"Statement": [{"NotPrincipal": {"AWS": ["b", "a", "a"]}}]}),
            json!({"Statement": [{"NotPrincipal": {"AWS": ["a", "b"]}}]}),
        );
    }

    #[test]
    fn wildcard_principal_is_kept_as_a_string() {
        let doc = json!({"Statement": [{"Effect": "Allow", "Principal": "*"}]});
        assert_eq!(normalize_policy(&doc), doc);
        // `"*"` and `{"AWS": "*"}` are not the same document; do not pretend they are.
        differ(
            doc,
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}}]}),
        );
    }

    #[test]
    fn condition_values_are_sets() {
        same(
            json!({"Statement": [{"Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]}),
            json!({"Statement": [{"Condition": {"StringEquals": {"aws:SourceAccount": ["123456789012"]}}}]}),
        );
        same(
            json!({"Statement": [{"Condition": {"StringLike": {"s3:prefix": ["b/", "a/"]}}}]}),
            json!({"Statement": [{"Condition": {"StringLike": {"s3:prefix": ["a/", "b/", "a/"]}}}]}),
        );
        // The type of a value is not coerced: `false` and `"false"` stay different.
        differ(
            json!({"Statement": [{"Condition": {"Bool": {"aws:SecureTransport": false}}}]}),
            json!({"Statement": [{"Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}),
        );
    }

    #[test]
    fn statement_order_does_not_matter() {
        let a =
            json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::a/*"});
        let b =
            json!({"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::a/*"});
        same(
            json!({"Version": "2012-10-17", "Statement": [a.clone(), b.clone()]}),
            json!({"Version": "2012-10-17", "Statement": [b, a]}),
        );
    }

    #[test]
    fn duplicate_statements_collapse() {
        let s = json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"});
        same(
            json!({"Statement": [s.clone(), s.clone()]}),
            json!({"Statement": s}),
        );
        // Statements that only become equal after normalisation collapse too.
        same(
            json!({"Statement": [s.clone(), {"Resource": ["*"], "Action": ["s3:GetObject"], "Effect": "Allow"}]}),
            json!({"Statement": [s]}),
        );
    }

    #[test]
    fn meaningful_differences_remain() {
        let base = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]});
        differ(
            base.clone(),
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]}),
        );
        differ(
            base.clone(),
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}]}),
        );
        differ(
            base.clone(),
            json!({"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}),
        );
        // Action names are kept as written, not case-folded.
        differ(
            base,
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "S3:GetObject", "Resource": "*"}]}),
        );
    }

    #[test]
    fn other_fields_are_kept_verbatim() {
        let doc = json!({
            "Version": "2012-10-17",
            "Id": "policy-1",
            "Statement": [{"Sid": "ReadSource", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]
        });
        assert_eq!(normalize_policy(&doc), doc);
    }

    #[test]
    fn normalisation_is_idempotent() {
        let doc = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Deny", "Principal": {"AWS": ["b", "a"]}, "Action": "s3:*", "Resource": ["y", "x"],
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
                {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "x"}
            ]
        });
        let once = normalize_policy(&doc);
        assert_eq!(normalize_policy(&once), once);
    }

    #[test]
    fn keys_come_out_sorted() {
        let doc = json!({"Version": "2012-10-17", "Statement": [{"Resource": "*", "Effect": "Allow", "Action": "s3:GetObject"}]});
        assert_eq!(
            normalize_policy(&doc).to_string(),
            r#"{"Statement":[{"Action":["s3:GetObject"],"Effect":"Allow","Resource":["*"]}],"Version":"2012-10-17"}"#
        );
    }

    #[test]
    fn malformed_documents_pass_through() {
        for doc in [
            json!("not a policy"),
            json!(["a", "b"]),
            json!({"Statement": "oops"}),
            json!({"Statement": ["oops", 3]}),
            json!({"Statement": [{"Principal": 7, "Condition": "x", "Action": {"b": 1}}]}),
        ] {
            // Must not panic; still canonical, hence idempotent.
            let once = normalize_policy(&doc);
            assert_eq!(normalize_policy(&once), once);
        }
        assert_eq!(normalize_policy(&json!("x")), json!("x"));
    }

    #[test]
    fn non_string_list_items_sort_after_strings() {
        let doc = json!({"Statement": [{"Action": [{"z": 1}, 3, "b", "a", 3]}]});
        assert_eq!(
            normalize_policy(&doc),
            json!({"Statement": [{"Action": ["a", "b", 3, {"z": 1}]}]})
        );
    }

    const RAW: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

    #[test]
    fn parses_raw_json() {
        let doc = parse_policy(RAW).expect("raw JSON parses");
        assert_eq!(doc["Statement"][0]["Action"], json!("sts:AssumeRole"));
    }

    #[test]
    fn parses_url_encoded_json() {
        // As IAM returns it (RFC 3986 percent-encoding).
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        assert_eq!(
            parse_policy(encoded).expect("encoded JSON parses"),
            parse_policy(RAW).expect("raw JSON parses")
        );
        // Pretty-printed documents come back with encoded whitespace; `+` is a literal `+`.
        let pretty = "%7B%0A%20%20%22Id%22%3A%20%22a+b%22%0A%7D";
        assert_eq!(
            parse_policy(pretty).expect("encoded JSON parses"),
            json!({"Id": "a+b"})
        );
    }

    #[test]
    fn raw_json_containing_percent_is_not_decoded() {
        let doc = parse_policy(r#"{"Statement":[{"Resource":"arn:aws:s3:::b/100%25"}]}"#)
            .expect("raw JSON parses");
        assert_eq!(
            doc["Statement"][0]["Resource"],
            json!("arn:aws:s3:::b/100%25")
        );
    }

    #[test]
    fn parse_errors() {
        assert!(matches!(parse_policy("{"), Err(PolicyParseError::Json(_))));
        assert!(matches!(
            parse_policy("%7B"),
            Err(PolicyParseError::Json(_))
        ));
        assert!(matches!(
            parse_policy("%FF%FE"),
            Err(PolicyParseError::Utf8(_))
        ));
        assert!(matches!(parse_policy(""), Err(PolicyParseError::Json(_))));
    }

    #[test]
    fn parse_then_normalise_makes_iam_and_stack_documents_equal() {
        // What IAM returns for a document the stack wrote with one-element lists.
        let from_iam = parse_policy("%7B%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22*%22%7D%7D")
            .expect("encoded JSON parses");
        let from_stack = json!({"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]});
        assert_eq!(normalize_policy(&from_iam), normalize_policy(&from_stack));
    }
}
