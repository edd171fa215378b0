//! Free text a person types (names, serials, ticket ids): one check for all of them.

/// The text trimmed, or the rule it breaks: required (not blank), at most `max`
/// characters, and no control characters. Names are shown in lists, audit lines, CSV
/// exports and SMS texts, where a newline or an escape sequence forges a row or rewrites a
/// terminal.
pub fn checked(raw: &str, max: usize) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("is required".into());
    }
    if trimmed.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters (newlines, tabs, escapes)".into());
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::checked;

    #[test]
    fn blank_long_and_control_characters_are_refused() {
        assert_eq!(checked("  Depot north ", 20).as_deref(), Ok("Depot north"));
        assert_eq!(checked("Åsgård 7", 20).as_deref(), Ok("Åsgård 7"));
        assert!(checked(" \t ", 20).unwrap_err().contains("required"));
        assert!(checked(&"x".repeat(21), 20)
            .unwrap_err()
            .contains("at most 20"));
        for bad in [
            "a\nb",
            "a\rb",
            "tab\there",
            "esc\u{1b}[31m",
            "nul\u{0}",
            "del\u{7f}",
            "c1\u{85}x",
        ] {
            let rule = checked(bad, 20).expect_err(bad);
            assert!(rule.contains("control characters"), "{bad:?}: {rule}");
        }
    }
}
