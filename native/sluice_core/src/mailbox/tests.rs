//! Unit tests of the box (with a fake storage backend).

use super::*;
use crate::chunks::fake::Fake;

fn layout(lanes: usize, slack: u64) -> Layout {
    Layout {
        lanes,
        slack,
        per_chunk: 4,
    }
}

fn mailbox(kind: Kind, max: usize) -> Mailbox<Fake> {
    Mailbox::new(kind, max, None, layout(3, 2)).expect("mailbox")
}

fn post(m: &Mailbox<Fake>, fake: &mut Fake, lane: usize, v: u64, now: u64) -> Posted {
    m.post(fake, lane, (0, v), 0, now).expect("post").0
}

fn take(m: &Mailbox<Fake>, fake: &mut Fake, n: usize) -> (Vec<u64>, u64) {
    let (taken, dropped) = m.take(fake, &[], n, 0);
    for t in &taken {
        assert!(
            fake.regions.contains_key(&t.item().0),
            "taken from a freed region"
        );
    }
    let values = taken.iter().map(|t| t.item().1).collect();
    let _ = m.take(fake, &taken, 0, 0);
    (values, dropped)
}

fn check(m: &Mailbox<Fake>, fake: &Fake) {
    let s = m.snapshot().stats;
    assert_eq!(s.posted, s.delivered + s.dropped_total() + m.len() as u64);
    assert!(s.peak >= m.len());
    let held: u32 = fake.regions.values().sum();
    assert!(held as usize >= m.len());
}

#[test]
fn lanes_merge_in_arrival_order() {
    for kind in [Kind::Queue, Kind::Stack, Kind::KeepOld] {
        let mut fake = Fake::default();
        let m = mailbox(kind, 10);
        for v in 0..8 {
            post(&m, &mut fake, (v * 7 % 3) as usize, v, v * 10);
        }
        let mut want: Vec<u64> = (0..8).collect();
        if kind == Kind::Stack {
            want.reverse();
        }
        assert_eq!(take(&m, &mut fake, 100).0, want, "{kind:?}");
        check(&m, &fake);
    }
}

#[test]
fn full_posts_drop_the_oldest_over_all_lanes() {
    for kind in [Kind::Queue, Kind::Stack] {
        let mut fake = Fake::default();
        let m = mailbox(kind, 3);
        let answers: Vec<Posted> = (0..9)
            .map(|v| post(&m, &mut fake, v as usize % 3, v, v))
            .collect();
        assert_eq!(answers.iter().filter(|&&p| p == Posted::Full).count(), 6);
        assert_eq!(m.len(), 3);
        let (got, dropped) = take(&m, &mut fake, 10);
        let want = if kind == Kind::Stack {
            vec![8, 7, 6]
        } else {
            vec![6, 7, 8]
        };
        assert_eq!((got, dropped), (want, 6), "{kind:?}");
        check(&m, &fake);
    }
}

#[test]
fn a_delivery_given_back_is_delivered_again() {
    for kind in [Kind::Queue, Kind::Stack] {
        let mut fake = Fake::default();
        let m = mailbox(kind, 3);
        for v in 0..5 {
            post(&m, &mut fake, 0, v, v);
        }
        let (taken, dropped) = m.take(&mut fake, &[], 10, 0);
        assert_eq!(dropped, 2);
        let items = taken
            .iter()
            .map(|t| (t.item(), t.bytes(), t.large()))
            .collect();
        let _ = m.take(&mut fake, &taken, 0, 0);
        m.give_back(&mut fake, items, dropped, 0);
        assert_eq!(m.snapshot().stats.delivered, 0);
        let want = if kind == Kind::Stack {
            vec![4, 3, 2]
        } else {
            vec![2, 3, 4]
        };
        assert_eq!(take(&m, &mut fake, 10), (want, 2), "{kind:?}");
        check(&m, &fake);
    }
}

