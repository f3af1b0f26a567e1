"""Shared low-level helpers with no covidlib dependencies: atomic files and folders, third-party
shims, the allocator tuning, environment flags and lazy re-exports.
"""
