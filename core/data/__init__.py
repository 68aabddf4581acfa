"""Dataset readers, preprocessing and the built-in demo dataset generator."""
