//! Numbers as Go reads and prints them, since Sensu's parsers call `strconv.ParseFloat`,
//! `strconv.ParseInt` and `fmt.Sprint` on check output.

/// `strconv.ParseFloat(s, 64)`: `None` where Go returns an error, which is a syntax error
/// or a finite number too large for `f64`. Go's syntax: an optional sign, decimal digits
/// with an optional point and `e` exponent, or `0x` hex digits with a mandatory `p`
/// exponent; `_` between digits; `inf`/`infinity` (signed or not) and `nan` (unsigned),
/// any case.
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    if let Some(v) = special(s) {
        return Some(v);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut negative = false;
    match b.first() {
        Some(b'+') => i = 1,
        Some(b'-') => {
            negative = true;
            i = 1;
        }
        _ => {}
    }
    // A hex prefix needs at least one character after it.
    let hex = matches!(b.get(i..i + 3), Some([b'0', x, _]) if x | 0x20 == b'x');
    if hex {
        i += 2;
    }
    let (base, max_digits) = if hex { (16, 16) } else { (10, 19) };
    let mut mantissa: u64 = 0;
    let mut mantissa_digits: i64 = 0;
    let mut digits: i64 = 0; // significant digits seen (leading zeros aside)
    let mut point: i64 = 0; // where the point sits, in digits from the first significant one
    let mut truncated = false;
    let mut saw_point = false;
    let mut saw_digits = false;
    let mut underscores = false;
    let mut decimal = String::new(); // the significant decimal digits
    while let Some(&c) = b.get(i) {
        let d = match c {
            b'_' => {
                underscores = true;
                i += 1;
                continue;
            }
            b'.' if !saw_point => {
                saw_point = true;
                point = digits;
                i += 1;
                continue;
            }
            b'0'..=b'9' => u64::from(c - b'0'),
            b'a'..=b'f' | b'A'..=b'F' if hex => u64::from((c | 0x20) - b'a' + 10),
            _ => break,
        };
        i += 1;
        saw_digits = true;
        if c == b'0' && digits == 0 {
            point -= 1;
            continue;
        }
        digits += 1;
        if mantissa_digits < max_digits {
            mantissa = mantissa * base + d;
            mantissa_digits += 1;
        } else if d != 0 {
            truncated = true;
        }
        if !hex {
            decimal.push(char::from(c));
        }
    }
    if !saw_digits {
        return None;
    }
    if !saw_point {
        point = digits;
    }
    if hex {
        point *= 4;
        mantissa_digits *= 4;
    }
    let exponent_char = if hex { b'p' } else { b'e' };
    if b.get(i).is_some_and(|&c| c | 0x20 == exponent_char) {
        i += 1;
        let mut sign = 1;
        match b.get(i) {
            Some(b'+') => i += 1,
            Some(b'-') => {
                sign = -1;
                i += 1;
            }
            _ => {}
        }
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        // Go stops accumulating the exponent once it reaches 10000.
        let mut e: i64 = 0;
        while let Some(&c) = b.get(i) {
            if c == b'_' {
                underscores = true;
            } else if c.is_ascii_digit() {
                if e < 10000 {
                    e = e * 10 + i64::from(c - b'0');
                }
            } else {
                break;
            }
            i += 1;
        }
        point += e * sign;
    } else if hex {
        return None;
    }
    if i != b.len() || (underscores && !underscores_ok(b)) {
        return None;
    }
    if hex {
        let exp = if mantissa == 0 {
            0
        } else {
            point - mantissa_digits
        };
        return hex_float(mantissa, exp, negative, truncated);
    }
    if decimal.is_empty() {
        return Some(if negative { -0.0 } else { 0.0 });
    }
    // 0.DIGITS × 10^point, rounded correctly by Rust as Go rounds it.
    let sign = if negative { "-" } else { "" };
    let v: f64 = format!("{sign}0.{decimal}e{point}").parse().ok()?;
    v.is_finite().then_some(v)
}

