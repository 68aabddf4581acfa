"""Qt panels of the inspection window; each reads and writes an :class:`InspectionState`."""
