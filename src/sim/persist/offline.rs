//! The offline queue in the data directory: one record per stanza kept for an absent device,
//! so a sandbox restart hands a device what it missed, as the real server keeps it.
//!
//! Key: the device JID, a zero byte, then the stanza's sequence number (8 bytes, big-endian),
//! so one device's stanzas lie together in the order they were queued. Value: a version byte,
//! then the stanza as the binary codec frames it. A record is written when its stanza is
//! queued and removed when it is handed over or pushed out by a newer one, both under the
//! state lock, so the two reach the store in that order.

use super::Store;
use crate::binary::{self, Node};
use crate::sim::records::{Damage, PersistError};

/// Version byte of an offline record.
const VERSION: u8 = 1;

impl Store {
    /// Keeps `node` for device `jid` under sequence number `seq`.
    pub fn put_offline(&self, jid: &str, seq: u64, node: &Node) -> Result<(), PersistError> {
        let mut value = vec![VERSION];
        let frame = binary::encode_to_vec(node).map_err(|e| PersistError::Io {
            path: self.db_path(),
            source: std::io::Error::other(e),
        })?;
        value.extend_from_slice(&frame);
        self.put(&self.offline, &key(jid, seq), value)
    }

    /// Forgets the stanza `seq` of device `jid` (handed over, or pushed out of a full queue).
    pub fn delete_offline(&self, jid: &str, seq: u64) -> Result<(), PersistError> {
        self.offline
            .remove(key(jid, seq))
            .map(drop)
            .map_err(|e| self.sled_error(e))
    }
}

fn key(jid: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(jid.len() + 9);
    k.extend_from_slice(jid.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// One stored stanza: the device JID, its sequence number and the stanza.
pub(crate) fn entry(key: &[u8], value: &[u8]) -> Result<(String, u64, Node), Damage> {
    let bad_key = Damage::Key("a device JID, a zero byte and 8 bytes");
    let split = key.len().checked_sub(9).ok_or(Damage::Key("too short"))?;
    let (jid, rest) = key.split_at(split);
    let (zero, seq) = rest.split_first().ok_or(Damage::Key("too short"))?;
    if *zero != 0 {
        return Err(bad_key);
    }
    let seq = <[u8; 8]>::try_from(seq).map_err(|_| Damage::Key("8 bytes"))?;
    let jid = String::from_utf8(jid.to_vec()).map_err(|_| Damage::Key("UTF-8 text"))?;
    let (version, frame) = value.split_first().ok_or(Damage::Empty)?;
    if *version != VERSION {
        return Err(Damage::Version(*version));
    }
    let node = binary::decode_owned(frame).map_err(|_| Damage::Field("stanza"))?;
    Ok((jid, u64::from_be_bytes(seq), node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_what_was_keyed_and_refuses_a_bad_one() {
        let node = Node::new("notification").with_attr("type", "w:gp2");
        let mut value = vec![VERSION];
        value.extend(binary::encode_to_vec(&node).unwrap_or_default());
        let k = key("5511:3@s.whatsapp.net", 42);
        let (jid, seq, back) = entry(&k, &value).expect("reads back");
        assert_eq!(
            (jid.as_str(), seq, back),
            ("5511:3@s.whatsapp.net", 42, node)
        );
        assert!(matches!(entry(&k[..5], &value), Err(Damage::Key(_))));
        assert!(matches!(entry(&k, &[9, 0]), Err(Damage::Version(9))));
        assert!(matches!(entry(&k, &[VERSION, 0, 1]), Err(Damage::Field(_))));
    }
}
