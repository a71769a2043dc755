//! JIDs: WhatsApp addresses (`user[.agent][:device]@server`).
//!
//! [`Jid`] is the owned form, [`JidRef`] the borrowed one the decoder hands out (its parts may
//! still be packed). Both print in the usual text form; a server-only JID prints as `@server`
//! (Baileys' form), because a bare `g.us` would read as a plain string, and so the text form
//! parses back to the same JID.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use super::compact::Text;
use super::value::Str;

/// Phone-number users; AD domain 0.
pub const SERVER_PN: &str = "s.whatsapp.net";
/// Hidden-id (LID) users; AD domain 1.
pub const SERVER_LID: &str = "lid";
/// Groups, and the server-only JID that group IQs are addressed to.
pub const SERVER_GROUP: &str = "g.us";
/// Broadcast lists and `status@broadcast`.
pub const SERVER_BROADCAST: &str = "broadcast";
/// Call ids.
pub const SERVER_CALL: &str = "call";
/// Messenger users (`FB_JID`).
pub const SERVER_MSGR: &str = "msgr";
/// Channels.
pub const SERVER_NEWSLETTER: &str = "newsletter";
/// Hosted (Cloud API) phone-number users; AD domain 128.
pub const SERVER_HOSTED: &str = "hosted";
/// Hosted LID users; AD domain 129.
pub const SERVER_HOSTED_LID: &str = "hosted.lid";
/// Interop users (`INTEROP_JID`).
pub const SERVER_INTEROP: &str = "interop";
/// Meta AI bots.
pub const SERVER_BOT: &str = "bot";
/// The legacy user server, still used in message-id hashing.
pub const SERVER_LEGACY_USER: &str = "c.us";

/// Every server this codec knows by name. Plain strings are only turned into JID forms on these
/// servers: `a@b.com` or a pairing ref containing `@` stays a string.
pub const KNOWN_SERVERS: [&str; 12] = [
    SERVER_PN,
    SERVER_LID,
    SERVER_GROUP,
    SERVER_BROADCAST,
    SERVER_CALL,
    SERVER_MSGR,
    SERVER_NEWSLETTER,
    SERVER_HOSTED,
    SERVER_HOSTED_LID,
    SERVER_INTEROP,
    SERVER_BOT,
    SERVER_LEGACY_USER,
];

/// The known server spelled `s`, as a static string.
pub fn known_server(s: &str) -> Option<&'static str> {
    // A match compiles to a switch on length before comparing bytes.
    Some(match s {
        SERVER_PN => SERVER_PN,
        SERVER_LID => SERVER_LID,
        SERVER_GROUP => SERVER_GROUP,
        SERVER_BROADCAST => SERVER_BROADCAST,
        SERVER_CALL => SERVER_CALL,
        SERVER_MSGR => SERVER_MSGR,
        SERVER_NEWSLETTER => SERVER_NEWSLETTER,
        SERVER_HOSTED => SERVER_HOSTED,
        SERVER_HOSTED_LID => SERVER_HOSTED_LID,
        SERVER_INTEROP => SERVER_INTEROP,
        SERVER_BOT => SERVER_BOT,
        SERVER_LEGACY_USER => SERVER_LEGACY_USER,
        _ => return None,
    })
}

/// The dictionary token of a known server that is one (a test checks each against the
/// dictionary): a typed JID's server is written without the hash lookup.
pub(crate) fn server_token(server: &str) -> Option<u16> {
    Some(match server {
        SERVER_PN => 3,
        SERVER_BROADCAST => 13,
        SERVER_GROUP => 28,
        SERVER_CALL => 100,
        SERVER_LID => 118,
        SERVER_MSGR => 204,
        _ => return None,
    })
}

/// The `AD_JID` domain byte for the servers that have one.
pub(crate) fn ad_domain(server: &str) -> Option<u8> {
    match server {
        SERVER_PN => Some(0),
        SERVER_LID => Some(1),
        SERVER_HOSTED => Some(128),
        SERVER_HOSTED_LID => Some(129),
        _ => None,
    }
}

/// The server an `AD_JID` domain byte stands for, and the agent to keep. Unknown domain bytes
/// are read as phone-number JIDs with that agent (whatsmeow's reading; the lenient choice of
/// protocol-binary.md §9), so a frame from a newer server still decodes.
pub(crate) fn ad_server(domain: u8) -> (&'static str, u8) {
    match domain {
        0 => (SERVER_PN, 0),
        1 => (SERVER_LID, 0),
        128 => (SERVER_HOSTED, 0),
        129 => (SERVER_HOSTED_LID, 0),
        other => (SERVER_PN, other),
    }
}

