//! What the fuzz targets share: the invariant every cleaner keeps — each record it is handed
//! ends as exactly one row or exactly one quarantine entry holding its exact bytes.

use lake::Input;

/// The rows and the quarantined bytes a cleaner's inputs hold.
#[derive(Debug, Default)]
pub struct Kept {
    /// Rows, in every input's columns and rows.
    pub rows: usize,
    /// Each quarantine entry's raw bytes.
    pub quarantined: Vec<Vec<u8>>,
}

impl Kept {
    /// What `inputs` keep.
    pub fn of(inputs: &[Input]) -> Kept {
        let mut kept = Kept::default();
        for input in inputs {
            kept.rows += input.rows.len() + input.columns.iter().map(|c| c.len()).sum::<usize>();
            kept.quarantined
                .extend(input.quarantine.iter().map(|(_, row)| row.raw_bytes()));
        }
        kept
    }

    /// Asserts that `records` records became exactly one row or one quarantine entry each, and
    /// that every quarantined entry holds the exact bytes of one of `sent` (the records as
    /// sent), each used once.
    pub fn assert_each_record_once(&self, records: usize, sent: &[&[u8]]) {
        assert_eq!(
            self.rows + self.quarantined.len(),
            records,
            "{records} records in, {} rows and {} quarantined out",
            self.rows,
            self.quarantined.len()
        );
        let mut unused: Vec<&[u8]> = sent.to_vec();
        for raw in &self.quarantined {
            let at = unused.iter().position(|s| s == raw).unwrap_or_else(|| {
                panic!("quarantined bytes {raw:?} are none of the records sent")
            });
            unused.swap_remove(at);
        }
    }
}

/// The record type a selector byte names: `p`, `g` or `u`, any other byte by its value.
pub fn record_type(selector: u8) -> shared::RecordType {
    use shared::RecordType;
    match selector {
        b'p' => RecordType::Pin,
        b'g' => RecordType::Geo,
        b'u' => RecordType::User,
        n => RecordType::ALL[usize::from(n) % RecordType::ALL.len()],
    }
}

/// Splits a fuzz input at its first newline: a header line (a key, a name, a request line)
/// and the rest.
pub fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}
