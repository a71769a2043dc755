//! Validation of `POST /groups` bodies, before anything is sent to WhatsApp.
//!
//! The body is read as a JSON value and checked field by field, so a client learns about every
//! violation at once (serde would stop at the first), unknown fields included. Participants are
//! normalised to user JIDs and deduplicated; limits come from `ops::groups` (protocol sheet
//! §6.7).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::Violation;
use crate::binary::Jid;
use crate::binary::jid::{SERVER_GROUP, SERVER_LEGACY_USER, SERVER_LID, SERVER_PN};
use crate::ops::groups::{CreateGroup, MAX_DESCRIPTION_CHARS, MAX_GROUP_SIZE, MAX_SUBJECT_CHARS};

/// Top-level fields of the body.
const FIELDS: [&str; 4] = ["name", "participants", "description", "options"];
/// Fields of `options`.
const OPTIONS: [&str; 5] = [
    "announcement",
    "locked",
    "join_approval",
    "community",
    "parent_jid",
];
/// E.164: a country code and subscriber number, at most 15 digits. The shortest numbers in use
/// (small territories) have 7.
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

/// Checks a `POST /groups` body and turns it into the engine's request, or lists every
/// violation.
pub fn create_group(body: &Value) -> Result<CreateGroup, Vec<Violation>> {
    let mut violations = Vec::new();
    let Some(object) = body.as_object() else {
        return Err(vec![Violation::new("body", "must be a JSON object")]);
    };
    unknown_fields(object, &FIELDS, "", &mut violations);

    let subject = name(object.get("name"), &mut violations);
    let participants = participants(object.get("participants"), &mut violations);
    let description = text(
        object.get("description"),
        "description",
        MAX_DESCRIPTION_CHARS,
        &mut violations,
    );
    let mut request = CreateGroup {
        subject: subject.unwrap_or_default(),
        participants,
        description,
        ..CreateGroup::default()
    };
    options(object.get("options"), &mut request, &mut violations);

    if violations.is_empty() {
        Ok(request)
    } else {
        Err(violations)
    }
}

fn unknown_fields(
    object: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
    violations: &mut Vec<Violation>,
) {
    for key in object.keys() {
        if !known.contains(&key.as_str()) {
            violations.push(Violation::new(
                format!("{prefix}{key}"),
                format!("unknown field (expected one of: {})", known.join(", ")),
            ));
        }
    }
}

/// `null` counts as absent for every optional field.
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

fn name(value: Option<&Value>, violations: &mut Vec<Violation>) -> Option<String> {
    let Some(value) = present(value) else {
        violations.push(Violation::new("name", "is required"));
        return None;
    };
    let Some(name) = value.as_str().map(str::trim) else {
        violations.push(Violation::new("name", "must be a string"));
        return None;
    };
    if name.is_empty() {
        violations.push(Violation::new("name", "must not be empty"));
        return None;
    }
    check_text(name, "name", MAX_SUBJECT_CHARS, violations).then(|| name.to_owned())
}

/// An optional free text: trimmed, `""` counts as absent.
fn text(
    value: Option<&Value>,
    field: &str,
    max: usize,
    violations: &mut Vec<Violation>,
) -> Option<String> {
    let value = present(value)?;
    let Some(text) = value.as_str().map(str::trim) else {
        violations.push(Violation::new(field, "must be a string"));
        return None;
    };
    if text.is_empty() || !check_text(text, field, max, violations) {
        return None;
    }
    Some(text.to_owned())
}

/// Length in characters (WhatsApp counts characters, not bytes) and no control characters
/// other than line breaks in descriptions.
fn check_text(text: &str, field: &str, max: usize, violations: &mut Vec<Violation>) -> bool {
    let chars = text.chars().count();
    if chars > max {
        violations.push(Violation::new(
            field,
            format!("must be at most {max} characters (got {chars})"),
        ));
        return false;
    }
    let line_breaks_ok = field == "description";
    if text
        .chars()
        .any(|c| c.is_control() && !(line_breaks_ok && (c == '\n' || c == '\r')))
    {
        violations.push(Violation::new(field, "must not contain control characters"));
        return false;
    }
    true
}

