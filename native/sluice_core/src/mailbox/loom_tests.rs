//! Loom models of the box's races: posts against posts, a take copying
//! out while posts and a close run.

use super::*;
use loom::sync::Arc;

/// Regions are numbers; freed ones are remembered so a copy out of a
/// freed region is caught.
#[derive(Default)]
struct Fake;

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
// Region numbers are never reused, so one set serves every execution.
static FREED: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn freed(region: u32) -> bool {
    FREED.lock().expect("freed").contains(&region)
}

impl Backend for Fake {
    type Region = u32;
    type Item = (u32, u64);
    fn alloc(&mut self) -> u32 {
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }
    fn copy_in(&mut self, region: &u32, item: (u32, u64)) -> (u32, u64) {
        (*region, item.1)
    }
    fn clear(&mut self, _region: &u32) {}
    fn free(&mut self, region: u32) {
        FREED.lock().expect("freed").push(region);
    }
}

/// Explores the interleavings with at most three preemptions each: every
/// race below needs at most two.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

fn boxed(kind: Kind, max: usize) -> Arc<Mailbox<Fake>> {
    let layout = Layout {
        lanes: 2,
        slack: 1,
        per_chunk: 1,
    };
    Arc::new(Mailbox::new(kind, max, None, layout).expect("mailbox"))
}

#[test]
fn concurrent_posts_fire_one_wake_up_and_reconcile() {
    model(|| {
        let b = boxed(Kind::Queue, 1);
        assert!(b.arm(Arm::Notify));
        let posters: Vec<_> = (0..2u64)
            .map(|v| {
                let b = b.clone();
                loom::thread::spawn(move || {
                    let (posted, wake) = b.post(&mut Fake, v as usize, (0, v), 0, v).expect("post");
                    (posted == Posted::Full, wake == Arm::Notify)
                })
            })
            .collect();
        let (taken, _) = b.take(&mut Fake, &[], 1, 5);
        let _ = b.take(&mut Fake, &taken, 0, 5);
        let results: Vec<(bool, bool)> = posters
            .into_iter()
            .map(|p| p.join().expect("poster"))
            .collect();
        let wakes = results.iter().filter(|r| r.1).count();
        assert_eq!(wakes, 1, "exactly one post wakes the owner");
        let s = b.snapshot();
        let fulls = results.iter().filter(|r| r.0).count() as u64;
        assert_eq!(s.stats.dropped[Reason::Overflow as usize], fulls);
        assert_eq!(s.stats.posted, 2);
        assert_eq!(
            s.stats.posted,
            s.stats.delivered + s.stats.dropped_total() + s.len as u64
        );
        assert!(s.len <= 1);
    });
}

#[test]
fn copying_outside_the_lock_is_safe() {
    model(|| {
        let b = boxed(Kind::Queue, 2);
        b.post(&mut Fake, 0, (0, 1), 0, 1).expect("post");
        let taker = {
            let b = b.clone();
            loom::thread::spawn(move || {
                let (taken, _) = b.take(&mut Fake, &[], 1, 3);
                // the copy-out happens here, unlocked
                let freed = taken.iter().any(|t| freed(t.item().0));
                let _ = b.take(&mut Fake, &taken, 0, 3);
                (taken.len(), freed)
            })
        };
        let poster = {
            let b = b.clone();
            loom::thread::spawn(move || {
                for v in 2..4 {
                    let _ = b.post(&mut Fake, 1, (0, v), 0, v);
                }
                b.close(&mut Fake);
            })
        };
        poster.join().expect("poster");
        let (n, freed) = taker.join().expect("taker");
        assert!(!freed, "a region was freed under a take in flight");
        let s = b.snapshot();
        assert_eq!(s.stats.posted, 3);
        assert_eq!(s.stats.delivered, n as u64);
        assert_eq!(s.stats.posted, s.stats.delivered + s.stats.dropped_total());
    });
}