/// A borrowed JID.
#[derive(Clone, Copy, Debug)]
pub struct JidRef<'a> {
    /// The user part; empty for a server-only JID.
    pub user: Str<'a>,
    /// The server part.
    pub server: Str<'a>,
    /// The raw `AD_JID` domain byte when it names no known server (0 otherwise).
    pub agent: u8,
    /// The device, present for the device-qualified forms (`AD_JID`, `FB_JID`, `INTEROP_JID`).
    pub device: Option<u16>,
    /// The interop integrator id (0 otherwise).
    pub integrator: u16,
}

impl<'a> JidRef<'a> {
    /// Parses the text form, strictly: only text that prints back identically is accepted, so
    /// turning a string into a JID never changes it. Used by the encoder to decide whether a
    /// plain string can take a JID form; servers must be known.
    pub fn parse_exact(s: &'a str) -> Option<Self> {
        // Byte searches rather than `split_once`: these strings are short, and the generic
        // searchers cost more than the loop (callgrind, BENCHMARKS.md).
        let at = s.bytes().position(|c| c == b'@')?;
        let server = known_server(&s[at + 1..])?;
        let mut jid = JidRef {
            user: Str::Raw(&s[..at]),
            server: Str::Static(server),
            agent: 0,
            device: None,
            integrator: 0,
        };
        let mut user = &s[..at];
        if server == SERVER_INTEROP {
            if let Some(i) = user.bytes().position(|c| c == b'-') {
                jid.integrator = canonical_number(&user[..i])?;
                user = &user[i + 1..];
                if !user.contains(':') {
                    return None; // an integrator always comes with a device
                }
            }
        }
        if let Some(i) = user.bytes().rposition(|c| c == b':') {
            jid.device = Some(canonical_number(&user[i + 1..])?);
            user = &user[..i];
            if server == SERVER_PN {
                if let Some(i) = user.bytes().rposition(|c| c == b'.') {
                    if let Some(agent) = canonical_number::<u8>(&user[i + 1..]) {
                        if !matches!(agent, 0 | 1 | 128 | 129) {
                            jid.agent = agent;
                            user = &user[..i];
                        }
                    }
                }
            }
        }
        if !user.bytes().all(is_user_byte) {
            return None;
        }
        jid.user = Str::Raw(user);
        Some(jid)
    }

    /// Copies the JID out of the frame.
    pub fn to_owned(&self) -> Jid {
        Jid {
            user: super::node::text_of(self.user),
            ..self.owned_except_user()
        }
    }

    /// The owned JID with an empty user, for the owned decoder to fill in place.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(super) fn owned_except_user(&self) -> Jid {
        let server = match self.server {
            // A token's text is static already: no need to look it up among the known servers.
            Str::Static(s) => Cow::Borrowed(s),
            Str::Token(t) => Cow::Borrowed(t.text()),
            other => match known_server(&other.as_str()) {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(other.as_str().into_owned()),
            },
        };
        Jid {
            user: Text::EMPTY,
            server,
            agent: self.agent,
            device: self.device,
            integrator: self.integrator,
        }
    }
}

/// Characters allowed in the user part of a JID recognised in a plain string. Real users are
/// digits, hex ids or words like `status`; anything else stays a plain string.
fn is_user_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

/// A decimal number in canonical form (no sign, no leading zero unless it is `0`) that fits
/// `T` (a `u8` or `u16`: five digits at most).
fn canonical_number<T: TryFrom<u32>>(s: &str) -> Option<T> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 5 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    T::try_from(v).ok()
}

fn write_text(
    f: &mut dyn fmt::Write,
    user: &dyn fmt::Display,
    server: &dyn fmt::Display,
    agent: u8,
    device: Option<u16>,
    integrator: u16,
    interop: bool,
) -> fmt::Result {
    if interop && device.is_some() {
        write!(f, "{integrator}-")?;
    }
    write!(f, "{user}")?;
    if agent != 0 {
        write!(f, ".{agent}")?;
    }
    if let Some(d) = device {
        write!(f, ":{d}")?;
    }
    f.write_char('@')?;
    write!(f, "{server}")
}

impl fmt::Display for JidRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let interop = self.server.eq_str(SERVER_INTEROP);
        write_text(
            f,
            &self.user,
            &self.server,
            self.agent,
            self.device,
            self.integrator,
            interop,
        )
    }
}

/// An owned JID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Jid {
    /// The user part; empty for a server-only JID. A [`Text`]: phone numbers and LIDs fit
    /// inline, so a JID decoded into an owned node allocates nothing.
    pub user: Text,
    /// The server part; known servers are static.
    pub server: Cow<'static, str>,
    /// A raw `AD_JID` domain byte that names no known server (0 for none).
    pub agent: u8,
    /// The device, for the device-qualified forms.
    pub device: Option<u16>,
    /// The interop integrator id (0 otherwise).
    pub integrator: u16,
}

