//! RFC 3339 timestamps with milliseconds, the form of Istio's `start_time`
//! (`2024-05-01T12:34:56.789Z`), from the nanoseconds since the Unix epoch that Envoy gives.
//! Written here rather than pulled from a date crate: it is one function, and it must not touch the
//! system clock (absent on wasm32-unknown-unknown).

const NANOS_PER_MILLI: i64 = 1_000_000;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// Any i64 of nanoseconds falls in years 1677 to 2262, all of which RFC 3339 can write.
pub fn rfc3339_millis(nanos_since_epoch: i64) -> String {
    let millis = nanos_since_epoch.div_euclid(NANOS_PER_MILLI);
    let days = millis.div_euclid(MILLIS_PER_DAY);
    let millis_of_day = millis.rem_euclid(MILLIS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds_of_day = millis_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60,
        millis_of_day % 1000,
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day): Howard Hinnant's
/// `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>), which counts in
/// 400-year eras starting on March 1st so that the leap day falls at the end of each year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const SECOND: i64 = 1_000_000_000;

    #[test]
    fn known_instants() {
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (999_999, "1970-01-01T00:00:00.000Z"),
            (1_000_000, "1970-01-01T00:00:00.001Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_782_400 * SECOND, "2000-02-29T00:00:00.000Z"),
            (
                951_868_799 * SECOND + 999_000_000,
                "2000-02-29T23:59:59.999Z",
            ),
            (951_868_800 * SECOND, "2000-03-01T00:00:00.000Z"),
            (4_107_542_400 * SECOND, "2100-03-01T00:00:00.000Z"),
            (4_107_456_000 * SECOND, "2100-02-28T00:00:00.000Z"),
            (1_709_164_800 * SECOND, "2024-02-29T00:00:00.000Z"),
            (
                1_735_689_599 * SECOND + 123_456_789,
                "2024-12-31T23:59:59.123Z",
            ),
            (1_735_689_600 * SECOND, "2025-01-01T00:00:00.000Z"),
            // The bytes of request.time in Envoy 1.40, whose native logger printed 2026-11-26T06:23:33.721Z.
            (
                i64::from_le_bytes([48, 27, 44, 249, 46, 132, 235, 24]),
                "2026-11-26T06:23:33.721Z",
            ),
            (i64::MAX, "2262-04-11T23:47:16.854Z"),
            (i64::MIN, "1677-09-21T00:12:43.145Z"),
        ];
        for (nanos, expected) in cases {
            assert_eq!(rfc3339_millis(*nanos), *expected, "{nanos}");
        }
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // Walks 1600..2500 day by day and checks that dates advance like a calendar.
        let mut previous = civil_from_days(-135_140); // 1600-01-01
        assert_eq!(previous, (1600, 1, 1));
        for days in -135_139..193_000 {
            let date = civil_from_days(days);
            let (year, month, day) = previous;
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let month_length = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let expected = if day < month_length {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
            assert_eq!(date, expected, "day {days}");
            previous = date;
        }
    }
}
