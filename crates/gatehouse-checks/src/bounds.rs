//! The bounds an expression must keep before it is parsed: its length and
//! the nesting of `()`, `[]` and `{}`, counted outside string literals and
//! comments.

use crate::{CheckError, EXPRESSION_MAX, NESTING_MAX};

/// Refuses an expression that is empty, longer than [`EXPRESSION_MAX`] bytes
/// or nests brackets deeper than [`NESTING_MAX`].
///
/// The scan skips string literals (`'…'`, `"…"`, triple-quoted, raw `r'…'`
/// and bytes `b'…'`) and `//` comments, so brackets inside them do not
/// count. A quote that is never closed is counted as an ordinary character
/// and the scan goes on, so no input hides brackets from it.
pub fn bound(expr: &str) -> Result<(), CheckError> {
    if expr.trim().is_empty() {
        return Err(CheckError::Empty);
    }
    if expr.len() > EXPRESSION_MAX {
        return Err(CheckError::TooLong {
            len: expr.len(),
            max: EXPRESSION_MAX,
        });
    }
    let b = expr.as_bytes();
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'\'' | b'"') => match string_end(b, i, q) {
                Some(end) => i = end,
                None => i += 1,
            },
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > NESTING_MAX {
                    return Err(CheckError::TooDeep {
                        depth,
                        max: NESTING_MAX,
                        at: expr[..i].chars().count() + 1,
                    });
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// The index just past the string literal whose opening quote `q` is at
/// `start`, or `None` when it is never closed.
fn string_end(b: &[u8], start: usize, q: u8) -> Option<usize> {
    // A raw literal (`r'…'`, `R"…"`, `br'…'`, `rb'…'`) has no escapes.
    let prefix = &b[start.saturating_sub(2)..start];
    let raw = prefix
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_alphabetic())
        .any(|c| matches!(c, b'r' | b'R'));
    let triple = b.get(start + 1) == Some(&q) && b.get(start + 2) == Some(&q);
    let (mut i, close) = if triple {
        (start + 3, 3)
    } else {
        (start + 1, 1)
    };
    while i < b.len() {
        if !raw && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if !triple && b[i] == b'\n' {
            return None;
        }
        if b[i] == q && (close == 1 || (b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q))) {
            return Some(i + close);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("{}true{}", "(".repeat(n), ")".repeat(n))
    }

    #[test]
    fn length_is_bounded_in_bytes() {
        let at = format!("1 == 1{}", " ".repeat(EXPRESSION_MAX - 6));
        assert_eq!(at.len(), EXPRESSION_MAX);
        assert_eq!(bound(&at), Ok(()));
        let over = format!("{at} ");
        assert_eq!(
            bound(&over),
            Err(CheckError::TooLong {
                len: EXPRESSION_MAX + 1,
                max: EXPRESSION_MAX
            })
        );
        assert_eq!(bound(""), Err(CheckError::Empty));
        assert_eq!(bound(" \n\t"), Err(CheckError::Empty));
    }

    #[test]
    fn nesting_is_bounded_for_every_kind_of_bracket() {
        assert_eq!(bound(&nested(NESTING_MAX)), Ok(()));
        let e = bound(&nested(NESTING_MAX + 1)).unwrap_err();
        assert_eq!(
            e,
            CheckError::TooDeep {
                depth: NESTING_MAX + 1,
                max: NESTING_MAX,
                at: NESTING_MAX + 1
            }
        );
        assert!(e.to_string().contains("at most 32 levels"), "{e}");
        let lists = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        assert!(matches!(bound(&lists), Err(CheckError::TooDeep { .. })));
        let maps = "{'a': ".repeat(40);
        assert!(matches!(bound(&maps), Err(CheckError::TooDeep { .. })));
        // Unbalanced closers do not buy depth.
        let sneaky = format!("{}{}", ")".repeat(100), "(".repeat(40));
        assert!(matches!(bound(&sneaky), Err(CheckError::TooDeep { .. })));
        // Siblings are not nesting.
        assert_eq!(bound("(1) + ".repeat(500).trim_end_matches(" + ")), Ok(()));
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let deep = "(".repeat(100);
        for ok in [
            format!("'{deep}' == 'x'"),
            format!("\"{deep}\" == 'x'"),
            format!("'''{deep}\n''' == 'x'"),
            format!("r'\\{deep}' == 'x'"),
            format!("b\"{deep}\" == b'x'"),
            format!("true // {deep}\n"),
            format!("'it\\'s {deep}' == 'x'"),
        ] {
            assert_eq!(bound(&ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn quotes_cannot_hide_brackets() {
        let deep = "(".repeat(100);
        for bad in [
            // never closed: the scan goes on past the quote
            format!("'{deep}"),
            format!("\"{deep}"),
            format!("'''{deep}"),
            // a single-quoted string ends at the line's end
            format!("'x\n{deep}"),
            // a raw string's backslash escapes nothing: the string ends, the
            // brackets count
            format!("r'\\' + {deep}"),
            // a comment ends at the line's end
            format!("true // x\n{deep}"),
        ] {
            assert!(
                matches!(bound(&bad), Err(CheckError::TooDeep { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn positions_count_characters() {
        let e = bound(&format!("'é' == {}", "(".repeat(40))).unwrap_err();
        assert_eq!(
            e,
            CheckError::TooDeep {
                depth: 33,
                max: NESTING_MAX,
                at: 7 + 33
            }
        );
    }
}
