//! The companion's two requests of pairing by phone-number code (facts §7.2, §7.5): the hello
//! with its wrapped ephemeral key (answered with a pairing ref), and the finish with the key
//! bundle. The cryptography is the engine's (`engine::paircode`).

use super::{FieldError, Iq, IqKind, IqSpec, ParseError, Problem};
use crate::binary::Node;
use crate::types::{JidProblem, SERVER_PN, UserJid};

/// Digits a phone number may have for pairing by code, after normalisation.
pub const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 10..=15;

/// Reads the phone number a code is requested for (`+55 11 99999-0001`, digits, or a user JID);
/// 10 to 15 digits.
pub fn phone(text: &str) -> Result<UserJid, FieldError> {
    let jid = UserJid::parse(text).map_err(|p| FieldError::new("phone", p.into()))?;
    let digits = jid.as_jid().user.len();
    if jid.as_jid().server != SERVER_PN {
        return Err(FieldError::new(
            "phone",
            Problem::Jid(JidProblem::NotAPhoneNumber),
        ));
    }
    if !PHONE_DIGITS.contains(&digits) {
        return Err(FieldError::new(
            "phone",
            Problem::Jid(JidProblem::PhoneLength(digits)),
        ));
    }
    Ok(jid)
}

/// `<link_code_companion_reg stage="companion_hello">`.
#[derive(Clone, Debug)]
pub struct CompanionHello {
    /// The phone number the code is for.
    pub phone: UserJid,
    /// The companion's ephemeral key, wrapped with the code (80 bytes).
    pub wrapped_ephemeral: Vec<u8>,
    /// Our Noise static public key.
    pub noise_public: [u8; 32],
    /// `companion_platform_id` (the QR's client type, `1` for Chrome).
    pub platform_id: &'static str,
    /// `companion_platform_display`: `Browser (OS)`, one the server knows.
    pub platform_display: String,
}

impl IqSpec for CompanionHello {
    /// The pairing ref, which the phone's hello and our finish name.
    type Output = String;

    fn iq(&self) -> Iq {
        let reg = Node::new("link_code_companion_reg")
            .with_attr("jid", self.phone.as_jid().clone())
            .with_attr("stage", "companion_hello")
            .with_attr("should_show_push_notification", "true")
            .with_children(vec![
                Node::new("link_code_pairing_wrapped_companion_ephemeral_pub")
                    .with_bytes(self.wrapped_ephemeral.clone()),
                Node::new("companion_server_auth_key_pub").with_bytes(self.noise_public.to_vec()),
                Node::new("companion_platform_id").with_text(self.platform_id),
                Node::new("companion_platform_display").with_text(self.platform_display.clone()),
                Node::new("link_code_pairing_nonce").with_bytes(vec![0]),
            ]);
        Iq::to_server("md", IqKind::Set, vec![reg])
    }

    fn parse(&self, reply: &Node) -> Result<String, ParseError> {
        let reference = reply
            .child("link_code_companion_reg")
            .and_then(|r| r.child("link_code_pairing_ref"))
            .and_then(Node::content_bytes)
            .ok_or(ParseError::Missing("link_code_pairing_ref"))?;
        String::from_utf8(reference.into_owned()).map_err(|_| ParseError::BadAttr {
            element: "link_code_pairing_ref",
            attr: "content",
        })
    }
}

/// `<link_code_companion_reg stage="companion_finish">`.
#[derive(Clone, Debug)]
pub struct CompanionFinish {
    /// The phone number the code is for.
    pub phone: UserJid,
    /// The key bundle (156 bytes).
    pub wrapped_bundle: Vec<u8>,
    /// Our identity public key.
    pub identity_public: [u8; 32],
    /// The ref from the hello.
    pub reference: String,
}

impl IqSpec for CompanionFinish {
    type Output = ();

    fn iq(&self) -> Iq {
        let reg = Node::new("link_code_companion_reg")
            .with_attr("jid", self.phone.as_jid().clone())
            .with_attr("stage", "companion_finish")
            .with_children(vec![
                Node::new("link_code_pairing_wrapped_key_bundle")
                    .with_bytes(self.wrapped_bundle.clone()),
                Node::new("companion_identity_public").with_bytes(self.identity_public.to_vec()),
                Node::new("link_code_pairing_ref").with_bytes(self.reference.as_bytes().to_vec()),
            ]);
        Iq::to_server("md", IqKind::Set, vec![reg])
    }