#[test]
fn a_delivery_given_back_to_a_closed_box_counts_closed() {
    let mut fake = Fake::default();
    let m = mailbox(Kind::Queue, 3);
    post(&m, &mut fake, 0, 1, 1);
    let (taken, _) = m.take(&mut fake, &[], 10, 0);
    let items = taken
        .iter()
        .map(|t| (t.item(), t.bytes(), t.large()))
        .collect();
    let _ = m.take(&mut fake, &taken, 0, 0);
    m.close(&mut fake);
    m.give_back(&mut fake, items, 0, 0);
    let s = m.snapshot().stats;
    assert_eq!((s.delivered, s.dropped[Reason::Closed as usize]), (0, 1));
    check(&m, &fake);
}

#[test]
fn heavy_messages_settle_their_drops_at_once() {
    let mut fake = Fake::default();
    let m = mailbox(Kind::Queue, 1);
    for v in 0..20 {
        m.post_weighed(&mut fake, 0, (0, v), 0, OWED_WEIGHT, v)
            .expect("post");
        // the bound plus the message just posted, each in its own region
        assert!(fake.regions.len() <= 2, "{} regions", fake.regions.len());
    }
    assert_eq!(take(&m, &mut fake, 10), (vec![19], 19));
    check(&m, &fake);
}

/// Takes with at most `large_max` large messages: their values, and
/// whether the take stopped before a large message.
fn take_limited(
    m: &Mailbox<Fake>,
    fake: &mut Fake,
    n: usize,
    large_max: usize,
) -> (Vec<u64>, bool) {
    let (taken, _, stopped) = m.take_limited(fake, &[], n, large_max, 0);
    let values = taken.iter().map(|t| t.item().1).collect();
    let _ = m.take(fake, &taken, 0, 0);
    (values, stopped)
}

#[test]
fn a_limited_take_stops_before_large_messages() {
    for kind in [Kind::Queue, Kind::Stack] {
        let mut fake = Fake::default();
        let m = mailbox(kind, 10);
        for v in 0..6 {
            let weight = if v % 3 == 1 { LARGE } else { 0 };
            m.post_weighed(&mut fake, v as usize % 2, (0, v), 0, weight, v)
                .expect("post");
        }
        // queue: 0 L1 2 3 L4 5; stack: 5 L4 3 2 L1 0
        let steps: Vec<(usize, Vec<u64>, bool)> = match kind {
            Kind::Stack => vec![
                (0, vec![5], true),
                (0, vec![], true),
                (1, vec![4, 3, 2], true),
                (1, vec![1, 0], false),
            ],
            _ => vec![
                (0, vec![0], true),
                (0, vec![], true),
                (1, vec![1, 2, 3], true),
                (1, vec![4, 5], false),
            ],
        };
        for (large_max, want, stopped) in steps {
            assert_eq!(
                take_limited(&m, &mut fake, 10, large_max),
                (want, stopped),
                "{kind:?}"
            );
            check(&m, &fake);
        }
        assert!(m.is_empty());
        let s = m.snapshot().stats;
        assert_eq!((s.posted, s.delivered), (6, 6));
    }
}

#[test]
fn large_marks_survive_a_give_back_and_a_restore() {
    for kind in [Kind::Queue, Kind::Stack] {
        let mut fake = Fake::default();
        let m = mailbox(kind, 10);
        m.post_weighed(&mut fake, 0, (0, 1), 0, LARGE, 1)
            .expect("post");
        let (taken, dropped, _) = m.take_limited(&mut fake, &[], 10, 1, 2);
        assert!(taken.iter().all(|t| t.large()));
        let items = taken
            .iter()
            .map(|t| (t.item(), t.bytes(), t.large()))
            .collect();
        let _ = m.take(&mut fake, &taken, 0, 3);
        m.give_back(&mut fake, items, dropped, 4);
        assert_eq!(
            take_limited(&m, &mut fake, 10, 0),
            (vec![], true),
            "{kind:?}"
        );
        let (taken, _, _) = m.take_limited(&mut fake, &[], 10, 1, 5);
        let items = taken.iter().map(|t| (t.item(), 0, t.large())).collect();
        m.restore(&mut fake, items, 6).expect("restore");
        let _ = m.take(&mut fake, &taken, 0, 7);
        assert_eq!(
            take_limited(&m, &mut fake, 10, 0),
            (vec![], true),
            "{kind:?}"
        );
        assert_eq!(
            take_limited(&m, &mut fake, 10, 1),
            (vec![1], false),
            "{kind:?}"
        );
        check(&m, &fake);
    }
}

