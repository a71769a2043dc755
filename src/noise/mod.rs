//! Noise XX secure channel (filled by the Noise issue).
