//! Warnings that stay readable under attack: the first alarm of a kind is logged at once, the
//! rest are counted and summed up in the next line of that kind, at most one line per kind per
//! interval.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one line per kind this often.
const INTERVAL: Duration = Duration::from_secs(10);

/// Per-kind rate limits, shared by the services of one layer. Kinds are static names from a
/// small fixed set (error kinds and the layer's own alarms), so the map stays small.
#[derive(Debug, Default)]
pub(crate) struct Alarms {
    kinds: Mutex<HashMap<&'static str, Tally>>,
}

#[derive(Debug)]
struct Tally {
    next: Instant,
    unlogged: u64,
}

impl Alarms {
    /// Calls `log` with the number of alarms of `kind` left unlogged since its last line, if
    /// one may be logged at `now`; otherwise counts this one.
    pub(crate) fn raise(&self, kind: &'static str, now: Instant, log: impl FnOnce(u64)) {
        let unlogged = {
            let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
            let slot = kinds.entry(kind).or_insert(Tally {
                next: now,
                unlogged: 0,
            });
            if now < slot.next {
                slot.unlogged += 1;
                return;
            }
            slot.next = now + INTERVAL;
            std::mem::take(&mut slot.unlogged)
        };
        log(unlogged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_logs_one_line_per_kind_per_interval() {
        let origin = Instant::now();
        let alarms = Alarms::default();
        let mut lines = Vec::new();
        for ms in 0..25_000u64 {
            let now = origin + Duration::from_millis(ms);
            alarms.raise("timeout", now, |unlogged| {
                lines.push(("timeout", ms, unlogged))
            });
            if ms % 2 == 0 {
                alarms.raise("overloaded", now, |unlogged| {
                    lines.push(("overloaded", ms, unlogged))
                });
            }
        }
        assert_eq!(
            lines,
            [
                ("timeout", 0, 0),
                ("overloaded", 0, 0),
                ("timeout", 10_000, 9_999),
                ("overloaded", 10_000, 4_999),
                ("timeout", 20_000, 9_999),
                ("overloaded", 20_000, 4_999),
            ]
        );
    }
}
