//! Reading the `ClientPayload` a client sends in its Noise finish (facts sheet 4): a
//! registration (new device, pairing data) or a login (username and device).
//!
//! Strict like the real server: a payload that is neither, or whose registration keys are
//! malformed or badly signed, is refused with a `<failure reason>` before anything else.

use prost::Message;

use crate::noise::{PublicKey, xeddsa};
use crate::proto::wa6::ClientPayload;
use crate::proto::wa6::client_payload::DevicePairingRegistrationData;
use crate::proto::wacompanionreg::DeviceProps;

/// `<failure reason>` for a malformed payload (generic).
pub const REASON_BAD_PAYLOAD: u16 = 400;
/// `<failure reason>` for a missing or unusable user agent ("bad user agent").
pub const REASON_BAD_USER_AGENT: u16 = 409;

/// What the client asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hello {
    /// A new device wants to pair.
    Register(Registration),
    /// A paired device logs in.
    Login {
        /// The account's phone number (the user part of the device JID).
        user: String,
        /// The device number.
        device: u16,
        /// Whether it connects passive (then it sends `<active/>` after `<success>`).
        passive: bool,
        /// The login counter (`lc`), when sent: logins since pairing.
        login_count: Option<i32>,
    },
}

/// The keys of a registering device (facts sheet 4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Signal registration id.
    pub registration_id: u32,
    /// Identity public key: the phone signs it in `pair-success`.
    pub identity: PublicKey,
    /// Signed pre-key id.
    pub signed_prekey_id: u32,
    /// Signed pre-key public key.
    pub signed_prekey: PublicKey,
    /// `os` from `DeviceProps` (what the phone lists under "Linked devices").
    pub os: Option<String>,
}

/// Classifies and checks a decrypted `ClientPayload`. `Err` is the `<failure reason>` to send.
pub fn read(payload: &[u8]) -> Result<Hello, u16> {
    let p = ClientPayload::decode(payload).map_err(|_| REASON_BAD_PAYLOAD)?;
    let agent = p.user_agent.as_ref().ok_or(REASON_BAD_USER_AGENT)?;
    let version = agent.app_version.as_ref().ok_or(REASON_BAD_USER_AGENT)?;
    if version.primary.is_none() || agent.platform.is_none() {
        return Err(REASON_BAD_USER_AGENT);
    }
    match (p.username, p.device_pairing_data) {
        (Some(_), Some(_)) | (None, None) => Err(REASON_BAD_PAYLOAD),
        (None, Some(data)) => registration(&data).map(Hello::Register),
        (Some(user), None) => {
            // A companion is device 1 or above; device 0 is the phone itself and never logs in
            // here, so it falls through to "unknown device" at lookup.
            let device = u16::try_from(p.device.unwrap_or(0)).map_err(|_| REASON_BAD_PAYLOAD)?;
            Ok(Hello::Login {
                user: user.to_string(),
                device,
                passive: p.passive.unwrap_or(false),
                login_count: p.lc,
            })
        }
    }
}

fn registration(d: &DevicePairingRegistrationData) -> Result<Registration, u16> {
    let bad = REASON_BAD_PAYLOAD;
    let exact = |v: &Option<Vec<u8>>, len: usize| -> Result<Vec<u8>, u16> {
        v.clone().filter(|b| b.len() == len).ok_or(bad)
    };
    let reg_id = exact(&d.e_regid, 4)?;
    if exact(&d.e_keytype, 1)? != [0x05] {
        return Err(bad);
    }
    let identity = PublicKey::from_slice(&exact(&d.e_ident, 32)?).ok_or(bad)?;
    let skey_id = exact(&d.e_skey_id, 3)?;
    let skey_val = exact(&d.e_skey_val, 32)?;
    let skey_sig = exact(&d.e_skey_sig, 64)?;
    exact(&d.build_hash, 16)?;
    let props = d
        .device_props
        .as_deref()
        .map(DeviceProps::decode)
        .transpose()
        .map_err(|_| bad)?;
    // The signed pre-key is signed over its Signal serialisation: 0x05 then the key (8.2).
    let mut signed = Vec::with_capacity(33);
    signed.push(0x05);
    signed.extend_from_slice(&skey_val);
    if !xeddsa::verify(&identity, &signed, &skey_sig) {
        return Err(bad);
    }
    Ok(Registration {
        registration_id: be(&reg_id),
        identity,
        signed_prekey_id: be(&skey_id),
        signed_prekey: PublicKey::from_slice(&skey_val).ok_or(bad)?,
        os: props.and_then(|p| p.os),
    })
}

