"""Mamba (selective state-space) models for ESPnet speech recognition."""

__version__ = "0.1.0"
