//! Exactly-once bookkeeping for inputs that share one offset space and may arrive in any order:
//! the files of one Kafka topic-partition written by the MSK Connect S3 sink
//! (`<topic>+<partition>+<start offset>.json`, records at offsets start, start+1, …).
//!
//! S3 event notifications are unordered, so a high-water mark would skip a file that arrives
//! after a later one was committed. Instead the table keeps the *set* of committed offsets as
//! disjoint ranges, in the same commit as the rows: `<app id>` holds the number of ranges `r`,
//! and `<app id>#2i` / `<app id>#2i+1` the first and last offset of range `i`. That is `1 + 2r`
//! `txn` entries per topic-partition; `r` is the number of gaps still open plus one, so once
//! every file up to the highest offset has landed the bookkeeping is three entries, whatever
//! the number of files.

use deltalake::kernel::Transaction;

/// A set of `i64` offsets as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetRanges {
    ranges: Vec<(i64, i64)>,
}

impl OffsetRanges {
    /// The ranges committed for `app_id`, rebuilt from one snapshot's `txn` versions. A range
    /// whose entries are missing (never written by this encoding) is left out.
    pub fn from_transactions(app_id: &str, version: impl Fn(&str) -> Option<i64>) -> Self {
        let count = version(app_id).unwrap_or(0).max(0);
        let mut set = OffsetRanges::default();
        for i in 0..count {
            let lo = version(&bound_app_id(app_id, 2 * i));
            let hi = version(&bound_app_id(app_id, 2 * i + 1));
            if let (Some(lo), Some(hi)) = (lo, hi) {
                set.insert_range(lo, hi);
            }
        }
        set
    }

    /// True when `offset` is in the set.
    pub fn contains(&self, offset: i64) -> bool {
        let i = self.ranges.partition_point(|(_, hi)| *hi < offset);
        self.ranges.get(i).is_some_and(|(lo, _)| *lo <= offset)
    }

    /// Adds one offset.
    pub fn insert(&mut self, offset: i64) {
        self.insert_range(offset, offset);
    }

    /// Adds the offsets `lo..=hi`, merging with overlapping or adjacent ranges.
    pub fn insert_range(&mut self, lo: i64, hi: i64) {
        let (mut lo, mut hi) = (lo.min(hi), lo.max(hi));
        // The first range that ends at or after lo - 1 (touching or overlapping).
        let start = self
            .ranges
            .partition_point(|(_, h)| h.saturating_add(1) < lo);
        let mut end = start;
        while end < self.ranges.len() && self.ranges[end].0 <= hi.saturating_add(1) {
            lo = lo.min(self.ranges[end].0);
            hi = hi.max(self.ranges[end].1);
            end += 1;
        }
        self.ranges.splice(start..end, [(lo, hi)]);
    }

    /// The ranges, ascending.
    pub fn ranges(&self) -> &[(i64, i64)] {
        &self.ranges
    }

    /// The `txn` actions that record this set for `app_id` (`1 + 2r` of them).
    pub fn to_transactions(&self, app_id: &str, last_updated_ms: i64) -> Vec<Transaction> {
        let txn =
            |id: String, v: i64| Transaction::new_with_last_update(id, v, Some(last_updated_ms));
        let mut txns = Vec::with_capacity(1 + 2 * self.ranges.len());
        txns.push(txn(app_id.to_string(), self.ranges.len() as i64));
        for (i, (lo, hi)) in self.ranges.iter().enumerate() {
            txns.push(txn(bound_app_id(app_id, 2 * i as i64), *lo));
            txns.push(txn(bound_app_id(app_id, 2 * i as i64 + 1), *hi));
        }
        txns
    }
}

fn bound_app_id(app_id: &str, i: i64) -> String {
    format!("{app_id}#{i}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn round_trip(set: &OffsetRanges) -> OffsetRanges {
        let txns: HashMap<String, i64> = set
            .to_transactions("msk:t+0", 0)
            .into_iter()
            .map(|t| (t.app_id, t.version))
            .collect();
        OffsetRanges::from_transactions("msk:t+0", |id| txns.get(id).copied())
    }

    #[test]
    fn offsets_arriving_in_any_order_merge_into_one_range() {
        let mut set = OffsetRanges::default();
        for offset in [5, 0, 9, 2, 7, 1, 3, 8, 6, 4] {
            assert!(!set.contains(offset));
            set.insert(offset);
            assert!(set.contains(offset));
            assert_eq!(round_trip(&set), set);
        }
        assert_eq!(set.ranges(), &[(0, 9)]);
        assert_eq!(set.to_transactions("msk:t+0", 0).len(), 3);
    }

    #[test]
    fn gaps_stay_open_until_filled() {
        let mut set = OffsetRanges::default();
        for offset in [0, 1, 2, 10, 11, 5] {
            set.insert(offset);
        }
        assert_eq!(set.ranges(), &[(0, 2), (5, 5), (10, 11)]);
        for (offset, inside) in [
            (0, true),
            (3, false),
            (5, true),
            (6, false),
            (11, true),
            (12, false),
        ] {
            assert_eq!(set.contains(offset), inside, "{offset}");
        }
        set.insert_range(3, 9);
        assert_eq!(set.ranges(), &[(0, 11)]);
        assert_eq!(round_trip(&set), set);
    }

    #[test]
    fn nothing_committed_reads_as_the_empty_set() {
        let set = OffsetRanges::from_transactions("msk:t+0", |_| None);
        assert!(set.ranges().is_empty());
        assert!(!set.contains(0));
    }
}
