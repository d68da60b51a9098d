//! Rendering plans as text and JSON.
