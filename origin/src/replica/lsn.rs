//! Postgres write-ahead-log positions (`pg_lsn`, printed `16/B374D848`) as the consistency token a
//! write hands back and a read presents.

use std::fmt;
use std::str::FromStr;

/// A position in the primary's write-ahead log. Positions only grow, so comparing two says which
/// is further along, and subtracting them gives the bytes between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(u64);

impl Lsn {
    pub const ZERO: Lsn = Lsn(0);

    /// The position as the 64-bit number Postgres keeps.
    pub const fn raw(self) -> u64 {
        self.0
    }

    pub const fn from_raw(raw: u64) -> Lsn {
        Lsn(raw)
    }

    /// Bytes of WAL from `earlier` to `self`, zero when `earlier` is ahead.
    pub fn bytes_since(self, earlier: Lsn) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Why a token was not a WAL position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected a WAL position such as 16/B374D848 (two hexadecimal numbers of at most 8 digits)"
)]
pub struct InvalidLsn;

impl FromStr for Lsn {
    type Err = InvalidLsn;

    /// Postgres's own text form: high and low 32 bits in hex, split by `/`.
    fn from_str(text: &str) -> Result<Lsn, InvalidLsn> {
        let (high, low) = text.split_once('/').ok_or(InvalidLsn)?;
        let half = |part: &str| {
            let valid =
                (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_hexdigit());
            valid
                .then(|| u32::from_str_radix(part, 16).ok())
                .flatten()
                .ok_or(InvalidLsn)
        };
        Ok(Lsn((u64::from(half(high)?) << 32) | u64::from(half(low)?)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_text_round_trips() {
        for text in ["0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "1/0"] {
            assert_eq!(text.parse::<Lsn>().unwrap().to_string(), text);
        }
        // Postgres prints upper case but accepts either.
        assert_eq!(
            "16/b374d848".parse::<Lsn>().unwrap().to_string(),
            "16/B374D848"
        );
    }

    #[test]
    fn order_and_distance_follow_the_log() {
        let a: Lsn = "0/FFFFFFFF".parse().unwrap();
        let b: Lsn = "1/0".parse().unwrap();
        assert!(a < b);
        assert_eq!(b.bytes_since(a), 1);
        assert_eq!(a.bytes_since(b), 0);
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "/",
            "16",
            "16/",
            "/1",
            "g/1",
            "1/2/3",
            "123456789/0",
            " 1/0",
            "+1/0",
            "-1/0",
        ] {
            assert_eq!(text.parse::<Lsn>(), Err(InvalidLsn), "{text:?}");
        }
    }
}
