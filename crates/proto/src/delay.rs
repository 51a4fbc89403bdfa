//! XEP-0203 Delayed Delivery and the XEP-0082 date-time format it uses. Time is an input (unix milliseconds):
//! this crate reads no clock.

use crate::ns;
use crate::xml::Element;

/// `<delay xmlns='urn:xmpp:delay' from='…' stamp='…'/>` for a stanza stored at `unix_ms`.
pub fn delay(from: &str, unix_ms: i64) -> Element {
    Element::new("delay", ns::DELAY).with_attr("from", from).with_attr("stamp", format_datetime(unix_ms))
}

/// XEP-0082 DateTime in UTC with milliseconds, e.g. `2002-09-10T23:08:25.000Z`.
pub fn format_datetime(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// Parses an XEP-0082 DateTime (`CCYY-MM-DDThh:mm:ss[.sss](Z|(+|-)hh:mm)`) into unix milliseconds.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded: String = frac[..digits].chars().chain(std::iter::repeat('0')).take(3).collect();
        ms = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let t = rest.get(1..)?;
            if t.len() != 5 || t.as_bytes()[2] != b':' {
                return None;
            }
            sign * (t.get(0..2)?.parse::<i64>().ok()? * 60 + t.get(3..5)?.parse::<i64>().ok()?)
        }
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60) * 1000) + ms)
}

/// (year, month, day) to days since 1970-01-01 (inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00.000Z");
        // XEP-0082 example instant.
        assert_eq!(format_datetime(1_031_699_305_000), "2002-09-10T23:08:25.000Z");
        assert_eq!(format_datetime(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_datetime(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for ms in [0, 1_031_699_305_000, 951_782_400_123, 1_795_000_000_999] {
            assert_eq!(parse_datetime(&format_datetime(ms)), Some(ms));
        }
        assert_eq!(parse_datetime("2002-09-10T23:08:25Z"), Some(1_031_699_305_000));
        assert_eq!(parse_datetime("2002-09-10T23:08:25.5Z"), Some(1_031_699_305_500));
        assert_eq!(parse_datetime("2002-09-10T18:08:25-05:00"), Some(1_031_699_305_000));
        assert_eq!(parse_datetime("2002-09-11T01:38:25+02:30"), Some(1_031_699_305_000));
        for bad in [
            "",
            "2002-09-10",
            "2002-13-10T23:08:25Z",
            "2002-09-10T23:08:25",
            "2002-09-10T23:08:25.Z",
            "x002-09-10T23:08:25Z",
            "2002-09-10T23:08:25+0500",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }
}