#[test]
fn keep_old_refuses_without_copying() {
    let mut fake = Fake::default();
    let m = mailbox(Kind::KeepOld, 2);
    for v in 0..5 {
        post(&m, &mut fake, v as usize, v, v);
    }
    assert_eq!(fake.copies, 2);
    assert_eq!(take(&m, &mut fake, 10), (vec![0, 1], 3));
    check(&m, &fake);
}

#[test]
fn owed_drops_stay_within_the_slack() {
    let mut fake = Fake::default();
    let m = mailbox(Kind::Queue, 4);
    for v in 0..1000 {
        post(&m, &mut fake, v as usize % 2, v, v);
        let held: u32 = fake.regions.values().sum();
        // max + lanes × slack, plus chunks not yet compacted
        assert!(held <= 4 + 3 * 2 + 2 * 4, "held {held} after {v}");
    }
    assert_eq!(take(&m, &mut fake, 10).0, vec![996, 997, 998, 999]);
    check(&m, &fake);
}

#[test]
fn storage_follows_messages() {
    let mut fake = Fake::default();
    let m = mailbox(Kind::Queue, 1000);
    for v in 0..400 {
        post(&m, &mut fake, v as usize % 3, v, v);
    }
    let (got, _) = take(&m, &mut fake, 400);
    assert_eq!(got.len(), 400);
    assert!(
        fake.regions.len() <= 3,
        "regions left: {}",
        fake.regions.len()
    );
    m.close(&mut fake);
    assert!(fake.regions.is_empty());
    check(&m, &fake);
}

#[test]
fn arming_fires_once_on_the_first_post() {
    let mut fake = Fake::default();
    let m = mailbox(Kind::Queue, 10);
    assert!(m.arm(Arm::Active));
    assert_eq!(
        m.post(&mut fake, 0, (0, 1), 0, 1).expect("post").1,
        Arm::Active
    );
    assert_eq!(
        m.post(&mut fake, 1, (0, 2), 0, 2).expect("post").1,
        Arm::Off
    );
    assert!(!m.arm(Arm::Notify), "data held: deliver now");
    assert_eq!(m.armed(), Arm::Off);
    let _ = take(&m, &mut fake, 10);
    assert!(m.arm(Arm::Notify));
    m.disarm();
    assert_eq!(
        m.post(&mut fake, 0, (0, 3), 0, 3).expect("post").1,
        Arm::Off
    );
}

#[test]
fn restore_puts_skipped_messages_first() {
    for kind in [Kind::Queue, Kind::Stack, Kind::KeepOld] {
        let mut fake = Fake::default();
        let m = mailbox(kind, 10);
        for v in 0..6 {
            post(&m, &mut fake, v as usize % 3, v, v);
        }
        let (taken, _) = m.take(&mut fake, &[], 3, 10);
        let skipped: Vec<_> = taken.iter().map(|t| (t.item(), 0, false)).collect();
        let first: Vec<u64> = taken.iter().map(|t| t.item().1).collect();
        m.restore(&mut fake, skipped, 11).expect("restore");
        let _ = m.take(&mut fake, &taken, 0, 12);
        post(&m, &mut fake, 1, 6, 13);
        let (got, _) = take(&m, &mut fake, 10);
        let want: Vec<u64> = match kind {
            Kind::Stack => [6]
                .into_iter()
                .chain(first.iter().copied())
                .chain([2, 1, 0])
                .collect(),
            _ => first.iter().copied().chain([3, 4, 5, 6]).collect(),
        };
        assert_eq!(got, want, "{kind:?}");
        check(&m, &fake);
    }
}

