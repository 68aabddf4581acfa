"""A pyvista plotter that renders into its own native child window (VTK's native Qt mode).

pyvistaqt's ``QtInteractor`` is a ``QOpenGLWidget``: Qt then composes the whole top-level
window through OpenGL on every repaint of any widget in it (tens of ms per status-label repaint
in software GL, on the UI thread). Here VTK's ``QVTKRenderWindowInteractor`` is used with its
plain ``QWidget`` base: the widget is a native window (``winId``), VTK's own OpenGL render
window (GLX on X11) draws into it, and Qt paints every other widget with its raster backing
store, as if there were no 3D view. ``NativeInteractor`` adds pyvista's plotting API
(``BasePlotter``), as ``QtInteractor`` does for its widget.

Qt's ``QWidget.grab`` cannot read a native OpenGL window; :func:`rendered_rgb` reads the render
window's own image instead.
"""

from __future__ import annotations

import numpy as np
import vtkmodules.qt

vtkmodules.qt.QVTKRWIBase = "QWidget"  # before the import below: the base class is chosen there
from pyvista import global_theme  # noqa: E402
from pyvista.plotting.plotter import BasePlotter  # noqa: E402
from pyvista.plotting.render_window_interactor import RenderWindowInteractor  # noqa: E402
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor  # noqa: E402
from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter  # noqa: E402

if QVTKRenderWindowInteractor.__mro__[1].__name__ != "QWidget":  # imported earlier with another base
    raise ImportError("vtkmodules.qt.QVTKRenderWindowInteractor was imported with a non-QWidget base")


class NativeInteractor(QVTKRenderWindowInteractor, BasePlotter):
    """A native-window Qt widget that is also a pyvista plotter (``add_mesh``, ``render``, ...).
    ``render()`` draws at once into the window; a Qt repaint (``update()``) renders too."""

    def __init__(self, parent=None, multi_samples: int = 0):
        init = BasePlotter.__init__
        BasePlotter.__init__ = lambda *a, **k: None  # PySide6 calls the mixin's __init__ cooperatively
        try:
            QVTKRenderWindowInteractor.__init__(self, parent)
        finally:
            BasePlotter.__init__ = init
        BasePlotter.__init__(self)
        self._closed = False
        self.interactor = self
        self.ren_win = self.GetRenderWindow()
        self.ren_win.SetMultiSamples(multi_samples)
        for renderer in self.renderers:
            renderer.view_isometric()
            self.ren_win.AddRenderer(renderer)
        self.background_color = global_theme.background
        self._off_screen = False
        self.iren = RenderWindowInteractor(self, interactor=self.ren_win.GetInteractor())
        self.iren.interactor.RemoveObservers("MouseMoveEvent")
        self.iren.initialize()
        self.enable_trackball_style()
        self._observers = {}
        self.iren.add_observer("KeyPressEvent", self.key_press_event)
        self.reset_key_events()
        self._first_time = False  # BasePlotter.render renders only after "show"

    def render(self) -> None:
        """Render the scene now (nothing once closed)."""
        if self._closed:
            return
        self._rendered = True
        BasePlotter.render(self)

    def close(self) -> None:
        """Release the VTK render window and close the widget (idempotent)."""
        if self._closed:
            return
        self._closed = True
        BasePlotter.close(self)
        QVTKRenderWindowInteractor.close(self)


def rendered_rgb(render_window) -> np.ndarray:
    """H×W×3 uint8 RGB of what ``render_window`` last rendered, top row first."""
    grab = vtkWindowToImageFilter()
    grab.SetInput(render_window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.ShouldRerenderOff()
    grab.Update()
    image = grab.GetOutput()
    w, h, _ = image.GetDimensions()
    from vtkmodules.util.numpy_support import vtk_to_numpy

    return vtk_to_numpy(image.GetPointData().GetScalars()).reshape(h, w, 3)[::-1].copy()
