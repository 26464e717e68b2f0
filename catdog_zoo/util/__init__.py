"""Utilities with no knowledge of models or data: atomic files, digests, progress, the version.

Internal: the public API is what ``catdog_zoo`` exports.
"""
