//! The one Luhn mod N check character: the activation passwords of DSAPP-SRP and DSAPP (over
//! their 32-character alphabet) and the MDL device codes (over the ten digits, where Luhn mod
//! N is the standard Luhn digit) both use it.

/// The ten decimal digits: Luhn mod 10 is the standard Luhn check digit.
pub const DIGITS: &[u8] = b"0123456789";

/// The Luhn mod N check character of `payload` over `alphabet` (N = its length), or `None`
/// when `payload` has a character outside it.
pub fn check_char(alphabet: &[u8], payload: &[u8]) -> Option<u8> {
    let n = alphabet.len();
    let mut factor = 2;
    let mut sum = 0;
    for c in payload.iter().rev() {
        let code = alphabet.iter().position(|a| a == c)?;
        let addend = factor * code;
        sum += addend / n + addend % n;
        factor = if factor == 2 { 1 } else { 2 };
    }
    Some(alphabet[(n - sum % n) % n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_ten_is_the_standard_luhn_digit() {
        // The classic example: 7992739871 has check digit 3.
        assert_eq!(check_char(DIGITS, b"7992739871"), Some(b'3'));
        assert_eq!(check_char(DIGITS, b""), Some(b'0'));
    }

    #[test]
    fn a_character_outside_the_alphabet_has_no_check_character() {
        assert_eq!(check_char(DIGITS, b"12a4"), None);
    }
}
