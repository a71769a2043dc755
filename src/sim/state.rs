//! The sandbox's world: accounts (one per phone number), linked devices, phone behaviours,
//! groups, and the live side: connections, pending refs, who is online, injected faults.
//!
//! Plain data behind one `std::sync::Mutex` (held for map updates only, never across an
//! `.await`). The directory half survives restarts through `persist`; the live half does not.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::groups::{Fate, INVITE_TTL_SECS, Requested};
use super::keys::{self, hex};
use super::model::{
    AddRequest, AddRule, DeviceInfo, EdgeRouting, GroupRecord, PairedDevice, PhoneBehaviour,
    SentStanza,
};
use super::paircode::PhoneHello;
use super::pairing::{PairingError, PendingSign};
use super::payload::Registration;
use crate::binary::jid::{SERVER_LID, SERVER_PN};
use crate::binary::{Jid, Node};
use crate::noise::{KeyPair, PublicKey};

/// Identifies one websocket connection for its whole life.
pub(crate) type ConnId = u64;

/// How many sent notifications are kept per device for `GET /control/notifications`.
pub const NOTIFICATION_LOG: usize = 256;

/// A simulated WhatsApp account: the phone (device 0) and its numbering of linked devices.
#[derive(Clone, Debug)]
pub(crate) struct Account {
    /// The primary device's identity key: it signs every companion's identity.
    pub identity: KeyPair,
    /// The account's LID user part (15 digits).
    pub lid: String,
    /// ADV raw id, one per account.
    pub raw_id: u32,
    /// Next companion device number.
    pub next_device: u16,
    /// Next ADV key index.
    pub next_key_index: u32,
}

/// A linked companion device.
#[derive(Clone, Debug)]
pub(crate) struct Device {
    pub phone: String,
    pub device: u16,
    pub lid: String,
    pub noise_key: PublicKey,
    pub identity_key: PublicKey,
    pub registration_id: u32,
    pub key_index: u32,
    pub os: Option<String>,
    pub paired_at: u64,
    pub removed: bool,
    /// The key bundle the server holds for this device.
    pub keys: super::bundle::KeyBundle,
    /// The `ADVSignedDeviceIdentity` the device returned in `pair-device-sign`.
    pub signed_identity: Vec<u8>,
}

impl Device {
    /// `phone:device@s.whatsapp.net`, the key of the device map.
    pub fn jid(&self) -> String {
        Jid::with_device(self.phone.as_str(), SERVER_PN, self.device).to_string()
    }

    /// `lid:device@lid`.
    pub fn lid_jid(&self) -> Jid {
        Jid::with_device(self.lid.as_str(), SERVER_LID, self.device)
    }
}

/// What others ask a connection task to do, through [`Conn::tx`]. Defined here, beside the
/// connection table, so the operations in `shared` can send it without importing the task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send a stanza.
    Send(Node),
    /// Send this stanza (a `stream:error`), if any, then close cleanly.
    Close(Option<Node>),
    /// Close abruptly: no stanza, no close frame.
    Drop,
    /// Send the phone's `primary_hello` for a typed code; the companion's finish is checked
    /// against `wait`.
    CodeHello { node: Node, wait: Box<CodeWait> },
    /// Send `pair-success` and check the companion's answer against `pending`.
    Pair {
        node: Node,
        pending: PendingSign,
        draft: Box<Device>,
        reply: oneshot::Sender<Result<PairedDevice, PairingError>>,
    },
}

/// A pairing code a companion asked for (its `companion_hello`), by phone number.
#[derive(Debug)]
pub(crate) struct LinkCode {
    pub conn: ConnId,
    pub reference: String,
    /// The companion's ephemeral key, wrapped with the code.
    pub wrapped: Vec<u8>,
    pub expires: Instant,
}

/// What the phone keeps between its `primary_hello` and the companion's finish.
pub(crate) struct CodeWait {
    pub phone: String,
    pub reference: String,
    pub hello: PhoneHello,
    pub account: KeyPair,
    pub reply: oneshot::Sender<Result<PairedDevice, PairingError>>,
}

impl std::fmt::Debug for CodeWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeWait")
            .field("phone", &self.phone)
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

/// A connection the sandbox is serving.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Commands to the connection's task.
    pub tx: mpsc::Sender<Command>,
    /// The Noise static key it proved in the handshake.
    pub noise_key: PublicKey,
    pub phase: Phase,
}

