//! End-to-end tests: the real `memtrail` binary against real processes and
//! the real /proc. One test binary (faster to build and link), one module
//! per command.

mod util;

mod analyze_scenarios;
mod attach;
mod churn;
mod cli_analyze;
mod cli_diff;
mod cli_docs;
mod cli_dump;
mod cli_errors;
mod cli_record;
mod cli_report;
mod cli_run;
mod cli_snap;
mod doc_examples;
mod events;
mod faults;
mod moments;
mod native;
mod owners;
mod rotate;
mod runtime_scenarios;
mod security;
mod serve;
mod soak;
mod status_line;
