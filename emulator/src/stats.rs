//! Counters that show what reached the emulator, readable over `GET /emulator/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// A snapshot of the emulator's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// TCP connections accepted.
    pub connections: u64,
    /// Verification requests (`POST /`) received, whatever their outcome.
    pub requests: u64,
    /// Verdicts given, by `VerifyCode`.
    pub verdicts: BTreeMap<String, u64>,
    /// Error answers given, by gateway error code.
    pub errors: BTreeMap<String, u64>,
    /// Requests answered with an injected fault.
    pub faults: u64,
    /// Requests that carried a param an earlier request had already carried. A client that
    /// never re-sends a param keeps this at zero.
    pub repeated_params: u64,
    /// Params minted.
    pub params_minted: u64,
    /// Temporary credentials issued by the emulated STS, metadata service and credentials
    /// URI.
    pub credentials_issued: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) faults: AtomicU64,
    pub(crate) repeated_params: AtomicU64,
    pub(crate) params_minted: AtomicU64,
    pub(crate) credentials_issued: AtomicU64,
    by_code: Mutex<ByCode>,
}

/// Answers counted by their code.
#[derive(Debug, Default)]
struct ByCode {
    verdicts: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
}

/// Counts one more `code`: its name is copied only the first time.
fn count(counts: &mut BTreeMap<String, u64>, code: &str) {
    match counts.get_mut(code) {
        Some(n) => *n += 1,
        None => {
            counts.insert(code.to_owned(), 1);
        }
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn verdict(&self, code: &str) {
        let mut maps = self.by_code.lock().unwrap_or_else(|e| e.into_inner());
        count(&mut maps.verdicts, code);
    }

    pub(crate) fn error(&self, code: &str) {
        let mut maps = self.by_code.lock().unwrap_or_else(|e| e.into_inner());
        count(&mut maps.errors, code);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let maps = self.by_code.lock().unwrap_or_else(|e| e.into_inner());
        Stats {
            connections: self.connections.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            verdicts: maps.verdicts.clone(),
            errors: maps.errors.clone(),
            faults: self.faults.load(Ordering::Relaxed),
            repeated_params: self.repeated_params.load(Ordering::Relaxed),
            params_minted: self.params_minted.load(Ordering::Relaxed),
            credentials_issued: self.credentials_issued.load(Ordering::Relaxed),
        }
    }
}
