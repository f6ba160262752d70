//! The integration tests of `kiln-runtime`, linked as one binary.

mod artifact_corruption;
mod plan_fixture_rnn;
mod plan_golden;