/// A big-endian unsigned integer of up to 4 bytes.
pub fn be(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |n, &b| n << 8 | u32::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::SecretKey;
    use crate::proto::wa6::client_payload::UserAgent;
    use crate::proto::wa6::client_payload::user_agent::AppVersion;

    fn agent() -> Option<UserAgent> {
        Some(UserAgent {
            platform: Some(14),
            app_version: Some(AppVersion {
                primary: Some(2),
                secondary: Some(3000),
                tertiary: Some(1),
                ..AppVersion::default()
            }),
            ..UserAgent::default()
        })
    }

    fn pairing_data(sig_ok: bool) -> DevicePairingRegistrationData {
        let identity = SecretKey::from_bytes([9; 32]);
        let skey = SecretKey::from_bytes([8; 32]).public_key();
        let mut msg = vec![5];
        msg.extend_from_slice(skey.as_bytes());
        let mut sig = xeddsa::sign(&identity, &msg, &[1; 64]);
        if !sig_ok {
            sig[0] ^= 1;
        }
        DevicePairingRegistrationData {
            e_regid: Some(vec![0, 0, 0x30, 0x39]),
            e_keytype: Some(vec![5]),
            e_ident: Some(identity.public_key().as_bytes().to_vec()),
            e_skey_id: Some(vec![0, 0, 1]),
            e_skey_val: Some(skey.as_bytes().to_vec()),
            e_skey_sig: Some(sig.to_vec()),
            build_hash: Some(vec![0; 16]),
            device_props: Some(
                DeviceProps {
                    os: Some("wuts".into()),
                    ..DeviceProps::default()
                }
                .encode_to_vec(),
            ),
        }
    }

    #[test]
    fn reads_a_registration_and_checks_its_signature() {
        let p = ClientPayload {
            user_agent: agent(),
            device_pairing_data: Some(pairing_data(true)),
            ..ClientPayload::default()
        };
        match read(&p.encode_to_vec()) {
            Ok(Hello::Register(r)) => {
                assert_eq!(r.registration_id, 12345);
                assert_eq!(r.signed_prekey_id, 1);
                assert_eq!(r.os.as_deref(), Some("wuts"));
            }
            other => panic!("{other:?}"),
        }
        let p = ClientPayload {
            device_pairing_data: Some(pairing_data(false)),
            ..p
        };
        assert_eq!(read(&p.encode_to_vec()), Err(REASON_BAD_PAYLOAD));
    }

    #[test]
    fn reads_a_login_and_refuses_ambiguous_or_agentless_payloads() {
        let login = ClientPayload {
            user_agent: agent(),
            username: Some(5511999999999),
            device: Some(3),
            passive: Some(true),
            ..ClientPayload::default()
        };
        assert_eq!(
            read(&login.encode_to_vec()),
            Ok(Hello::Login {
                user: "5511999999999".into(),
                device: 3,
                passive: true,
                login_count: None,
            })
        );
        let both = ClientPayload {
            device_pairing_data: Some(pairing_data(true)),
            ..login.clone()
        };
        assert_eq!(read(&both.encode_to_vec()), Err(REASON_BAD_PAYLOAD));
        let no_agent = ClientPayload {
            user_agent: None,
            ..login
        };
        assert_eq!(read(&no_agent.encode_to_vec()), Err(REASON_BAD_USER_AGENT));
        assert_eq!(read(b"\xff\xff"), Err(REASON_BAD_PAYLOAD));
    }
}
