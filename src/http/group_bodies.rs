//! Reading the bodies and paths of the group routes after create into [`GroupCall`]s, listing
//! every violation at once. Only the JSON's shape is checked here; the rules (group JIDs,
//! participant forms, subject and description lengths, timers, invite codes) are
//! [`GroupCall::normalize`]'s, and their errors are listed as they are.

use serde_json::{Value, json};

use super::Violation;
use super::error::violations as listed;
use super::validate::Object;
use crate::ops::groups::{GroupCall, MemberAddMode, ParticipantAction, Setting};
use crate::types::{Jid, UserJid};

/// The group JID of a path: kept as typed (a bad one is reported by `normalize` as `jid`).
pub(crate) fn path_group(text: &str) -> Jid {
    text.trim()
        .parse()
        .unwrap_or_else(|_| Jid::new(text.trim(), "invalid"))
}

/// Checks `call` by the operation's rules, adding them to the shape violations found so far.
pub(crate) fn checked(
    call: GroupCall,
    mut violations: Vec<Violation>,
) -> Result<GroupCall, Vec<Violation>> {
    match call.normalize() {
        Ok(call) if violations.is_empty() => Ok(call),
        Ok(_) => Err(violations),
        Err(fields) => {
            for rule in listed(fields) {
                let named = |v: &Violation| {
                    v.field == rule.field || v.field.starts_with(&format!("{}[", rule.field))
                };
                if !violations.iter().any(named) {
                    violations.push(rule);
                }
            }
            Err(violations)
        }
    }
}

/// `{participants, action?}`; `default` is the route's action (add for POST, remove for
/// DELETE).
pub(crate) fn participants(
    group: Jid,
    body: &Value,
    default: ParticipantAction,
) -> Result<GroupCall, Vec<Violation>> {
    let mut object = Object::new(body, &["participants", "action"])?;
    let action = match object.optional_string("action") {
        None => default,
        Some(text) => ParticipantAction::parse(text).unwrap_or_else(|| {
            object.push("action", "must be one of: add, remove, promote, demote");
            default
        }),
    };
    let mut list = Vec::new();
    match object.get("participants") {
        None => object.push("participants", "is required"),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("participants[{i}]");
                match item.as_str().map(UserJid::parse) {
                    Some(Ok(jid)) => list.push(jid.into_jid()),
                    Some(Err(problem)) => object.push(&field, problem.to_string()),
                    None => object.push(&field, "must be a string"),
                }
            }
        }
        Some(_) => object.push("participants", "must be an array of strings"),
    }
    // A shape error already names `participants`: an empty list after it says nothing new.
    let call = GroupCall::Participants {
        group,
        action,
        participants: list,
    };
    checked(call, object.violations)
}

/// `{action: approve|reject, participants}` for `POST /groups/{jid}/requests`.
pub(crate) fn decide_requests(group: Jid, body: &Value) -> Result<GroupCall, Vec<Violation>> {
    let mut object = Object::new(body, &["participants", "action"])?;
    let approve = match object.string("action") {
        Some("approve") => true,
        Some("reject") => false,
        Some(_) => {
            object.push("action", "must be approve or reject");
            true
        }
        None => true,
    };
    let mut list = Vec::new();
    match object.get("participants") {
        None => object.push("participants", "is required"),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str().map(UserJid::parse) {
                    Some(Ok(jid)) => list.push(jid.into_jid()),
                    Some(Err(p)) => object.push(&format!("participants[{i}]"), p.to_string()),
                    None => object.push(&format!("participants[{i}]"), "must be a string"),
                }
            }
        }
        Some(_) => object.push("participants", "must be an array of strings"),
    }
    let call = GroupCall::DecideRequests {
        group,
        approve,
        participants: list,
    };
    checked(call, object.violations)
}

/// The fields `PATCH /groups/{jid}` takes, in the order they are applied.
pub(crate) const PATCH_FIELDS: [&str; 7] = [
    "name",
    "topic",
    "description",
    "announcement",
    "locked",
    "join_approval",
    "member_add_mode",
];

