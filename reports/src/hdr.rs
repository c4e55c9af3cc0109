//! HdrHistogram input and the percentile spectrum: decodes the base64 HdrHistogram V2 strings
//! the load generator writes (`Summary::histograms`), merges the repeats of a point, and samples
//! the spectrum the spectrum plot draws.
//!
//! The spectrum's x axis is `1/(1-p)` on a log scale, the classic HdrHistogram view in which
//! 90%, 99%, 99.9% ... sit one decade apart; here it is carried as `log10(1/(1-p))` so the plot
//! can use a plain linear axis with percentile labels at the integers.

use base64::Engine;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

/// Decode one HdrHistogram V2 (plain or deflate-compressed) encoding given in base64.
pub fn decode_base64(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("histogram is not valid base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram is not a valid HdrHistogram V2 encoding: {e:?}"))
}

/// Merge histograms (the repeats of one point) into one; `None` when the input is empty.
pub fn merge<'a>(
    histograms: impl IntoIterator<Item = &'a Histogram<u64>>,
) -> Result<Option<Histogram<u64>>, String> {
    let mut merged: Option<Histogram<u64>> = None;
    for histogram in histograms {
        match merged.as_mut() {
            None => merged = Some(histogram.clone()),
            Some(total) => total
                .add(histogram)
                .map_err(|e| format!("histograms cannot be merged: {e:?}"))?,
        }
    }
    Ok(merged)
}

/// The largest spectrum x drawn: 99.99999%, beyond which no run of a sweep has samples.
pub const MAX_DECADES: f64 = 7.0;

/// One point of a percentile spectrum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectrumPoint {
    /// `log10(1/(1-p))`: 0 is the 0th percentile, 1 is 90%, 2 is 99%, ...
    pub decades: f64,
    /// Latency at that percentile, microseconds.
    pub micros: f64,
}

/// How far into the tail a histogram of `count` values reaches: the percentile at which one
/// sample remains, as decades, capped at [`MAX_DECADES`].
pub fn tail_decades(count: u64) -> f64 {
    if count <= 1 {
        0.0
    } else {
        (count as f64).log10().min(MAX_DECADES)
    }
}

/// Sample the spectrum of a histogram of nanosecond values at `steps + 1` evenly spaced decades
/// from 0 to its tail, ending at the maximum value. Empty for an empty histogram.
pub fn spectrum(histogram: &Histogram<u64>, steps: usize) -> Vec<SpectrumPoint> {
    if histogram.is_empty() || steps == 0 {
        return Vec::new();
    }
    let end = tail_decades(histogram.len());
    let mut points: Vec<SpectrumPoint> = (0..=steps)
        .map(|i| {
            let decades = end * i as f64 / steps as f64;
            let quantile = 1.0 - 10f64.powf(-decades);
            SpectrumPoint {
                decades,
                micros: histogram.value_at_quantile(quantile) as f64 / 1_000.0,
            }
        })
        .collect();
    if let Some(last) = points.last_mut() {
        last.micros = histogram.max() as f64 / 1_000.0;
    }
    points
}

/// The axis label for a whole number of decades: 0 -> `0%`, 1 -> `90%`, 2 -> `99%`,
/// 3 -> `99.9%`, 4 -> `99.99%`. Fractional positions get the exact percentile to 4 places.
pub fn decade_label(decades: f64) -> String {
    let rounded = decades.round();
    if (decades - rounded).abs() < 1e-9 && rounded >= 0.0 {
        let k = rounded as usize;
        if k == 0 {
            return "0%".to_string();
        }
        let nines = 100.0 - 10f64.powi(2 - k as i32);
        return format!("{:.*}%", k.saturating_sub(2), nines);
    }
    format!("{:.4}%", 100.0 * (1.0 - 10f64.powf(-decades)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer, V2Serializer};
    use proptest::prelude::*;

    fn sample_histogram() -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).unwrap();
        for i in 1..=10_000u64 {
            h.record(1_000 * i).unwrap();
        }
        h
    }

    fn encode(h: &Histogram<u64>, compressed: bool) -> String {
        let mut bytes = Vec::new();
        if compressed {
            V2DeflateSerializer::new().serialize(h, &mut bytes).unwrap();
        } else {
            V2Serializer::new().serialize(h, &mut bytes).unwrap();
        }
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn decodes_plain_and_compressed_v2() {
        let h = sample_histogram();
        for compressed in [false, true] {
            let back = decode_base64(&encode(&h, compressed)).unwrap();
            assert_eq!(back.len(), h.len());
            assert_eq!(back.max(), h.max());
            assert_eq!(back.value_at_quantile(0.99), h.value_at_quantile(0.99));
        }
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        let err = decode_base64("not base64 at all!").unwrap_err();
        assert!(err.contains("base64"), "{err}");
        let err = decode_base64("AAAA").unwrap_err();
        assert!(err.contains("HdrHistogram"), "{err}");
    }

    #[test]
    fn merge_adds_counts() {
        let h = sample_histogram();
        let merged = merge([&h, &h]).unwrap().unwrap();
        assert_eq!(merged.len(), 2 * h.len());
        assert!(merge([]).unwrap().is_none());
    }

    #[test]
    fn spectrum_is_monotonic_and_ends_at_max() {
        let h = sample_histogram();
        let points = spectrum(&h, 100);
        assert_eq!(points.len(), 101);
        assert!(points.windows(2).all(|w| w[0].micros <= w[1].micros));
        assert!((points[100].decades - 4.0).abs() < 1e-9);
        assert_eq!(points[100].micros, h.max() as f64 / 1_000.0);
        assert!(spectrum(&Histogram::<u64>::new(3).unwrap(), 10).is_empty());
    }

    #[test]
    fn decade_labels_read_as_nines() {
        assert_eq!(decade_label(0.0), "0%");
        assert_eq!(decade_label(1.0), "90%");
        assert_eq!(decade_label(2.0), "99%");
        assert_eq!(decade_label(3.0), "99.9%");
        assert_eq!(decade_label(5.0), "99.999%");
        assert_eq!(decade_label(std::f64::consts::LOG10_2), "50.0000%");
    }

    proptest! {
        #[test]
        fn decode_never_panics(text in ".{0,200}") {
            let _ = decode_base64(&text);
        }

        #[test]
        fn decode_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_base64(&base64::engine::general_purpose::STANDARD.encode(bytes));
        }

        #[test]
        fn roundtrip_preserves_counts(values in proptest::collection::vec(1_000u64..10_000_000_000, 1..200)) {
            let mut h = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).unwrap();
            for v in &values {
                h.record(*v).unwrap();
            }
            let back = decode_base64(&encode(&h, true)).unwrap();
            prop_assert_eq!(back.len(), values.len() as u64);
            prop_assert_eq!(back.max(), h.max());
        }
    }
}
