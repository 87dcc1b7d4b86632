//! The embedded store's write log: what each batch of writes did, appended
//! as one record and flushed to disk before the batch becomes visible and
//! its callers are answered.
//!
//! A durable redb commit writes about fifteen pages and their checksums
//! before its fsync; a batch's record is one append. So the writer logs
//! each batch, commits it to redb without an fsync, and commits redb
//! durably only now and then (a checkpoint), after which the log starts
//! over. On open, whatever the log still holds is applied again. A record
//! says what each key became (a value, or gone), never how (an increment),
//! so applying records that redb already has, in order, changes nothing.
//!
//! The file is written ahead with zeros and never shrinks at a checkpoint,
//! so an append overwrites blocks already on disk: its fsync writes the
//! record and no file size (one disk write fewer per batch; see
//! `docs/benchmarks.md`, "A write log written over"). Starting over is a
//! new generation in the file's header; each record's checksum covers the
//! generation, so the records of earlier ones left further in the file end
//! the log as surely as the zeros do.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The file's first bytes: what it is, then its generation (`u64`).
const MAGIC: &[u8; 8] = b"hive-kv1";

/// Bytes of the file's header: [`MAGIC`] and the generation.
const FILE_HEADER: u64 = 16;

/// Bytes before each record: its payload's length and CRC-32 (of the
/// generation and the payload).
const HEADER: usize = 8;

/// The file grows by this much at a time, written with zeros.
const GROW: u64 = 1 << 20;

/// A file grown past this (by an unusually large batch) is cut back when
/// the log starts over.
const KEEP: u64 = 16 << 20;

const SET: u8 = 0;
const DELETE: u8 = 1;

/// What one write did to one key.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    Set {
        namespace: String,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        namespace: String,
        key: String,
    },
}

/// The effects of one batch, encoded as they are made.
#[derive(Default)]
pub struct Record {
    payload: Vec<u8>,
}

impl Record {
    /// `namespace`/`key` now holds `value`.
    pub fn set(&mut self, namespace: &str, key: &str, value: &[u8]) {
        self.payload.push(SET);
        self.field(namespace.as_bytes());
        self.field(key.as_bytes());
        self.field(value);
    }

    /// `namespace`/`key` is gone.
    pub fn delete(&mut self, namespace: &str, key: &str) {
        self.payload.push(DELETE);
        self.field(namespace.as_bytes());
        self.field(key.as_bytes());
    }

    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    fn field(&mut self, bytes: &[u8]) {
        // Keys are at most 1 KiB and values 1 MiB (check_key, check_value).
        self.payload
            .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.payload.extend_from_slice(bytes);
    }
}

/// The log file, open for appending.
pub struct WriteLog {
    file: File,
    /// The current generation: the records of this one are the log.
    generation: u64,
    /// Where the next record goes.
    end: u64,
    /// The file's length: zeros (or records of earlier generations) after
    /// `end`.
    allocated: u64,
    /// The file is in the format before generations (records from its
    /// first byte, checksums of the payload alone): read once, then
    /// started over in the current one.
    legacy: bool,
}

impl WriteLog {
    /// Opens (or creates) the log at `path` and reads the records it holds.
    /// A record cut short or garbled (the host died while writing it, so
    /// its batch was never answered) ends the log; the next record is
    /// written over it. [`Self::clear`] it once the records are applied,
    /// before appending.
    pub fn open(path: &Path) -> Result<(WriteLog, Vec<Vec<Effect>>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening the write log {}", path.display()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("reading the write log {}", path.display()))?;
        let found =
            read(&bytes).with_context(|| format!("reading the write log {}", path.display()))?;
        let mut log = WriteLog {
            file,
            generation: found.generation,
            end: found.end,
            allocated: bytes.len() as u64,
            legacy: found.legacy,
        };
        if bytes.is_empty() {
            log.start_over()
                .with_context(|| format!("creating the write log {}", path.display()))?;
        }
        Ok((log, found.records))
    }