fn participants(value: Option<&Value>, violations: &mut Vec<Violation>) -> Vec<Jid> {
    let Some(value) = present(value) else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        violations.push(Violation::new(
            "participants",
            "must be an array of strings",
        ));
        return Vec::new();
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("participants[{i}]");
        let Some(text) = item.as_str() else {
            violations.push(Violation::new(field, "must be a string"));
            continue;
        };
        match participant(text) {
            Ok(jid) => {
                if seen.insert(jid.clone()) {
                    out.push(jid);
                }
            }
            Err(message) => violations.push(Violation::new(field, message)),
        }
    }
    // The creator is a member too.
    if out.len() >= MAX_GROUP_SIZE {
        violations.push(Violation::new(
            "participants",
            format!(
                "a group has at most {MAX_GROUP_SIZE} members including the creator, so at most {} participants (got {} after removing duplicates)",
                MAX_GROUP_SIZE - 1,
                out.len()
            ),
        ));
    }
    out
}

/// Normalises one participant: a user JID (`<digits>@s.whatsapp.net`, `<digits>@c.us`,
/// `<digits>@lid`) or a phone number in international form (`+55 11 99999-0001`), to a JID
/// without device.
pub fn participant(text: &str) -> Result<Jid, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be empty".to_owned());
    }
    let Some((user, server)) = text.split_once('@') else {
        return phone_number(text).map(|digits| Jid::new(digits, SERVER_PN));
    };
    let server = server.to_ascii_lowercase();
    if user.contains(':') {
        return Err("must name a user, not one of its devices (drop the \":N\")".to_owned());
    }
    match server.as_str() {
        SERVER_PN | SERVER_LEGACY_USER => {
            let digits = digits_only(user)
                .ok_or_else(|| "the part before @ must be the phone number's digits".to_owned())?;
            check_phone_digits(&digits)?;
            Ok(Jid::new(digits, SERVER_PN))
        }
        SERVER_LID => {
            let id = digits_only(user)
                .filter(|d| (1..=20).contains(&d.len()))
                .ok_or_else(|| "a LID is 1 to 20 digits before @lid".to_owned())?;
            Ok(Jid::new(id, SERVER_LID))
        }
        _ => Err("must be a phone number or a user JID (…@s.whatsapp.net or …@lid)".to_owned()),
    }
}

fn digits_only(text: &str) -> Option<String> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.to_owned())
}

/// A phone number as people write it: an optional `+`, digits, and spaces, dots, dashes or
/// parentheses between them. Returns the digits.
fn phone_number(text: &str) -> Result<String, String> {
    let rest = text.strip_prefix('+').unwrap_or(text);
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => {
                return Err(
                    "must be a phone number in international form (+5511999990001) or a user JID"
                        .to_owned(),
                );
            }
        }
    }
    check_phone_digits(&digits)?;
    Ok(digits)
}

fn check_phone_digits(digits: &str) -> Result<(), String> {
    if !PHONE_DIGITS.contains(&digits.len()) {
        return Err(format!(
            "a phone number has {} to {} digits including the country code (got {})",
            PHONE_DIGITS.start(),
            PHONE_DIGITS.end(),
            digits.len()
        ));
    }
    if digits.starts_with('0') {
        return Err("must start with the country code, not 0".to_owned());
    }
    Ok(())
}

fn options(value: Option<&Value>, request: &mut CreateGroup, violations: &mut Vec<Violation>) {
    let Some(value) = present(value) else {
        return;
    };
    let Some(object) = value.as_object() else {
        violations.push(Violation::new("options", "must be an object"));
        return;
    };
    unknown_fields(object, &OPTIONS, "options.", violations);
    let mut flag = |key: &str| -> bool {
        match present(object.get(key)) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                violations.push(Violation::new(
                    format!("options.{key}"),
                    "must be true or false",
                ));
                false
            }
        }
    };
    request.announcement = flag("announcement");
    request.locked = flag("locked");
    request.join_approval = flag("join_approval");
    request.community = flag("community");
    request.parent = match present(object.get("parent_jid")) {
        None => None,
        Some(value) => match value.as_str().map(group_jid) {
            Some(Ok(jid)) => Some(jid),
            Some(Err(message)) => {
                violations.push(Violation::new("options.parent_jid", message));
                None
            }
            None => {
                violations.push(Violation::new("options.parent_jid", "must be a string"));
                None
            }
        },
    };
    if request.community && request.parent.is_some() {
        violations.push(Violation::new(
            "options.parent_jid",
            "a community cannot be created inside another community",
        ));
    }
}

