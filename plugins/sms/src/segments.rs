//! SMS segments: a text that fits the GSM 03.38 alphabet is sent in GSM-7 (160 septets in one
//! segment, 153 per part of a longer message; the extension characters take two septets, and a
//! pair is never split between parts); anything else in UCS-2 (70 UTF-16 code units, 67 per
//! part, a surrogate pair never split). Written here because no maintained crate for it is
//! available; the alphabet is the standard's basic table and its extension table.

/// The GSM 03.38 basic alphabet, in table order (the escape code left out).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters of the extension table, each sent as the escape code and one septet.
const EXTENSION: &str = "\u{c}^{}\\[~]|€";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub encoding: Encoding,
    pub segments: usize,
}

impl Count {
    /// Such as "2 segments (GSM-7)".
    pub fn describe(&self) -> String {
        let encoding = match self.encoding {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        };
        let plural = if self.segments == 1 { "" } else { "s" };
        format!("{} segment{plural} ({encoding})", self.segments)
    }
}

/// The units of each character in an encoding, or `None` when the text needs UCS-2.
fn gsm7_units(text: &str) -> Option<Vec<usize>> {
    text.chars()
        .map(|c| {
            if BASIC.contains(c) {
                Some(1)
            } else if EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .collect()
}

/// Segments needed for characters of `units` each: one if all fit `single`, else parts of
/// `per_part` that never split a character.
fn segments(units: &[usize], single: usize, per_part: usize) -> usize {
    if units.iter().sum::<usize>() <= single {
        return 1;
    }
    let mut parts = 1;
    let mut used = 0;
    for &unit in units {
        if used + unit > per_part {
            parts += 1;
            used = 0;
        }
        used += unit;
    }
    parts
}

pub fn count(text: &str) -> Count {
    match gsm7_units(text) {
        Some(units) => Count {
            encoding: Encoding::Gsm7,
            segments: segments(&units, 160, 153),
        },
        None => {
            let units: Vec<usize> = text.chars().map(char::len_utf16).collect();
            Count {
                encoding: Encoding::Ucs2,
                segments: segments(&units, 70, 67),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_fits_160_then_parts_of_153() {
        assert_eq!(count(&"a".repeat(160)).segments, 1);
        assert_eq!(count(&"a".repeat(161)).segments, 2);
        assert_eq!(count(&"a".repeat(306)).segments, 2);
        assert_eq!(count(&"a".repeat(307)).segments, 3);
        assert_eq!(count("Grüße, Ihr Techniker").encoding, Encoding::Gsm7);
    }

    #[test]
    fn extension_characters_take_two_septets_and_stay_whole() {
        assert_eq!(count(&"€".repeat(80)).segments, 1);
        assert_eq!(count(&"€".repeat(81)).segments, 2);
        // 152 septets, then a pair that would straddle the parts.
        assert_eq!(
            count(&format!("{}€{}", "a".repeat(152), "a".repeat(10))).segments,
            2
        );
    }

    #[test]
    fn anything_else_is_ucs2() {
        let text = "Ваш техник в пути";
        assert_eq!(count(text).encoding, Encoding::Ucs2);
        assert_eq!(count(&"ж".repeat(70)).segments, 1);
        assert_eq!(count(&"ж".repeat(71)).segments, 2);
        // An emoji is a surrogate pair: two units.
        assert_eq!(count(&"🙂".repeat(35)).segments, 1);
        assert_eq!(count(&"🙂".repeat(36)).segments, 2);
        assert_eq!(
            count("ç").encoding,
            Encoding::Ucs2,
            "only Ç is in the alphabet"
        );
    }
}
