//! The figures side-by-side tables print: medians over rounds, the ratio line under a
//! table, and numbers written for people (thousands separated, shares as percentages).

/// The median of `values` (the mean of the middle two for an even count).
///
/// # Panics
///
/// If `values` is empty.
///
/// ```
/// assert_eq!(loadgen::median(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(loadgen::median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
/// ```
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "the median of nothing");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// `value` rounded, with thousands separated by commas (negative values count as 0).
///
/// ```
/// assert_eq!(loadgen::thousands(1234567.4), "1,234,567");
/// ```
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// A share of one CPU as a percentage, or `?` if unknown.
///
/// ```
/// assert_eq!(loadgen::percent(Some(0.456)), "46%");
/// assert_eq!(loadgen::percent(None), "?");
/// ```
pub fn percent(share: Option<f64>) -> String {
    share.map_or("?".into(), |share| format!("{:.0}%", share * 100.0))
}

/// The line under a table comparing two servers: `label` (padded to `width`), the ratio of
/// their rates of `unit`s per second (above 1: the first is faster) and, if known, of their
/// server CPU per `unit` (below 1: the first is cheaper).
///
/// ```
/// let line = loadgen::ratio_line("a / b", 8, "msg", 1.5, Some(0.8));
/// assert_eq!(line, "  a / b    msgs/s  1.50   server CPU per msg  0.80");
/// ```
pub fn ratio_line(label: &str, width: usize, unit: &str, rate: f64, cost: Option<f64>) -> String {
    let cost = cost.map_or("?".into(), |cost| format!("{cost:.2}"));
    format!("  {label:<width$} {unit}s/s {rate:>5.2}   server CPU per {unit} {cost:>5}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_one_is_itself() {
        assert_eq!(median(&[7.0]), 7.0);
    }

    #[test]
    fn median_ignores_order_and_outliers() {
        assert_eq!(median(&[100.0, 1.0, 2.0, 3.0, 1e9]), 3.0);
    }

    #[test]
    fn thousands_group_from_the_right() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(12345.6), "12,346");
        assert_eq!(thousands(-5.0), "0");
    }

    #[test]
    fn an_unknown_cost_is_a_question_mark() {
        assert!(ratio_line("x", 1, "pkt", 2.0, None).ends_with("server CPU per pkt     ?"));
    }
}