#[test]
fn restore_into_a_full_box_drops_by_kind() {
    let mut fake = Fake::default();
    let m = mailbox(Kind::Queue, 3);
    for v in 0..3 {
        post(&m, &mut fake, 0, v, v);
    }
    let (taken, _) = m.take(&mut fake, &[], 1, 5);
    post(&m, &mut fake, 1, 3, 6);
    m.restore(&mut fake, vec![(taken[0].item(), 0, false)], 7)
        .expect("restore");
    let _ = m.take(&mut fake, &taken, 0, 8);
    // the restored message was the oldest: a queue drops it
    assert_eq!(take(&m, &mut fake, 10), (vec![1, 2, 3], 1));
    check(&m, &fake);
}

#[test]
fn resize_drops_by_kind() {
    for (kind, want) in [
        (Kind::Queue, vec![3, 4]),
        (Kind::Stack, vec![4, 3]),
        (Kind::KeepOld, vec![0, 1]),
    ] {
        let mut fake = Fake::default();
        let m = mailbox(kind, 5);
        for v in 0..5 {
            post(&m, &mut fake, v as usize, v, v);
        }
        m.resize(&mut fake, 2).expect("resize");
        assert_eq!(take(&m, &mut fake, 10), (want, 3), "{kind:?}");
        check(&m, &fake);
    }
}

#[test]
fn byte_budget_drops_by_size() {
    let mut fake = Fake::default();
    let m = Mailbox::new(Kind::Queue, 10, Some(100), layout(3, 2)).expect("mailbox");
    for (v, bytes) in [(0, 40), (1, 40), (2, 40), (3, 200)] {
        m.post(&mut fake, v as usize, (0, v), bytes, v)
            .expect("post");
    }
    assert_eq!(m.snapshot().bytes, 80);
    assert_eq!(take(&m, &mut fake, 10), (vec![1, 2], 2));
    check(&m, &fake);
}

#[test]
fn byte_budget_keep_old_refuses_and_too_big_is_dropped_uncopied() {
    let mut fake = Fake::default();
    let m = Mailbox::new(Kind::KeepOld, 10, Some(100), layout(3, 2)).expect("mailbox");
    let mut post = |v: u64, bytes| m.post(&mut fake, 0, (0, v), bytes, v).expect("post").0;
    assert_eq!(post(0, 60), Posted::Stored);
    assert_eq!(post(1, 60), Posted::Full);
    assert_eq!(post(2, 40), Posted::Stored);
    assert_eq!(post(3, 101), Posted::Full);
    assert_eq!(fake.copies, 2);
    let snap = m.snapshot();
    assert_eq!(
        (
            snap.bytes,
            snap.len,
            snap.stats.dropped[Reason::Overflow as usize]
        ),
        (100, 2, 2)
    );
    assert_eq!(take(&m, &mut fake, 10), (vec![0, 2], 2));
    assert_eq!(m.snapshot().bytes, 0);
    check(&m, &fake);
}

#[test]
fn storage_of_a_take_in_flight_outlives_drops_and_close() {
    let mut fake = Fake::default();
    let m = mailbox(Kind::Queue, 8);
    for v in 0..8 {
        post(&m, &mut fake, v as usize % 3, v, v);
    }
    let (taken, _) = m.take(&mut fake, &[], 4, 9);
    for v in 8..20 {
        post(&m, &mut fake, v as usize % 3, v, v);
    }
    m.close(&mut fake);
    for t in &taken {
        assert!(fake.regions.contains_key(&t.item().0), "freed while pinned");
    }
    assert_eq!(
        m.post(&mut fake, 0, (0, 99), 0, 30),
        Err(BufferError::Closed)
    );
    let _ = m.take(&mut fake, &taken, 0, 31);
    assert!(fake.regions.is_empty());
    check(&m, &fake);
}

fn with(policy: Policy) -> Mailbox<Fake> {
    mailbox(Kind::Queue, 100).with_policy(Policy {
        manual_clock: true,
        ..policy
    })
}

#[test]
fn max_age_drops_at_delivery_on_the_manual_clock() {
    let mut fake = Fake::default();
    let m = with(Policy {
        max_age: Some(10),
        ..Policy::default()
    });
    for v in 0..3 {
        m.set_time(v * 5);
        post(&m, &mut fake, 0, v, 999);
    }
    m.set_time(16); // ages 16, 11, 6
    m.expire_now(&mut fake, 0);
    assert_eq!(m.len(), 1, "expired without a take");
    assert_eq!(take(&m, &mut fake, 10), (vec![2], 2));
    assert_eq!(m.snapshot().stats.dropped[Reason::Expired as usize], 2);
    check(&m, &fake);
}

