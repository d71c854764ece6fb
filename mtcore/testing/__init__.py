"""Helpers for tests and plugin authors: tiny offline encoders, plugin checks, smoke trainings."""

from mtcore.testing.tiny import ARCHITECTURES, build_tiny_encoder

__all__ = ["ARCHITECTURES", "build_tiny_encoder"]