/// Where a connection is.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Sent `pair-device`; waiting for a phone to scan one of these refs (with expiry).
    Registering {
        registration: Registration,
        refs: Vec<(String, Instant)>,
    },
    /// Logged in as this device JID.
    LoggedIn { jid: String },
}

/// What to do with one IQ reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IqAction {
    Delay(Duration),
    Withhold,
}

/// One IQ fault rule of a device.
#[derive(Clone, Debug)]
pub(crate) struct IqRule {
    pub action: IqAction,
    pub xmlns: Option<String>,
    pub remaining: Option<u32>,
}

/// Injected faults that wait for their moment.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Reject the next login of any device with this reason.
    pub reject_any: Option<u16>,
    /// Reject the next login of this device with this reason.
    pub reject: HashMap<String, u16>,
    /// IQ delay/withhold rules per device JID, first match wins.
    pub iq: HashMap<String, Vec<IqRule>>,
}

impl Faults {
    /// The reason to refuse this login with, consuming the rule.
    pub fn take_reject(&mut self, jid: &str) -> Option<u16> {
        self.reject.remove(jid).or_else(|| self.reject_any.take())
    }

    /// What to do with the reply to an IQ of namespace `xmlns` from `jid`, consuming one use
    /// of the matching rule.
    pub fn iq_action(&mut self, jid: &str, xmlns: Option<&str>) -> Option<IqAction> {
        let rules = self.iq.get_mut(jid)?;
        let i = rules
            .iter()
            .position(|r| r.xmlns.is_none() || r.xmlns.as_deref() == xmlns)?;
        let action = rules[i].action;
        if let Some(n) = &mut rules[i].remaining {
            *n = n.saturating_sub(1);
            if *n == 0 {
                rules.remove(i);
            }
        }
        Some(action)
    }
}

/// Everything, behind the one lock.
pub(crate) struct State {
    pub rng: StdRng,
    pub seed: Option<u64>,
    pub root: KeyPair,
    pub accounts: HashMap<String, Account>,
    pub devices: BTreeMap<String, Device>,
    pub phones: HashMap<String, PhoneBehaviour>,
    pub groups: Vec<GroupRecord>,
    /// Every group JID handed out (created or restored), so a new id is checked in O(1).
    pub group_jids: HashSet<String>,
    /// The sequence number the next group is stored under (`persist`): one more than the last
    /// one stored, which is not always `groups.len()` (a crash may lose a group before it).
    pub next_group: u64,
    /// The sequence number each group is stored under, so a change rewrites its record.
    pub group_seqs: HashMap<String, u64>,
    /// The last stanzas sent to each device outside IQ replies (notifications), newest last,
    /// at most [`NOTIFICATION_LOG`] each: what `GET /control/notifications` shows.
    pub sent: HashMap<String, std::collections::VecDeque<SentStanza>>,
    pub conns: HashMap<ConnId, Conn>,
    pub refs: HashMap<String, ConnId>,
    /// The login counter each login of a device sent, in order (live only).
    pub login_counts: HashMap<String, Vec<Option<i32>>>,
    /// Server pings each device answered (live only).
    pub pongs: HashMap<String, u32>,
    /// Dirty bits a device has not cleaned yet, by device JID: `(type, timestamp)` (live only).
    pub dirty: HashMap<String, (String, u64)>,
    /// Edge routing info per device JID (live only: a restart issues new ones).
    pub edge: HashMap<String, EdgeRouting>,
    /// Pairing codes companions asked for, by phone number (the latest hello wins).
    pub codes: HashMap<String, LinkCode>,
    pub online: HashMap<String, ConnId>,
    /// Stanzas kept for devices that were away, by device JID, each with the sequence number
    /// it is stored under (`offline`, `persist/offline`).
    pub offline: HashMap<String, std::collections::VecDeque<(u64, Node)>>,
    /// The sequence number of the next stanza queued for an absent device.
    pub next_offline: u64,
    /// Offline stanzas delivered so far in each device's current hand-over (live only).
    pub offline_sent: HashMap<String, u32>,
    pub faults: Faults,
    next_iq: u64,
}