    /// Appends `record` and waits until it is on disk.
    pub fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let payload = &record.payload;
        let mut bytes = Vec::with_capacity(HEADER + payload.len());
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&checksum(self.generation, payload).to_le_bytes());
        bytes.extend_from_slice(payload);
        let end = self.end + bytes.len() as u64;
        let written = self
            .grow_to(end)
            .and_then(|()| self.file.write_all_at(&bytes, self.end))
            .and_then(|()| self.file.sync_data());
        if let Err(err) = written {
            // Whatever part of the record made it must not read as one
            // should the host stop now: its callers hear it failed.
            let _ = self.file.write_all_at(&[0; HEADER], self.end);
            return Err(err);
        }
        self.end = end;
        Ok(())
    }

    /// The records in the file at `path`, as [`Self::open`] finds them,
    /// leaving the file as it is.
    #[cfg(test)]
    pub fn records(path: &Path) -> Result<Vec<Vec<Effect>>> {
        Ok(read(&std::fs::read(path)?)?.records)
    }

    /// Bytes of records in the log.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(FILE_HEADER)
    }

    /// Empties the log, once redb holds everything in it durably.
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.start_over()
    }

    /// A new generation: the header says it, and the records of the one
    /// before no longer count.
    fn start_over(&mut self) -> std::io::Result<()> {
        if self.legacy || self.allocated > KEEP {
            self.file.set_len(0)?;
            self.allocated = 0;
            self.legacy = false;
        }
        self.generation = self.generation.wrapping_add(1);
        self.grow_to(FILE_HEADER)?;
        let mut header = [0; FILE_HEADER as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..].copy_from_slice(&self.generation.to_le_bytes());
        self.file.write_all_at(&header, 0)?;
        self.file.sync_data()?;
        self.end = FILE_HEADER;
        Ok(())
    }

    /// Writes zeros past the file's end, a [`GROW`] at a time, until it
    /// holds `end` bytes; the next `sync_data` makes them durable.
    fn grow_to(&mut self, end: u64) -> std::io::Result<()> {
        if end <= self.allocated {
            return Ok(());
        }
        let target = end.div_ceil(GROW) * GROW;
        let zeros = vec![0; GROW as usize];
        while self.allocated < target {
            let chunk = (target - self.allocated).min(GROW) as usize;
            self.file.write_all_at(&zeros[..chunk], self.allocated)?;
            self.allocated += chunk as u64;
        }
        Ok(())
    }
}

/// A record's checksum: of its generation and its payload.
fn checksum(generation: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&generation.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// What a log file holds.
struct Contents {
    records: Vec<Vec<Effect>>,
    generation: u64,
    /// Where its last whole record ends.
    end: u64,
    legacy: bool,
}

/// The records of the log file `bytes`, in either format.
fn read(bytes: &[u8]) -> Result<Contents> {
    if bytes.is_empty() {
        return Ok(Contents {
            records: Vec::new(),
            generation: 0,
            end: 0,
            legacy: false,
        });
    }
    let Some(generation) = bytes
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.get(..8))
        .and_then(|word| word.try_into().ok())
        .map(u64::from_le_bytes)
    else {
        // No header: the format before generations, whose records start
        // at the first byte.
        let (records, end) = read_records(bytes, 0, crc32fast::hash)?;
        return Ok(Contents {
            records,
            generation: 0,
            end: end as u64,
            legacy: true,
        });
    };
    let (records, end) = read_records(bytes, FILE_HEADER as usize, |payload| {
        checksum(generation, payload)
    })?;
    Ok(Contents {
        records,
        generation,
        end: end as u64,
        legacy: false,
    })
}

/// The whole records in `bytes` from `at` on, each checked with `crc`, and
/// where they end.
fn read_records(
    bytes: &[u8],
    mut at: usize,
    crc: impl Fn(&[u8]) -> u32,
) -> Result<(Vec<Vec<Effect>>, usize)> {
    let mut records = Vec::new();
    while bytes.len().saturating_sub(at) >= HEADER {
        let len = u32::from_le_bytes(word(bytes, at)) as usize;
        let sum = u32::from_le_bytes(word(bytes, at + 4));
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        // Zeros written ahead end the log here; so does a record of an
        // earlier generation, or one cut short.
        if len == 0 || crc(payload) != sum {
            break;
        }
        // A record whose checksum holds was written whole: one that still
        // does not decode means the file is not a Hive write log.
        records.push(decode(payload)?);
        at += HEADER + len;
    }
    Ok((records, at))
}

fn word(bytes: &[u8], at: usize) -> [u8; 4] {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    word
}

fn decode(mut payload: &[u8]) -> Result<Vec<Effect>> {
    let mut effects = Vec::new();
    while let Some((&tag, rest)) = payload.split_first() {
        payload = rest;
        let namespace = text(field(&mut payload)?)?;
        let key = text(field(&mut payload)?)?;
        effects.push(match tag {
            SET => Effect::Set {
                namespace,
                key,
                value: field(&mut payload)?.to_vec(),
            },
            DELETE => Effect::Delete { namespace, key },
            other => bail!("unknown write kind {other}"),
        });
    }
    Ok(effects)
}

fn field<'a>(payload: &mut &'a [u8]) -> Result<&'a [u8]> {
    if payload.len() < 4 {
        bail!("a write cut short");
    }
    let len = u32::from_le_bytes(word(payload, 0)) as usize;
    let Some(bytes) = payload.get(4..4 + len) else {
        bail!("a write cut short");
    };
    *payload = &payload[4 + len..];
    Ok(bytes)
}

