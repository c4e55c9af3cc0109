//! `--hdr-log FILE`: an HdrHistogram interval log, one corrected-latency histogram per second
//! (untagged) and the uncorrected one beside it (tag `uncorrected`), values in nanoseconds,
//! V2 compressed encoding. Java's `HistogramLogProcessor`, HdrHistogram's plotter and the
//! `hdrhistogram` crate's `IntervalLogIterator` read it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriter, IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

/// The open log file; [`HdrLogFile::begin`] writes the header and returns the writer.
pub struct HdrLogFile {
    file: BufWriter<File>,
    serializer: V2DeflateSerializer,
}

/// Writes interval histograms into an [`HdrLogFile`].
pub struct HdrLog<'a> {
    writer: IntervalLogWriter<'a, 'a, BufWriter<File>, V2DeflateSerializer>,
}

impl HdrLogFile {
    pub fn create(path: &Path) -> io::Result<HdrLogFile> {
        Ok(HdrLogFile {
            file: BufWriter::new(File::create(path)?),
            serializer: V2DeflateSerializer::new(),
        })
    }

    /// Write the header; interval timestamps are seconds since `start` (the log's BaseTime).
    pub fn begin(&mut self, start: SystemTime) -> io::Result<HdrLog<'_>> {
        let mut builder = IntervalLogWriterBuilder::new();
        builder
            .add_comment("[Logged with gev loadgen: latency in nanoseconds; untagged = corrected (from intended send time), Tag=uncorrected = from actual send]")
            .add_comment("[Histogram log format version 1.3]")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1_000_000.0);
        let mut writer = builder.begin_log_with(&mut self.file, &mut self.serializer)?;
        writer.write_comment(
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"",
        )?;
        Ok(HdrLog { writer })
    }

    /// Flush everything written.
    pub fn finish(mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl HdrLog<'_> {
    /// One interval starting `start` after the log's base time.
    pub fn write(
        &mut self,
        start: Duration,
        length: Duration,
        corrected: &Histogram<u64>,
        uncorrected: &Histogram<u64>,
    ) -> io::Result<()> {
        let to_io = |e: hdrhistogram::serialization::interval_log::IntervalLogWriterError<_>| {
            io::Error::other(e.to_string())
        };
        self.writer
            .write_histogram(corrected, start, length, None)
            .map_err(to_io)?;
        self.writer
            .write_histogram(uncorrected, start, length, Tag::new("uncorrected"))
            .map_err(to_io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::new_histogram;
    use base64::Engine;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    #[test]
    fn written_log_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.hlog");
        let mut file = HdrLogFile::create(&path).unwrap();
        let mut corrected = new_histogram();
        corrected.record(2_000_000).unwrap();
        let mut uncorrected = new_histogram();
        uncorrected.record(1_000_000).unwrap();
        {
            let mut log = file.begin(SystemTime::now()).unwrap();
            for second in 0..3 {
                log.write(
                    Duration::from_secs(second),
                    Duration::from_secs(1),
                    &corrected,
                    &uncorrected,
                )
                .unwrap();
            }
        }
        file.finish().unwrap();
        let text = std::fs::read(&path).unwrap();
        let mut histograms = 0;
        for entry in IntervalLogIterator::new(&text) {
            if let LogEntry::Interval(interval) = entry.unwrap() {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(interval.encoded_histogram())
                    .unwrap();
                let h: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut bytes.as_slice())
                    .unwrap();
                let expected = if interval.tag().is_some() {
                    1_000_000
                } else {
                    2_000_000
                };
                assert!(h.equivalent(h.max(), expected));
                assert!((interval.max() - expected as f64 / 1e6).abs() < 0.01);
                histograms += 1;
            }
        }
        assert_eq!(histograms, 6);
    }
}
