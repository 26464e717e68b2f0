"""Run directories: their layout, the typed run record, and using a finished run (evaluate, predict, export).

Internal: the public API is what ``catdog_zoo`` exports.
"""