fn text(bytes: &[u8]) -> Result<String> {
    Ok(std::str::from_utf8(bytes)
        .context("a key that is not UTF-8")?
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: &[u8]) -> Record {
        let mut record = Record::default();
        record.set("shop", "k", value);
        record.delete("shop", "gone");
        record
    }

    fn expected(value: &[u8]) -> Vec<Effect> {
        vec![
            Effect::Set {
                namespace: "shop".into(),
                key: "k".into(),
                value: value.to_vec(),
            },
            Effect::Delete {
                namespace: "shop".into(),
                key: "gone".into(),
            },
        ]
    }

    /// A log holding the records of values 1 and 2, closed.
    fn two_records() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.log");
        let (mut log, records) = WriteLog::open(&path).unwrap();
        assert!(records.is_empty());
        log.append(&record(b"1")).unwrap();
        log.append(&record(b"2")).unwrap();
        (dir, path)
    }

    #[test]
    fn records_read_back_in_order() {
        let (_dir, path) = two_records();
        let (_, records) = WriteLog::open(&path).unwrap();
        assert_eq!(records, vec![expected(b"1"), expected(b"2")]);
    }

    /// The file's bytes, and where the second of its two records ends.
    fn bytes_and_end(path: &std::path::Path) -> (Vec<u8>, usize) {
        let bytes = std::fs::read(path).unwrap();
        let (_, end) =
            read_records(&bytes, FILE_HEADER as usize, |payload| checksum(1, payload)).unwrap();
        (bytes, end)
    }

    #[test]
    fn a_record_cut_short_is_dropped_and_the_log_goes_on_after_the_good_ones() {
        let (_dir, path) = two_records();
        let (mut bytes, end) = bytes_and_end(&path);
        // The second record loses its last byte, as if the host died
        // while writing it.
        bytes[end - 1] = 0;
        std::fs::write(&path, &bytes).unwrap();
        let (mut log, records) = WriteLog::open(&path).unwrap();
        assert_eq!(records, vec![expected(b"1")]);
        log.append(&record(b"3")).unwrap();
        drop(log);
        let (_, records) = WriteLog::open(&path).unwrap();
        assert_eq!(records, vec![expected(b"1"), expected(b"3")]);
    }

    #[test]
    fn a_garbled_record_ends_the_log() {
        let (_dir, path) = two_records();
        let (mut bytes, end) = bytes_and_end(&path);
        bytes[end - 1] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, records) = WriteLog::open(&path).unwrap();
        assert_eq!(records, vec![expected(b"1")]);
    }

    #[test]
    fn a_cleared_log_is_empty_though_its_old_records_are_still_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.log");
        let (mut log, _) = WriteLog::open(&path).unwrap();
        log.append(&record(b"1")).unwrap();
        log.append(&record(b"2")).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        log.clear().unwrap();
        assert_eq!(log.len(), 0);
        drop(log);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size, "not cut");
        let (mut log, records) = WriteLog::open(&path).unwrap();
        assert!(records.is_empty());
        // A record as long as the first old one, over it: the second old
        // one, right after it, is of the generation before and does not
        // count.
        log.append(&record(b"3")).unwrap();
        drop(log);
        let (_, records) = WriteLog::open(&path).unwrap();
        assert_eq!(records, vec![expected(b"3")]);
    }

    #[test]
    fn appends_write_over_the_file_without_growing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.log");
        let (mut log, _) = WriteLog::open(&path).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(size, GROW, "written ahead when created");
        for value in 0..100u32 {
            log.append(&record(&value.to_le_bytes())).unwrap();
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
        // A record bigger than what is left grows the file to hold it.
        let mut big = Record::default();
        big.set("shop", "big", &vec![7; GROW as usize]);
        log.append(&big).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * GROW);
        drop(log);
        let (_, records) = WriteLog::open(&path).unwrap();
        assert_eq!(records.len(), 101);
    }

    #[test]
    fn a_log_in_the_format_before_generations_is_read_and_then_started_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.log");
        // Two records as the host wrote them before: length, CRC-32 of
        // the payload, payload, from the first byte.
        let mut bytes = Vec::new();
        for value in [b"1", b"2"] {
            let payload = record(value).payload;
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        std::fs::write(&path, &bytes).unwrap();
        let (mut log, records) = WriteLog::open(&path).unwrap();
        assert_eq!(records, vec![expected(b"1"), expected(b"2")]);
        log.clear().unwrap();
        log.append(&record(b"3")).unwrap();
        drop(log);
        let (_, records) = WriteLog::open(&path).unwrap();
        assert_eq!(records, vec![expected(b"3")]);
        assert!(std::fs::read(&path).unwrap().starts_with(MAGIC));
    }
}