/// Go's `special`: infinities and NaN, matched whole.
fn special(s: &str) -> Option<f64> {
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1.0, s.get(1..)?),
        Some(b'-') => (-1.0, s.get(1..)?),
        _ => (0.0, s),
    };
    if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        return Some(if sign < 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    (sign == 0.0 && rest.eq_ignore_ascii_case("nan")).then_some(f64::NAN)
}

/// Go's rule for `_` in a number: only between digits, or after a base prefix.
fn underscores_ok(b: &[u8]) -> bool {
    let b = match b.first() {
        Some(b'+' | b'-') => b.get(1..).unwrap_or_default(),
        _ => b,
    };
    let mut last = b'^'; // '^' start, '0' digit or prefix, '_' underscore, '!' other
    let mut hex = false;
    let mut rest = b;
    if let [b'0', p, tail @ ..] = b {
        if matches!(p | 0x20, b'b' | b'o' | b'x') {
            last = b'0';
            hex = p | 0x20 == b'x';
            rest = tail;
        }
    }
    for &c in rest {
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&(c | 0x20))) {
            last = b'0';
        } else if c == b'_' {
            if last != b'0' {
                return false;
            }
            last = b'_';
        } else {
            if last == b'_' {
                return false;
            }
            last = b'!';
        }
    }
    last != b'_'
}

/// mantissa × 2^exp rounded to an `f64` (to nearest, ties to even, `truncated` meaning
/// non-zero bits were dropped below the mantissa), as Go's `atofHex` rounds; `None` on
/// overflow.
fn hex_float(mut mantissa: u64, mut exp: i64, negative: bool, truncated: bool) -> Option<f64> {
    const MANT_BITS: i64 = 52;
    const BIAS: i64 = -1023;
    const MAX_EXP: i64 = 1023;
    const MIN_EXP: i64 = -1022;
    exp += MANT_BITS;
    // Normalise to a leading 1 followed by 52 bits and two rounding bits, the lowest of
    // which is sticky.
    while mantissa != 0 && mantissa >> (MANT_BITS + 2) == 0 {
        mantissa <<= 1;
        exp -= 1;
    }
    if truncated {
        mantissa |= 1;
    }
    while mantissa >> (MANT_BITS + 3) != 0 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    // Below the smallest normal exponent: shift into a subnormal.
    while mantissa > 1 && exp < MIN_EXP - 2 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    let mut round = mantissa & 3;
    mantissa >>= 2;
    round |= mantissa & 1;
    exp += 2;
    if round == 3 {
        mantissa += 1;
        if mantissa == 1 << (MANT_BITS + 1) {
            mantissa >>= 1;
            exp += 1;
        }
    }
    if mantissa >> MANT_BITS == 0 {
        exp = BIAS;
    }
    if exp > MAX_EXP {
        return None;
    }
    let biased = u64::try_from(exp - BIAS).ok()? & 0x7ff;
    let mut bits = (mantissa & ((1 << MANT_BITS) - 1)) | (biased << MANT_BITS);
    if negative {
        bits |= 1 << 63;
    }
    Some(f64::from_bits(bits))
}

/// `strconv.ParseInt(s, 10, 64)`.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    s.parse().ok()
}

/// `fmt.Sprint(v)` for a float64 (`%v`, that is `strconv.FormatFloat(v, 'g', -1, 64)`):
/// the shortest digits that read back as `v`, in `1e+06` form when the decimal exponent
/// is below -4 or at least 6.
pub(crate) fn format_g(v: f64) -> String {
    if let Some(s) = non_finite(v) {
        return s.to_string();
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if v == 0.0 {
        return format!("{sign}0");
    }
    // Rust's `{:e}` gives the same shortest digits: "1.728e2".
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let point = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!(
            "{sign}{first}{point}{rest}e{esign}{:02}",
            exp.unsigned_abs()
        );
    }
    // Positional: Rust's Display writes the same shortest digits without an exponent.
    format!("{}", v)
}

/// `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest digits that read back as `v`, never
/// with an exponent.
pub(crate) fn format_f(v: f64) -> String {
    match non_finite(v) {
        Some(s) => s.to_string(),
        None => format!("{v}"),
    }
}

fn non_finite(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}