    fn parse(&self, _reply: &Node) -> Result<(), ParseError> {
        Ok(())
    }
}

/// The phone's `primary_hello` notification, as the companion reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrimaryHello {
    /// The ref our hello got.
    pub reference: String,
    /// The phone's ephemeral key, wrapped with the code.
    pub wrapped_ephemeral: Vec<u8>,
    /// The account's identity key.
    pub primary_identity: [u8; 32],
}

/// Reads a `link_code_companion_reg` notification's `primary_hello`; `None` for other stages.
pub fn primary_hello(notification: &Node) -> Option<Result<PrimaryHello, ParseError>> {
    let reg = notification.child("link_code_companion_reg")?;
    let bytes = |tag: &'static str| {
        reg.child(tag)
            .and_then(Node::content_bytes)
            .map(|b| b.into_owned())
            .ok_or(ParseError::Missing(tag))
    };
    // Other stages carry no wrapped primary key.
    reg.child("link_code_pairing_wrapped_primary_ephemeral_pub")?;
    Some((|| {
        let reference = String::from_utf8(bytes("link_code_pairing_ref")?).map_err(|_| {
            ParseError::BadAttr {
                element: "link_code_pairing_ref",
                attr: "content",
            }
        })?;
        let identity = bytes("primary_identity_pub")?;
        let primary_identity: [u8; 32] = identity.try_into().map_err(|_| ParseError::BadAttr {
            element: "primary_identity_pub",
            attr: "content",
        })?;
        Ok(PrimaryHello {
            reference,
            wrapped_ephemeral: bytes("link_code_pairing_wrapped_primary_ephemeral_pub")?,
            primary_identity,
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_for_codes_are_10_to_15_digits() {
        assert_eq!(
            phone("+55 11 99999-0001").map(|j| j.to_string()),
            Ok("5511999990001@s.whatsapp.net".to_owned())
        );
        for bad in [
            "123456789",
            "1234567890123456",
            "abc",
            "100000000000001@lid",
        ] {
            assert_eq!(
                phone(bad).map_err(|e| e.field),
                Err("phone".to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn hello_carries_the_wrapped_key_and_reads_the_ref() {
        let hello = CompanionHello {
            phone: phone("5511999990001").unwrap(),
            wrapped_ephemeral: vec![7; 80],
            noise_public: [1; 32],
            platform_id: "1",
            platform_display: "Chrome (Linux)".into(),
        };
        let iq = hello.iq();
        assert_eq!((iq.xmlns, iq.kind), ("md", IqKind::Set));
        let reg = &iq.children[0];
        assert_eq!(
            reg.attr("stage").map(|s| s.as_str().into_owned()),
            Some("companion_hello".to_owned())
        );
        assert_eq!(
            reg.child("link_code_pairing_nonce")
                .and_then(Node::content_bytes)
                .as_deref(),
            Some(&[0u8][..])
        );
        let reply = Node::new("iq").with_children(vec![
            Node::new("link_code_companion_reg").with_children(vec![
                Node::new("link_code_pairing_ref").with_bytes(b"REF1".to_vec()),
            ]),
        ]);
        assert_eq!(hello.parse(&reply), Ok("REF1".to_owned()));
        assert_eq!(
            hello.parse(&Node::new("iq")),
            Err(ParseError::Missing("link_code_pairing_ref"))
        );
    }

    #[test]
    fn primary_hello_is_read_from_its_notification() {
        let notification = Node::new("notification").with_children(vec![
            Node::new("link_code_companion_reg")
                .with_attr("stage", "primary_hello")
                .with_children(vec![
                    Node::new("link_code_pairing_ref").with_bytes(b"REF1".to_vec()),
                    Node::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                        .with_bytes(vec![2; 80]),
                    Node::new("primary_identity_pub").with_bytes(vec![3; 32]),
                ]),
        ]);
        let hello = primary_hello(&notification).unwrap().unwrap();
        assert_eq!(hello.reference, "REF1");
        assert_eq!(hello.primary_identity, [3; 32]);
        assert!(primary_hello(&Node::new("notification")).is_none());
    }
}
