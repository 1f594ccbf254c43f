//! Bad input gives a clear message and exit status 2, never a panic.

use crate::util::*;

fn check_error(args: &[&str], expected: &[&str]) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    let e = stderr(&o);
    for want in expected {
        assert!(e.contains(want), "{args:?}: stderr lacks {want:?}: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn bad_input_is_explained() {
    check_error(&["snap", "--pid", "4000000000"], &["4000000000"]);
    check_error(&["snap", "--pid", "999999"], &["999999"]);
    check_error(
        &["snap", "--pid", "1", "--min-rss", "lots"],
        &["lots", "1MiB"],
    );
    check_error(
        &["record", "--pid", "1", "--interval", "0s"],
        &["greater than zero"],
    );
    check_error(&["record", "--pid", "1", "--interval", "soon"], &["soon"]);
    check_error(&["snap", "--name", "("], &["regular expression"]);
    check_error(&["snap"], &["--pid"]);
    check_error(&["snap", "--pid", "1", "--all"], &["cannot be used with"]);
    check_error(&["snap", "--all", "--children"], &["--pid"]);
    check_error(
        &["record", "--pid", "1", "--detail", "lots"],
        &["summary", "full"],
    );
    check_error(&["run"], &["CMD"]);
}
