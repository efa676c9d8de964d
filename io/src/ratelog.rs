//! Rate-limited log lines: an event that can repeat thousands of times a second (a refused
//! connection in a flood, a flapping broker) is written at most once per interval, with the count
//! of what happened meanwhile, so a flood cannot fill stderr or a disk.

use std::time::{Duration, Instant};

/// One kind of repeated event.
#[derive(Debug)]
pub struct RateLog {
    what: &'static str,
    interval: Duration,
    /// When the last line was written (None: never).
    last: Option<Instant>,
    /// Events since that line.
    unreported: u64,
    /// The latest event's detail.
    detail: String,
}

impl RateLog {
    /// Events described as `what`, at most one line per `interval`.
    pub fn new(what: &'static str, interval: Duration) -> Self {
        Self {
            what,
            interval,
            last: None,
            unreported: 0,
            detail: String::new(),
        }
    }

    /// Counts one event; returns the line to write now, if one is due. The first event is
    /// reported at once; later ones wait for the interval and are reported as a count.
    pub fn hit(&mut self, detail: impl FnOnce() -> String, now: Instant) -> Option<String> {
        self.unreported += 1;
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.interval)
        {
            return None;
        }
        self.detail = detail();
        self.line(now)
    }

    /// The pending count, once its interval has passed (call this from a timer, so the last
    /// events of a burst are reported too).
    pub fn due(&mut self, now: Instant) -> Option<String> {
        if self.unreported == 0
            || self
                .last
                .is_some_and(|t| now.duration_since(t) < self.interval)
        {
            return None;
        }
        self.line(now)
    }

    fn line(&mut self, now: Instant) -> Option<String> {
        let n = std::mem::take(&mut self.unreported);
        let line = match self.last {
            None => format!("{}: {}", self.what, self.detail),
            Some(t) => format!(
                "{}: {n} in the last {:.0} s (latest: {})",
                self.what,
                now.duration_since(t).as_secs_f64(),
                self.detail
            ),
        };
        self.last = Some(now);
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let t0 = Instant::now();
        let mut log = RateLog::new("refused", Duration::from_secs(10));
        let first = log
            .hit(|| "limit".into(), t0)
            .expect("the first is said at once");
        assert_eq!(first, "refused: limit");
        for i in 1..25_000u64 {
            let t = t0 + Duration::from_micros(i * 100); // 2.5 s of flood
            assert_eq!(log.hit(|| unreachable!("not formatted"), t), None);
        }
        assert_eq!(
            log.due(t0 + Duration::from_secs(5)),
            None,
            "interval not over"
        );
        let line = log.due(t0 + Duration::from_secs(10)).expect("the count");
        assert!(
            line.starts_with("refused: 24999 in the last 10 s"),
            "{line}"
        );
        assert_eq!(log.due(t0 + Duration::from_secs(30)), None, "nothing new");
    }
}
