//! Reading a test run's serial output into a verdict.
//!
//! A run passes only if all of these hold: the closing `N passed, M failed` line is there, `M` is
//! 0, `N` equals the number of `ok` lines and is at least the expected minimum, no line says
//! `FAILED`, no kernel panic was printed, and QEMU left through `isa-debug-exit` with the success
//! code. Anything else (a hang, a triple fault that silently ends QEMU, a panic) is a failure
//! with a reason.

/// What QEMU's exit status means under `isa-debug-exit` (status = code << 1 | 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The kernel wrote the success code (status 33).
    Success,
    /// The kernel wrote the failure code (status 35), e.g. from its panic handler.
    Failure,
    /// QEMU ended without the device being written: a triple fault with `-no-reboot`, or a crash.
    Other(i32),
    /// The harness killed QEMU after the timeout.
    TimedOut,
    /// The harness killed QEMU because the line it waited for arrived (boot checks).
    Stopped,
}

impl Exit {
    /// Maps a QEMU process exit status.
    pub fn from_status(status: Option<i32>) -> Self {
        match status {
            Some(33) => Exit::Success,
            Some(35) => Exit::Failure,
            Some(other) => Exit::Other(other),
            None => Exit::Other(-1),
        }
    }
}

/// One test result line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestLine {
    /// The test's name.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Indented lines after a FAILED line (the reason).
    pub detail: Vec<String>,
}

/// Everything read from one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Test lines in order.
    pub tests: Vec<TestLine>,
    /// The closing `(passed, failed)` line, if printed.
    pub summary: Option<(usize, usize)>,
    /// The kernel panic message, if any.
    pub panic: Option<String>,
}

/// Parses serial output.
pub fn parse(output: &str) -> Report {
    let mut report = Report::default();
    for line in output.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("test ") {
            if let Some(name) = rest.strip_suffix(" ... ok") {
                report.tests.push(TestLine { name: name.to_string(), ok: true, detail: Vec::new() });
                continue;
            }
            if let Some(name) = rest.strip_suffix(" ... FAILED") {
                report.tests.push(TestLine { name: name.to_string(), ok: false, detail: Vec::new() });
                continue;
            }
        }
        if line.starts_with("    ")
            && let Some(last) = report.tests.last_mut().filter(|t| !t.ok)
        {
            last.detail.push(line.trim().to_string());
            continue;
        }
        if let Some(pos) = line.find("KERNEL PANIC: ") {
            report.panic.get_or_insert_with(|| line[pos + "KERNEL PANIC: ".len()..].to_string());
            continue;
        }
        if let Some(summary) = parse_summary(line) {
            report.summary = Some(summary);
        }
    }
    report
}

/// Reads `N passed, M failed` (the whole line).
pub fn parse_summary(line: &str) -> Option<(usize, usize)> {
    let (passed, failed) = line.trim().split_once(" passed, ")?;
    let failed = failed.strip_suffix(" failed")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

impl Report {
    /// Why this run failed, or `None` if it passed. `min_tests` guards against a suite that
    /// silently ran fewer tests than it should.
    pub fn failure(&self, exit: Exit, min_tests: usize) -> Option<String> {
        if exit == Exit::TimedOut {
            return Some("timed out (hang): QEMU killed".into());
        }
        if let Some(panic) = &self.panic {
            return Some(format!("kernel panic: {panic}"));
        }
        let failed: Vec<&str> = self.tests.iter().filter(|t| !t.ok).map(|t| t.name.as_str()).collect();
        if !failed.is_empty() {
            return Some(format!("failed: {}", failed.join(", ")));
        }
        let Some((passed, failed)) = self.summary else {
            return Some(format!("no closing summary line (QEMU exit {exit:?}): crash or triple fault"));
        };
        let ok = self.tests.len();
        if failed != 0 || passed != ok {
            return Some(format!("summary says {passed} passed, {failed} failed but {ok} ok lines were printed"));
        }
        if ok < min_tests {
            return Some(format!("only {ok} tests ran, expected at least {min_tests}"));
        }
        if exit != Exit::Success {
            return Some(format!("QEMU exit {exit:?} instead of the success code"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "boot log\ntest a::one ... ok\r\ntest a::two ... ok\n2 passed, 0 failed\n";

    #[test]
    fn passing_run() {
        let report = parse(GOOD);
        assert_eq!(report.tests.len(), 2);
        assert_eq!(report.summary, Some((2, 0)));
        assert_eq!(report.failure(Exit::Success, 2), None);
    }

    #[test]
    fn failed_test_is_reported_with_its_reason() {
        let report = parse("test a ... ok\ntest b ... FAILED\n    x == y: bad\n1 passed, 1 failed\n");
        assert_eq!(report.tests[1].detail, vec!["x == y: bad".to_string()]);
        assert_eq!(report.failure(Exit::Failure, 1).as_deref(), Some("failed: b"));
    }

    #[test]
    fn panic_hang_and_triple_fault_fail() {
        let panicked = parse("test a ... ok\n\nKERNEL PANIC: panicked at x.rs:1:1: boom\n");
        assert!(panicked.failure(Exit::Failure, 1).is_some_and(|f| f.contains("boom")));
        assert!(parse(GOOD).failure(Exit::TimedOut, 1).is_some_and(|f| f.contains("hang")));
        let triple = parse("test a ... ok\n");
        assert!(triple.failure(Exit::Other(0), 1).is_some_and(|f| f.contains("triple fault")));
    }

    #[test]
    fn inconsistent_or_short_runs_fail() {
        assert!(parse("test a ... ok\n2 passed, 0 failed\n").failure(Exit::Success, 1).is_some());
        assert!(parse(GOOD).failure(Exit::Success, 3).is_some_and(|f| f.contains("only 2")));
        assert!(parse(GOOD).failure(Exit::Failure, 2).is_some());
        assert!(parse("").failure(Exit::Success, 0).is_some());
    }

    #[test]
    fn summary_parsing() {
        assert_eq!(parse_summary("12 passed, 3 failed"), Some((12, 3)));
        assert_eq!(parse_summary("x passed, 3 failed"), None);
        assert_eq!(parse_summary("test result: ok. 3 passed; 0 failed"), None);
        assert_eq!(Exit::from_status(Some(33)), Exit::Success);
        assert_eq!(Exit::from_status(Some(0)), Exit::Other(0));
    }
}
