//! Logo uploads: only PNG and JPEG, small, within a pixel size, and never stored as sent. The
//! image is decoded (with allocation limits, so a crafted header cannot exhaust memory) and
//! re-encoded as PNG, which drops anything hidden in it and lets us serve one fixed type.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

use crate::error::{Error, Result};

/// Largest accepted upload.
pub const MAX_BYTES: usize = 20 * 1024;

/// Decodes an uploaded logo and returns it re-encoded as PNG.
pub fn normalise(bytes: &[u8], max_width: u32, max_height: u32) -> Result<Vec<u8>> {
    if bytes.len() > MAX_BYTES {
        return Err(Error::PayloadTooLarge);
    }
    let unsupported = || Error::invalid("unsupported_image", "a logo must be a PNG or JPEG image");
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| unsupported())?;
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg)) {
        return Err(unsupported());
    }
    let (width, height) = reader.into_dimensions().map_err(|_| {
        Error::invalid(
            "invalid_image",
            "the logo could not be decoded; is the file complete?",
        )
    })?;
    if width == 0 || height == 0 || width > max_width || height > max_height {
        return Err(Error::invalid(
            "image_too_large",
            format!(
                "a logo is at most {max_width}×{max_height} pixels; this one is {width}×{height}"
            ),
        ));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(max_width);
    limits.max_image_height = Some(max_height);
    limits.max_alloc = Some(64 * 1024 * 1024);
    reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| unsupported())?;
    reader.limits(limits);
    let image = reader.decode().map_err(|_| {
        Error::invalid(
            "invalid_image",
            "the logo could not be decoded; is the file complete?",
        )
    })?;
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|e| Error::Internal(e.into()))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, 120])
        });
        let mut out = Vec::new();
        image.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    #[test]
    fn png_and_jpeg_become_png() {
        for format in [ImageFormat::Png, ImageFormat::Jpeg] {
            let png = normalise(&encoded(40, 20, format), 100, 100).unwrap();
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
            let back = image::load_from_memory(&png).unwrap();
            assert_eq!((back.width(), back.height()), (40, 20));
        }
    }

    #[test]
    fn other_formats_and_garbage_are_refused() {
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
        for bytes in [&gif[..], &svg[..], b"not an image"] {
            assert_eq!(
                normalise(bytes, 100, 100).unwrap_err().code(),
                "unsupported_image"
            );
        }
        let mut truncated = encoded(40, 20, ImageFormat::Png);
        truncated.truncate(60);
        assert_eq!(
            normalise(&truncated, 100, 100).unwrap_err().code(),
            "invalid_image"
        );
    }

    #[test]
    fn size_limits_hold() {
        let wide = encoded(120, 10, ImageFormat::Png);
        assert_eq!(
            normalise(&wide, 100, 100).unwrap_err().code(),
            "image_too_large"
        );
        assert_eq!(
            normalise(&vec![0; MAX_BYTES + 1], 100, 100)
                .unwrap_err()
                .code(),
            "payload_too_large"
        );
    }
}
