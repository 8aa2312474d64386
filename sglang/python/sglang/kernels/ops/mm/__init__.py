"""Multimodal kernels."""

__all__ = ["process"]
