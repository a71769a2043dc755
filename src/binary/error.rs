//! The codec's one error type.

/// Why a frame could not be decoded or a node could not be encoded.
///
/// Decoding errors carry `at`, the byte offset in the node bytes (after the flag byte and any
/// inflation) where the problem was found, so a bad capture can be looked at directly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before a complete node was read.
    #[error("unexpected end of input at byte {at} while reading {what}")]
    UnexpectedEof { at: usize, what: &'static str },
    /// A tag byte that has no meaning in this position.
    #[error("invalid tag byte 0x{byte:02x} at byte {at} while reading {what}")]
    InvalidTag {
        byte: u8,
        at: usize,
        what: &'static str,
    },
    /// A node header of size 0, or a node without a tag.
    #[error("empty node at byte {at}: a node needs at least a tag")]
    EmptyNode { at: usize },
    /// A null string (`00`) where a string is required (tag, attribute key, JID server).
    #[error("null string at byte {at} where {what} is required")]
    NullString { at: usize, what: &'static str },
    /// A JID form where only a plain string is allowed (tag, attribute key, JID parts).
    #[error("JID at byte {at} where {what} must be a plain string")]
    UnexpectedJid { at: usize, what: &'static str },
    /// A packed string with a nibble value outside the alphabet.
    #[error("invalid packed digit {value} at byte {at}")]
    InvalidNibble { at: usize, value: u8 },
    /// A raw string that is not UTF-8 in a position that must be text.
    #[error("invalid UTF-8 in {what} at byte {at}")]
    InvalidUtf8 { at: usize, what: &'static str },
    /// A list claims more entries than the remaining bytes can hold.
    #[error("list at byte {at} claims {len} entries but only {remaining} bytes remain")]
    ListTooLong {
        at: usize,
        len: usize,
        remaining: usize,
    },
    /// A Messenger or interop JID on the wrong server.
    #[error("{form} JID at byte {at} has server {server:?}, expected {expected:?}")]
    WrongJidServer {
        at: usize,
        form: &'static str,
        server: String,
        expected: &'static str,
    },
    /// Nodes nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    #[error("nodes nested deeper than {max} levels (at byte {at})")]
    TooDeep { at: usize, max: usize },
    /// Bytes left over after the root node.
    #[error("{count} bytes left over after the node ending at byte {at}")]
    TrailingBytes { at: usize, count: usize },
    /// A frame with no flag byte.
    #[error("empty frame: no flag byte")]
    EmptyFrame,
    /// The zlib stream of a compressed frame is corrupt or truncated.
    #[error("compressed frame is not a valid zlib stream")]
    Inflate(#[source] flate2::DecompressError),
    /// A compressed frame ends before its zlib stream does.
    #[error("compressed frame ends before its zlib stream does")]
    InflateTruncated,
    /// A compressed frame inflates past the configured cap (a zlib bomb is refused, not expanded).
    #[error("compressed frame inflates past the limit of {limit} bytes")]
    InflatedTooLarge { limit: usize },

    /// The node cannot be encoded: a list or payload beyond what the format can express.
    #[error("cannot encode {what}: {len} exceeds the format's limit of {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A node with an empty tag cannot be encoded (every decoder rejects it).
    #[error("cannot encode a node with an empty tag")]
    EmptyTag,
    /// A typed JID that has no lossless wire form (for example a device on a group JID).
    #[error("JID {jid} has no wire form: {reason}")]
    JidNotEncodable { jid: String, reason: &'static str },
}
