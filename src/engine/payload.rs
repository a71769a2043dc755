//! The ClientPayload sent inside the Noise client finish (facts §4): registration for a new
//! device, login for a paired one.

use md5::{Digest, Md5};
use prost::Message;
use wuts_store as store;

use crate::proto::wa6::ClientPayload;
use crate::proto::wa6::client_payload::{
    self as cp, DevicePairingRegistrationData, UserAgent, WebInfo, user_agent, web_info,
};
use crate::proto::wacompanionreg::{DeviceProps, device_props};

/// The WhatsApp Web build we present. Configuration, so operators can follow a version bump
/// without a new build; the default is the newest seen (whatsmeow, 2026-08-20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientVersion {
    /// Always 2.
    pub primary: u32,
    /// Always 3000.
    pub secondary: u32,
    /// The build ("client_revision").
    pub tertiary: u32,
}

impl Default for ClientVersion {
    fn default() -> Self {
        ClientVersion {
            primary: 2,
            secondary: 3000,
            tertiary: 1_045_649_367,
        }
    }
}

impl std::str::FromStr for ClientVersion {
    type Err = String;

    /// `2.3000.1045649367`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<u32> = s
            .split('.')
            .map(|p| p.parse::<u32>().map_err(|_| format!("bad version {s:?}")))
            .collect::<Result<_, _>>()?;
        match parts[..] {
            [primary, secondary, tertiary] => Ok(ClientVersion {
                primary,
                secondary,
                tertiary,
            }),
            _ => Err(format!("version {s:?} needs three numbers")),
        }
    }
}

impl std::fmt::Display for ClientVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.primary, self.secondary, self.tertiary)
    }
}

fn user_agent(v: ClientVersion) -> UserAgent {
    UserAgent {
        platform: Some(user_agent::Platform::Web as i32),
        app_version: Some(user_agent::AppVersion {
            primary: Some(v.primary),
            secondary: Some(v.secondary),
            tertiary: Some(v.tertiary),
            ..Default::default()
        }),
        mcc: Some("000".into()),
        mnc: Some("000".into()),
        os_version: Some("0.1".into()),
        manufacturer: Some(String::new()),
        device: Some("Desktop".into()),
        os_build_number: Some("0.1".into()),
        release_channel: Some(user_agent::ReleaseChannel::Release as i32),
        locale_language_iso6391: Some("en".into()),
        locale_country_iso31661_alpha2: Some("US".into()),
        ..Default::default()
    }
}

fn common(v: ClientVersion) -> ClientPayload {
    ClientPayload {
        user_agent: Some(user_agent(v)),
        web_info: Some(WebInfo {
            web_sub_platform: Some(web_info::WebSubPlatform::WebBrowser as i32),
            ..Default::default()
        }),
        connect_type: Some(cp::ConnectType::WifiUnknown as i32),
        connect_reason: Some(cp::ConnectReason::UserActivated as i32),
        ..Default::default()
    }
}

/// The registration payload of a device without a JID (facts §4.2).
pub fn registration(keys: &store::DeviceKeys, v: ClientVersion, os: &str) -> Vec<u8> {
    let props = DeviceProps {
        os: Some(os.to_owned()),
        version: Some(device_props::AppVersion {
            primary: Some(0),
            secondary: Some(1),
            tertiary: Some(0),
            ..Default::default()
        }),
        platform_type: Some(device_props::PlatformType::Chrome as i32),
        require_full_sync: Some(false),
        ..Default::default()
    };
    let spk_id = keys.signed_pre_key.id.get().to_be_bytes();
    let mut p = common(v);
    p.passive = Some(false);
    p.pull = Some(false);
    p.device_pairing_data = Some(DevicePairingRegistrationData {
        e_regid: Some(keys.registration_id.get().to_be_bytes().to_vec()),
        e_keytype: Some(vec![0x05]),
        e_ident: Some(keys.identity.public.as_bytes().to_vec()),
        e_skey_id: Some(spk_id[1..].to_vec()),
        e_skey_val: Some(keys.signed_pre_key.key_pair.public.as_bytes().to_vec()),
        e_skey_sig: Some(keys.signed_pre_key.signature.as_bytes().to_vec()),
        build_hash: Some(Md5::digest(v.to_string().as_bytes()).to_vec()),
        device_props: Some(props.encode_to_vec()),
    });
    p.encode_to_vec()
}

/// The login payload of a paired device (facts §4.3): username and device from its JID.
pub fn login(user: u64, device: u32, v: ClientVersion, login_count: u32) -> Vec<u8> {
    let mut p = common(v);
    p.username = Some(user);
    p.device = Some(device);
    // The login counter, as WhatsApp Web sends it: 0 on the first login after pairing, one more
    // after each successful login since (facts §4.3).
    p.lc = Some(i32::try_from(login_count).unwrap_or(i32::MAX));
    p.passive = Some(true);
    p.pull = Some(true);
    p.encode_to_vec()
}