#[test]
fn codel_drops_at_the_head_after_an_interval_above_target() {
    let mut fake = Fake::default();
    let m = with(Policy {
        codel: Some(crate::policy::CodelConfig {
            target: 5,
            interval: 100,
        }),
        ..Policy::default()
    });
    for v in 0..20 {
        post(&m, &mut fake, 0, v, 0);
    }
    m.set_time(50); // above target: the interval starts
    assert_eq!(take(&m, &mut fake, 1), (vec![0], 0));
    m.set_time(150); // above target for an interval: a drop, reported
    assert_eq!(take(&m, &mut fake, 1), (vec![2], 1));
    m.set_time(250); // the next drop is due
    let (got, _) = take(&m, &mut fake, 2);
    assert_eq!(got, vec![4, 5]);
    assert_eq!(m.snapshot().stats.dropped[Reason::Expired as usize], 2);
    check(&m, &fake);
}

#[test]
fn red_refuses_posts_early_without_copying() {
    let mut fake = Fake::default();
    let m = with(Policy {
        red: Some(crate::policy::Red {
            min: 2,
            max: 2,
            prob: 1.0,
        }),
        ..Policy::default()
    });
    let answers: Vec<Posted> = (0..5).map(|v| post(&m, &mut fake, 0, v, 0)).collect();
    assert_eq!(answers[..2], [Posted::Stored, Posted::Stored]);
    assert!(answers[2..].iter().all(|&p| p == Posted::Full));
    assert_eq!(fake.copies, 2);
    assert_eq!(take(&m, &mut fake, 10), (vec![0, 1], 3));
    assert_eq!(m.snapshot().stats.dropped[Reason::Early as usize], 3);
    check(&m, &fake);
}

#[test]
fn stack_with_pinned_bottoms_stays_compact() {
    let mut fake = Fake::default();
    let m = Mailbox::new(
        Kind::Stack,
        1000,
        None,
        Layout {
            lanes: 1,
            slack: 8,
            per_chunk: 64,
        },
    )
    .expect("mailbox");
    for round in 0..200u64 {
        for v in 0..64 {
            post(&m, &mut fake, 0, round * 64 + v, round * 64 + v);
        }
        let _ = take(&m, &mut fake, 63);
    }
    // 200 bottoms left behind, one per round: compaction frees the
    // copies taken around them.
    assert_eq!(m.len(), 200);
    let held: u32 = fake.regions.values().sum();
    assert!(held <= 200 * 4 + 64, "copies held: {held}");
    let (all, dropped) = take(&m, &mut fake, 1000);
    assert_eq!((all.len(), dropped), (200, 0));
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first");
    check(&m, &fake);
}

/// The box another build makes from `m`'s picture (items carried by value).
fn rebuilt(m: &Mailbox<Fake>, lanes: usize) -> (Mailbox<Fake>, Fake) {
    let Picture::Box(p) = m.picture() else {
        panic!("a box's picture is a box's")
    };
    let mut fake = Fake::default();
    let p = Picture::Box(p)
        .try_map(|(_, v)| Ok::<_, ()>((0, v)))
        .unwrap();
    let Picture::Box(p) = p else { unreachable!() };
    let b = Mailbox::from_picture(p, &mut fake, layout(lanes, 2)).unwrap();
    (b, fake)
}

fn same_counters(a: &Mailbox<Fake>, b: &Mailbox<Fake>) {
    let (sa, sb) = (a.snapshot(), b.snapshot());
    assert_eq!(sa.stats, sb.stats);
    assert_eq!((sa.len, sa.max, sa.bytes), (sb.len, sb.max, sb.bytes));
    assert_eq!(sa.sojourn, sb.sojourn);
    assert_eq!(a.is_closed(), b.is_closed());
    assert_eq!(a.armed(), b.armed());
}

