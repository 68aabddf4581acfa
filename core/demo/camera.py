"""The simulated structured-light sensor: fixed intrinsics, distance and scan constants."""

from __future__ import annotations

import numpy as np


# Sensor model (fixed for the whole dataset, like one real sensor).
_FOCAL_PER_PIXEL = 3.3  # fx = fy = 3.3 * size: a 60 mm object fills ~50 % of the frame at 0.4 m
_CAMERA_DISTANCE_M = 0.40  # to the table at the image centre
_PROJECTOR_OFFSET_M = np.array([0.06, 0.0, 0.0])  # structured-light baseline along +x
_GRID_HALF_EXTENT_M = 0.036  # object height-field grid covers ±36 mm in object coordinates
_MARCH_STEP_M = 0.0015  # camera-ray march step in height above the table (then bisection)
_SHADOW_STEP_M = 0.0008  # shadow-ray march step in height
_DROPOUT_RATE = 0.004  # isolated random dropouts (share of pixels, at noise_scale 1)
_CLUSTER_RATE = 0.015  # clustered dropouts: pixels whose speckle level is above 1 - this



def _camera_matrix(size: int) -> dict:
    f = _FOCAL_PER_PIXEL * size
    c = (size - 1) / 2.0
    return {"fx": f, "fy": f, "cx": c, "cy": c, "width": size, "height": size, "units": "metres"}
