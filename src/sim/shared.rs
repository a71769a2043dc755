//! What the connection tasks and the control API share: the state, the server identity, the
//! schedules, the event stream, and the operations that touch several of them (scan, login,
//! faults). Each operation takes the lock for map updates only and sends to connection tasks
//! after releasing it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::error::Error;
use super::model::{
    AddRule, DeviceInfo, EdgeRouting, Fault, GroupRecord, PairedDevice, PhoneBehaviour, SentStanza,
    SimEvent, StoreWrites, StreamError, Timing,
};
use super::pairing::{self, Offer, PairingError};
use super::payload::Registration;
use super::persist::Store;
use super::records::PersistError;
use super::stanzas;
use super::state::{Command, Conn, ConnId, Device, IqAction, IqRule, Phase, State};
use crate::binary::jid::{SERVER_LID, SERVER_PN};
use crate::binary::{Jid, Node};
use crate::noise::{PublicKey, ServerIdentity};

/// Shared by every task of one sandbox.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// The Noise identity (static key and certificate chain) every connection presents.
    pub identity: ServerIdentity,
    /// The root clients must trust.
    pub root_public: PublicKey,
    pub timing: Timing,
    pub events: broadcast::Sender<SimEvent>,
    /// The data directory, if there is one.
    store: Option<Store>,
    next_conn: AtomicU64,
    /// Logins and kicks, for `GET /control/logins` and `/control/kicks`.
    pub(crate) audit: super::audit::Audit,
}

/// Unix seconds now. The sandbox's only wall-clock read; schedules use tokio's clock.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a successful login hands the connection task.
pub(crate) struct LoginOk {
    pub success: Node,
    pub jid: String,
    /// A connection of the same device that must be told it was replaced.
    pub replaced: Option<mpsc::Sender<Command>>,
}

impl Shared {
    pub fn new(
        state: State,
        identity: ServerIdentity,
        timing: Timing,
        store: Option<Store>,
    ) -> Self {
        let root_public = *state.root.public();
        Self {
            state: Mutex::new(state),
            identity,
            root_public,
            timing,
            events: broadcast::channel(1024).0,
            store,
            next_conn: AtomicU64::new(1),
            audit: super::audit::Audit::default(),
        }
    }