#[test]
fn a_picture_makes_the_same_box() {
    for kind in [Kind::Queue, Kind::Stack, Kind::KeepOld] {
        for lanes in [3, 1, 5] {
            let mut fake = Fake::default();
            let m = mailbox(kind, 6);
            for v in 0..10 {
                post(&m, &mut fake, (v * 7 % 3) as usize, v, 100 + v * 10);
            }
            let (first, _) = take(&m, &mut fake, 2);
            // put back one: restored messages keep their place
            let (taken, _) = m.take(&mut fake, &[], 1, 300);
            let back = vec![(taken[0].item(), 0, false)];
            let _ = m.take(&mut fake, &taken, 0, 300);
            m.restore(&mut fake, back, 300).unwrap();
            post(&m, &mut fake, 2, 10, 400);
            check(&m, &fake);
            let (b, mut fake_b) = rebuilt(&m, lanes);
            same_counters(&m, &b);
            check(&b, &fake_b);
            let rest = take(&m, &mut fake, 100).0;
            assert_eq!(
                take(&b, &mut fake_b, 100).0,
                rest,
                "{kind:?} {lanes} {first:?}"
            );
            same_counters(&m, &b);
            // it keeps working
            post(&b, &mut fake_b, 0, 99, 500);
            assert_eq!(take(&b, &mut fake_b, 100).0, vec![99]);
            check(&b, &fake_b);
        }
    }
}

#[test]
fn a_picture_carries_owed_drops_settled_arming_and_closing() {
    let mut fake = Fake::default();
    let m = Mailbox::new(Kind::Queue, 3, None, layout(2, 100)).unwrap();
    for v in 0..9 {
        post(&m, &mut fake, v as usize % 2, v, v);
    }
    assert!(!m.arm(Arm::Active), "holds data");
    let (b, mut fb) = rebuilt(&m, 2);
    same_counters(&m, &b);
    assert_eq!(b.snapshot().stats.dropped_by(Reason::Overflow), 6);
    assert_eq!(take(&b, &mut fb, 10).0, vec![6, 7, 8]);
    assert!(b.arm(Arm::Notify));
    let (c, _) = rebuilt(&b, 2);
    assert_eq!(c.armed(), Arm::Notify);
    c.close(&mut Fake::default());
    let (d, mut fd) = rebuilt(&c, 2);
    assert!(d.is_closed());
    same_counters(&c, &d);
    assert!(post_closed(&d, &mut fd));
}

fn post_closed(m: &Mailbox<Fake>, fake: &mut Fake) -> bool {
    m.post(fake, 0, (0, 1), 0, 0) == Err(BufferError::Closed)
}

#[test]
fn a_picture_keeps_sizes_and_a_byte_budget() {
    let mut fake = Fake::default();
    let m = Mailbox::new(Kind::Queue, 10, Some(100), layout(4, 2)).unwrap();
    for v in 0..6 {
        m.post(&mut fake, 0, (0, v), 30, v).unwrap();
    }
    let (b, mut fb) = rebuilt(&m, 4);
    same_counters(&m, &b);
    assert_eq!(b.snapshot().bytes, 90);
    let (taken, _) = b.take(&mut fb, &[], 10, 10);
    assert_eq!(
        taken.iter().map(|t| t.bytes()).collect::<Vec<_>>(),
        vec![30; 3]
    );
}

#[test]
fn a_picture_keeps_heavy_messages_on_their_own() {
    let mut fake = Fake::default();
    let m = mailbox(Kind::Queue, 10);
    for (v, weight) in [(1, 0), (2, 0), (3, ALONE_WEIGHT), (4, 0), (5, LARGE)] {
        m.post_weighed(&mut fake, 0, (0, v), 0, weight, v).unwrap();
    }
    let (b, mut fb) = rebuilt(&m, 3);
    // [1, 2], [3], [4], [5]: the same regions, each heavy one alone
    assert_eq!(m.snapshot().regions, 4);
    assert_eq!(b.snapshot().regions, 4);
    let (taken, _, _) = b.take_limited(&mut fb, &[], 10, 10, 10);
    let large: Vec<bool> = taken.iter().map(|t| t.large()).collect();
    assert_eq!(large, vec![false, false, false, false, true]);
}
