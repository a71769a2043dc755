//! The cluster contract, checked from outside: the sandbox's records of logins, `replaced`
//! kicks and group creates, the load's answers, and the ownership rows.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;

use super::load::{CLIENT_TIMEOUT, Outcome, RETRYABLE};

/// What the sandbox recorded.
pub struct Records {
    pub logins: Vec<Value>,
    pub kicks: Vec<Value>,
    pub groups: Vec<Value>,
}

impl Records {
    pub async fn fetch(http: &reqwest::Client, control: &str) -> Records {
        let get = |what: &str| {
            let url = format!("{control}/{what}");
            let http = http.clone();
            async move {
                let v: Value = http.get(url).send().await.unwrap().json().await.unwrap();
                v.as_array().cloned().unwrap_or_default()
            }
        };
        Records {
            logins: get("logins").await,
            kicks: get("kicks").await,
            groups: get("groups").await,
        }
    }
}

/// A window in which a node was paused: the only time a login of another node may cut one
/// of its sockets (WhatsApp's `replaced`), since a frozen process cannot close them itself.
#[derive(Clone, Debug)]
pub struct Pause {
    pub ip: String,
    pub from_ms: u64,
    pub to_ms: u64,
}

fn ip_of(source: &Value) -> String {
    let s = source.as_str().unwrap_or_default();
    s.rsplit_once(':').map_or(s, |(ip, _)| ip).to_owned()
}

/// Contract 1: one node per (device, epoch); a device's epochs only grow; every kick cuts a
/// lower epoch for a higher one, and only a paused node's socket, during or just after its
/// pause. Returns the kicks seen, so a test can insist its pause produced some.
pub fn logins(r: &Records, pauses: &[Pause]) -> usize {
    let mut by_epoch: HashMap<(String, u64), HashSet<String>> = HashMap::new();
    let mut top: HashMap<String, u64> = HashMap::new();
    let mut conn_source: HashMap<u64, String> = HashMap::new();
    let mut ordered = r.logins.clone();
    ordered.sort_by_key(|l| (l["at_ms"].as_u64(), l["conn"].as_u64()));
    for l in &ordered {
        let jid = l["jid"].as_str().unwrap().to_owned();
        let epoch = l["epoch"]
            .as_u64()
            .unwrap_or_else(|| panic!("a debug build presents its epoch: {l}"));
        let ip = ip_of(&l["source"]);
        conn_source.insert(l["conn"].as_u64().unwrap(), ip.clone());
        by_epoch.entry((jid.clone(), epoch)).or_default().insert(ip);
        let t = top.entry(jid.clone()).or_insert(0);
        assert!(
            epoch >= *t,
            "{jid} logged in under epoch {epoch} after epoch {t}: a stale owner: {l}"
        );
        *t = epoch;
    }
    for ((jid, epoch), ips) in &by_epoch {
        assert_eq!(
            ips.len(),
            1,
            "{jid} logged in under epoch {epoch} from several nodes: {ips:?}"
        );
    }
    for k in &r.kicks {
        let (old, new) = (k["old_epoch"].as_u64(), k["new_epoch"].as_u64());
        assert!(
            matches!((old, new), (Some(o), Some(n)) if o < n),
            "a kick that is not a newer epoch replacing an older one: {k}"
        );
        let at = k["at_ms"].as_u64().unwrap();
        let ip = conn_source
            .get(&k["old_conn"].as_u64().unwrap())
            .cloned()
            .unwrap_or_default();
        // A paused node's socket is cut when the new owner logs in, which may be a little
        // after the resume (the claim waits for the lease and the grace).
        let excused = pauses
            .iter()
            .any(|p| p.ip == ip && (p.from_ms..=p.to_ms + 10_000).contains(&at));
        let history: Vec<&Value> = ordered.iter().filter(|l| l["jid"] == k["jid"]).collect();
        assert!(
            excused,
            "two live logins of one device from two nodes outside a pause: {k}\n\
             pauses: {pauses:?}\nthe device's logins: {history:#?}"
        );
    }
    r.kicks.len()
}

/// Contracts 4 and 5 over the load's answers and the sandbox's groups: every answered
/// request ended in time with 2xx or a documented retryable/outcome code; no key made two
/// groups; a key answered 201 made exactly the group it named, the same on every replay.
pub fn load(outcomes: &[Outcome], r: &Records) -> LoadSummary {
    let mut s = LoadSummary::default();
    let allowed: HashSet<&str> = RETRYABLE
        .iter()
        .copied()
        .chain(["OUTCOME_UNKNOWN", "TIMEOUT"])
        .collect();
    let mut created: HashMap<&str, &str> = HashMap::new();
    for o in outcomes {
        s.requests += 1;
        s.slowest = s.slowest.max(o.took);
        match (o.status, &o.code) {
            (Some(201), _) => {
                s.created += 1;
                let jid = o.jid.as_deref().expect("a 201 names its group");
                let before = created.insert(&o.key, jid);
                assert!(
                    before.is_none_or(|b| b == jid),
                    "key {} answered two different groups: {before:?} and {jid}",
                    o.key
                );
            }
            (Some(status), Some(code)) if allowed.contains(code.as_str()) => {
                *s.codes.entry(format!("{status} {code}")).or_default() += 1;
            }
            (Some(status), code) => {
                panic!("an undocumented answer {status} {code:?} for {o:?}")
            }
            (None, _) if o.node_faulted => s.lost_with_their_node += 1,
            (None, _) => panic!("no answer from a node that was not faulted: {o:?}"),
        }
        assert!(
            o.took < CLIENT_TIMEOUT - Duration::from_secs(5),
            "a request hung for {:?}: {o:?}",
            o.took
        );
    }
    let mut groups_per_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for g in &r.groups {
        let subject = g["subject"].as_str().unwrap();
        if subject.starts_with("chaos-") {
            groups_per_key
                .entry(subject)
                .or_default()
                .push(g["jid"].as_str().unwrap());
        }
    }
    for (key, jids) in &groups_per_key {
        assert_eq!(
            jids.len(),
            1,
            "key {key} made {} groups: {jids:?}",
            jids.len()
        );
    }
    for (key, jid) in &created {
        assert_eq!(
            groups_per_key.get(key).map(|j| j[0]),
            Some(*jid),
            "key {key} answered {jid}, which WhatsApp does not have"
        );
    }
    s.keys = outcomes
        .iter()
        .map(|o| &o.key)
        .collect::<HashSet<_>>()
        .len();
    s.groups = groups_per_key.len();
    s
}

/// What the load saw, for the test's output.
#[derive(Debug, Default)]
pub struct LoadSummary {
    pub requests: usize,
    pub keys: usize,
    pub created: usize,
    pub groups: usize,
    pub lost_with_their_node: usize,
    pub codes: BTreeMap<String, usize>,
    pub slowest: Duration,
}
