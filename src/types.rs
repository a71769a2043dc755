//! Domain types, the bottom of the house: addresses and ids every layer above shares (ops,
//! engine, client, http, sim, and the store's [`DeviceId`]).
//!
//! [`Jid`] itself stays with the codec, whose wire forms it mirrors; this module adds the
//! validated kinds the rest of the crate asks for ([`UserJid`], [`GroupJid`]) and the one set of
//! rules that turns what people type (`+55 11 99999-0001`, `5511999990001@c.us`) into them.
//! The HTTP layer maps [`JidProblem`] to its error details; it keeps no rules of its own.

#![deny(clippy::disallowed_methods)]

use std::fmt;

pub use crate::binary::Jid;
pub use crate::binary::jid::{SERVER_GROUP, SERVER_LEGACY_USER, SERVER_LID, SERVER_PN};
pub use wuts_store::{AddressSpace, DeviceId, DeviceJid, InvalidDeviceJid};

/// E.164: a country code and subscriber number, at most 15 digits. The shortest numbers in use
/// (small territories) have 7.
pub const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;
/// A LID is a number of up to 20 digits.
pub const LID_DIGITS: std::ops::RangeInclusive<usize> = 1..=20;

/// Why a text is not the address asked for. `Display` is the sentence clients read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JidProblem {
    /// Nothing but whitespace.
    #[error("must not be empty")]
    Empty,
    /// A device-qualified JID where a user was asked for.
    #[error("must name a user, not one of its devices (drop the \":N\")")]
    HasDevice,
    /// `…@s.whatsapp.net` with something other than digits before the `@`.
    #[error("the part before @ must be the phone number's digits")]
    UserNotDigits,
    /// A malformed LID.
    #[error("a LID is 1 to 20 digits before @lid")]
    BadLid,
    /// A server that does not hold users.
    #[error("must be a phone number or a user JID (…@s.whatsapp.net or …@lid)")]
    NotAUserServer,
    /// Characters a phone number does not have.
    #[error("must be a phone number in international form (+5511999990001) or a user JID")]
    NotAPhoneNumber,
    /// Too few or too many digits.
    #[error("a phone number has 7 to 15 digits including the country code (got {0})")]
    PhoneLength(usize),
    /// A trunk prefix instead of the country code.
    #[error("must start with the country code, not 0")]
    LeadingZero,
    /// Not `<digits>@g.us` (or the older `<digits>-<digits>@g.us`).
    #[error("must be a group JID (…@g.us)")]
    NotAGroup,
}

/// A user without device or agent: `<phone digits>@s.whatsapp.net` or `<digits>@lid`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserJid(Jid);

impl UserJid {
    /// Reads a participant as people write one: a user JID (`…@s.whatsapp.net`, `…@c.us`,
    /// `…@lid`, any case) or a phone number in international form (`+55 11 99999-0001`).
    pub fn parse(text: &str) -> Result<Self, JidProblem> {
        let text = text.trim();
        if text.is_empty() {
            return Err(JidProblem::Empty);
        }
        let Some((user, server)) = text.split_once('@') else {
            return phone_number(text).map(|digits| UserJid(Jid::new(digits, SERVER_PN)));
        };
        if user.contains(':') {
            return Err(JidProblem::HasDevice);
        }
        match server.to_ascii_lowercase().as_str() {
            SERVER_PN | SERVER_LEGACY_USER => {
                let digits = digits_only(user).ok_or(JidProblem::UserNotDigits)?;
                check_phone_digits(digits)?;
                Ok(UserJid(Jid::new(digits, SERVER_PN)))
            }
            SERVER_LID => {
                let id = digits_only(user)
                    .filter(|d| LID_DIGITS.contains(&d.len()))
                    .ok_or(JidProblem::BadLid)?;
                Ok(UserJid(Jid::new(id, SERVER_LID)))
            }
            _ => Err(JidProblem::NotAUserServer),
        }
    }

    /// Accepts a JID that already is a user JID (as a parsed reply or a stored value is).
    pub fn from_jid(jid: Jid) -> Result<Self, JidProblem> {
        if jid.device.is_some() {
            return Err(JidProblem::HasDevice);
        }
        let ok = match &*jid.server {
            SERVER_PN => digits_only(&jid.user).is_some() && jid.agent == 0,
            SERVER_LID => digits_only(&jid.user).is_some_and(|d| LID_DIGITS.contains(&d.len())),
            _ => return Err(JidProblem::NotAUserServer),
        };
        if ok {
            Ok(UserJid(jid))
        } else {
            Err(JidProblem::UserNotDigits)
        }
    }

    /// The JID.
    pub fn as_jid(&self) -> &Jid {
        &self.0
    }

    /// The JID, owned.
    pub fn into_jid(self) -> Jid {
        self.0
    }
}

impl fmt::Display for UserJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A group (or community): `<digits>@g.us`, or the older `<creator>-<time>@g.us`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupJid(Jid);

