//! Warm-pool tests.