    /// The state. A panic while holding the lock cannot leave the maps half-updated in a way
    /// that matters more than stopping would, so a poisoned lock is simply taken over.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn emit(&self, event: SimEvent) {
        // No subscriber is fine.
        let _ = self.events.send(event);
    }

    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Writes one changed record to the data directory, if there is one. A record that
    /// changes in place is written with the state lock held, so writes reach the store in the
    /// order of the changes (see `persist`). A failure is logged, not fatal: the sandbox keeps
    /// serving from memory.
    pub fn persist(&self, write: impl FnOnce(&Store) -> Result<(), PersistError>) {
        if let Some(store) = &self.store {
            if let Err(e) = write(store) {
                tracing::error!(error = %e, "could not save to the sandbox's data directory");
            }
        }
    }

    /// Writes everything to disk (sled otherwise flushes every 500 ms).
    pub fn flush(&self) -> Result<(), PersistError> {
        self.store.as_ref().map_or(Ok(()), Store::flush)
    }

    pub fn store_writes(&self) -> StoreWrites {
        self.store.as_ref().map(Store::writes).unwrap_or_default()
    }

    /// Records a registering connection and returns the refs to send, in order.
    pub fn begin_registration(
        &self,
        id: ConnId,
        tx: mpsc::Sender<Command>,
        noise_key: PublicKey,
        registration: Registration,
    ) -> (String, Vec<String>) {
        let now = Instant::now();
        let mut st = self.lock();
        let mut refs = Vec::with_capacity(self.timing.ref_count);
        for i in 0..self.timing.ref_count {
            let r = pairing::new_ref(&mut st.rng);
            st.refs.insert(r.clone(), id);
            refs.push((r, now + self.timing.ref_expiry(i)));
        }
        let names: Vec<String> = refs.iter().map(|(r, _)| r.clone()).collect();
        let phase = Phase::Registering { registration, refs };
        st.conns.insert(
            id,
            Conn {
                tx,
                noise_key,
                phase,
            },
        );
        (st.next_iq_id(), names)
    }

    /// Checks a login and, if it is accepted, records the connection as the device's.
    pub fn login(
        &self,
        id: ConnId,
        tx: mpsc::Sender<Command>,
        noise_key: PublicKey,
        user: &str,
        device: u16,
    ) -> Result<LoginOk, u16> {
        let jid = Jid::with_device(user, SERVER_PN, device).to_string();
        let mut st = self.lock();
        let dev = st
            .devices
            .get(&jid)
            .filter(|d| !d.removed && d.noise_key == noise_key)
            .ok_or(401_u16)?;
        let (lid, creation) = (dev.lid_jid(), dev.paired_at);
        let enc_static = base64::engine::general_purpose::STANDARD.encode(dev.noise_key.as_bytes());
        if let Some(reason) = st.faults.take_reject(&jid) {
            return Err(reason);
        }
        let old = st.online.insert(jid.clone(), id);
        let replaced = old.and_then(|old| st.conns.get(&old)).map(|c| c.tx.clone());
        let phase = Phase::LoggedIn { jid: jid.clone() };
        st.conns.insert(
            id,
            Conn {
                tx,
                noise_key,
                phase,
            },
        );
        drop(st);
        self.audit
            .login(&jid, id, old.filter(|_| replaced.is_some()));
        Ok(LoginOk {
            success: stanzas::success(unix_now(), lid, creation, &enc_static),
            jid,
            replaced,
        })
    }

    /// Forgets a connection that ended.
    /// A login of `jid` presented `presented` in its intro header: records it and returns the
    /// routing info to send it (the same for the device's whole life in this sandbox).
    pub fn edge_routing(&self, jid: &str, presented: Option<Vec<u8>>) -> Vec<u8> {
        let mut st = self.lock();
        // Six bytes, the length of a real capture (facts sheet 1).
        let fresh = (!st.edge.contains_key(jid)).then(|| {
            let mut issued = vec![0u8; 6];
            rand::RngCore::fill_bytes(&mut st.rng, &mut issued);
            issued
        });
        let entry = st
            .edge
            .entry(jid.to_owned())
            .or_insert_with(|| EdgeRouting {
                issued: fresh.unwrap_or_default(),
                presented: None,
            });
        entry.presented = presented;
        entry.issued.clone()
    }

    /// The edge routing of a device, once it logged in.
    pub fn edge_routing_of(&self, jid: &str) -> Option<EdgeRouting> {
        self.lock().edge.get(jid).cloned()
    }

    pub fn unregister(&self, id: ConnId) {
        let mut st = self.lock();
        let Some(conn) = st.conns.remove(&id) else {
            return;
        };
        st.codes.retain(|_, c| c.conn != id);
        let jid = match conn.phase {
            Phase::Registering { refs, .. } => {
                for (r, _) in refs {
                    st.refs.remove(&r);
                }
                None
            }
            Phase::LoggedIn { jid } => {
                if st.online.get(&jid) == Some(&id) {
                    st.online.remove(&jid);
                }
                Some(jid)
            }
        };
        drop(st);
        self.emit(SimEvent::Closed { jid });
    }

    /// The phone scans `qr`: finds the connection that showed the ref, checks the code against
    /// it, and has it send `pair-success`; then waits for the companion's verified answer.
    pub async fn scan(&self, qr: &str, phone: &str) -> Result<PairedDevice, PairingError> {
        let qr = pairing::parse_qr(qr)?;
        pairing::check_phone(phone)?;
        let (tx, command, rx) = {
            let mut st = self.lock();
            if st.behaviour(phone).on_add == AddRule::NotOnWhatsApp {
                return Err(PairingError::PhoneNotOnWhatsApp(phone.to_owned()));
            }
            let id = *st
                .refs
                .get(&qr.pairing_ref)
                .ok_or(PairingError::UnknownRef)?;
            let conn = st.conns.get(&id).ok_or(PairingError::UnknownRef)?;
            let Phase::Registering { registration, refs } = &conn.phase else {
                return Err(PairingError::UnknownRef);
            };
            let expiry = refs
                .iter()
                .find(|(r, _)| *r == qr.pairing_ref)
                .map(|(_, e)| *e)
                .ok_or(PairingError::UnknownRef)?;
            if Instant::now() >= expiry {
                return Err(PairingError::RefExpired);
            }
            if conn.noise_key != qr.noise_key {
                return Err(PairingError::NoiseKeyMismatch);
            }
            if registration.identity != qr.identity_key {
                return Err(PairingError::IdentityKeyMismatch);
            }
            let (tx, noise_key, registration) =
                (conn.tx.clone(), conn.noise_key, registration.clone());
            // One scan per connection: its refs are spent whatever the outcome.
            let spent: Vec<String> = refs.iter().map(|(r, _)| r.clone()).collect();
            for r in &spent {
                st.refs.remove(r);
            }
            let (node, pending, draft) = self.offer(&mut st, phone, &qr, noise_key, &registration);
            let (reply, rx) = oneshot::channel();
            let command = Command::Pair {
                node,
                pending,
                draft: Box::new(draft),
                reply,
            };
            (tx, command, rx)
        };
        self.await_pairing(&tx, command, rx).await
    }

    /// Hands the phone's message (`pair-success`, or a `primary_hello` for a typed code) to
    /// the companion's connection and waits for the pairing it leads to.
    pub(crate) async fn await_pairing(
        &self,
        tx: &mpsc::Sender<Command>,
        command: Command,
        rx: oneshot::Receiver<Result<PairedDevice, PairingError>>,
    ) -> Result<PairedDevice, PairingError> {
        tx.send(command)
            .await
            .map_err(|_| PairingError::ConnectionClosed)?;
        match tokio::time::timeout(self.timing.pair_reply, rx).await {
            Err(_) => Err(PairingError::Timeout),
            Ok(Err(_)) => Err(PairingError::ConnectionClosed),
            Ok(Ok(result)) => result,
        }
    }

    /// The phone's `pair-success` for a companion it verified (by QR or by code): the
    /// account's next device number and key index, the node, what checks the answer, and the
    /// device to register once it verified.
    pub fn offer(
        &self,
        st: &mut State,
        phone: &str,
        qr: &pairing::Qr,
        noise_key: PublicKey,
        registration: &Registration,
    ) -> (Node, pairing::PendingSign, Device) {
        let behaviour = st.behaviour(phone);
        let account = st.account(phone);
        let (device, key_index) = (account.next_device, account.next_key_index);
        account.next_device = account.next_device.saturating_add(1);
        account.next_key_index = account.next_key_index.saturating_add(1);
        let account = account.clone();
        let iq_id = st.next_iq_id();
        let now = unix_now();
        let offer = Offer {
            account: &account.identity,
            qr,
            raw_id: account.raw_id,
            key_index,
            timestamp: now,
            device: Jid::with_device(phone, SERVER_PN, device),
            lid: Jid::with_device(account.lid.as_str(), SERVER_LID, device),
            platform: &behaviour.platform,
            business_name: behaviour.business_name.as_deref(),
        };
        let (node, pending) = pairing::pair_success(&offer, &iq_id, &mut st.rng);
        // The account's device numbering moved on.
        self.persist(|s| s.put_account(phone, &account));
        let draft = Device {
            phone: phone.to_owned(),
            device,
            lid: account.lid.clone(),
            noise_key,
            identity_key: registration.identity,
            registration_id: registration.registration_id,
            key_index,
            os: registration.os.clone(),
            paired_at: now,
            removed: false,
            keys: Default::default(),
            signed_identity: Vec::new(),
        };
        (node, pending, draft)
    }

    /// Registers a device whose `pair-device-sign` verified.
    pub fn finish_pairing(&self, device: Device) -> PairedDevice {
        let paired = PairedDevice {
            jid: device.jid(),
            lid: device.lid_jid().to_string(),
            phone: device.phone.clone(),
            device: device.device,
            key_index: device.key_index,
        };
        let mut st = self.lock();
        self.persist(|s| s.put_device(&device));
        // A new companion has the account's state to catch up on: its first active session
        // is told so, and must answer clean.
        let dirty = ("account_sync".to_owned(), device.paired_at);
        st.dirty.insert(paired.jid.clone(), dirty);
        st.devices.insert(paired.jid.clone(), device);
        drop(st);
        self.emit(SimEvent::Paired {
            jid: paired.jid.clone(),
        });
        paired
    }

    pub fn devices(&self) -> Vec<DeviceInfo> {
        let st = self.lock();
        st.devices.values().map(|d| st.device_info(d)).collect()
    }

    pub fn groups(&self) -> Vec<GroupRecord> {
        self.lock().groups.clone()
    }

    /// The notifications sent to device `jid`, oldest first.
    pub fn notifications(&self, jid: &str) -> Vec<SentStanza> {
        self.lock()
            .sent
            .get(jid)
            .map(|log| log.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn set_phone_behaviour(&self, phone: &str, b: PhoneBehaviour) -> Result<(), Error> {
        pairing::check_phone(phone)?;
        let mut st = self.lock();
        self.persist(|s| s.put_phone(phone, &b));
        st.phones.insert(phone.to_owned(), b);
        Ok(())
    }

    /// Unlinks a device as its phone would: later logins fail with 401, and a live connection
    /// gets `<stream:error code="401"><conflict type="device_removed"/>`.
    pub async fn remove_device(&self, jid: &str) -> Result<(), Error> {
        let tx = {
            let mut st = self.lock();
            let dev = st
                .devices
                .get_mut(jid)
                .ok_or_else(|| Error::UnknownDevice(jid.to_owned()))?;
            dev.removed = true;
            self.persist(|s| s.put_device(dev));
            st.online
                .get(jid)
                .and_then(|id| st.conns.get(id))
                .map(|c| c.tx.clone())
        };
        if let Some(tx) = tx {
            let node = stanzas::stream_error(StreamError::DeviceRemoved);
            // A connection that ended meanwhile needs no telling.
            let _ = tx.send(Command::Close(Some(node))).await;
        }
        Ok(())
    }

    /// Applies a fault now (connection faults) or arms it (IQ and login faults).
    pub async fn inject(&self, fault: Fault) -> Result<(), Error> {
        let (device, command) = match fault {
            Fault::StreamError {
                device,
                error: StreamError::DeviceRemoved,
            } => return self.remove_device(&device).await,
            Fault::Drop { device } => (device, Command::Drop),
            Fault::StreamError { device, error } => {
                (device, Command::Close(Some(stanzas::stream_error(error))))
            }
            Fault::DelayIq {
                device,
                millis,
                xmlns,
                count,
            } => {
                let action = IqAction::Delay(std::time::Duration::from_millis(millis));
                return self.add_iq_rule(device, action, xmlns, count);
            }
            Fault::WithholdIq {
                device,
                xmlns,
                count,
            } => return self.add_iq_rule(device, IqAction::Withhold, xmlns, count),
            Fault::ClearIqFaults { device } => {
                self.lock().faults.iq.remove(&device);
                return Ok(());
            }
            Fault::RejectNextLogin { device, reason } => {
                let mut st = self.lock();
                match device {
                    Some(d) => {
                        st.faults.reject.insert(d, reason);
                    }
                    None => st.faults.reject_any = Some(reason),
                }
                return Ok(());
            }
        };
        let tx = {
            let st = self.lock();
            st.online
                .get(&device)
                .and_then(|id| st.conns.get(id))
                .map(|c| c.tx.clone())
        };
        let tx = tx.ok_or_else(|| Error::NotConnected(device.clone()))?;
        tx.send(command)
            .await
            .map_err(|_| Error::NotConnected(device))
    }

    /// Applies `fault_for(jid)` to every device connected now; returns how many it reached. A
    /// device that disconnects meanwhile is skipped; none reached is [`Error::NothingConnected`].
    pub async fn inject_connected(
        &self,
        fault_for: impl Fn(String) -> Fault,
    ) -> Result<usize, Error> {
        let mut online: Vec<String> = self.lock().online.keys().cloned().collect();
        // In JID order, so a seeded run injects in the same order every time.
        online.sort();
        let mut reached = 0;
        for jid in online {
            match self.inject(fault_for(jid)).await {
                Ok(()) => reached += 1,
                Err(Error::NotConnected(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if reached == 0 {
            return Err(Error::NothingConnected);
        }
        Ok(reached)
    }

    /// Removes every device's IQ delay and withhold rules.
    pub fn clear_all_iq_faults(&self) {
        self.lock().faults.iq.clear();
    }

    fn add_iq_rule(
        &self,
        device: String,
        action: IqAction,
        xmlns: Option<String>,
        count: Option<u32>,
    ) -> Result<(), Error> {
        if count == Some(0) {
            return Ok(());
        }
        let rule = IqRule {
            action,
            xmlns,
            remaining: count,
        };
        self.lock().faults.iq.entry(device).or_default().push(rule);
        Ok(())
    }
}
