//! A node's binary content: bytes that an owned node decoded from a frame shares with its
//! siblings.
//!
//! Why: decoding into owned nodes copied every payload into its own `Vec` (wacore-binary does
//! the same), one allocation each, and on the traffic corpus a third of the allocations per
//! stanza were payloads. Now the decoder copies the frame once, at its first payload, and every
//! payload is a slice of that copy. Built by hand (`Node::with_bytes`), a payload takes over
//! the caller's `Vec` without copying.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// Opaque bytes: dereferences to `[u8]` and compares with byte slices, arrays and vectors, so
/// it reads like the `Vec<u8>` it replaces. Cloning shares the bytes.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Payload(Bytes);

impl Payload {
    /// A slice of a shared buffer (the owned decoder's copy of its frame).
    pub(super) fn shared(buf: &Bytes, range: std::ops::Range<usize>) -> Payload {
        Payload(buf.slice(range))
    }

    /// The bytes, copied into a `Vec`.
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }
}

impl Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Self {
        Payload(Bytes::from(v))
    }
}

impl From<&[u8]> for Payload {
    fn from(b: &[u8]) -> Self {
        Payload(Bytes::copy_from_slice(b))
    }
}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Self {
        Payload(b)
    }
}

impl From<Payload> for Vec<u8> {
    fn from(p: Payload) -> Self {
        Vec::from(p.0)
    }
}

impl PartialEq<[u8]> for Payload {
    fn eq(&self, other: &[u8]) -> bool {
        self[..] == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Payload {
    fn eq(&self, other: &[u8; N]) -> bool {
        self[..] == other[..]
    }
}

impl PartialEq<Vec<u8>> for Payload {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self[..] == other[..]
    }
}

impl fmt::Debug for Payload {
    /// As a `Vec<u8>` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self[..], f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_slices_and_compares_like_bytes() {
        let buf = Bytes::from(vec![1u8, 2, 3, 4, 5]);
        let p = Payload::shared(&buf, 1..4);
        assert_eq!(p, [2u8, 3, 4]);
        assert_eq!(p, vec![2u8, 3, 4]);
        assert_eq!(&p[..], &[2, 3, 4]);
        assert_eq!(p, Payload::from(&[2u8, 3, 4][..]));
        assert_eq!(format!("{p:?}"), format!("{:?}", vec![2u8, 3, 4]));
        assert_eq!(Vec::from(p.clone()), vec![2, 3, 4]);
        let v = vec![9u8; 40];
        let ptr = v.as_ptr();
        assert_eq!(
            Payload::from(v).as_ptr(),
            ptr,
            "a Vec is taken over, not copied"
        );
    }
}