impl State {
    pub fn new(rng: StdRng, seed: Option<u64>, root: KeyPair) -> Self {
        Self {
            rng,
            seed,
            root,
            accounts: HashMap::new(),
            devices: BTreeMap::new(),
            phones: HashMap::new(),
            groups: Vec::new(),
            group_jids: HashSet::new(),
            next_group: 0,
            group_seqs: HashMap::new(),
            sent: HashMap::new(),
            conns: HashMap::new(),
            refs: HashMap::new(),
            codes: HashMap::new(),
            edge: HashMap::new(),
            dirty: HashMap::new(),
            pongs: HashMap::new(),
            login_counts: HashMap::new(),
            online: HashMap::new(),
            offline: HashMap::new(),
            next_offline: 0,
            offline_sent: HashMap::new(),
            faults: Faults::default(),
            next_iq: 1,
        }
    }

    /// A fresh id for a server-initiated IQ.
    pub fn next_iq_id(&mut self) -> String {
        self.next_iq += 1;
        format!("{}", 1_000_000 + self.next_iq)
    }

    /// The account of `phone`, created on first use (with seeded keys if there is a seed).
    pub fn account(&mut self, phone: &str) -> &mut Account {
        if !self.accounts.contains_key(phone) {
            let identity = keys::key_pair(self.seed, &format!("account/{phone}"), &mut self.rng);
            let mut lid = self.lid_candidate(phone, 0);
            let mut attempt = 1;
            while self.accounts.values().any(|a| a.lid == lid) {
                lid = self.lid_candidate(phone, attempt);
                attempt += 1;
            }
            let raw_id = self.rng.next_u32();
            self.accounts.insert(
                phone.to_owned(),
                Account {
                    identity,
                    lid,
                    raw_id,
                    next_device: 1,
                    next_key_index: 1,
                },
            );
        }
        // Just inserted if it was missing.
        #[allow(clippy::expect_used)]
        self.accounts
            .get_mut(phone)
            .expect("invariant: the account was inserted above")
    }

    /// A 15-digit LID starting with 1: derived from the seed and phone, or random.
    fn lid_candidate(&mut self, phone: &str, attempt: u32) -> String {
        let n = match self.seed {
            Some(seed) => {
                let d = Sha256::new()
                    .chain_update(seed.to_be_bytes())
                    .chain_update(b"lid/")
                    .chain_update(phone.as_bytes())
                    .chain_update(attempt.to_be_bytes())
                    .finalize();
                let mut b = [0u8; 8];
                b.copy_from_slice(&d[..8]);
                u64::from_be_bytes(b)
            }
            None => self.rng.next_u64(),
        };
        format!("1{:014}", n % 100_000_000_000_000)
    }

    /// How `phone` behaves (the default if unconfigured).
    pub fn behaviour(&self, phone: &str) -> PhoneBehaviour {
        self.phones.get(phone).cloned().unwrap_or_default()
    }

    /// The phone number behind a LID user, if that account exists.
    pub fn phone_of_lid(&self, lid: &str) -> Option<String> {
        self.accounts
            .iter()
            .find(|(_, a)| a.lid == lid)
            .map(|(p, _)| p.clone())
    }

    /// A new group id, `120363` and 12 digits, unused.
    pub fn new_group_id(&mut self) -> String {
        loop {
            let id = format!("120363{:012}", self.rng.gen_range(0..1_000_000_000_000_u64));
            // Reserved at once: an id is never handed out twice, even if its create fails.
            if self.group_jids.insert(format!("{id}@g.us")) {
                return id;
            }
        }
    }

    /// What happens to a requested participant, from the behaviour of its phone number.
    /// A LID resolves through the account it belongs to, else through its `phone_number`; a LID
    /// nobody owns is a user that does not exist (404).
    pub fn fate(&mut self, p: &Requested, now: u64) -> Fate {
        let phone = if p.jid.server == SERVER_PN {
            Some(p.jid.user.to_string())
        } else {
            self.phone_of_lid(&p.jid.user)
                .or_else(|| p.phone_number.as_ref().map(|j| j.user.to_string()))
        };
        let rule = match &phone {
            Some(phone) => self.behaviour(phone).on_add,
            None => AddRule::NotOnWhatsApp,
        };
        match rule {
            AddRule::Allow => Fate::Added,
            AddRule::InviteOnly => {
                let mut code = [0u8; 16];
                self.rng.fill_bytes(&mut code);
                Fate::Failed {
                    code: 403,
                    add_request: Some(AddRequest {
                        code: invite_code(&code),
                        expiration: now + INVITE_TTL_SECS,
                    }),
                }
            }
            AddRule::NotOnWhatsApp => Fate::Failed {
                code: 404,
                add_request: None,
            },
            AddRule::Error(code) => Fate::Failed {
                code,
                add_request: None,
            },
        }
    }

