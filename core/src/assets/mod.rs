//! placeholder: content-hashed asset naming and the manifest format
