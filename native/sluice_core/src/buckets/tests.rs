//! Unit tests of the buffer of buckets (with a fake storage backend).

use super::*;
use crate::chunks::fake::Fake;

fn cfg(order: Order, within: Within, when_full: WhenFull) -> Config {
    Config {
        width: 10,
        max_age: Some(25),
        order,
        within,
        when_full,
        manual_clock: false,
        per_chunk: 4,
    }
}

fn take(b: &Buckets<Fake>, fake: &mut Fake, n: usize, now: u64) -> (Vec<u64>, u64) {
    let (taken, dropped) = b.take(fake, &[], n, now);
    for t in &taken {
        assert!(
            fake.regions.contains_key(&t.item().0),
            "taken from a freed region"
        );
    }
    let values = taken.iter().map(|t| t.item().1).collect();
    let _ = b.take(fake, &taken, 0, now);
    (values, dropped)
}

fn check(b: &Buckets<Fake>) {
    let s = b.snapshot();
    assert_eq!(
        s.stats.posted,
        s.stats.delivered + s.stats.dropped_total() + s.len as u64
    );
    assert!(s.stats.peak >= s.len);
}

#[test]
fn delivery_order_across_and_within_buckets() {
    // arrivals: 0,1 in slice 0; 2,3 in slice 1; 4 in slice 2
    let times = [0, 5, 10, 15, 20];
    for (order, within, want) in [
        (Order::NewestFirst, Within::Lifo, vec![4, 3, 2, 1, 0]),
        (Order::NewestFirst, Within::Fifo, vec![4, 2, 3, 0, 1]),
        (Order::OldestFirst, Within::Lifo, vec![1, 0, 3, 2, 4]),
        (Order::OldestFirst, Within::Fifo, vec![0, 1, 2, 3, 4]),
    ] {
        let mut fake = Fake::default();
        let b = Buckets::new(cfg(order, within, WhenFull::DropOldest), 10).expect("new");
        for (v, &t) in times.iter().enumerate() {
            b.post(&mut fake, 0, (0, v as u64), 0, t).expect("post");
        }
        assert_eq!(b.buckets(), 3);
        assert_eq!(take(&b, &mut fake, 10, 21).0, want, "{order:?} {within:?}");
        check(&b);
    }
}

#[test]
fn whole_buckets_expire_and_storage_goes() {
    let mut fake = Fake::default();
    let b = Buckets::new(
        cfg(Order::NewestFirst, Within::Lifo, WhenFull::DropOldest),
        100,
    )
    .expect("new");
    for v in 0..10u64 {
        b.post(&mut fake, 0, (0, v), 0, v).expect("post"); // slice 0, newest at 9
    }
    for v in 10..20u64 {
        b.post(&mut fake, 0, (0, v), 0, 30 + v - 10).expect("post"); // slice 3, newest at 39
    }
    // at 35 the first bucket (newest 9) is 26 old: gone whole
    let (got, dropped) = take(&b, &mut fake, 3, 35);
    assert_eq!((got, dropped), (vec![19, 18, 17], 10));
    assert_eq!(b.snapshot().stats.dropped[Reason::Expired as usize], 10);
    // its regions are freed a few per call
    for _ in 0..4 {
        let _ = b.take(&mut fake, &[], 0, 35);
    }
    let held: u32 = fake.regions.values().sum();
    assert!(held <= 8, "copies held: {held}");
    check(&b);
}

#[test]
fn full_buffer_drops_by_policy() {
    for (when_full, want, answers) in [
        (WhenFull::DropOldest, vec![4, 3, 2], 2),
        (WhenFull::DropNew, vec![2, 1, 0], 2),
    ] {
        let mut fake = Fake::default();
        let b = Buckets::new(cfg(Order::NewestFirst, Within::Lifo, when_full), 3).expect("new");
        let fulls = (0..5u64)
            .map(|v| b.post(&mut fake, 0, (0, v), 0, v).expect("post").0)
            .filter(|&p| p == Posted::Full)
            .count();
        assert_eq!(fulls, answers);
        assert_eq!(take(&b, &mut fake, 10, 5), (want, 2), "{when_full:?}");
        check(&b);
    }
}

#[test]
fn a_limited_take_stops_before_large_messages() {
    let mut fake = Fake::default();
    let b = Buckets::new(
        cfg(Order::OldestFirst, Within::Fifo, WhenFull::DropOldest),
        10,
    )
    .expect("new");
    for v in 0..4u64 {
        b.post_weighed(&mut fake, 0, (0, v), 0, if v == 1 { LARGE } else { 0 }, v)
            .expect("post");
    }
    let mut step = |large_max| {
        let (taken, _, stopped) = b.take_limited(&mut fake, &[], 10, large_max, 5);
        let values: Vec<u64> = taken.iter().map(|t| t.item().1).collect();
        let marks: Vec<(u64, bool)> = taken.iter().map(|t| (t.item().1, t.large())).collect();
        let _ = b.take(&mut fake, &taken, 0, 5);
        (values, stopped, marks)
    };
    assert_eq!(step(0), (vec![0], true, vec![(0, false)]));
    assert_eq!(step(0), (vec![], true, vec![]));
    assert_eq!(
        step(1),
        (
            vec![1, 2, 3],
            false,
            vec![(1, true), (2, false), (3, false)]
        )
    );
    check(&b);
}

