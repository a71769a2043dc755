//! The byte-level codec under the record layouts: a growable writer and a bounded reader.
//!
//! Every read checks the remaining length first and names the field it was reading, so a damaged
//! record becomes a [`RecordError`] that says what broke, never a panic or an out-of-bounds slice.
//! Integers are big-endian; variable-length fields carry a `u32` length prefix.
//!
//! This module knows nothing about devices or backends; `record.rs` builds the layouts on it.

/// Why a stored record could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record is empty: not even a version byte.
    #[error("record is empty")]
    Empty,
    /// The record has a version this build does not understand (written by a newer build).
    #[error("record version {found} is newer than the newest this build reads ({newest})")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
        /// The newest version this build can decode.
        newest: u8,
    },
    /// The record ended inside a field.
    #[error("record truncated in field `{field}`: needed {needed} bytes, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the record.
        available: usize,
    },
    /// Bytes remain after the last field.
    #[error("{count} unexpected bytes after the last field")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// A text field is not UTF-8.
    #[error("field `{field}` is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// A tag or flag byte has a value no version ever wrote.
    #[error("field `{field}` has invalid tag {value:#04x}")]
    InvalidTag {
        /// The field being read.
        field: &'static str,
        /// The byte found.
        value: u8,
    },
    /// A field decoded but its value is outside its valid range.
    #[error("field `{field}` holds an out-of-range value")]
    OutOfRange {
        /// The field being read.
        field: &'static str,
    },
    /// A storage key (not the value) has the wrong shape for its tree.
    #[error("storage key has {len} bytes, expected {expected}")]
    BadKey {
        /// Bytes in the key found.
        len: usize,
        /// Bytes such a key must have.
        expected: usize,
    },
    /// A field is too long to encode with a `u32` length prefix.
    #[error("field `{field}` is too long to store ({len} bytes)")]
    TooLong {
        /// The field being written.
        field: &'static str,
        /// Its length.
        len: usize,
    },
}

/// Builds a record by appending fields.
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts a record with its version byte.
    pub(crate) fn new(version: u8) -> Self {
        Self { buf: vec![version] }
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// Appends fixed-size bytes without a length prefix.
    pub(crate) fn fixed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends a `u32` length prefix and the bytes.
    pub(crate) fn bytes(&mut self, field: &'static str, bytes: &[u8]) -> Result<(), RecordError> {
        let len = u32::try_from(bytes.len()).map_err(|_| RecordError::TooLong {
            field,
            len: bytes.len(),
        })?;
        self.u32(len);
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Appends a presence tag (0 or 1) and, if present, the length-prefixed string.
    pub(crate) fn opt_str(
        &mut self,
        field: &'static str,
        value: Option<&str>,
    ) -> Result<(), RecordError> {
        match value {
            None => {
                self.u8(0);
                Ok(())
            }
            Some(text) => {
                self.u8(1);
                self.bytes(field, text.as_bytes())
            }
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields from a record, front to back, refusing to read past its end.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Splits off the version byte and returns it with a reader over the body.
    pub(crate) fn open(record: &'a [u8]) -> Result<(u8, Self), RecordError> {
        match record.split_first() {
            Some((version, rest)) => Ok((*version, Self { rest })),
            None => Err(RecordError::Empty),
        }
    }

    fn take(&mut self, field: &'static str, needed: usize) -> Result<&'a [u8], RecordError> {
        if self.rest.len() < needed {
            return Err(RecordError::Truncated {
                field,
                needed,
                available: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(needed);
        self.rest = tail;
        Ok(head)
    }

    /// Reads exactly `N` bytes.
    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, RecordError> {
        let [byte] = self.array::<1>(field)?;
        Ok(byte)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, RecordError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, RecordError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// Reads a `u32` length prefix and that many bytes.
    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], RecordError> {
        let len = self.u32(field)?;
        // A length that does not fit in usize cannot fit in the record either.
        let len = usize::try_from(len).map_err(|_| RecordError::Truncated {
            field,
            needed: usize::MAX,
            available: self.rest.len(),
        })?;
        self.take(field, len)
    }

    /// Reads a length-prefixed UTF-8 string.
    pub(crate) fn str(&mut self, field: &'static str) -> Result<String, RecordError> {
        let bytes = self.bytes(field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| RecordError::InvalidUtf8 { field })
    }

    /// Reads a presence tag and, if present, a string.
    pub(crate) fn opt_str(&mut self, field: &'static str) -> Result<Option<String>, RecordError> {
        match self.u8(field)? {
            0 => Ok(None),
            1 => self.str(field).map(Some),
            value => Err(RecordError::InvalidTag { field, value }),
        }
    }

    /// Fails unless every byte was consumed, so a record with extra data is not half-read.
    pub(crate) fn finish(self) -> Result<(), RecordError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(RecordError::TrailingBytes {
                count: self.rest.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field_kind() -> Result<(), RecordError> {
        let mut w = Writer::new(3);
        w.u8(9);
        w.u32(0xDEAD_BEEF);
        w.u64(u64::MAX - 1);
        w.fixed(&[7; 4]);
        w.bytes("b", b"hello")?;
        w.opt_str("s", Some("wa"))?;
        w.opt_str("n", None)?;
        let record = w.finish();

        let (version, mut r) = Reader::open(&record)?;
        assert_eq!(version, 3);
        assert_eq!(r.u8("a")?, 9);
        assert_eq!(r.u32("b")?, 0xDEAD_BEEF);
        assert_eq!(r.u64("c")?, u64::MAX - 1);
        assert_eq!(r.array::<4>("d")?, [7; 4]);
        assert_eq!(r.bytes("e")?, b"hello");
        assert_eq!(r.opt_str("f")?, Some("wa".to_owned()));
        assert_eq!(r.opt_str("g")?, None);
        r.finish()
    }

    #[test]
    fn rejects_empty_record() {
        assert!(matches!(Reader::open(&[]), Err(RecordError::Empty)));
    }

    #[test]
    fn rejects_length_prefix_past_end() -> Result<(), RecordError> {
        let (_, mut r) = Reader::open(&[1, 0, 0, 0, 9, b'x'])?;
        assert_eq!(
            r.bytes("name"),
            Err(RecordError::Truncated {
                field: "name",
                needed: 9,
                available: 1
            })
        );
        Ok(())
    }

    #[test]
    fn rejects_trailing_bytes() -> Result<(), RecordError> {
        let (_, mut r) = Reader::open(&[1, 5, 6])?;
        r.u8("a")?;
        assert_eq!(r.finish(), Err(RecordError::TrailingBytes { count: 1 }));
        Ok(())
    }

    #[test]
    fn rejects_bad_option_tag_and_bad_utf8() -> Result<(), RecordError> {
        let (_, mut r) = Reader::open(&[1, 2])?;
        assert_eq!(
            r.opt_str("lid"),
            Err(RecordError::InvalidTag {
                field: "lid",
                value: 2
            })
        );
        let (_, mut r) = Reader::open(&[1, 0, 0, 0, 1, 0xFF])?;
        assert_eq!(r.str("jid"), Err(RecordError::InvalidUtf8 { field: "jid" }));
        Ok(())
    }

    #[test]
    fn random_bytes_never_panic() {
        // A small deterministic generator (xorshift) so the test needs no rng crate.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..200usize {
            let record: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_be_bytes()[0]
                })
                .collect();
            if let Ok((_, mut r)) = Reader::open(&record) {
                let _ = r.opt_str("a");
                let _ = r.bytes("b");
                let _ = r.u64("c");
                let _ = r.finish();
            }
        }
    }
}
