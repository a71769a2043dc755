//! The fences a node holds: what its store writes carry (filled by the claimer, emptied on a
//! self-fence), shared between the claimer and the store.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

use super::Fence;
use crate::model::DeviceId;

/// The fences this node holds, by device: what its store writes carry.
#[derive(Default, Debug)]
pub struct Fences(RwLock<HashMap<DeviceId, Fence>>, RwLock<Option<Instant>>);

impl Fences {
    /// Sets the local deadline of the node's lease (`None`: no lease keeps these fences, as
    /// in the store's own tests). Past it, [`Fences::live`] answers nothing.
    pub fn hold_until(&self, deadline: Option<Instant>) {
        *self.1.write().unwrap_or_else(|p| p.into_inner()) = deadline;
    }

    /// How long until the lease's local deadline (`None`: no deadline; zero: passed). A store
    /// call for a device never waits past it: after it, nothing the call could do counts.
    pub fn remaining(&self) -> Option<std::time::Duration> {
        let deadline = *self.1.read().unwrap_or_else(|p| p.into_inner());
        deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The fence for `device` if this node owns it *and* its lease's local deadline has not
    /// passed, read from the clock now. What gates a login: a process resumed after a pause
    /// longer than its lease finds nothing here before its lease task has even run, so it
    /// never logs in under an epoch another node may already have replaced.
    pub fn live(&self, device: DeviceId) -> Option<Fence> {
        let deadline = *self.1.read().unwrap_or_else(|p| p.into_inner());
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        self.get(device)
    }

    /// The fence for `device`, if this node owns it.
    pub fn get(&self, device: DeviceId) -> Option<Fence> {
        self.read().get(&device).cloned()
    }

    /// Adds or replaces one fence (a device created or claimed here).
    pub fn grant(&self, fence: Fence) {
        self.write().insert(fence.device, fence);
    }

    /// Drops one fence (a device removed or handed off).
    pub fn revoke(&self, device: DeviceId) {
        self.write().remove(&device);
    }

    /// Replaces every fence with `fences` (the claimer's newest view; empty on self-fence).
    pub fn replace(&self, fences: impl IntoIterator<Item = Fence>) {
        *self.write() = fences.into_iter().map(|f| (f.device, f)).collect();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<DeviceId, Fence>> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<DeviceId, Fence>> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}
