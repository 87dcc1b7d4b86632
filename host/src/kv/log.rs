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

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Bytes before each record: its payload's length and CRC-32.
const HEADER: usize = 8;

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
    len: u64,
}

impl WriteLog {
    /// Opens (or creates) the log at `path` and reads the records it holds.
    /// A record cut short or garbled at the end (the host died while
    /// writing it, so its batch was never answered) is dropped, and the
    /// file cut back to the records before it.
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
        let (records, good) = read_records(&bytes)
            .with_context(|| format!("reading the write log {}", path.display()))?;
        if good < bytes.len() {
            tracing::warn!(
                "the write log {} ends in a record cut short ({} bytes); dropped, as its writes were never acknowledged",
                path.display(),
                bytes.len() - good
            );
            file.set_len(good as u64)?;
            file.sync_data()?;
        }
        file.seek(SeekFrom::End(0))?;
        Ok((
            WriteLog {
                file,
                len: good as u64,
            },
            records,
        ))
    }

    /// Appends `record` and waits until it is on disk.
    pub fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let payload = &record.payload;
        let mut bytes = Vec::with_capacity(HEADER + payload.len());
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        bytes.extend_from_slice(payload);
        if let Err(err) = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
        {
            // Cut off whatever part of the record made it, so the next
            // record does not follow a garbled one.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(err);
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Bytes in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Empties the log, once redb holds everything in it durably.
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.sync_data()?;
        self.len = 0;
        Ok(())
    }
}

/// The whole records at the start of `bytes`, and how many bytes they take.
fn read_records(bytes: &[u8]) -> Result<(Vec<Vec<Effect>>, usize)> {
    let mut records = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= HEADER {
        let len = u32::from_le_bytes(word(bytes, at)) as usize;
        let crc = u32::from_le_bytes(word(bytes, at + 4));
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
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

    #[test]
    fn a_record_cut_short_is_dropped_and_the_log_goes_on_after_the_good_ones() {
        let (_dir, path) = two_records();
        let whole = std::fs::metadata(&path).unwrap().len();
        // The second record loses its last byte, as if the host died
        // while writing it.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(whole - 1)
            .unwrap();
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
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, records) = WriteLog::open(&path).unwrap();
        assert_eq!(records, vec![expected(b"1")]);
    }

    #[test]
    fn a_cleared_log_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.log");
        let (mut log, _) = WriteLog::open(&path).unwrap();
        log.append(&record(b"1")).unwrap();
        log.clear().unwrap();
        assert_eq!(log.len(), 0);
        drop(log);
        let (_, records) = WriteLog::open(&path).unwrap();
        assert!(records.is_empty());
    }
}