/// One field of a PATCH: the API's name and the setting.
pub(crate) type PatchStep = (&'static str, Setting);

/// A `PATCH /groups/{jid}` body: at least one field; `topic` and `description` are the same
/// thing (WhatsApp's description) and may both be given only with the same text. Each
/// setting is checked by the operation's rules (as its own [`GroupCall`]).
pub(crate) fn patch(group: &Jid, body: &Value) -> Result<Vec<PatchStep>, Vec<Violation>> {
    let mut object = Object::new(body, &PATCH_FIELDS)?;
    let mut steps: Vec<PatchStep> = Vec::new();
    if let Some(name) = object.get("name") {
        match name.as_str() {
            Some(n) => steps.push(("name", Setting::Subject(n.to_owned()))),
            None => object.push("name", "must be a string"),
        }
    }
    let topic = object.optional_string("topic");
    let description = object.optional_string("description");
    match (topic, description) {
        (Some(t), Some(d)) if t.trim() != d.trim() => object.push(
            "description",
            "topic and description are the same field; give one, or both with the same text",
        ),
        _ => {}
    }
    let (field, text) = match (description, topic) {
        (Some(d), _) => ("description", Some(d)),
        (None, Some(t)) => ("topic", Some(t)),
        (None, None) => ("description", None),
    };
    if let Some(text) = text {
        steps.push((
            field,
            Setting::Description {
                text: Some(text.to_owned()),
                prev: None,
            },
        ));
    }
    for (key, make) in [
        ("announcement", Setting::Announcement as fn(bool) -> Setting),
        ("locked", Setting::Locked),
        ("join_approval", Setting::JoinApproval),
    ] {
        match object.get(key) {
            None => {}
            Some(Value::Bool(on)) => steps.push((key, make(*on))),
            Some(_) => object.push(key, "must be true or false"),
        }
    }
    if let Some(mode) = object.get("member_add_mode") {
        match mode.as_str().and_then(MemberAddMode::parse) {
            Some(m) => steps.push(("member_add_mode", Setting::MemberAddMode(m))),
            None => object.push("member_add_mode", "must be one of: admin, all_member"),
        }
    }
    if steps.is_empty() && object.violations.is_empty() {
        object.push(
            "body",
            format!("give at least one of: {}", PATCH_FIELDS.join(", ")),
        );
    }
    let mut violations = object.violations;
    let mut out = Vec::new();
    for (field, setting) in steps {
        let call = GroupCall::Set {
            group: group.clone(),
            setting,
        };
        match checked(call, Vec::new()) {
            Ok(GroupCall::Set { setting, .. }) => out.push((field, setting)),
            Ok(_) => {}
            Err(found) => {
                // The path's JID is checked (and named) once, by the caller.
                for v in found.into_iter().filter(|v| v.field != "jid") {
                    // The rule names fields as the create body does (`name`, `description`).
                    let field_name = if v.field == "description" {
                        field.to_owned()
                    } else {
                        v.field
                    };
                    if !violations.iter().any(|x| x.field == field_name) {
                        violations.push(Violation::new(field_name, v.message));
                    }
                }
            }
        }
    }
    if violations.is_empty() {
        Ok(out)
    } else {
        Err(violations)
    }
}

/// `{duration_seconds}`.
pub(crate) fn ephemeral(group: Jid, body: &Value) -> Result<GroupCall, Vec<Violation>> {
    let mut object = Object::new(body, &["duration_seconds"])?;
    let secs = match object.get("duration_seconds") {
        None => {
            object.push("duration_seconds", "is required");
            0
        }
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => n,
            None => {
                object.push("duration_seconds", "must be a whole number of seconds");
                0
            }
        },
    };
    let call = GroupCall::Set {
        group,
        setting: Setting::Ephemeral(secs),
    };
    checked(call, object.violations)
}

/// `{link}` or `{code, group_jid, inviter_jid, expiration?}`.
pub(crate) fn join(body: &Value) -> Result<GroupCall, Vec<Violation>> {
    let mut object = Object::new(
        body,
        &["link", "code", "group_jid", "inviter_jid", "expiration"],
    )?;
    let link = object.optional_string("link");
    let code = object.optional_string("code");
    let call = match (link, code) {
        (Some(_), Some(_)) => {
            object.push(
                "code",
                "give either link, or code with group_jid and inviter_jid",
            );
            GroupCall::JoinLink {
                code: String::new(),
            }
        }
        (Some(link), None) => GroupCall::JoinLink {
            code: link.to_owned(),
        },
        (None, Some(code)) => {
            let group = object.string("group_jid").map(path_group);
            let inviter = object
                .string("inviter_jid")
                .and_then(|t| match UserJid::parse(t) {
                    Ok(j) => Some(j.into_jid()),
                    Err(p) => {
                        object.push("inviter_jid", p.to_string());
                        None
                    }
                });
            let expiration = match object.get("expiration") {
                None => 0,
                Some(v) => v.as_u64().unwrap_or_else(|| {
                    object.push("expiration", "must be unix seconds");
                    0
                }),
            };
            match (group, inviter) {
                (Some(group), Some(inviter)) => GroupCall::JoinInvite {
                    group,
                    inviter,
                    code: code.to_owned(),
                    expiration,
                },
                _ => GroupCall::JoinLink {
                    code: code.to_owned(),
                },
            }
        }
        (None, None) => {
            object.push(
                "link",
                "is required (or code with group_jid and inviter_jid)",
            );
            GroupCall::JoinLink {
                code: String::new(),
            }
        }
    };
    let violations = object.violations;
    // The rules' `jid` is the body's `group_jid` here.
    checked(call, violations).map_err(|list| {
        list.into_iter()
            .map(|v| {
                if v.field == "jid" {
                    Violation::new("group_jid", v.message)
                } else {
                    v
                }
            })
            .collect()
    })
}