    /// A fresh invite-link code (22 URL-safe characters, as real ones).
    pub fn new_invite_code(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        invite_code(&bytes)
    }

    /// Records a notification sent to `device`, dropping the oldest past the cap.
    pub fn log_sent(&mut self, device: &str, at: u64, stanza: &Node) {
        let log = self.sent.entry(device.to_owned()).or_default();
        if log.len() >= NOTIFICATION_LOG {
            log.pop_front();
        }
        log.push_back(SentStanza {
            at,
            tag: stanza.tag.to_string(),
            kind: stanza.attr("type").map(|t| t.as_str().into_owned()),
            from: stanza.attr("from").map(|t| t.as_str().into_owned()),
            stanza: stanza.to_string(),
        });
    }

    /// The account JIDs (`phone@s.whatsapp.net`) whose devices are online, each with the
    /// device JIDs and their connections' senders.
    pub fn online_devices_of(&self, phone: &str) -> Vec<(String, mpsc::Sender<Command>)> {
        self.online
            .iter()
            .filter(|(jid, _)| self.devices.get(*jid).is_some_and(|d| d.phone == phone))
            .filter_map(|(jid, conn)| self.conns.get(conn).map(|c| (jid.clone(), c.tx.clone())))
            .collect()
    }

    /// The control API's view of one device.
    pub fn device_info(&self, d: &Device) -> DeviceInfo {
        let jid = d.jid();
        DeviceInfo {
            connected: self.online.contains_key(&jid),
            lid: d.lid_jid().to_string(),
            jid,
            phone: d.phone.clone(),
            device: d.device,
            key_index: d.key_index,
            noise_key: hex(d.noise_key.as_bytes()),
            identity_key: hex(d.identity_key.as_bytes()),
            paired_at: d.paired_at,
            prekeys: d.keys.count(),
            removed: d.removed,
        }
    }
}

/// An invite code in the alphabet of real ones (URL-safe base64 without padding).
fn invite_code(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(seed: Option<u64>) -> State {
        let mut rng = keys::new_rng(seed);
        let root = KeyPair::generate(&mut rng);
        State::new(rng, seed, root)
    }

    #[test]
    fn seeded_accounts_are_reproducible() {
        let (mut a, mut b) = (state(Some(3)), state(Some(3)));
        let (x, y) = (a.account("5511").clone(), b.account("5511").clone());
        assert_eq!(x.identity.public(), y.identity.public());
        assert_eq!(x.lid, y.lid);
        assert_eq!(x.lid.len(), 15);
        assert!(x.lid.starts_with('1'));
    }

    #[test]
    fn iq_rules_match_by_namespace_and_run_out() {
        let mut f = Faults::default();
        f.iq.insert(
            "d".into(),
            vec![IqRule {
                action: IqAction::Withhold,
                xmlns: Some("w:g2".into()),
                remaining: Some(1),
            }],
        );
        assert_eq!(f.iq_action("d", Some("w:p")), None);
        assert_eq!(f.iq_action("d", Some("w:g2")), Some(IqAction::Withhold));
        assert_eq!(f.iq_action("d", Some("w:g2")), None);
    }

    #[test]
    fn fates_follow_the_phone_behaviour() {
        let mut s = state(Some(1));
        s.phones.insert(
            "5511000000002".into(),
            PhoneBehaviour {
                on_add: AddRule::InviteOnly,
                ..PhoneBehaviour::default()
            },
        );
        let req = |u: &str, server: &str| Requested {
            jid: Jid::new(u, server),
            phone_number: None,
        };
        assert_eq!(s.fate(&req("5511000000001", SERVER_PN), 0), Fate::Added);
        match s.fate(&req("5511000000002", SERVER_PN), 10) {
            Fate::Failed {
                code: 403,
                add_request: Some(r),
            } => assert_eq!(r.expiration, 10 + INVITE_TTL_SECS),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.fate(&req("100000000000009", SERVER_LID), 0),
            Fate::Failed {
                code: 404,
                add_request: None
            }
        );
    }
}