impl Jid {
    /// `user@server`.
    pub fn new(user: impl Into<Text>, server: &str) -> Self {
        Jid {
            user: user.into(),
            server: static_server(server),
            agent: 0,
            device: None,
            integrator: 0,
        }
    }

    /// `user:device@server`.
    pub fn with_device(user: impl Into<Text>, server: &str, device: u16) -> Self {
        Jid {
            device: Some(device),
            ..Jid::new(user, server)
        }
    }

    /// The server-only JID `@server` (for example `@g.us`, the addressee of group IQs).
    pub fn server_only(server: &str) -> Self {
        Jid::new(Text::EMPTY, server)
    }

    /// The same user without device or agent: the account rather than one of its devices.
    pub fn to_non_device(&self) -> Jid {
        Jid {
            user: self.user.clone(),
            server: self.server.clone(),
            agent: 0,
            device: None,
            integrator: 0,
        }
    }

    /// Whether this is a group JID.
    pub fn is_group(&self) -> bool {
        self.server == SERVER_GROUP
    }

    /// Borrows this JID in the decoder's form, for the encoder.
    pub fn as_ref(&self) -> JidRef<'_> {
        JidRef {
            user: match self.user.token() {
                Some(t) => Str::Token(t),
                None => Str::Raw(self.user.as_str()),
            },
            server: match &self.server {
                Cow::Borrowed(s) => Str::Static(s),
                Cow::Owned(s) => Str::Raw(s),
            },
            agent: self.agent,
            device: self.device,
            integrator: self.integrator,
        }
    }
}

fn static_server(server: &str) -> Cow<'static, str> {
    match known_server(server) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(server.to_owned()),
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_text(
            f,
            &self.user,
            &self.server,
            self.agent,
            self.device,
            self.integrator,
            self.server == SERVER_INTEROP,
        )
    }
}

/// The text did not parse as a JID.
#[derive(Debug, thiserror::Error)]
#[error("not a JID: {0:?}")]
pub struct ParseJidError(pub String);

impl FromStr for Jid {
    type Err = ParseJidError;

    /// Parses the text form. Any server is accepted (unknown ones are kept as text), but the
    /// device and agent must be canonical numbers so the JID prints back as it was written.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseJidError(s.to_owned());
        if let Some(j) = JidRef::parse_exact(s) {
            return Ok(j.to_owned());
        }
        let (user, server) = s.split_once('@').ok_or_else(err)?;
        if server.is_empty() || server.contains('@') || user.contains(':') {
            return Err(err());
        }
        Ok(Jid::new(user, server))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_tokens_are_the_dictionarys() {
        for server in KNOWN_SERVERS {
            assert_eq!(
                server_token(server),
                crate::binary::encode::token(server),
                "{server}"
            );
        }
    }

    #[test]
    fn parses_and_prints_every_form() {
        for s in [
            "5511999999999@s.whatsapp.net",
            "5511999999999:12@s.whatsapp.net",
            "5511999999999:0@s.whatsapp.net",
            "5511999999999.7:2@s.whatsapp.net",
            "100000000000001:42@lid",
            "120363021033254949@g.us",
            "@g.us",
            "status@broadcast",
            "99:5@hosted",
            "7:3@hosted.lid",
            "12-345:6@interop",
            "100012345678:4@msgr",
        ] {
            let j: Jid = s.parse().expect(s);
            assert_eq!(j.to_string(), s);
            assert!(JidRef::parse_exact(s).is_some(), "{s}");
        }
    }

    #[test]
    fn exact_parse_refuses_what_would_not_print_back() {
        for s in [
            "5511:01@s.whatsapp.net",
            "5511:+1@s.whatsapp.net",
            "5511:70000@s.whatsapp.net",
            "user_name@example.com",
            "a@b.com",
            "2@abcdef,0123",
            "a:b@s.whatsapp.net",
            "hello world@s.whatsapp.net",
            "x@y@s.whatsapp.net",
        ] {
            assert!(JidRef::parse_exact(s).is_none(), "{s}");
        }
    }

    #[test]
    fn agent_is_only_read_where_it_cannot_be_mistaken_for_a_domain() {
        let j = JidRef::parse_exact("123.1:2@s.whatsapp.net").expect("jid");
        assert_eq!(j.agent, 0);
        assert!(j.user.eq_str("123.1"));
        let j = JidRef::parse_exact("123.5:2@s.whatsapp.net").expect("jid");
        assert_eq!((j.agent, j.device), (5, Some(2)));
        assert!(j.user.eq_str("123"));
    }
}