/// A setting as an idempotency fingerprint sees it: the API's field and the normalised value,
/// as JSON built in a fixed order (never Debug text, whose shape follows the code).
pub(crate) fn canonical_setting(field: &str, setting: &Setting) -> Value {
    let value = match setting {
        Setting::Subject(text) => json!(text),
        Setting::Description { text, .. } => json!(text),
        Setting::Announcement(on) | Setting::Locked(on) | Setting::JoinApproval(on) => json!(on),
        Setting::MemberAddMode(mode) => json!(mode.api_name()),
        Setting::Ephemeral(secs) => json!(secs),
    };
    json!([field, value])
}

/// A join as an idempotency fingerprint sees it (see [`canonical_setting`]).
pub(crate) fn canonical_join(call: &GroupCall) -> Value {
    match call {
        GroupCall::JoinLink { code } => json!(["link", code]),
        GroupCall::JoinInvite {
            group,
            inviter,
            code,
            expiration,
        } => json!([
            "invite",
            code,
            group.to_string(),
            inviter.to_string(),
            expiration
        ]),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn g() -> Jid {
        path_group("120363000000000001@g.us")
    }

    fn fields<T>(r: Result<T, Vec<Violation>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn participants_lists_every_problem() {
        let body = json!({"participants": ["abc", 5], "action": "ban", "x": 1});
        assert_eq!(
            fields(participants(
                path_group("nope"),
                &body,
                ParticipantAction::Add
            )),
            ["x", "action", "participants[0]", "participants[1]", "jid"]
        );
        let ok = participants(
            g(),
            &json!({"participants": ["+55 11 99999-0001"]}),
            ParticipantAction::Remove,
        );
        assert!(matches!(
            ok,
            Ok(GroupCall::Participants {
                action: ParticipantAction::Remove,
                ..
            })
        ));
    }

    #[test]
    fn patch_needs_a_field_and_checks_each() {
        assert_eq!(fields(patch(&g(), &json!({}))), ["body"]);
        assert_eq!(
            fields(patch(
                &g(),
                &json!({"name": "", "locked": "yes", "member_add_mode": "x"})
            )),
            ["locked", "member_add_mode", "name"]
        );
        assert_eq!(
            fields(patch(&g(), &json!({"topic": "a", "description": "b"}))),
            ["description"]
        );
        let steps = patch(
            &g(),
            &json!({"announcement": true, "name": " New ", "topic": "t"}),
        )
        .unwrap();
        let names: Vec<&str> = steps.iter().map(|(f, _)| *f).collect();
        assert_eq!(names, ["name", "topic", "announcement"]);
        assert_eq!(steps[0].1, Setting::Subject("New".into()));
    }

    #[test]
    fn ephemeral_and_join() {
        assert_eq!(
            fields(ephemeral(g(), &json!({"duration_seconds": 60}))),
            ["duration_seconds"]
        );
        assert!(ephemeral(g(), &json!({"duration_seconds": 604800})).is_ok());
        assert_eq!(fields(join(&json!({}))), ["link"]);
        assert!(matches!(
            join(&json!({"link": "https://chat.whatsapp.com/AbC"})),
            Ok(GroupCall::JoinLink { code }) if code == "AbC"
        ));
        assert_eq!(
            fields(join(
                &json!({"code": "x", "group_jid": "1@s.whatsapp.net", "inviter_jid": "5511999990001"})
            )),
            ["group_jid"]
        );
    }
}
