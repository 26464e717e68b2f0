"""Pictures and tables for people: figures, a run's report page, the leaderboard, data and augmentation grids.

Internal: the public API is what ``catdog_zoo`` exports.
"""
