//! `${…}` templates: splitting a string into literal text and references. Which references
//! exist and what they expand to is decided by `resolve`; this module is syntax only.
//!
//! Syntax: `${name}` is a reference (spaces inside the braces are ignored); `$${` is a
//! literal `${` (for IAM policy variables such as `$${aws:username}`, as in Terraform); a
//! `$` not followed by `{` is literal.

/// One part of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// A reference: its name (`buckets.source.arn`) and how it was written (`${buckets.source.arn}`).
    Ref {
        name: &'a str,
        written: &'a str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    /// The text to underline.
    pub written: String,
}

pub fn parse(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        if start > 0 && rest[..start].ends_with('$') {
            // `$${` → literal `${`.
            pieces.push(Piece::Text(&rest[..start - 1]));
            pieces.push(Piece::Text("${"));
            rest = &rest[start + 2..];
            continue;
        }
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(TemplateError {
                message: "unterminated `${`: a reference ends with `}`".to_owned(),
                written: rest[start..].to_owned(),
            });
        };
        let written = &rest[start..start + 2 + end + 1];
        let name = after[..end].trim();
        if name.is_empty() {
            return Err(TemplateError {
                message: "empty reference `${}`".to_owned(),
                written: written.to_owned(),
            });
        }
        if name.contains("${") {
            return Err(TemplateError {
                message: format!("references cannot be nested: `{written}`"),
                written: written.to_owned(),
            });
        }
        pieces.push(Piece::Ref { name, written });
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_and_references() {
        assert_eq!(
            parse("${stack}-src-${ env }").expect("valid"),
            vec![
                Piece::Ref {
                    name: "stack",
                    written: "${stack}"
                },
                Piece::Text("-src-"),
                Piece::Ref {
                    name: "env",
                    written: "${ env }"
                },
            ]
        );
        assert_eq!(
            parse("plain $5").expect("valid"),
            vec![Piece::Text("plain $5")]
        );
        assert_eq!(parse("").expect("valid"), vec![]);
    }

    #[test]
    fn escape_is_a_literal() {
        assert_eq!(
            parse("home/$${aws:username}/*").expect("valid"),
            vec![
                Piece::Text("home/"),
                Piece::Text("${"),
                Piece::Text("aws:username}/*")
            ]
        );
    }

    #[test]
    fn errors() {
        let err = parse("a-${stack").expect_err("unterminated");
        assert_eq!(err.written, "${stack");
        assert!(err.message.starts_with("unterminated"));
        assert_eq!(
            parse("${}").expect_err("empty").message,
            "empty reference `${}`"
        );
        assert!(parse("${a${b}")
            .expect_err("nested")
            .message
            .contains("nested"));
    }
}
