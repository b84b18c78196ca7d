//! Printing CRM-derived text on a terminal safely.
//!
//! CRM fields are data and may hold anything: escape sequences, bidi
//! overrides that reorder what an operator reads, NULs. They are stored as
//! given; only what is printed for humans is cleaned here. JSON output is left
//! to the JSON encoder, which escapes control characters itself.

/// Removes control characters (but keeps the text readable) and bidi controls.
pub(crate) fn clean(text: &str) -> String {
    text.chars().filter(|c| !is_unsafe(*c)).collect()
}

/// Like [`clean`], but keeps line breaks.
pub(crate) fn clean_multiline(text: &str) -> String {
    text.split('\n').map(clean).collect::<Vec<_>>().join("\n")
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            | '\u{200B}'..='\u{200D}' | '\u{FEFF}')
}

/// Prints rows as aligned columns.
pub(crate) fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_stripped() {
        assert_eq!(clean("\u{202a}\u{202a}test\u{202a}"), "test");
        assert_eq!(clean("evil\u{1b}[31mred\u{7}"), "evil[31mred");
        assert_eq!(clean("a\u{202e}b\u{2066}c"), "abc");
        assert_eq!(
            clean("울란바토르 ../../etc/hosts"),
            "울란바토르 ../../etc/hosts"
        );
    }
}
