//! Datastore tests.
