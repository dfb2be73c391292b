"""TriBERT: a tri-modal (vision, pose, audio) transformer for visual sound separation."""

__version__ = "0.1.0"
