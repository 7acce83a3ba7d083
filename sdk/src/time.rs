//! Time windows in unix milliseconds, as the plugin interfaces use them.

/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;

/// A half-open span of time `[start, end)` in unix milliseconds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Window {
    /// First instant inside.
    pub start: i64,
    /// First instant after.
    pub end: i64,
}

impl Window {
    /// A window from `start` lasting `minutes`.
    pub fn from_minutes(start: i64, minutes: u32) -> Self {
        Self {
            start,
            end: start + i64::from(minutes) * MINUTE_MS,
        }
    }

    /// True when the two windows share an instant.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// True when `instant` is inside.
    pub fn contains(&self, instant: i64) -> bool {
        self.start <= instant && instant < self.end
    }

    /// Length in minutes.
    pub fn minutes(&self) -> i64 {
        (self.end - self.start) / MINUTE_MS
    }

    /// Splits the window into consecutive windows of `minutes`, dropping a shorter remainder.
    pub fn split(&self, minutes: u32) -> Vec<Window> {
        let step = i64::from(minutes.max(1)) * MINUTE_MS;
        let mut out = Vec::new();
        let mut start = self.start;
        while start + step <= self.end {
            out.push(Window {
                start,
                end: start + step,
            });
            start += step;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let w = Window::from_minutes(0, 120);
        assert_eq!(w.minutes(), 120);
        assert!(w.contains(0) && !w.contains(w.end));
        assert!(w.overlaps(&Window::from_minutes(60 * MINUTE_MS, 120)));
        assert!(!w.overlaps(&Window::from_minutes(120 * MINUTE_MS, 10)));
        assert_eq!(w.split(50).len(), 2);
    }
}