#[test]
fn restore_puts_back_at_the_head() {
    let mut fake = Fake::default();
    let b = Buckets::new(
        cfg(Order::OldestFirst, Within::Fifo, WhenFull::DropOldest),
        10,
    )
    .expect("new");
    for v in 0..5u64 {
        b.post(&mut fake, 0, (0, v), 0, v * 5).expect("post");
    }
    let (taken, _) = b.take(&mut fake, &[], 3, 21);
    let skipped: Vec<_> = taken[1..].iter().map(|t| (t.item(), 0, false)).collect();
    b.filtered(1).expect("filtered");
    b.restore(&mut fake, skipped, 21).expect("restore");
    let _ = b.take(&mut fake, &taken, 0, 21);
    assert_eq!(take(&b, &mut fake, 10, 21).0, vec![1, 2, 3, 4]);
    check(&b);
}

#[test]
fn resize_close_and_manual_clock() {
    let mut fake = Fake::default();
    let mut c = cfg(Order::NewestFirst, Within::Lifo, WhenFull::DropOldest);
    c.manual_clock = true;
    let b = Buckets::new(c, 10).expect("new");
    b.set_time(100);
    for v in 0..6u64 {
        b.post(&mut fake, 0, (0, v), 0, 999_999).expect("post");
    }
    assert_eq!(b.buckets(), 1, "the callers' time is ignored");
    b.resize(&mut fake, 4).expect("resize");
    assert_eq!(b.snapshot().stats.dropped[Reason::Resize as usize], 2);
    b.set_time(50);
    b.set_time(126);
    assert_eq!(take(&b, &mut fake, 10, 0), (vec![], 6), "expired at 126");
    b.post(&mut fake, 0, (0, 9), 0, 0).expect("post");
    b.close(&mut fake);
    assert!(fake.regions.is_empty());
    assert_eq!(
        b.post(&mut fake, 0, (0, 10), 0, 0),
        Err(BufferError::Closed)
    );
    check(&b);
}

fn rebuilt(b: &Buckets<Fake>) -> (Buckets<Fake>, Fake) {
    let p = b.picture().try_map(|(_, v)| Ok::<_, ()>((0, v))).unwrap();
    let Picture::Buckets(p) = p else {
        panic!("a picture of buckets is one")
    };
    let mut fake = Fake::default();
    let made = Buckets::from_picture(p, &mut fake, 3).unwrap();
    (made, fake)
}

#[test]
fn a_picture_makes_the_same_buffer_of_buckets() {
    for order in [Order::NewestFirst, Order::OldestFirst] {
        for within in [Within::Lifo, Within::Fifo] {
            let mut fake = Fake::default();
            let b = Buckets::new(cfg(order, within, WhenFull::DropOldest), 8).unwrap();
            for v in 0..12 {
                b.post(&mut fake, 0, (0, v), 0, v * 4).unwrap();
            }
            let _ = take(&b, &mut fake, 2, 50);
            check(&b);
            let (c, mut fc) = rebuilt(&b);
            check(&c);
            let (sb, sc) = (b.snapshot(), c.snapshot());
            assert_eq!((sb.stats, sb.len, sb.max), (sc.stats, sc.len, sc.max));
            assert_eq!(sb.sojourn, sc.sojourn);
            assert_eq!(c.buckets(), b.buckets());
            assert_eq!(take(&c, &mut fc, 100, 55), take(&b, &mut fake, 100, 55));
            assert_eq!(b.snapshot().stats, c.snapshot().stats);
            // expiry carries on from the carried arrival times
            c.post(&mut fc, 0, (0, 77), 0, 60).unwrap();
            c.expire_now(&mut fc, 200);
            assert_eq!(c.len(), 0);
            check(&c);
        }
    }
}

#[test]
fn a_picture_of_buckets_carries_the_clock_arming_and_closing() {
    let mut fake = Fake::default();
    let mut config = cfg(Order::OldestFirst, Within::Fifo, WhenFull::DropNew);
    config.manual_clock = true;
    let b = Buckets::new(config, 2).unwrap();
    b.set_time(40);
    for v in 0..3 {
        b.post(&mut fake, 0, (0, v), 0, 0).unwrap();
    }
    let (c, mut fc) = rebuilt(&b);
    assert_eq!(c.snapshot().stats.dropped_by(Reason::Overflow), 1);
    c.set_time(50);
    assert_eq!(take(&c, &mut fc, 10, 0).0, vec![0, 1]);
    // sojourn measured from the carried arrival (40) on the carried clock
    assert_eq!(c.snapshot().sojourn.max(), 10);
    assert!(c.arm(Arm::Active));
    let (d, _) = rebuilt(&c);
    assert_eq!(d.flags.armed(), Arm::Active);
    d.close(&mut Fake::default());
    let (e, mut fe) = rebuilt(&d);
    assert!(e.is_closed());
    assert_eq!(e.post(&mut fe, 0, (0, 1), 0, 0), Err(BufferError::Closed));
    assert_eq!(e.snapshot().stats, d.snapshot().stats);
}
