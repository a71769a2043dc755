//! Reading request bodies field by field, before anything is sent to WhatsApp.
//!
//! The body is read as a JSON value and checked field by field, so a client learns about every
//! violation at once (serde would stop at the first), unknown fields included. This module only
//! checks the JSON's shape (types, unknown fields) and names fields; the rules themselves
//! (lengths, participant forms, limits) live with the operation in `ops` and the address types
//! in `types`, and come back as typed errors that are listed here as they are.

use serde_json::{Map, Value};

use super::Violation;
use super::error::violations as listed;
use crate::ops::groups::CreateGroup;
use crate::types::{GroupJid, Jid, UserJid};

/// Top-level fields of the body (`device_id` is read by the handler).
const FIELDS: [&str; 5] = [
    "name",
    "participants",
    "description",
    "options",
    "device_id",
];
/// Fields of `options`.
const OPTIONS: [&str; 5] = [
    "announcement",
    "locked",
    "join_approval",
    "community",
    "parent_jid",
];

/// A JSON object being read: every shape problem is collected as a violation.
pub(crate) struct Object<'a> {
    map: &'a Map<String, Value>,
    prefix: &'static str,
    /// What is wrong so far.
    pub(crate) violations: Vec<Violation>,
}

impl<'a> Object<'a> {
    /// The body as an object with only `known` fields, or the violations saying it is not.
    pub(crate) fn new(body: &'a Value, known: &[&str]) -> Result<Self, Vec<Violation>> {
        let Some(map) = body.as_object() else {
            return Err(vec![Violation::new("body", "must be a JSON object")]);
        };
        let mut object = Object {
            map,
            prefix: "",
            violations: Vec::new(),
        };
        object.refuse_unknown(known);
        Ok(object)
    }

    fn refuse_unknown(&mut self, known: &[&str]) {
        for key in self.map.keys() {
            if !known.contains(&key.as_str()) {
                self.violations.push(Violation::new(
                    format!("{}{key}", self.prefix),
                    format!("unknown field (expected one of: {})", known.join(", ")),
                ));
            }
        }
    }

    /// A field; `null` counts as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A required string.
    pub(crate) fn string(&mut self, key: &str) -> Option<&'a str> {
        match self.get(key) {
            None => {
                self.push(key, "is required");
                None
            }
            Some(v) => self.as_str(key, v),
        }
    }

    /// An optional string.
    pub(crate) fn optional_string(&mut self, key: &str) -> Option<&'a str> {
        let v = self.get(key)?;
        self.as_str(key, v)
    }

    /// An optional boolean, `false` when absent.
    pub(crate) fn flag(&mut self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.push(key, "must be true or false");
                false
            }
        }
    }

    fn as_str(&mut self, key: &str, v: &'a Value) -> Option<&'a str> {
        let s = v.as_str();
        if s.is_none() {
            self.push(key, "must be a string");
        }
        s
    }

    /// Records a violation of `key`.
    pub(crate) fn push(&mut self, key: &str, message: impl Into<String>) {
        self.violations
            .push(Violation::new(format!("{}{key}", self.prefix), message));
    }
}

/// Checks a `POST /groups` body and turns it into the normalised request, or lists every
/// violation.
pub fn create_group(body: &Value) -> Result<CreateGroup, Vec<Violation>> {
    read_create(body, &FIELDS)
}

/// Checks a `POST /communities` body (`name`, `description`, `participants`, no `options`)
/// and turns it into the request for a community, or lists every violation.
pub fn create_community(body: &Value) -> Result<CreateGroup, Vec<Violation>> {
    let mut request = read_create(body, &COMMUNITY_FIELDS)?;
    request.community = true;
    Ok(request)
}

/// Top-level fields of a `POST /communities` body.
const COMMUNITY_FIELDS: [&str; 3] = ["name", "participants", "description"];

fn read_create(body: &Value, fields: &[&str]) -> Result<CreateGroup, Vec<Violation>> {
    let mut object = Object::new(body, fields)?;
    let subject = object.string("name").unwrap_or_default().to_owned();
    let participants = participants(&mut object);
    let description = object.optional_string("description").map(str::to_owned);
    let mut request = CreateGroup {
        subject,
        participants,
        description,
        ..CreateGroup::default()
    };
    if fields.contains(&"options") {
        options(&mut object, &mut request);
    }
    let mut violations = object.violations;
    match request.normalize() {
        Ok(request) if violations.is_empty() => Ok(request),
        Ok(_) => Err(in_body_order(violations, fields)),
        Err(problems) => {
            // A field with the wrong shape was read as empty: its rule errors would only
            // repeat that.
            let rules = listed(problems);
            let fresh: Vec<Violation> = rules
                .into_iter()
                .filter(|r| !violations.iter().any(|v| v.field == r.field))
                .collect();
            violations.extend(fresh);
            Err(in_body_order(violations, fields))
        }
    }
}

/// Violations in the order of the body's fields (unknown fields first), as a client reads
/// the document; the sort is stable, so `participants[i]` keep their order.
fn in_body_order(mut violations: Vec<Violation>, fields: &[&str]) -> Vec<Violation> {
    violations.sort_by_key(|v| {
        let top = v.field.split(['.', '[']).next().unwrap_or_default();
        fields.iter().position(|f| *f == top).map_or(0, |i| i + 1)
    });
    violations
}

fn participants(object: &mut Object<'_>) -> Vec<Jid> {
    let Some(value) = object.get("participants") else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        object.push("participants", "must be an array of strings");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("participants[{i}]");
        match item.as_str().map(UserJid::parse) {
            Some(Ok(jid)) => out.push(jid.into_jid()),
            Some(Err(problem)) => object.push(&field, problem.to_string()),
            None => object.push(&field, "must be a string"),
        }
    }
    out
}

fn options(object: &mut Object<'_>, request: &mut CreateGroup) {
    let Some(value) = object.get("options") else {
        return;
    };
    let Some(map) = value.as_object() else {
        object.push("options", "must be an object");
        return;
    };
    let mut options = Object {
        map,
        prefix: "options.",
        violations: Vec::new(),
    };
    options.refuse_unknown(&OPTIONS);
    request.announcement = options.flag("announcement");
    request.locked = options.flag("locked");
    request.join_approval = options.flag("join_approval");
    request.community = options.flag("community");
    request.parent =
        options
            .optional_string("parent_jid")
            .and_then(|text| match GroupJid::parse(text) {
                Ok(jid) => Some(jid.into_jid()),
                Err(problem) => {
                    options.push("parent_jid", problem.to_string());
                    None
                }
            });
    object.violations.append(&mut options.violations);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(result: Result<CreateGroup, Vec<Violation>>) -> Vec<String> {
        result.err().unwrap().into_iter().map(|v| v.field).collect()
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
        use crate::ops::groups::{MAX_GROUP_SIZE, MAX_SUBJECT_CHARS};
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

    #[test]
    fn a_community_body_has_no_options() {
        let ok = create_community(&json!({"name": "Club", "participants": ["5511999990001"]}));
        assert!(
            ok.as_ref()
                .is_ok_and(|r| r.community && r.participants.len() == 1)
        );
        let bad = json!({"name": "", "options": {"community": true}});
        assert_eq!(fields(create_community(&bad)), ["options", "name"]);
    }
}
