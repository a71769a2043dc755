//! [`DeviceJid`]: a paired companion's own address as the store keeps it, typed. A stored value
//! that does not read back as one is a damaged record naming its device, never a guess.
//!
//! The crate's other layers take their `Jid` from the codec; this type converts to and from it
//! losslessly (`wuts::types`). It lives here because the store sits below everything else.

use std::fmt;
use std::str::FromStr;

/// Which address space a device JID is in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AddressSpace {
    /// `s.whatsapp.net`: phone-number users.
    PhoneNumber,
    /// `lid`: hidden-id users.
    Lid,
    /// `hosted`: Cloud API phone-number users.
    Hosted,
    /// `hosted.lid`: Cloud API LID users.
    HostedLid,
}

impl AddressSpace {
    /// The JID server part.
    pub fn server(self) -> &'static str {
        match self {
            AddressSpace::PhoneNumber => "s.whatsapp.net",
            AddressSpace::Lid => "lid",
            AddressSpace::Hosted => "hosted",
            AddressSpace::HostedLid => "hosted.lid",
        }
    }

    /// The space a server part names.
    pub fn of_server(server: &str) -> Option<Self> {
        [
            AddressSpace::PhoneNumber,
            AddressSpace::Lid,
            AddressSpace::Hosted,
            AddressSpace::HostedLid,
        ]
        .into_iter()
        .find(|s| s.server() == server)
    }
}

/// `user:device@server`: the user a number of 1 to 20 digits, the device a number.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct DeviceJid {
    user: String,
    device: u16,
    space: AddressSpace,
}

/// Why a text is not a device JID.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("not a device JID (user:device@server, digits, a known user server)")]
pub struct InvalidDeviceJid;

impl DeviceJid {
    /// Checks the parts.
    pub fn new(
        user: impl Into<String>,
        device: u16,
        space: AddressSpace,
    ) -> Result<Self, InvalidDeviceJid> {
        let user = user.into();
        let digits =
            !user.is_empty() && user.len() <= 20 && user.bytes().all(|b| b.is_ascii_digit());
        if !digits {
            return Err(InvalidDeviceJid);
        }
        Ok(DeviceJid {
            user,
            device,
            space,
        })
    }

    /// The user part (digits).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The device number.
    pub fn device(&self) -> u16 {
        self.device
    }

    /// The address space.
    pub fn space(&self) -> AddressSpace {
        self.space
    }
}

impl FromStr for DeviceJid {
    type Err = InvalidDeviceJid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (user_device, server) = s.split_once('@').ok_or(InvalidDeviceJid)?;
        let space = AddressSpace::of_server(server).ok_or(InvalidDeviceJid)?;
        let (user, device) = user_device.split_once(':').ok_or(InvalidDeviceJid)?;
        let canonical = !device.is_empty()
            && device.bytes().all(|b| b.is_ascii_digit())
            && (device == "0" || !device.starts_with('0'));
        if !canonical {
            return Err(InvalidDeviceJid);
        }
        let device = device.parse().map_err(|_| InvalidDeviceJid)?;
        DeviceJid::new(user, device, space)
    }
}

impl fmt::Display for DeviceJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}@{}", self.user, self.device, self.space.server())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes() {
        for text in [
            "559984726662:77@s.whatsapp.net",
            "236395184570386:77@lid",
            "15550001111:1@hosted",
            "1:0@hosted.lid",
        ] {
            let jid: DeviceJid = text.parse().unwrap();
            assert_eq!(jid.to_string(), text);
        }
        let jid: DeviceJid = "559984726662:77@s.whatsapp.net".parse().unwrap();
        assert_eq!((jid.user(), jid.device()), ("559984726662", 77));
        assert_eq!(jid.space(), AddressSpace::PhoneNumber);
    }

    #[test]
    fn refuses_what_is_not_a_device_jid() {
        for text in [
            "",
            "5511@s.whatsapp.net",
            "5511:1@g.us",
            "55a1:1@s.whatsapp.net",
            ":1@s.whatsapp.net",
            "5511:01@s.whatsapp.net",
            "5511:70000@s.whatsapp.net",
            "123456789012345678901:1@lid",
        ] {
            assert_eq!(text.parse::<DeviceJid>(), Err(InvalidDeviceJid), "{text}");
        }
    }
}
