//! The wire codec (to be written): versioned, length-prefixed, checksummed frames.
