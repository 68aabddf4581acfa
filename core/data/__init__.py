"""Dataset readers and preprocessing, plus the independent confirmation-data generator ``parts.py`` (the demo generator is ``core.demo``)."""
