"""Images from folders to batches: sources, splits, decoding (validated, cached), batches, checks.

Internal: the public API is what ``catdog_zoo`` exports.
"""