/// A community's JID: `<digits>@g.us` (older groups: `<digits>-<digits>@g.us`).
fn group_jid(text: &str) -> Result<Jid, String> {
    let bad = || "must be a community JID (…@g.us)".to_owned();
    let (user, server) = text.trim().split_once('@').ok_or_else(bad)?;
    let valid_user = !user.is_empty()
        && user.split('-').count() <= 2
        && user
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if server != SERVER_GROUP || !valid_user {
        return Err(bad());
    }
    Ok(Jid::new(user, SERVER_GROUP))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(result: Result<CreateGroup, Vec<Violation>>) -> Vec<String> {
        result.err().unwrap().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn normalises_numbers_and_jids() {
        for (input, want) in [
            ("+55 11 99999-0001", "5511999990001@s.whatsapp.net"),
            ("(55) 11.99999.0001", "5511999990001@s.whatsapp.net"),
            ("5511999990001", "5511999990001@s.whatsapp.net"),
            ("5511999990001@c.us", "5511999990001@s.whatsapp.net"),
            (
                "5511999990001@S.WhatsApp.net",
                "5511999990001@s.whatsapp.net",
            ),
            ("100000000000002@lid", "100000000000002@lid"),
        ] {
            assert_eq!(participant(input).unwrap().to_string(), want, "{input}");
        }
    }

    #[test]
    fn refuses_malformed_participants() {
        for input in [
            "",
            "abc",
            "+55 11 9999x",
            "123",
            "1234567890123456",
            "011999990001",
            "5511999990001:3@s.whatsapp.net",
            "120363000000000001@g.us",
            "55119@@s.whatsapp.net",
            "x@lid",
        ] {
            assert!(participant(input).is_err(), "{input}");
        }
    }

    #[test]
    fn lists_every_violation_with_its_field() {
        let body = json!({
            "name": "",
            "participants": ["abc", 7, "5511999990001"],
            "description": 3,
            "colour": "red",
            "options": {"locked": "yes", "parent_jid": "x", "extra": true}
        });
        assert_eq!(
            fields(create_group(&body)),
            [
                "colour",
                "name",
                "participants[0]",
                "participants[1]",
                "description",
                "options.extra",
                "options.locked",
                "options.parent_jid"
            ]
        );
    }

    #[test]
    fn removes_duplicates_after_normalising() {
        let body = json!({
            "name": " Launch ",
            "participants": ["+5511999990001", "5511999990001@s.whatsapp.net", "5511999990002"]
        });
        let request = create_group(&body).unwrap();
        assert_eq!(request.subject, "Launch");
        assert_eq!(request.participants.len(), 2);
    }

    #[test]
    fn enforces_whatsapp_limits() {
        let long = "x".repeat(MAX_SUBJECT_CHARS + 1);
        assert_eq!(fields(create_group(&json!({"name": long}))), ["name"]);
        let exact = "é".repeat(MAX_SUBJECT_CHARS);
        assert!(create_group(&json!({"name": exact})).is_ok());
        let many: Vec<String> = (0..MAX_GROUP_SIZE)
            .map(|i| format!("55119{i:08}"))
            .collect();
        assert_eq!(
            fields(create_group(&json!({"name": "a", "participants": many}))),
            ["participants"]
        );
    }

    #[test]
    fn options_and_community_rules() {
        let body = json!({"name": "a", "options": {
            "announcement": true, "locked": true, "join_approval": true,
            "parent_jid": "120363000000000001@g.us"
        }});
        let request = create_group(&body).unwrap();
        assert!(request.announcement && request.locked && request.join_approval);
        assert_eq!(
            request.parent.map(|j| j.to_string()).as_deref(),
            Some("120363000000000001@g.us")
        );
        let both = json!({"name": "a", "options": {
            "community": true, "parent_jid": "120363000000000001@g.us"
        }});
        assert_eq!(fields(create_group(&both)), ["options.parent_jid"]);
        assert_eq!(fields(create_group(&json!([1]))), ["body"]);
        assert!(create_group(&json!({"name": "a", "options": null, "participants": null})).is_ok());
    }
}
