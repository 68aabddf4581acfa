"""3D view: the organized point cloud's valid points coloured by anomaly score (pyvista).

Uses the same colormap and colour range as the 2D heatmap (fixed across samples unless the
per-sample stretch is switched on). Points below the pixel threshold are drawn grey: their
display scalar is set to NaN and the mapper's NaN colour is grey, so a threshold change only
rewrites one float array. A new sample's points and mesh are built in a background thread
(:mod:`lsfa_gui.cloud_mesh`, at most ``MAX_SHOWN_POINTS`` drawn); the UI thread swaps the
actor's data and renders once. Without an OpenGL-capable Qt platform (e.g. ``offscreen``) the
view keeps its data logic but shows a notice instead of the renderer. The renderer is a native
child window that VTK draws into (:mod:`lsfa_gui.widgets.native_interactor`), so the rest of the
window repaints without OpenGL composition.
"""

from __future__ import annotations

import os
import time

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qthrottled, signals_blocked

from lsfa_gui import overlay
from lsfa_gui.cloud_mesh import CloudData, MeshBuilder, greyed
from lsfa_gui.colormaps import lut
from lsfa_gui.state import InspectionState, normalised
from lsfa_gui.widgets.flow_layout import FlowLayout

GREY_RGB = tuple(c / 255.0 for c in overlay.BELOW_THRESHOLD_RGB)
BACKGROUND = "#1e1e1e"


def opengl_available() -> bool:
    """True when a QtInteractor can render here (an X/Wayland/Windows/macOS platform)."""
    if os.environ.get("LSFA_NO_3D"):
        return False
    app = QGuiApplication.instance()
    name = app.platformName() if app is not None else os.environ.get("QT_QPA_PLATFORM", "")
    return name not in ("offscreen", "minimal", "vnc", "")


WIDGET_ENV = "LSFA_3D_WIDGET"  # "qopengl": pyvistaqt's QOpenGLWidget instead of the native window
NATIVE_PLATFORMS = ("xcb",)  # where the native window is used (tested on X11 only; VTK's mode
#                              also exists on Windows and macOS, where GPU composition is cheap)


def make_plotter(parent: QWidget):
    """The 3D view's pyvista plotter widget: a native child window that VTK renders into
    (:mod:`lsfa_gui.widgets.native_interactor`) on X11; elsewhere (Wayland, Windows, macOS) or
    with ``LSFA_3D_WIDGET=qopengl`` pyvistaqt's ``QtInteractor``, a QOpenGLWidget (Qt then
    composes the whole window through OpenGL on every repaint: slow in software GL)."""
    app = QGuiApplication.instance()
    native = app is not None and app.platformName() in NATIVE_PLATFORMS
    if not native or os.environ.get(WIDGET_ENV, "native").lower() == "qopengl":
        from pyvistaqt import QtInteractor

        return QtInteractor(parent, auto_update=False, multi_samples=0)
    from lsfa_gui.widgets.native_interactor import NativeInteractor

    return NativeInteractor(parent, multi_samples=0)


MAX_UNSCORED_GRID = 65_536  # an unscored cloud is shown on at most this many grid pixels (256², about
#                             the density of a scored cloud on the 224 px model grid: a quick mesh)


def thinned_grid(xyz: np.ndarray, max_pixels: int = MAX_UNSCORED_GRID) -> np.ndarray:
    """An organized cloud (H×W×3, metres) kept on every k-th row and column so it has at most
    ``max_pixels`` grid pixels (still organized, for the surface mesh)."""
    h, w = xyz.shape[:2]
    k = max(1, int(np.ceil(np.sqrt(h * w / max_pixels))))
    return xyz[::k, ::k]


