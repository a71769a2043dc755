//! The lease keeper on virtual time: the walk-through of design §6.3, then a property test
//! against a model database with CAS expiry, delays, lost answers and a slow node clock.

use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn keeper() -> LeaseKeeper {
    LeaseKeeper::new(LeaseTimings::default(), s(0)).unwrap()
}

/// Joins at `t` with an instant answer.
fn join(k: &mut LeaseKeeper, t: Duration) {
    assert_eq!(k.poll(t), Some(LeaseAction::Renew));
    k.renewed(t);
}

#[test]
fn timings_that_leave_no_room_to_renew_are_refused() {
    let t = LeaseTimings {
        margin: s(11),
        ..LeaseTimings::default()
    };
    assert!(matches!(t.check(), Err(TimingsError::NoRoomToRenew { .. })));
    let t = LeaseTimings {
        renew: Duration::ZERO,
        ..LeaseTimings::default()
    };
    assert_eq!(t.check(), Err(TimingsError::ZeroRenew));
    assert!(LeaseKeeper::new(t, s(0)).is_err());
}

#[test]
fn the_first_action_is_the_join_and_its_answer_gives_the_deadline() {
    let mut k = keeper();
    assert!(!k.may_serve(s(0)));
    assert_eq!(k.poll(s(0)), Some(LeaseAction::Renew));
    assert_eq!(k.poll(s(0)), None, "one renewal in flight at a time");
    k.renewed(ms(200));
    // Sent at 0: deadline 0 + 15 - 3, whatever the answer's delay.
    assert_eq!(k.phase(), LeasePhase::Held { deadline: s(12) });
    assert!(k.may_serve(ms(11_999)));
    assert!(!k.may_serve(s(12)));
    assert_eq!(k.next_wakeup(), s(5));
}

#[test]
fn renewals_every_interval_keep_the_lease() {
    let mut k = keeper();
    join(&mut k, s(0));
    for round in 1..10u64 {
        let t = s(5 * round);
        assert_eq!(k.poll(t - ms(1)), None);
        assert_eq!(k.poll(t), Some(LeaseAction::Renew));
        k.renewed(t + ms(50));
        assert_eq!(
            k.phase(),
            LeasePhase::Held {
                deadline: t + s(12)
            }
        );
        assert!(k.may_serve(t + ms(50)));
    }
}

#[test]
fn without_answers_the_node_fences_itself_at_the_deadline_once() {
    let mut k = keeper();
    join(&mut k, s(0));
    assert_eq!(k.poll(s(5)), Some(LeaseAction::Renew)); // never answered
    assert_eq!(k.next_wakeup(), s(12));
    assert_eq!(k.poll(ms(11_999)), None);
    assert_eq!(k.poll(s(12)), Some(LeaseAction::SelfFence));
    assert_eq!(k.poll(s(12)), None);
    assert_eq!(k.phase(), LeasePhase::Unheld);
    assert!(!k.may_serve(s(12)));
}

#[test]
fn a_process_paused_past_its_deadline_fences_before_anything_else() {
    let mut k = keeper();
    join(&mut k, s(0));
    // SIGSTOP at 1 s, SIGCONT at 40 s: the monotonic clock kept running.
    assert!(!k.may_serve(s(40)));
    assert_eq!(k.poll(s(40)), Some(LeaseAction::SelfFence));
    // Then it renews, and must reconcile before it serves again.
    assert_eq!(k.poll(s(40)), Some(LeaseAction::Renew));
    k.renewed(s(40));
    assert_eq!(k.phase(), LeasePhase::Reconciling { deadline: s(52) });
    assert!(!k.may_serve(s(41)));
    assert_eq!(k.poll(s(40)), Some(LeaseAction::Reconcile));
    assert_eq!(k.poll(s(40)), None);
    k.reconciled();
    assert!(k.may_serve(s(41)));
}

#[test]
fn a_failed_reconciliation_is_asked_for_again_after_the_next_renewal() {
    let mut k = keeper();
    join(&mut k, s(0));
    assert_eq!(k.poll(s(30)), Some(LeaseAction::SelfFence));
    assert_eq!(k.poll(s(30)), Some(LeaseAction::Renew));
    k.renewed(s(30));
    assert_eq!(k.poll(s(30)), Some(LeaseAction::Reconcile));
    // The read failed: nothing until the next renewal, then the reconciliation again.
    assert_eq!(k.poll(s(31)), None);
    assert_eq!(k.poll(s(35)), Some(LeaseAction::Renew));
    k.renewed(s(35));
    assert_eq!(k.poll(s(35)), Some(LeaseAction::Reconcile));
    k.reconciled();
    assert_eq!(k.phase(), LeasePhase::Held { deadline: s(47) });
}

#[test]
fn an_answer_that_arrives_after_the_deadline_does_not_extend_the_lease() {
    let mut k = keeper();
    join(&mut k, s(0));
    assert_eq!(k.poll(s(5)), Some(LeaseAction::Renew));
    // The renewal sent at 5 s answers at 18 s: its deadline (17 s) has passed too.
    k.renewed(s(18));
    assert!(!k.may_serve(s(18)));
    assert_eq!(k.poll(s(18)), Some(LeaseAction::SelfFence));
}

