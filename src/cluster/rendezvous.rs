//! Weighted rendezvous hashing: which live node a device belongs on.
//!
//! Every node computes the same answer from the same node table, with no coordination; when a
//! node joins or leaves, only the devices that rank it first move (about 1/N of them), which is
//! what keeps rebalancing cheap. The score is `-weight / ln(u)` for a uniform `u` in (0, 1)
//! drawn from a hash of (device, node): the node with the highest score wins, and a node's
//! share of devices is proportional to its weight (Schindelhauer and Schomaker's weighted
//! distributed hash tables).
//!
//! The hash is SHA-256 so that the placement never changes with the Rust version or the
//! platform: nodes of different builds must agree.

use sha2::{Digest, Sha256};

/// A node that may own devices, with its weight (0 = takes none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// The node's id.
    pub node: &'a str,
    /// Its relative capacity.
    pub weight: u32,
}

/// The node `device` belongs on, or `None` when no node has a weight.
pub fn place<'a>(device: &str, nodes: &[Candidate<'a>]) -> Option<&'a str> {
    nodes
        .iter()
        .filter(|c| c.weight > 0)
        .map(|c| (score(device, c), c.node))
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, node)| node)
}

/// All nodes with a weight, best first: the k-th waits k renew intervals before claiming an
/// orphan, so the target claims first and the others only when it does not.
pub fn rank<'a>(device: &str, nodes: &[Candidate<'a>]) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &'a str)> = nodes
        .iter()
        .filter(|c| c.weight > 0)
        .map(|c| (score(device, c), c.node))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().map(|(_, node)| node).collect()
}

fn score(device: &str, candidate: &Candidate<'_>) -> f64 {
    let mut hash = Sha256::new();
    hash.update((device.len() as u64).to_be_bytes());
    hash.update(device.as_bytes());
    hash.update(candidate.node.as_bytes());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 random bits, shifted off zero: u is uniform in (0, 1), so ln(u) < 0 and finite.
    let u = ((u64::from_be_bytes(first) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -f64::from(candidate.weight) / u.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&'static str]) -> Vec<Candidate<'static>> {
        names
            .iter()
            .map(|n| Candidate {
                node: n,
                weight: 100,
            })
            .collect()
    }

    fn devices(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("device-{i}")).collect()
    }

    #[test]
    fn no_weighted_node_places_nothing() {
        assert_eq!(place("d", &[]), None);
        let idle = [Candidate {
            node: "n1",
            weight: 0,
        }];
        assert_eq!(place("d", &idle), None);
        assert!(rank("d", &idle).is_empty());
    }

    #[test]
    fn placement_ignores_the_order_nodes_are_listed_in() {
        let a = nodes(&["n1", "n2", "n3"]);
        let b = nodes(&["n3", "n1", "n2"]);
        for d in devices(200) {
            assert_eq!(place(&d, &a), place(&d, &b));
            assert_eq!(rank(&d, &a), rank(&d, &b));
            assert_eq!(rank(&d, &a).first().copied(), place(&d, &a));
        }
    }

    #[test]
    fn equal_nodes_share_devices_about_evenly() {
        let three = nodes(&["n1", "n2", "n3"]);
        let mut counts = [0usize; 3];
        for d in devices(3000) {
            let at = three.iter().position(|c| Some(c.node) == place(&d, &three));
            counts[at.unwrap()] += 1;
        }
        for c in counts {
            assert!((850..=1150).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn a_joining_node_takes_only_its_share_from_the_others() {
        let before = nodes(&["n1", "n2", "n3"]);
        let after = nodes(&["n1", "n2", "n3", "n4"]);
        let all = devices(4000);
        let moved: Vec<&String> = all
            .iter()
            .filter(|d| place(d, &before) != place(d, &after))
            .collect();
        // Every move goes to the newcomer, and it gets about a quarter.
        assert!(moved.iter().all(|d| place(d, &after) == Some("n4")));
        assert!((850..=1150).contains(&moved.len()), "{}", moved.len());
    }

    #[test]
    fn weight_sets_the_share() {
        let weighted = [
            Candidate {
                node: "big",
                weight: 300,
            },
            Candidate {
                node: "small",
                weight: 100,
            },
        ];
        let big = devices(4000)
            .iter()
            .filter(|d| place(d, &weighted) == Some("big"))
            .count();
        assert!((2800..=3200).contains(&big), "{big}");
    }

    #[test]
    fn placement_is_pinned_across_builds() {
        // A known answer: nodes of different builds must agree on every placement.
        let three = nodes(&["n1", "n2", "n3"]);
        let got: Vec<&str> = (0..8)
            .map(|i| place(&format!("device-{i}"), &three).unwrap())
            .collect();
        assert_eq!(got, PINNED);
    }

    // Computed independently (Python: hashlib.sha256, the same formula).
    const PINNED: [&str; 8] = ["n1", "n2", "n1", "n3", "n3", "n2", "n1", "n1"];
}