impl GroupJid {
    /// Reads a group JID from text, strictly.
    pub fn parse(text: &str) -> Result<Self, JidProblem> {
        let (user, server) = text.trim().split_once('@').ok_or(JidProblem::NotAGroup)?;
        if server != SERVER_GROUP || !group_user(user) {
            return Err(JidProblem::NotAGroup);
        }
        Ok(GroupJid(Jid::new(user, SERVER_GROUP)))
    }

    /// Accepts a JID that already is a group JID.
    pub fn from_jid(jid: Jid) -> Result<Self, JidProblem> {
        if jid.server != SERVER_GROUP || jid.device.is_some() || !group_user(&jid.user) {
            return Err(JidProblem::NotAGroup);
        }
        Ok(GroupJid(jid))
    }

    /// The JID.
    pub fn as_jid(&self) -> &Jid {
        &self.0
    }

    /// The JID, owned.
    pub fn into_jid(self) -> Jid {
        self.0
    }
}

impl fmt::Display for GroupJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The store's typed device JID, as the codec's `Jid`.
impl From<&DeviceJid> for Jid {
    fn from(d: &DeviceJid) -> Self {
        Jid::with_device(d.user(), d.space().server(), d.device())
    }
}

/// A JID from the wire, as the store keeps a device's own address: refused unless it is a
/// device of a user server (`user:device@s.whatsapp.net`, `@lid`, `@hosted`, `@hosted.lid`).
impl TryFrom<&Jid> for DeviceJid {
    type Error = InvalidDeviceJid;

    fn try_from(j: &Jid) -> Result<Self, Self::Error> {
        let space = AddressSpace::of_server(&j.server).ok_or(InvalidDeviceJid)?;
        if j.agent != 0 || j.integrator != 0 {
            return Err(InvalidDeviceJid);
        }
        DeviceJid::new(j.user.clone(), j.device.ok_or(InvalidDeviceJid)?, space)
    }
}

fn group_user(user: &str) -> bool {
    !user.is_empty()
        && user.split('-').count() <= 2
        && user
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

fn digits_only(text: &str) -> Option<&str> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then_some(text)
}

/// A phone number as people write it: an optional `+`, digits, and spaces, dots, dashes or
/// parentheses between them. Returns the digits.
fn phone_number(text: &str) -> Result<String, JidProblem> {
    let rest = text.strip_prefix('+').unwrap_or(text);
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(JidProblem::NotAPhoneNumber),
        }
    }
    check_phone_digits(&digits)?;
    Ok(digits)
}

fn check_phone_digits(digits: &str) -> Result<(), JidProblem> {
    if !PHONE_DIGITS.contains(&digits.len()) {
        return Err(JidProblem::PhoneLength(digits.len()));
    }
    if digits.starts_with('0') {
        return Err(JidProblem::LeadingZero);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(UserJid::parse(input).unwrap().to_string(), want, "{input}");
        }
    }

    #[test]
    fn refuses_malformed_participants() {
        for (input, want) in [
            ("", JidProblem::Empty),
            ("abc", JidProblem::NotAPhoneNumber),
            ("+55 11 9999x", JidProblem::NotAPhoneNumber),
            ("123", JidProblem::PhoneLength(3)),
            ("1234567890123456", JidProblem::PhoneLength(16)),
            ("011999990001", JidProblem::LeadingZero),
            ("5511999990001:3@s.whatsapp.net", JidProblem::HasDevice),
            ("120363000000000001@g.us", JidProblem::NotAUserServer),
            ("55119@@s.whatsapp.net", JidProblem::NotAUserServer),
            ("x@lid", JidProblem::BadLid),
        ] {
            assert_eq!(UserJid::parse(input), Err(want), "{input}");
        }
    }

    #[test]
    fn device_jids_convert_both_ways_losslessly() {
        let text = "559984726662:77@s.whatsapp.net";
        let jid: Jid = text.parse().unwrap();
        let stored = DeviceJid::try_from(&jid).unwrap();
        assert_eq!(stored.to_string(), text);
        assert_eq!(Jid::from(&stored), jid);
        let no_device: Jid = "559984726662@s.whatsapp.net".parse().unwrap();
        assert!(DeviceJid::try_from(&no_device).is_err());
        let group: Jid = "1:2@g.us"
            .parse()
            .unwrap_or_else(|_| Jid::with_device("1", SERVER_GROUP, 2));
        assert!(DeviceJid::try_from(&group).is_err());
    }

    #[test]
    fn group_jids_are_digits_at_g_us() {
        assert!(GroupJid::parse("120363000000000001@g.us").is_ok());
        assert!(GroupJid::parse("5511999990001-1700000000@g.us").is_ok());
        for bad in [
            "x",
            "1@s.whatsapp.net",
            "a@g.us",
            "1-2-3@g.us",
            "@g.us",
            "1-@g.us",
        ] {
            assert_eq!(GroupJid::parse(bad), Err(JidProblem::NotAGroup), "{bad}");
        }
        let device = Jid::with_device("1", SERVER_GROUP, 2);
        assert!(GroupJid::from_jid(device).is_err());
    }
}
