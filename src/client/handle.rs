//! [`Client`]: the cheap-clone handle to one device's task.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};
use wuts_store::DeviceId;

use super::api::{DeviceEvent, DeviceStatus, Error};
use super::driver::{Command, Shared};
use crate::binary::{Jid, Node, jid};
use crate::engine::IqRequest;
use crate::ops::groups::{CreateGroup, GroupInfo, create_request, parse_create_result};

/// A handle to one device. Cloning is cheap; every clone talks to the same task.
#[derive(Clone)]
pub struct Client {
    pub(super) id: DeviceId,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) shared: Arc<Shared>,
    pub(super) iq_timeout: std::time::Duration,
}

impl Client {
    /// The device's id in the store.
    pub fn id(&self) -> DeviceId {
        self.id
    }

    /// State, JID and current QR code.
    pub fn status(&self) -> DeviceStatus {
        self.shared
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.shared.events.subscribe()
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Starts pairing (QR codes follow as events).
    pub async fn pair(&self) -> Result<(), Error> {
        self.call(Command::Pair).await
    }

    /// Sends an IQ and waits for its reply.
    pub async fn iq(&self, req: IqRequest) -> Result<Node, Error> {
        let timeout = req.timeout.unwrap_or(self.iq_timeout);
        self.call(|tx| Command::Iq(req, tx))
            .await
            .map_err(|e| match e {
                Error::Timeout(_) => Error::Timeout(timeout),
                other => other,
            })
    }

    /// Creates a group. The request is validated first: nothing invalid reaches WhatsApp.
    pub async fn create_group(&self, req: CreateGroup) -> Result<GroupInfo, Error> {
        req.validate().map_err(|e| Error::Invalid(e.to_string()))?;
        let description_id = format!("{:08X}", rand::random::<u32>());
        let reply = self
            .iq(IqRequest {
                xmlns: "w:g2",
                kind: "set",
                to: Jid::server_only(jid::SERVER_GROUP),
                children: vec![create_request(&req, &description_id)],
                timeout: None,
            })
            .await?;
        parse_create_result(&reply).map_err(|e| Error::Protocol(e.to_string()))
    }

    /// Logs out (telling WhatsApp when connected) and wipes the keys.
    pub async fn logout(&self) -> Result<(), Error> {
        self.call(Command::Logout).await
    }

    /// Closes the connection cleanly and stops the task. Returns once the task has ended and
    /// released the store, so the data directory can be reopened at once.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        // The task acknowledges just before it returns; its command receiver (and with it its
        // store handle) is dropped when it has.
        self.commands.closed().await;
    }
}
