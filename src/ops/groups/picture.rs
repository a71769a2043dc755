//! A group's picture: [`prepare`] checks that the bytes are a real JPEG WhatsApp will take and
//! shrinks what is too large; [`GroupCall::Picture`](super::GroupCall) sends it.
//!
//! Stanza (whatsmeow `SetGroupPhoto`, Baileys `updateProfilePicture`): `<iq xmlns="w:profile:
//! picture" type="set" to="@s.whatsapp.net" target="…@g.us"><picture type="image">JPEG</picture>
//! </iq>`, answered by `<picture id>`; WhatsApp refuses what is not a JPEG with 406.
//!
//! Limits (WhatsApp stores a group picture at most 640 pixels a side, as its apps send it; the
//! rest is this gateway's choice, documented in the API): the upload is at most
//! [`MAX_UPLOAD_BYTES`]; the picture at least [`MIN_SIDE`] pixels a side (the apps offer nothing
//! smaller) and at most [`MAX_DECODE_SIDE`] (a bound on decoding work); a longer side than
//! [`MAX_SIDE`], or more than [`MAX_PICTURE_BYTES`], is resized to fit and re-encoded.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::info::text;
use crate::binary::Node;
use crate::ops::{Iq, IqKind, ParseError, Problem};
use crate::types::Jid;

/// Largest upload accepted, in bytes (before any resizing).
pub const MAX_UPLOAD_BYTES: usize = 2 * 1024 * 1024;
/// Longest side WhatsApp keeps, in pixels; larger pictures are resized to fit.
pub const MAX_SIDE: u32 = 640;
/// Shortest side accepted, in pixels.
pub const MIN_SIDE: u32 = 192;
/// Largest side decoded at all, in pixels.
pub const MAX_DECODE_SIDE: u32 = 8192;
/// Largest picture sent, in bytes; a larger one is re-encoded at a lower quality.
pub const MAX_PICTURE_BYTES: usize = 100 * 1024;
/// JPEG qualities tried in turn when re-encoding.
const QUALITIES: [u8; 4] = [85, 75, 65, 50];

/// A picture ready to send.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Picture {
    /// The JPEG bytes.
    pub jpeg: Vec<u8>,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Whether it was resized or re-encoded (else the upload is sent as it came).
    pub reencoded: bool,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Picture({}x{}, {} bytes)",
            self.width,
            self.height,
            self.jpeg.len()
        )
    }
}

/// Checks that `bytes` are a JPEG WhatsApp takes, and shrinks it when too large.
pub fn prepare(bytes: &[u8]) -> Result<Picture, Problem> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(Problem::PictureTooLarge {
            max: MAX_UPLOAD_BYTES,
            got: bytes.len(),
        });
    }
    // SOI marker first: anything else (PNG, GIF, text) is not a JPEG, whatever it decodes to.
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(Problem::NotJpeg);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), ImageFormat::Jpeg);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODE_SIDE);
    limits.max_image_height = Some(MAX_DECODE_SIDE);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(|_| Problem::NotJpeg)?;
    let (width, height) = (img.width(), img.height());
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(Problem::PictureTooSmall {
            min: MIN_SIDE,
            width,
            height,
        });
    }
    if width <= MAX_SIDE && height <= MAX_SIDE && bytes.len() <= MAX_PICTURE_BYTES {
        return Ok(Picture {
            jpeg: bytes.to_vec(),
            width,
            height,
            reencoded: false,
        });
    }
    let img = if width > MAX_SIDE || height > MAX_SIDE {
        img.resize(MAX_SIDE, MAX_SIDE, FilterType::Triangle)
    } else {
        img
    };
    let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
    let mut last = Vec::new();
    for quality in QUALITIES {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(&rgb)
            .map_err(|_| Problem::NotJpeg)?;
        let fits = out.len() <= MAX_PICTURE_BYTES;
        last = out;
        if fits {
            break;
        }
    }
    if last.len() > MAX_PICTURE_BYTES {
        return Err(Problem::PictureTooLarge {
            max: MAX_PICTURE_BYTES,
            got: last.len(),
        });
    }
    Ok(Picture {
        jpeg: last,
        width: rgb.width(),
        height: rgb.height(),
        reencoded: true,
    })
}

