//! Lossless JPEG metadata stripper.
