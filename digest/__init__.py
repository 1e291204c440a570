"""Digest: research feeds in, findings site, weekly newsletter and tag search out."""

__version__ = "0.1.0"
