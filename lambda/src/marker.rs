//! JPEG marker codes: the names used in messages and the classes the parser dispatches on.
//!
//! A marker is the byte that follows `0xFF` in the stream. Only this module knows the code
//! table (ITU T.81 table B.1), so the parser reads as "is this a frame header" rather than as
//! a list of hex ranges.

use std::fmt;

/// A JPEG marker code (the byte after `0xFF`), e.g. `Marker(0xDA)` for SOS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Marker(pub u8);

impl Marker {
    pub const SOI: Marker = Marker(0xD8);
    pub const EOI: Marker = Marker(0xD9);
    pub const SOS: Marker = Marker(0xDA);
    pub const DQT: Marker = Marker(0xDB);
    pub const DNL: Marker = Marker(0xDC);
    pub const DRI: Marker = Marker(0xDD);
    pub const DHT: Marker = Marker(0xC4);
    pub const DAC: Marker = Marker(0xCC);
    pub const COM: Marker = Marker(0xFE);

    /// `APPn` marker for `n` in 0..=15.
    pub const fn app(n: u8) -> Marker {
        Marker(0xE0 | (n & 0x0F))
    }

    /// `Some(n)` for `APPn`.
    pub const fn app_number(self) -> Option<u8> {
        match self.0 {
            0xE0..=0xEF => Some(self.0 - 0xE0),
            _ => None,
        }
    }

    /// A frame header: SOF0-3, SOF5-7, SOF9-11, SOF13-15 (C4 is DHT, C8 is JPG, CC is DAC).
    pub const fn is_sof(self) -> bool {
        matches!(self.0, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF)
    }

    /// `RSTn`: only meaningful inside entropy-coded data.
    pub const fn is_rst(self) -> bool {
        matches!(self.0, 0xD0..=0xD7)
    }

    /// Table and miscellaneous segments that rendering needs and that carry no metadata.
    pub const fn is_table(self) -> bool {
        matches!(self.0, 0xC4 | 0xCC | 0xDB | 0xDC | 0xDD)
    }

    /// Whether `FF <self>` met inside entropy-coded data ends the scan.
    ///
    /// `FF00` is a stuffed data byte and `RSTn` belongs to the scan. Codes below `0xC0`
    /// (TEM and the reserved range) are no valid structure either: libjpeg's restart resync
    /// discards them and goes on decoding, so they are treated as (damaged) scan data and
    /// copied, not as the start of a segment with a length.
    pub const fn ends_scan(self) -> bool {
        self.0 >= 0xC0 && !self.is_rst() && self.0 != 0xFF
    }

    fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x01 => "TEM",
            0xC4 => "DHT",
            0xC8 => "JPG",
            0xCC => "DAC",
            0xD8 => "SOI",
            0xD9 => "EOI",
            0xDA => "SOS",
            0xDB => "DQT",
            0xDC => "DNL",
            0xDD => "DRI",
            0xDE => "DHP",
            0xDF => "EXP",
            0xFE => "COM",
            _ => return None,
        })
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.0;
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None if self.is_sof() => write!(f, "SOF{}", code - 0xC0),
            None if self.is_rst() => write!(f, "RST{}", code - 0xD0),
            None => match self.app_number() {
                Some(n) => write!(f, "APP{n}"),
                None if (0xF0..=0xFD).contains(&code) => write!(f, "JPG{}", code - 0xF0),
                None => write!(f, "reserved marker"),
            },
        }?;
        write!(f, " (0xFF{code:02X})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(Marker::SOS.to_string(), "SOS (0xFFDA)");
        assert_eq!(Marker(0xC2).to_string(), "SOF2 (0xFFC2)");
        assert_eq!(Marker::app(14).to_string(), "APP14 (0xFFEE)");
        assert_eq!(Marker(0xD3).to_string(), "RST3 (0xFFD3)");
        assert_eq!(Marker(0xF7).to_string(), "JPG7 (0xFFF7)");
        assert_eq!(Marker(0x9F).to_string(), "reserved marker (0xFF9F)");
    }

    #[test]
    fn classes() {
        let sofs: Vec<u8> = (0..=255u8).filter(|&c| Marker(c).is_sof()).collect();
        assert_eq!(sofs.len(), 13);
        assert!(!Marker::DHT.is_sof() && !Marker::DAC.is_sof() && !Marker(0xC8).is_sof());
        assert!(!Marker(0x00).ends_scan());
        assert!(!Marker(0xD5).ends_scan());
        assert!(!Marker(0x9F).ends_scan());
        assert!(!Marker(0xFF).ends_scan());
        assert!(Marker::EOI.ends_scan() && Marker::DHT.ends_scan() && Marker::app(1).ends_scan());
    }
}
