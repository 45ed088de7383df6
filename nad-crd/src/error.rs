//! Errors for what pods and NADs supply. Each names the entry, the field and the offending
//! value, so the meta plugin can report it as a CNI "invalid config" (code 7) that a user can
//! act on.

/// An invalid `k8s.v1.cni.cncf.io/networks` or `v1.multus-cni.io/default-network` annotation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    /// The JSON form does not decode, or is neither a list nor an object.
    #[error("{annotation} annotation: {reason}")]
    Malformed {
        /// The annotation key.
        annotation: &'static str,
        /// The whole annotation value.
        value: String,
        /// Why it does not decode.
        reason: String,
    },
    /// One entry is invalid.
    #[error("{annotation} annotation entry {index} ({entry:?}): {problem}")]
    Entry {
        /// The annotation key.
        annotation: &'static str,
        /// The entry's position, from 0.
        index: usize,
        /// The entry as written (comma form) or re-encoded compactly (JSON form).
        entry: String,
        /// What is wrong with it.
        problem: EntryProblem,
    },
    /// More networks than the annotation takes (`default-network` takes one).
    #[error("{annotation} annotation {value:?}: {count} networks given, only one allowed")]
    TooManyEntries {
        /// The annotation key.
        annotation: &'static str,
        /// The whole annotation value.
        value: String,
        /// How many entries it has.
        count: usize,
    },
}

/// What is wrong with one annotation entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    /// Comma form: `a/b/c`.
    #[error("more than one '/'")]
    MoreThanOneSlash,
    /// Comma form: `a@b@c`.
    #[error("more than one '@'")]
    MoreThanOneAt,
    /// JSON form: a list element that is not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A required field is absent (or null).
    #[error("missing {field:?}")]
    Missing {
        /// The field's name as the JSON form spells it.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("{field} {json}: must be {expected}")]
    WrongType {
        /// The field's name as the JSON form spells it.
        field: &'static str,
        /// The offending value as JSON text.
        json: String,
        /// What it must be, e.g. "a string".
        expected: &'static str,
    },
    /// A field's value is invalid.
    #[error("{field} {value:?}: {reason}")]
    Invalid {
        /// The field's name as the JSON form spells it (`name`, `namespace`, `interface`,
        /// `ips`, `mac`, ...), also for the comma form.
        field: &'static str,
        /// The offending value: the text for strings, the JSON text otherwise.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
}

impl AnnotationError {
    /// The annotation key.
    pub fn annotation(&self) -> &'static str {
        match self {
            AnnotationError::Malformed { annotation, .. }
            | AnnotationError::Entry { annotation, .. }
            | AnnotationError::TooManyEntries { annotation, .. } => annotation,
        }
    }

    /// The position of the offending entry, when one entry is at fault.
    pub fn index(&self) -> Option<usize> {
        match self {
            AnnotationError::Entry { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// The offending field, when one field is at fault.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            AnnotationError::Entry { problem, .. } => problem.field(),
            _ => None,
        }
    }

    /// The most precise offending text: the field's value, else the entry, else the whole
    /// annotation value.
    pub fn value(&self) -> &str {
        match self {
            AnnotationError::Entry { entry, problem, .. } => problem.value().unwrap_or(entry),
            AnnotationError::Malformed { value, .. }
            | AnnotationError::TooManyEntries { value, .. } => value,
        }
    }
}

impl EntryProblem {
    /// The offending field, if the problem is with one field.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            EntryProblem::Missing { field }
            | EntryProblem::WrongType { field, .. }
            | EntryProblem::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The offending field's value, if the problem is with one field's value.
    pub fn value(&self) -> Option<&str> {
        match self {
            EntryProblem::WrongType { json: value, .. } | EntryProblem::Invalid { value, .. } => {
                Some(value)
            }
            _ => None,
        }
    }
}

/// An invalid `spec.config` in a NetworkAttachmentDefinition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NadConfigError {
    /// `spec.config` is not JSON.
    #[error("NetworkAttachmentDefinition {nad:?}: spec.config is not valid JSON: {reason}")]
    Json {
        /// The NAD's name.
        nad: String,
        /// The decoder's message.
        reason: String,
    },
    /// A required field is absent.
    #[error("NetworkAttachmentDefinition {nad:?}: {field}: missing ({reason})")]
    Missing {
        /// The NAD's name.
        nad: String,
        /// The field's path, e.g. `spec.config.plugins`.
        field: String,
        /// Why it is required.
        reason: &'static str,
    },
    /// A field has the wrong shape.
    #[error("NetworkAttachmentDefinition {nad:?}: {field} {value}: {reason}")]
    Invalid {
        /// The NAD's name.
        nad: String,
        /// The field's path, e.g. `spec.config.plugins[0].type`.
        field: String,
        /// The offending value as JSON text.
        value: String,
        /// What it must be.
        reason: &'static str,
    },
}

impl NadConfigError {
    /// The name of the NAD at fault.
    pub fn nad(&self) -> &str {
        match self {
            NadConfigError::Json { nad, .. }
            | NadConfigError::Missing { nad, .. }
            | NadConfigError::Invalid { nad, .. } => nad,
        }
    }

    /// The path of the offending field (`spec.config` when the whole text is at fault).
    pub fn field(&self) -> &str {
        match self {
            NadConfigError::Json { .. } => "spec.config",
            NadConfigError::Missing { field, .. } | NadConfigError::Invalid { field, .. } => field,
        }
    }

    /// The offending value as JSON text, when there is one.
    pub fn value(&self) -> Option<&str> {
        match self {
            NadConfigError::Invalid { value, .. } => Some(value),
            _ => None,
        }
    }
}