/// The picture IQ for `group`.
pub(super) fn iq(group: &Jid, picture: &Picture) -> Iq {
    Iq {
        target: Some(group.clone()),
        ..Iq::to_server(
            "w:profile:picture",
            IqKind::Set,
            vec![
                Node::new("picture")
                    .with_attr("type", "image")
                    .with_bytes(picture.jpeg.clone()),
            ],
        )
    }
}

/// The new picture's id, from `<picture id>`.
pub(super) fn parse(reply: &Node) -> Result<String, ParseError> {
    reply
        .child("picture")
        .and_then(|p| p.attr("id"))
        .map(text)
        .filter(|id| !id.is_empty())
        .ok_or(ParseError::Missing("picture"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb};

    /// A JPEG of `w`×`h`: a pattern with detail, or one flat colour (small).
    pub(crate) fn jpeg(w: u32, h: u32, noisy: bool) -> Vec<u8> {
        let img = ImageBuffer::from_fn(w, h, |x, y| {
            if noisy {
                let v = (((x / 8) ^ (y / 8)) as u8).wrapping_mul(37);
                Rgb([v, (x % 256) as u8, (y % 256) as u8])
            } else {
                Rgb([40, 120, 200])
            }
        });
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 95)
            .encode_image(&DynamicImage::ImageRgb8(img))
            .unwrap();
        out
    }

    #[test]
    fn a_small_enough_jpeg_goes_as_it_came() {
        let bytes = jpeg(400, 300, false);
        let p = prepare(&bytes).unwrap();
        assert_eq!((p.width, p.height, p.reencoded), (400, 300, false));
        assert_eq!(p.jpeg, bytes);
    }

    #[test]
    fn a_large_one_is_resized_to_fit_and_re_encoded() {
        let p = prepare(&jpeg(1600, 1200, true)).unwrap();
        assert_eq!((p.width, p.height, p.reencoded), (640, 480, true));
        assert!(p.jpeg.len() <= MAX_PICTURE_BYTES, "{}", p.jpeg.len());
        assert!(p.jpeg.starts_with(&[0xFF, 0xD8]));
    }

    #[test]
    fn refuses_what_is_not_a_usable_jpeg() {
        let png = b"\x89PNG\r\n\x1a\n....".to_vec();
        assert_eq!(prepare(&png), Err(Problem::NotJpeg));
        let mut cut = jpeg(300, 300, true);
        cut.truncate(40);
        assert_eq!(prepare(&cut), Err(Problem::NotJpeg));
        assert_eq!(
            prepare(&jpeg(100, 400, false)),
            Err(Problem::PictureTooSmall {
                min: 192,
                width: 100,
                height: 400
            })
        );
        let huge = vec![0xFF; MAX_UPLOAD_BYTES + 1];
        assert!(matches!(
            prepare(&huge),
            Err(Problem::PictureTooLarge { .. })
        ));
    }

    #[test]
    fn the_iq_targets_the_group_from_the_server() {
        let group = Jid::new("120363000000000001", "g.us");
        let p = prepare(&jpeg(200, 200, false)).unwrap();
        let node = iq(&group, &p).into_node("7");
        let text = node.to_string();
        assert!(
            text.starts_with(r#"<iq id="7" xmlns="w:profile:picture" type="set" to="@s.whatsapp.net" target="120363000000000001@g.us"><picture type="image">"#),
            "{text}"
        );
        let reply = Node::new("iq").with_children(vec![Node::new("picture").with_attr("id", "9")]);
        assert_eq!(parse(&reply), Ok("9".to_owned()));
        assert_eq!(parse(&Node::new("iq")), Err(ParseError::Missing("picture")));
    }
}