#[test]
fn a_failed_renewal_retries_sooner_and_keeps_the_deadline() {
    let mut k = keeper();
    join(&mut k, s(0));
    assert_eq!(k.poll(s(5)), Some(LeaseAction::Renew));
    k.renew_failed(ms(5_100));
    assert_eq!(k.failures(), 1);
    assert_eq!(k.phase(), LeasePhase::Held { deadline: s(12) });
    let retry = ms(5_100) + s(5) / 3;
    assert_eq!(k.next_wakeup(), retry);
    assert_eq!(k.poll(retry), Some(LeaseAction::Renew));
    k.renewed(retry);
    assert_eq!(k.failures(), 0);
    assert_eq!(
        k.phase(),
        LeasePhase::Held {
            deadline: retry + s(12)
        }
    );
}

#[test]
fn a_renewal_that_finds_no_row_loses_the_lease_at_once() {
    let mut k = keeper();
    join(&mut k, s(0));
    assert_eq!(k.poll(s(5)), Some(LeaseAction::Renew));
    k.lost(s(5));
    assert!(!k.may_serve(s(5)));
    assert_eq!(k.poll(s(5)), Some(LeaseAction::SelfFence));
    assert_eq!(k.poll(s(5)), None, "the next attempt waits an interval");
    assert_eq!(k.poll(s(10)), Some(LeaseAction::Renew));
}

#[test]
fn a_join_refused_at_start_owes_no_fence() {
    let mut k = keeper();
    assert_eq!(k.poll(s(0)), Some(LeaseAction::Renew));
    k.lost(s(0));
    assert_eq!(k.poll(s(0)), None);
    assert_eq!(k.poll(s(5)), Some(LeaseAction::Renew));
    k.renewed(s(5));
    assert_eq!(k.phase(), LeasePhase::Held { deadline: s(17) });
}

/// One renewal's fate in the model: how long it takes to reach the database (if it does) and
/// how long its answer takes to come back (if it does).
#[derive(Clone, Debug)]
struct Fate {
    to_db: Duration,
    back: Option<Duration>,
    reaches_db: bool,
}

fn fate() -> impl Strategy<Value = Fate> {
    (
        0u64..4_000,
        proptest::option::weighted(0.8, 0u64..4_000),
        0u8..10,
    )
        .prop_map(|(to_db, back, lost)| Fate {
            to_db: ms(to_db),
            back: back.map(ms),
            reaches_db: lost > 0,
        })
}

proptest! {
    /// Whenever the keeper says "serve", the database still holds the row: the node's local
    /// deadline never outlives the database's expiry, for any delays and losses, and with a
    /// node clock up to 1.2 times slower than the database's (the margin allows 1.25).
    #[test]
    fn serving_never_outlives_the_database_row(
        fates in proptest::collection::vec(fate(), 1..40),
        slow_permille in 1000u64..1200,
    ) {
        let timings = LeaseTimings::default();
        let db_time = |node: Duration| node * slow_permille as u32 / 1000;
        let mut k = LeaseKeeper::new(timings, Duration::ZERO).unwrap();
        let mut expires_db = Duration::ZERO; // database time
        let mut now = Duration::ZERO;
        let mut fates = fates.into_iter();
        // Pending answer: (arrives at, success).
        let mut pending: Option<(Duration, bool)> = None;
        for _ in 0..400 {
            // Check the invariant just before every event, and just before the deadline.
            if k.may_serve(now) {
                prop_assert!(db_time(now) < expires_db, "serving at {now:?} past the row");
            }
            while let Some(action) = k.poll(now) {
                if action == LeaseAction::Renew {
                    let Some(f) = fates.next() else { break };
                    if f.reaches_db {
                        let at_db = now + f.to_db;
                        // The row is ours; the database renews it in its own time.
                        expires_db = expires_db.max(db_time(at_db) + timings.ttl);
                        pending = f.back.map(|b| (at_db + b, true));
                    } else {
                        pending = f.back.map(|b| (now + b, false));
                    }
                    if pending.is_none() {
                        // An answer that never comes: the driver's own timeout reports failure.
                        pending = Some((now + timings.renew, false));
                    }
                } else if action == LeaseAction::Reconcile {
                    k.reconciled();
                }
            }
            let next = k.next_wakeup().min(pending.map_or(Duration::MAX, |p| p.0));
            if next == Duration::MAX {
                break;
            }
            // Sample just before the next event too.
            if next > now + ms(1) && k.may_serve(next - ms(1)) {
                prop_assert!(db_time(next - ms(1)) < expires_db);
            }
            now = next.max(now);
            if let Some((at, ok)) = pending && at <= now {
                pending = None;
                if ok { k.renewed(now) } else { k.renew_failed(now) }
            }
        }
    }
}
