"""LSFA Inspector engine: data readers, features, memory-bank scoring, LSFA adaptation.

Headless: nothing in ``core`` imports Qt, pyqtgraph or pyvista.
"""

__version__ = "0.1.0"
