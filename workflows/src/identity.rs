//! Deal identity: one workflow id per deal, ever.
//!
//! The id is `handoff-<source>-<deal id>` with the deal id reduced to
//! `[A-Za-z0-9._-]`. Salesforce ids are widened to their 18-character
//! case-safe form first, so a 15- and an 18-character export of one record map
//! to the same handoff.

/// Prefix of every handoff workflow id.
pub const WORKFLOW_ID_PREFIX: &str = "handoff-";

/// The workflow id of a deal.
pub fn workflow_id(source: &str, deal_id: &str) -> String {
    let source = normalise(&source.trim().to_ascii_lowercase());
    let deal_id = normalise_deal_id(&source, deal_id);
    format!("{WORKFLOW_ID_PREFIX}{source}-{deal_id}")
}

/// The deal id as it appears inside the workflow id.
pub fn normalise_deal_id(source: &str, deal_id: &str) -> String {
    let trimmed = deal_id.trim();
    if source.eq_ignore_ascii_case("salesforce")
        && let Some(long) = salesforce_id_18(trimmed)
    {
        return long;
    }
    normalise(trimmed)
}

/// Replaces every character outside `[A-Za-z0-9._-]` with `_`.
fn normalise(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The 18-character form of a 15-character Salesforce id; 18-character ids
/// come back unchanged, anything else is not a Salesforce record id.
pub fn salesforce_id_18(id: &str) -> Option<String> {
    if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        18 => Some(id.to_owned()),
        15 => {
            const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
            let suffix: String = id
                .as_bytes()
                .chunks(5)
                .map(|chunk| {
                    let bits = chunk
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| b.is_ascii_uppercase())
                        .fold(0usize, |acc, (i, _)| acc | (1 << i));
                    char::from(ALPHABET[bits])
                })
                .collect();
            Some(format!("{id}{suffix}"))
        }
        _ => None,
    }
}

/// Parses an operator's `DEAL` argument: a workflow id, or `source:id`.
pub fn parse_deal_ref(text: &str) -> Option<String> {
    let text = text.trim();
    if text.starts_with(WORKFLOW_ID_PREFIX) {
        return Some(text.to_owned());
    }
    let (source, id) = text.split_once(':')?;
    (!source.trim().is_empty() && !id.trim().is_empty()).then(|| workflow_id(source, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salesforce_ids_widen_to_18_characters() {
        assert_eq!(
            salesforce_id_18("001A0000006Vm9r").as_deref(),
            Some("001A0000006Vm9rIAC")
        );
        assert_eq!(
            workflow_id("salesforce", "001A0000006Vm9r"),
            "handoff-salesforce-001A0000006Vm9rIAC"
        );
        assert_eq!(
            workflow_id("Salesforce", "001A0000006Vm9rIAC"),
            "handoff-salesforce-001A0000006Vm9rIAC"
        );
    }

    #[test]
    fn hostile_ids_are_reduced_to_safe_characters() {
        assert_eq!(
            workflow_id("manual", "../../etc/passwd"),
            "handoff-manual-.._.._etc_passwd"
        );
        assert_eq!(
            workflow_id("manual", "a b\u{202e}c"),
            "handoff-manual-a_b_c"
        );
    }

    #[test]
    fn deal_refs_accept_both_forms() {
        assert_eq!(
            parse_deal_ref("hubspot:123-456").as_deref(),
            Some("handoff-hubspot-123-456")
        );
        assert_eq!(
            parse_deal_ref("handoff-manual-x").as_deref(),
            Some("handoff-manual-x")
        );
        assert_eq!(parse_deal_ref("nonsense"), None);
    }
}
