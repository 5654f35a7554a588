//! Splitting CPU-bound work over the machine's cores, for the cleaners' large batches.

/// How many cores this process may use (1 when it cannot tell).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs of items per thread that [`map_chunks`] cuts a slice into: a thread that is done with
/// its runs takes the next one left, so a thread slowed by another process (or by a run of
/// longer items) does not leave the other cores idle while it finishes an equal share.
const RUNS_PER_THREAD: usize = 4;

/// Applies `f` to `items` cut into contiguous runs of about equal length on up to `parts`
/// threads at once (the calling thread is one of them), and returns the results in the runs'
/// order; the results may borrow from `items`. Each thread takes the next run left until none
/// is, so the threads finish together even when one of them is slowed. With one part (or one
/// item) `f` runs once, on the calling thread, over all of `items`. A panic in `f` is re-raised
/// on the calling thread, as if `f` had been called there.
pub fn map_chunks<'a, T, R, F>(items: &'a [T], parts: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&'a [T]) -> R + Sync,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    if items.is_empty() {
        return Vec::new();
    }
    let threads = parts.max(1).min(items.len());
    if threads == 1 {
        return vec![f(items)];
    }
    let runs: Vec<&'a [T]> = items
        .chunks(items.len().div_ceil(threads * RUNS_PER_THREAD))
        .collect();
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(run) = runs.get(i) else {
                return done;
            };
            done.push((i, f(run)));
        }
    };
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut results = work();
        for helper in helpers {
            results.extend(
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        results
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Drops `items` on up to `parts` threads at once, each taking a contiguous run, and returns
/// when all are dropped. Freeing a large batch's rows (a few heap strings each) on one thread
/// took as long as building its Parquet files.
pub fn drop_in_parts<T: Send>(mut items: Vec<T>, parts: usize) {
    let size = items.len().div_ceil(parts.max(1)).max(1);
    if size >= items.len() {
        return drop(items);
    }
    std::thread::scope(|scope| {
        while items.len() > size {
            let run = items.split_off(items.len() - size);
            scope.spawn(move || drop(run));
        }
        drop(items);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_whatever_the_split() {
        let items: Vec<u32> = (0..1001).collect();
        for parts in [0, 1, 2, 3, 7, 1001, 5000] {
            let runs = map_chunks(&items, parts, |run| run.to_vec());
            assert!(
                runs.len() <= parts.max(1) * RUNS_PER_THREAD,
                "{parts} parts"
            );
            assert_eq!(runs.concat(), items, "{parts} parts");
        }
        assert!(map_chunks(&[] as &[u32], 4, |run| run.len()).is_empty());
    }

    #[test]
    fn a_slowed_thread_leaves_the_other_runs_to_the_others() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::{Duration, Instant};
        let items: Vec<u32> = (0..800).collect();
        let runs = 2 * RUNS_PER_THREAD;
        let done = AtomicUsize::new(0);
        let done_while_first_ran = map_chunks(&items, 2, |run| {
            if run[0] == 0 {
                // The first run is slowed until every other run is done (or a few seconds
                // pass, which a split into one equal share per thread would take).
                let deadline = Instant::now() + Duration::from_secs(5);
                while done.load(Ordering::SeqCst) < runs - 1 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            done.fetch_add(1, Ordering::SeqCst)
        });
        assert_eq!(done_while_first_ran.len(), runs);
        assert_eq!(done_while_first_ran[0], runs - 1);
    }

    #[test]
    fn every_item_is_dropped_once_whatever_the_split() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        for (items, parts) in [(0, 2), (1, 2), (5, 1), (1000, 2), (1001, 3), (3, 8)] {
            let counter = Arc::new(AtomicUsize::new(0));
            struct Counted(Arc<AtomicUsize>);
            impl Drop for Counted {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let all: Vec<Counted> = (0..items).map(|_| Counted(counter.clone())).collect();
            drop_in_parts(all, parts);
            assert_eq!(
                counter.load(Ordering::SeqCst),
                items,
                "{items} items, {parts} parts"
            );
        }
    }
}
