"""The runs half: flags, run records on disk, listing, launching, reports.

Nothing here imports torch or the estimator half.
"""
