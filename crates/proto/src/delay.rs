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
}
