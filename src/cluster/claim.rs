//! Which orphaned devices this node claims now (design §6.3, "claim an orphan").
//!
//! Every node sees the same orphans and the same live nodes, and ranks the nodes for each
//! device by rendezvous placement. The device's target (rank 0) claims at once; the node
//! ranked k waits k renew intervals after it first saw the orphan, so the target nearly always
//! wins and a dead or slow target costs only a little delay. Claims are compare-and-set in the
//! database, so a disagreement between nodes (different views of who is live) is harmless: one
//! claim wins, the others find nothing.
//!
//! Pure: the caller passes `now`, the live nodes and the orphans it read.

use std::collections::HashMap;
use std::time::Duration;

use super::rendezvous::{Candidate, rank};

/// Remembers when each orphan was first seen, to pace the fallback claimers.
#[derive(Clone, Debug, Default)]
pub struct ClaimPlanner {
    first_seen: HashMap<u64, Duration>,
}

impl ClaimPlanner {
    /// A planner with no history.
    pub fn new() -> Self {
        ClaimPlanner::default()
    }

    /// The orphans (by device id, with the epoch they were seen at) that `me` should claim at
    /// `now`, given the live nodes that take devices. `step` is the renew interval.
    pub fn plan<E: Copy>(
        &mut self,
        now: Duration,
        me: &str,
        nodes: &[Candidate<'_>],
        orphans: &[(u64, E)],
        step: Duration,
    ) -> Vec<(u64, E)> {
        // Forget devices that are no longer orphans.
        self.first_seen
            .retain(|device, _| orphans.iter().any(|(d, _)| d == device));
        let mut out = Vec::new();
        for &(device, epoch) in orphans {
            let seen = *self.first_seen.entry(device).or_insert(now);
            let key = device.to_string();
            let Some(k) = rank(&key, nodes).iter().position(|n| *n == me) else {
                continue; // not a candidate (draining, weight 0)
            };
            let wait = step.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX));
            if now >= seen + wait {
                out.push((device, epoch));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Vec<Candidate<'static>> {
        ["n1", "n2", "n3"]
            .into_iter()
            .map(|node| Candidate { node, weight: 100 })
            .collect()
    }

    fn target(device: u64, nodes: &[Candidate<'_>]) -> String {
        crate::cluster::place(&device.to_string(), nodes)
            .unwrap()
            .to_owned()
    }

    #[test]
    fn the_target_claims_at_once_and_the_others_wait_their_rank() {
        let nodes = three();
        let orphans: Vec<(u64, u8)> = (1..=30).map(|d| (d, 0)).collect();
        let step = Duration::from_secs(1);
        let mut planners: Vec<(&str, ClaimPlanner)> = ["n1", "n2", "n3"]
            .map(|n| (n, ClaimPlanner::new()))
            .to_vec();
        // At first sight, each device is planned by its target only.
        let mut claimed = Vec::new();
        for (me, p) in &mut planners {
            for (d, _) in p.plan(Duration::ZERO, me, &nodes, &orphans, step) {
                assert_eq!(target(d, &nodes), *me);
                claimed.push(d);
            }
        }
        claimed.sort_unstable();
        assert_eq!(claimed, (1..=30).collect::<Vec<_>>());
        // If the targets did not claim, rank 1 joins in after one step, everyone after two.
        let at = |t: u64, me: &str, p: &mut ClaimPlanner| {
            p.plan(Duration::from_secs(t), me, &nodes, &orphans, step)
                .len()
        };
        let (me, p) = &mut planners[0];
        let now_1 = at(1, me, p);
        let now_2 = at(2, me, p);
        assert!(now_1 > 10 && now_1 < 30, "{now_1}");
        assert_eq!(now_2, 30);
    }

    #[test]
    fn a_node_that_is_not_a_candidate_claims_nothing() {
        let nodes = three();
        let mut p = ClaimPlanner::new();
        let plan = p.plan(
            Duration::from_secs(100),
            "n4",
            &nodes,
            &[(1u64, ()), (2, ())],
            Duration::from_secs(1),
        );
        assert!(plan.is_empty());
    }

    #[test]
    fn an_orphan_that_returns_is_timed_afresh() {
        let nodes = three();
        let step = Duration::from_secs(1);
        let device = (1..100u64)
            .find(|d| rank(&d.to_string(), &nodes)[2] == "n1")
            .unwrap();
        let mut p = ClaimPlanner::new();
        assert!(
            p.plan(Duration::ZERO, "n1", &nodes, &[(device, 0u8)], step)
                .is_empty()
        );
        // Claimed by someone (gone from the list), orphaned again later: the wait restarts.
        assert!(
            p.plan::<u8>(Duration::from_secs(1), "n1", &nodes, &[], step)
                .is_empty()
        );
        let later = Duration::from_secs(50);
        assert!(
            p.plan(later, "n1", &nodes, &[(device, 1u8)], step)
                .is_empty()
        );
        assert_eq!(
            p.plan(later + 2 * step, "n1", &nodes, &[(device, 1u8)], step)
                .len(),
            1
        );
    }
}
