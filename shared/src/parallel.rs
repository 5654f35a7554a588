//! Splitting CPU-bound work over the machine's cores, for the cleaners' large batches.

/// How many cores this process may use (1 when it cannot tell).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Applies `f` to `items` cut into at most `parts` contiguous runs of about equal length, each
/// run on a thread of its own (the calling thread waits), and returns the results in the runs'
/// order; the results may borrow from `items`. With one part (or one item) `f` runs on the
/// calling thread. A panic in `f` is
/// re-raised on the calling thread, as if `f` had been called there.
pub fn map_chunks<'a, T, R, F>(items: &'a [T], parts: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&'a [T]) -> R + Sync,
{
    if items.is_empty() {
        return Vec::new();
    }
    let size = items.len().div_ceil(parts.max(1));
    if size >= items.len() {
        return vec![f(items)];
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(size)
            .map(|chunk| scope.spawn(move || f(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
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
            let sums = map_chunks(&items, parts, |run| run.to_vec());
            assert!(sums.len() <= parts.max(1), "{parts} parts");
            assert_eq!(sums.concat(), items, "{parts} parts");
        }
        assert!(map_chunks(&[] as &[u32], 4, |run| run.len()).is_empty());
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
