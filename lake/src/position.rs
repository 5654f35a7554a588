//! Positions of items within an input, and how they are kept in the Delta log.
//!
//! A Delta `txn` action carries one `i64` version per application id, but a Kinesis sequence
//! number is a decimal of up to 128 digits. A [`Position`] holds any non-negative decimal of up
//! to 144 digits as eight 18-digit chunks (each fits an `i64`), compared numerically.
//!
//! In the log, an input's position is one or more `txn` actions written in the same commit:
//! - a position below 10^18 (a line number, an offset) is the app id's own version;
//! - a larger one writes `-k` as the app id's version and its `k` significant chunks as the
//!   versions of `<app id>#0` … `<app id>#k-1`, most significant first.
//!
//! Because every commit writes all of them atomically, reading them back from one snapshot
//! always gives exactly the position last committed.

use deltalake::kernel::Transaction;

const CHUNKS: usize = 8;
const CHUNK_DIGITS: usize = 18;
const CHUNK_BASE: i64 = 1_000_000_000_000_000_000;

/// A non-negative position of up to 144 decimal digits, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position([i64; CHUNKS]);

impl Position {
    /// The position of a small non-negative number (negative numbers are taken as 0).
    pub fn from_int(n: i64) -> Position {
        let mut chunks = [0; CHUNKS];
        chunks[CHUNKS - 1] = n.max(0) % CHUNK_BASE;
        chunks[CHUNKS - 2] = n.max(0) / CHUNK_BASE;
        Position(chunks)
    }

    /// The position written as `digits` (e.g. a Kinesis sequence number). `None` when it is
    /// not a plain decimal of 1 to 144 digits.
    pub fn from_decimal(digits: &str) -> Option<Position> {
        if digits.is_empty()
            || digits.len() > CHUNKS * CHUNK_DIGITS
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut chunks = [0; CHUNKS];
        let mut end = digits.len();
        for chunk in chunks.iter_mut().rev() {
            if end == 0 {
                break;
            }
            let start = end.saturating_sub(CHUNK_DIGITS);
            // At most 18 digits, all checked above: fits an i64.
            *chunk = digits.as_bytes()[start..end]
                .iter()
                .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
            end = start;
        }
        Some(Position(chunks))
    }

    /// The decimal digits of the position, without leading zeros.
    pub fn to_decimal(&self) -> String {
        let first = self.0.iter().position(|c| *c != 0).unwrap_or(CHUNKS - 1);
        let mut out = self.0[first].to_string();
        for chunk in &self.0[first + 1..] {
            out.push_str(&format!("{chunk:018}"));
        }
        out
    }

    /// The chunks from the first non-zero one on (at least one).
    fn significant(&self) -> &[i64] {
        let first = self.0.iter().position(|c| *c != 0).unwrap_or(CHUNKS - 1);
        &self.0[first..]
    }

    /// The `txn` actions that record this position for `app_id`.
    pub fn to_transactions(&self, app_id: &str, last_updated_ms: i64) -> Vec<Transaction> {
        let txn =
            |id: String, v: i64| Transaction::new_with_last_update(id, v, Some(last_updated_ms));
        match self.significant() {
            [only] => vec![txn(app_id.to_string(), *only)],
            chunks => {
                let mut txns = vec![txn(app_id.to_string(), -(chunks.len() as i64))];
                txns.extend(
                    chunks
                        .iter()
                        .enumerate()
                        .map(|(i, c)| txn(chunk_app_id(app_id, i), *c)),
                );
                txns
            }
        }
    }

    /// The position committed for `app_id`, rebuilt from the `txn` versions of one snapshot
    /// (`version` looks up an app id). `None` when nothing was committed for the app id.
    pub fn from_transactions(
        app_id: &str,
        version: impl Fn(&str) -> Option<i64>,
    ) -> Option<Position> {
        let own = version(app_id)?;
        if own >= 0 {
            return Some(Position::from_int(own));
        }
        let k = usize::try_from(-own).unwrap_or(0).min(CHUNKS);
        let mut chunks = [0; CHUNKS];
        for i in 0..k {
            chunks[CHUNKS - k + i] = version(&chunk_app_id(app_id, i)).unwrap_or(0);
        }
        Some(Position(chunks))
    }

    /// The position as an `i64`, when it is one (a line number or an offset).
    pub fn to_i64(&self) -> Option<i64> {
        if self.0[..CHUNKS - 2].iter().any(|c| *c != 0) {
            return None;
        }
        self.0[CHUNKS - 2]
            .checked_mul(CHUNK_BASE)?
            .checked_add(self.0[CHUNKS - 1])
    }
}

impl From<i64> for Position {
    fn from(n: i64) -> Position {
        Position::from_int(n)
    }
}

fn chunk_app_id(app_id: &str, i: usize) -> String {
    format!("{app_id}#{i}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const REAL: &str = "49590338271490256608559692538361571095921575989136588898";

    fn round_trip(p: Position) -> Position {
        let txns: HashMap<String, i64> = p
            .to_transactions("kinesis:s/shard", 0)
            .into_iter()
            .map(|t| (t.app_id, t.version))
            .collect();
        Position::from_transactions("kinesis:s/shard", |id| txns.get(id).copied()).unwrap()
    }

    #[test]
    fn sequence_numbers_survive_the_log_exactly() {
        let max = "9".repeat(128);
        for digits in [
            "0",
            "7",
            "999999999999999999",
            "1000000000000000000",
            REAL,
            max.as_str(),
        ] {
            let p = Position::from_decimal(digits).unwrap();
            assert_eq!(p.to_decimal(), digits);
            assert_eq!(round_trip(p), p, "{digits}");
        }
        assert_eq!(round_trip(Position::from_int(42)), Position::from_int(42));
        // A small position is a single txn whose version is the position itself.
        let txns = Position::from_int(42).to_transactions("s3:k@e", 0);
        assert_eq!((txns.len(), txns[0].version), (1, 42));
        // A 56-digit sequence number takes the marker and four chunks.
        assert_eq!(
            Position::from_decimal(REAL)
                .unwrap()
                .to_transactions("a", 0)
                .len(),
            5
        );
        assert_eq!(Position::from_transactions("other", |_| None), None);
    }

    #[test]
    fn offsets_convert_back_to_i64() {
        for n in [
            0,
            1,
            999_999_999_999_999_999,
            1_000_000_000_000_000_000,
            i64::MAX,
        ] {
            assert_eq!(Position::from_int(n).to_i64(), Some(n));
        }
        assert_eq!(Position::from_decimal(REAL).unwrap().to_i64(), None);
    }

    #[test]
    fn order_is_numeric_order() {
        let ordered = [
            "0",
            "9",
            "10",
            "999999999999999999",
            "1000000000000000000",
            REAL,
            "49590338271490256608559692538361571095921575989136588899",
            "49590338271490256608559692538361571095921575989136588900",
            "100000000000000000000000000000000000000000000000000000000",
        ];
        let positions: Vec<Position> = ordered
            .iter()
            .map(|d| Position::from_decimal(d).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            Position::from_int(10),
            Position::from_decimal("10").unwrap()
        );
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        for bad in ["", "-1", "1.5", "12a", &"1".repeat(145)] {
            assert_eq!(Position::from_decimal(bad), None, "{bad}");
        }
    }
}
