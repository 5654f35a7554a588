//! batch-clean's reading of a raw object: any bytes (NDJSON lines, gzip, torn, empty) under
//! any key. The input's first line is the object's key, the rest its bytes. Every non-blank
//! line becomes exactly one row or one quarantine entry holding the line's exact bytes.
#![no_main]

use batch_clean::objects::{decoded, ObjectRef};
use batch_clean::{clean_object, BatchReport};
use libfuzzer_sys::fuzz_target;
use pinpipe_fuzz::{first_line, Kept};

fuzz_target!(|data: &[u8]| {
    let (key, raw) = first_line(data);
    let key = String::from_utf8_lossy(key).into_owned();
    let object = ObjectRef {
        bucket: "raw".into(),
        key: key.clone(),
        etag: Some("e".into()),
        size: None,
    };
    let Ok(bytes) = decoded(&key, raw) else {
        return;
    };
    let mut report = BatchReport::default();
    let input = clean_object(&object, "e", &bytes, &mut report);
    let lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .collect();
    assert_eq!(report.counts.records_in, lines.len());
    Kept::of(&[input]).assert_each_record_once(lines.len(), &lines);
});
