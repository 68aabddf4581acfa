"""LSFA Inspector desktop GUI (PySide6 + pyqtgraph + pyvistaqt) over the Qt-free engine in ``core``."""
