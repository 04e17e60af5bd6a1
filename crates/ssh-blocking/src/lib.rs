//! blocking adapter