class CloudView(QWidget):
    """Reads ``state`` (current sample, thresholds, colour range); writes the per-sample toggle."""

    PAGE_PLOT, PAGE_NOTICE = 0, 1

    def __init__(self, state: InspectionState, parent=None, enable_3d: bool | None = None):
        super().__init__(parent)
        self.state = state
        self.points: np.ndarray | None = None  # N×3 float32, metres (all valid points)
        self.scores: np.ndarray | None = None  # N raw scores
        self.display_scalars: np.ndarray | None = None  # N, NaN = below pixel threshold
        self.picked: int | None = None
        self._greyed_at: float | None = None
        self._message_actor = None
        self._data: CloudData | None = None  # the shown cloud (built off the UI thread)
        self._source: dict | None = None  # what the current sample's cloud is built from
        self._ticket: int | None = None  # the build whose result is awaited
        self._camera_pending = False  # fit the camera when the awaited build arrives
        self._builder = MeshBuilder(self)
        self._builder.built.connect(self._on_built)
        self._mesh = None
        self._actor = None
        self._lut_key = None  # (colormap, colour range) of the lookup table the actor draws with
        self._native = False  # the plotter is a NativeInteractor (renders into its own window)
        self.plotter = None

        self.stack = QStackedWidget()
        self.notice = QLabel()
        self.notice.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.notice.setWordWrap(True)
        self.notice.setObjectName("cloudNotice")
        self.notice.setStyleSheet(f"background:{BACKGROUND};color:#bbb;font-size:14px;")
        enable_3d = opengl_available() if enable_3d is None else enable_3d
        if enable_3d:
            import pyvista as pv

            pv.global_theme.allow_empty_mesh = True
            self.plotter = make_plotter(self)
            # one headlight instead of pyvista's five-light kit: software GL lights every pixel
            # per light, so a render (on the UI thread) takes ~40 % less
            self.plotter.renderer.remove_all_lights()
            self.plotter.renderer.add_light(pv.Light(light_type="headlight"))
            self._native = type(self.plotter).__name__ == "NativeInteractor"
            self.plotter.set_background(BACKGROUND)
            self.plotter.enable_point_picking(
                callback=self._on_pick, show_message=False, use_picker=True, show_point=True,
                color="cyan", point_size=12, pickable_window=False,
            )
            self.plotter.render_window.AddObserver("EndEvent", self._rendered)  # every render, user's too
            self.stack.addWidget(self.plotter)
        else:
            self.stack.addWidget(QWidget())
        self.stack.addWidget(self.notice)

        self.reset_button = QPushButton("Reset view")
        self.reset_button.setToolTip("Reset the 3D camera (R)")
        self.reset_button.clicked.connect(self.reset_camera)
        self.stretch_check = QCheckBox("Stretch per sample")
        self.stretch_check.setToolTip(
            "Stretch colours to this sample's own min–max (2D and 3D).\n"
            "Off (default): one fixed range for all samples, so colours are comparable."
        )
        self.stretch_check.toggled.connect(lambda on: state.set_display(per_sample_range=on))
        self.point_size = QSpinBox()
        self.point_size.setRange(1, 10)
        self.point_size.setValue(2)
        self.point_size.setPrefix("size ")
        self.point_size.setToolTip("Rendered size of each point in pixels (Points style)")
        self.point_size.setEnabled(False)
        self.point_size.valueChanged.connect(self._on_point_size)
        self._point_size_auto = True  # until the user picks a size, fit it to the point density
        self.style_combo = QComboBox()
        self.style_combo.addItems(["Surface", "Points"])
        self.style_combo.setToolTip(
            "Surface: the valid points joined to their grid neighbours (shaded; depth jumps left open).\n"
            "Points: each valid point on its own."
        )
        self.style_combo.currentTextChanged.connect(self._on_style)
        self.readout = QLabel(" ")
        self.readout.setObjectName("readout")
        self.readout.setMinimumWidth(10)
        self.readout.setWordWrap(True)  # a narrow window wraps the readout instead of widening
        # two lines kept: a readout that grows by a line shrinks the 3D widget, and every resize
        # re-renders the scene (slow in software GL)
        self.readout.setMinimumHeight(2 * self.readout.fontMetrics().lineSpacing() + 4)
        self._render_pending = False
        self._last_render = 0.0
        controls = FlowLayout()  # wraps onto a second row in a narrow window
        controls.addWidget(self.reset_button)
        controls.addWidget(self.style_combo)
        controls.addWidget(self.point_size)
        controls.addWidget(self.stretch_check)
        self.title = QLabel("<b>3D</b> <span style='color:#888'>· grey = below pixel threshold · right-click reads a point</span>")
        self.title.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(3)
        layout.addWidget(self.title)
        layout.addWidget(self.stack, 1)
        layout.addLayout(controls)
        layout.addWidget(self.readout)

        self._shown_result = None  # the result whose cloud is shown (None: none)
        self._shown = None  # (entry, result, loaded original) that refresh_sample shows last
        # a new current sample is built once, 5 ms later (a real timer, not a posted call: the
        # 2D view and the table update first), however many selection changes came meanwhile
        self._refresh_soon = qthrottled(self.refresh_sample, timeout=5, leading=False, parent=self)
        state.current_changed.connect(lambda _i: self.schedule_refresh())
        state.original_loaded.connect(self._on_original_loaded)
        state.thresholds_changed.connect(self.refresh_thresholds)
        state.display_changed.connect(self.refresh_colours)
        state.colour_range_changed.connect(self.refresh_colours)
        self.refresh_sample()

    # ------------------------------------------------------------------ state -> view
    @property
    def showing_notice(self) -> bool:
        return self.stack.currentIndex() == self.PAGE_NOTICE

    def _show_message(self, text: str):
        """A neutral message: drawn inside the 3D scene when there is one (keeps the OpenGL
        widget shown, so its one-time set-up happens at start, not when results arrive)."""
        if self.plotter is None:
            self._show_notice(text)
            return
        if self._message_actor is None:
            self._message_actor = self.plotter.add_text(text, position="upper_edge", font_size=11, color="#bbbbbb",
                                                        name="message")
        else:
            self._message_actor.SetText(7, text)  # vtkCornerAnnotation.UpperEdge
        self._message_actor.SetVisibility(True)
        self.stack.setCurrentIndex(self.PAGE_PLOT)
        self.request_render()

    def warm_up(self):
        """Create the real actor and colour bar on a tiny hidden mesh and render once: shaders,
        colour-bar text and lookup table are then ready, and the first sample only swaps data."""
        if self.plotter is None or self._actor is not None:
            return
        import pyvista as pv

        tiny = pv.PolyData(np.array([[0, 0, 0], [1e-3, 0, 0], [0, 1e-3, 0]], float), np.array([3, 0, 1, 2]))
        tiny.point_data["score"] = np.array([0.0, 0.5, 1.0], np.float32)
        tiny.point_data["display"] = np.array([0.0, 0.5, np.nan], np.float32)
        tiny = tiny.compute_normals(cell_normals=False, split_vertices=False)
        tiny.set_active_scalars("display")
        self._attach(tiny, True)
        self.plotter.render()
        self._set_actor_visible(self.points is not None)

    def _show_notice(self, text: str):
        self.notice.setText(text)
        self.stack.setCurrentIndex(self.PAGE_NOTICE)

    def refresh_sample(self):
        """Show the current sample: messages at once; its cloud once built (:meth:`_on_built`).
        Nothing is rebuilt or rendered when the view already shows (or awaits) this very
        sample, result and loaded original (e.g. results of other samples arriving, or a new
        model clearing results the current sample did not have)."""
        entry = self.state.current_entry
        result = entry.result if entry is not None else None
        original = self.state.original(entry) if result is None else None
        shown = (entry, result, original)
        if self._shown is not None and all(a is b for a, b in zip(shown, self._shown)):
            return
        self._shown = shown
        self._shown_result = result
        self.picked = None
        self.points = self.scores = self.display_scalars = None
        self._data = self._source = self._ticket = None
        self._builder.cancel()
        self._hide_actor()
        if result is None and original is None:
            self._show_message("No sample selected" if entry is None else "Sample not scored yet")
            self._update_readout()
            return
        xyz = getattr(result if original is None else original, "xyz", None)
        if xyz is None:
            self._show_notice("No 3D data\n\nThis sample has an RGB image only.")
            self._update_readout()
            return
        if original is not None:  # not scored yet: the cloud as loaded, grey (no scores)
            self._build(dict(xyz=thinned_grid(xyz), anomaly_map=None), reset_camera=True)
        else:
            self._build(dict(xyz=xyz, anomaly_map=result.anomaly_map), reset_camera=True)
        self._update_readout()

    def _build(self, source: dict, reset_camera: bool):
        """Build ``source``'s points (and mesh) in the background thread, in the current style."""
        self._source = source
        self._camera_pending = self._camera_pending or reset_camera
        self._ticket = self._builder.request(
            **source, surface=self.style_combo.currentText() == "Surface", with_mesh=self.plotter is not None,
            pixel_threshold=self.state.thresholds.pixel,
        )

    def _on_built(self, ticket: int, data: CloudData):
        """A build arrived (UI thread): take it if it is the awaited one, and swap the mesh in."""
        if ticket != self._ticket:
            return  # superseded: another sample or style was asked for meanwhile
        self._ticket = None
        self._data = data
        self.points, self.scores = data.points, data.scores
        if data.scores is None:
            self.display_scalars = np.full(data.points.shape[0], np.nan, np.float32)
        else:
            self.display_scalars = self._greyed(data.scores)
        if self.points.shape[0] == 0:
            self._show_notice("No 3D data\n\nThis sample's point cloud has no valid points.")
        elif self.plotter is None:
            self._show_notice("3D view unavailable on this display platform\n(needs OpenGL: run under X11/Xvfb).")
        else:
            self._regrey_mesh(data)
            self._auto_point_size()
            self._attach(data.mesh, data.surface)
            self._mesh = data.mesh
            self.stack.setCurrentIndex(self.PAGE_PLOT)
            if self._camera_pending:
                self._camera_pending = False
                self.reset_camera()
            self.request_render()
        self._update_readout()

    def _regrey_mesh(self, data: CloudData):
        """Write the greying at the current pixel threshold into the drawn mesh's scalars."""
        if data.mesh is None or data.shown_scores is None:
            return
        data.mesh.point_data["display"][:] = greyed(data.shown_scores, self.state.thresholds.pixel)
        data.mesh.GetPointData().GetArray("display").Modified()

    def _on_original_loaded(self, index: int):
        """The current, unscored sample was loaded: show its cloud."""
        entry = self.state.current_entry
        if index == self.state.current and entry is not None and entry.result is None:
            self.schedule_refresh()

    def refresh_thresholds(self):
        """Pixel threshold moved: regrey points (one array rewrite) and re-render."""
        entry = self.state.current_entry
        if self.scores is None or entry is None or entry.result is not self._shown_result:
            return  # nothing shown, or a new sample is about to be built with the new threshold
        if self.state.thresholds.pixel == self._greyed_at:  # only the image threshold moved
            return
        self.display_scalars = self._greyed(self.scores)
        if self._mesh is not None and self._data is not None:
            self._regrey_mesh(self._data)
            self.request_render()
        self._update_readout()

    def refresh_colours(self):
        """Colormap / colour range / stretch mode changed: new lookup table, same points; no
        new table and no render when the colours drawn stay the same (e.g. a display option
        of the 2D view, or a model whose range equals the one shown)."""
        with signals_blocked(self.stretch_check):
            self.stretch_check.setChecked(self.state.display.per_sample_range)
        self.stretch_check.setStyleSheet("color:#e65100;font-weight:bold;" if self.state.display.per_sample_range else "")
        if self._actor is not None and self._mesh is not None and self._colours_key() != self._lut_key:
            self._apply_lut()
            self.request_render()
        self._update_readout()

    def schedule_refresh(self):
        """Refresh for the new current sample soon: the 2D view and the table update first,
        and a burst of selection changes builds only the last mesh."""
        self._refresh_soon()

    MIN_RENDER_INTERVAL_S = 0.1  # while a slider is dragged, re-render at most ~10 times a second

    def request_render(self):
        """Render soon, once: coalesces bursts (slider drags) and throttles to ~10 renders/s,
        so the 2D view and the table stay live even where rendering is slow (software GL).
        Not superqt's qthrottled: its leading call would render at once, inside the slider's
        event (the 2D view would wait for the 3D render), and its trailing call only after the
        whole interval; this renders 5 ms after a lone change and then counts the interval
        from the end of the last render."""
        if self.plotter is None or self._render_pending:
            return
        self._render_pending = True
        wait = self.MIN_RENDER_INTERVAL_S - (time.perf_counter() - self._last_render)
        QTimer.singleShot(max(5, int(wait * 1000)), self._render_now)

    def _render_now(self):
        """Render the scene once. The native-window view renders here, in this timer's own
        event-loop pass: a repaint would render inside Qt's paint pass of the whole window,
        adding the 3D render to the 2D views' and plots' repainting in one long UI-thread
        stall. pyvistaqt's widget, and a hidden view, get a repaint instead (``render()``
        there would render now and again in the paint event; a hidden widget is not painted
        until shown)."""
        self._render_pending = False
        if self.plotter is None:
            return
        if self._native and self.plotter.isVisible():
            self.plotter.render()
        else:
            QWidget.update(self.plotter)  # not BasePlotter.update

    def _rendered(self, *_event):
        self._last_render = time.perf_counter()

    def _auto_point_size(self):
        """Points about as large as their on-screen spacing, so the surface reads as closed."""
        if not self._point_size_auto or self._data is None or self.plotter is None:
            return
        across = max(1.0, float(np.sqrt(self._data.shown_points.shape[0])))
        view_px = 0.7 * min(self.plotter.width(), self.plotter.height())
        size = int(np.clip(round(view_px / across), 2, 8))
        with signals_blocked(self.point_size):
            self.point_size.setValue(size)

    def _on_style(self, text: str):
        self.point_size.setEnabled(text == "Points")
        if self._source is not None and self.plotter is not None:
            self._build(self._source, reset_camera=False)  # the same points, meshed for the new style

    def _on_point_size(self, size: int):
        self._point_size_auto = False
        if self._actor is not None:
            self._actor.GetProperty().SetPointSize(float(size))
            self.request_render()

    def _greyed(self, scores: np.ndarray) -> np.ndarray:
        self._greyed_at = self.state.thresholds.pixel
        return greyed(scores, self._greyed_at)

    # ------------------------------------------------------------------ rendering
    def _colour_range(self) -> tuple[float, float]:
        rng = self.state.display_range()
        if rng is None and self.scores is not None and self.scores.size:
            rng = (float(self.scores.min()), float(self.scores.max()) + 1e-6)
        return rng or (0.0, 1.0)

    def _colours_key(self) -> tuple:
        """What the lookup table depends on: the colormap and the colour range (raw units)."""
        return self.state.display.colormap, self._colour_range()

    def _make_lut(self):
        import pyvista as pv

        self._lut_key = self._colours_key()
        table = lut(self.state.display.colormap)
        values = np.concatenate([table, np.full((len(table), 1), 255, np.uint8)], axis=1)
        lookup = pv.LookupTable(values=values)
        lookup.scalar_range = self._colour_range()
        lookup.nan_color = GREY_RGB
        return lookup

    def _attach(self, mesh, is_surface: bool):
        """The first call creates the actor and colour bar; later ones only swap the actor's
        data (much cheaper than a new actor)."""
        if self._actor is None:
            self._actor = self.plotter.add_mesh(
                mesh,
                scalars="display",
                cmap=self._make_lut(),
                clim=self._colour_range(),
                nan_color=GREY_RGB,
                point_size=float(self.point_size.value()),
                render_points_as_spheres=False,
                ambient=0.35,
                diffuse=0.75,
                specular=0.1,
                interpolate_before_map=True,
                show_scalar_bar=True,
                scalar_bar_args=dict(
                    title="score", vertical=True, position_x=0.84, position_y=0.08,
                    height=0.84, width=0.06, fmt="%.3g", label_font_size=11, title_font_size=12,
                    color="white", n_labels=5,
                ),
                name="cloud",
                reset_camera=False,
                render=False,
            )
        else:
            self._actor.GetMapper().SetInputData(mesh)
            self._apply_lut()
        prop = self._actor.GetProperty()
        if is_surface:
            prop.SetRepresentationToSurface()
        else:
            prop.SetRepresentationToPoints()
        prop.SetLighting(is_surface)
        prop.SetPointSize(float(self.point_size.value()))
        self._set_actor_visible(True)

    def _apply_lut(self):
        mapper = self._actor.GetMapper()
        lookup = self._make_lut()
        mapper.SetLookupTable(lookup)
        mapper.SetScalarRange(*self._colour_range())
        for bar in self.plotter.scalar_bars.values():
            bar.SetLookupTable(lookup)

    def _set_actor_visible(self, on: bool):
        if self._actor is not None:
            self._actor.SetVisibility(on)
        if self.plotter is not None:
            for bar in self.plotter.scalar_bars.values():
                bar.SetVisibility(on)

    def _hide_actor(self):
        if self._message_actor is not None:
            self._message_actor.SetVisibility(False)
        self._set_actor_visible(False)
        self._mesh = None

    def reset_camera(self):
        """Look at the cloud from the sensor side, tilted ~30° for depth, fitted to the view."""
        if self.plotter is None or self.points is None or self.points.shape[0] == 0:
            return
        centre = self.points.mean(axis=0)
        extent = float(np.linalg.norm(self.points.max(axis=0) - self.points.min(axis=0))) or 1.0
        eye = centre + np.array([0.0, 0.55, -1.0]) * extent
        self.plotter.camera_position = [tuple(eye), tuple(centre), (0.0, -1.0, 0.0)]
        # the renderer's reset: Plotter.reset_camera renders whatever ``render`` says (one
        # software-GL render of the whole scene); the render below is coalesced instead
        self.plotter.renderer.reset_camera(render=False)
        self.plotter.camera.zoom(1.15)
        self.plotter.reset_camera_clipping_range()
        self.request_render()

    # ------------------------------------------------------------------ picking
    def _on_pick(self, point, *_picker):
        if self.points is None or point is None:
            return
        d = np.linalg.norm(self.points - np.asarray(point, np.float32), axis=1)
        self.pick_index(int(np.argmin(d)))

    def pick_index(self, index: int):
        """Show the read-out for point ``index`` of the valid points."""
        self.picked = int(index)
        self._update_readout()

    def _thinning_note(self) -> str:
        """What the drawing leaves out, when the cloud has more than MAX_SHOWN_POINTS points."""
        data = self._data
        if data is None or data.step == 1 or self.plotter is None:
            return ""
        k, m = data.step, data.shown_points.shape[0]
        block = f"; each shows its {k}×{k} block's highest score" if data.shown_scores is not None else ""
        return f" · drawn: {m:,} points (one grid row and column in {k}{block})"

    def _update_readout(self):
        if self.scores is None:
            n = 0 if self.points is None else self.points.shape[0]
            self.readout.setText(f"{n:,} points as loaded (not scored yet){self._thinning_note()}" if n else " ")
            return
        n = self.scores.size
        above = int(np.sum(~np.isnan(self.display_scalars))) if self.state.thresholds.pixel is not None else n
        base = f"{n:,} valid points · {above:,} at or above the pixel threshold"
        if self.picked is not None and 0 <= self.picked < n:
            v = float(self.scores[self.picked])
            x, y, z = (float(c) for c in self.points[self.picked])
            norm = normalised(v, self._colour_range())
            base = (
                f"Point ({x * 1000:.1f}, {y * 1000:.1f}, {z * 1000:.1f}) mm: score <b>{v:.4g}</b>"
                f" ({norm:.2f} of range) · " + base
            )
        self.readout.setText(base + self._thinning_note())

    def paint_scene_over(self, pixmap, window: QWidget) -> None:
        """Draw the 3D scene's current render onto ``pixmap``, a ``window.grab()``, where the
        view sits: Qt's grab cannot read the native window VTK renders into (pyvistaqt's
        QOpenGLWidget is in the grab already: nothing to do)."""
        if not self._native or not self.plotter.isVisible():
            return
        from PySide6.QtCore import QPoint
        from PySide6.QtGui import QImage, QPainter

        from lsfa_gui.widgets.native_interactor import rendered_rgb

        self.plotter.render()
        rgb = np.ascontiguousarray(rendered_rgb(self.plotter.render_window))
        h, w = rgb.shape[:2]
        image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        image.setDevicePixelRatio(pixmap.devicePixelRatio())
        painter = QPainter(pixmap)
        painter.drawImage(self.plotter.mapTo(window, QPoint(0, 0)), image)
        painter.end()

    # ------------------------------------------------------------------ lifetime
    def close_plotter(self):
        """Release the VTK render window (call before the window closes)."""
        self._builder.shutdown()
        if self.plotter is not None:
            self.plotter.close()
            self.plotter = None
            self._message_actor = None
            self._actor = None
            self._mesh = None
