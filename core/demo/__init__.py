"""Built-in demo dataset: procedural RGB + organized point-cloud scans in the MVTec 3D-AD layout.

Each sample is a small object lying on a slightly tilted table, seen from above by a simulated
structured-light sensor (pinhole camera at ~0.4 m, projector 60 mm to the side):

* xyz: organized H×W×3 float32 point cloud in metres (camera frame), ray-cast pixel by pixel
  against a height field, with depth noise (~0.1-0.25 mm), random dropouts, and missing data
  on steep walls and in the projector's shadow. Missing points are exactly (0, 0, 0).
* rgb: the same rays' surface colour (albedo) shaded by one directional light (Lambert, plus a
  weak highlight on plastic), cast shadows and vignetting, registered pixel-to-pixel with xyz.
* gt (test only): 0/255 uint8, the pixels whose geometry or colour the defect changed.

Categories: ``puck`` (moulded plastic disc, Ø60 × 10 mm: filleted edge, central recess,
embossed ring, printed red rings, "LSFA" logo and an orientation mark) and ``cookie`` (baked
dome, Ø~54 × ~13 mm: irregular outline, lumpy surface, darker rim, 5-9 raised chocolate chips
at random places). Every sample has a random in-plane rotation, a few mm of shift, its own
table tilt, light direction, exposure and colour jitter.

Defects: dent/bump change geometry only, stain changes colour only, crack/hole change both.
``defect_strength`` scales their amplitude (depth, height, colour contrast), not their size.

Variation factors (at their defaults they give exactly the standard dataset):
``object_scale`` scales the objects' physical size (diameter and height; the camera stays),
``noise_scale`` the sensor's depth/RGB noise and random dropout rates, ``defect_scale`` the
defects' lateral size (radius, length, width), ``flying_pixels`` (default 0) the share of mixed
pixels at depth steps, ``dent_shading`` (default 1) how much of a dent's or bump's shading shows
in the RGB image (0: geometry only), ``print_variation`` (default 0) how much each part's colour
varies by a smooth random field of its own. None of them changes the random draws.

Every sample draws from its own random streams derived from (seed, category, split/label,
index), so the same seed gives byte-identical files and changing the counts does not change
the other samples. The pose/appearance, defect and sensor-noise streams are separate, which
lets :func:`render_sample_pair` render a sample with and without its defect.

Modules, lowest first (each imports only from the ones above it):

* ``params``: image size, counts, variation factors and their check
* ``camera``: the simulated sensor's fixed constants and intrinsics
* ``textures``: per-sample random streams, tileable noise textures
* ``objects``: the puck and cookie models on the object grid
* ``defects``: the five defect types applied to an object model
* ``scene``: pose, light, sensor noise and the ray-casting renderer
* ``sample``: :func:`render_sample`, :func:`render_sample_pair`
* ``writer``: :func:`generate_demo_dataset` (MVTec 3D-AD layout, marker, digest)
"""

from __future__ import annotations

from core.demo.defects import DEFECT_TYPES
from core.demo.objects import DEMO_CATEGORIES
from core.demo.params import DEFAULT_COUNTS, DEFAULT_SIZE, VARIATION_DEFAULTS, VARIATION_RANGES
from core.demo.sample import SyntheticSample, render_sample, render_sample_pair
from core.demo.writer import (
    GENERATOR_VERSION,
    MARKER_NAME,
    dataset_digest,
    default_demo_dir,
    demo_parameters,
    ensure_demo_dataset,
    generate_demo_dataset,
    read_marker,
)

__all__ = [
    "DEFECT_TYPES", "DEMO_CATEGORIES", "DEFAULT_COUNTS", "DEFAULT_SIZE", "VARIATION_DEFAULTS", "VARIATION_RANGES",
    "GENERATOR_VERSION", "MARKER_NAME", "SyntheticSample", "render_sample", "render_sample_pair",
    "dataset_digest", "default_demo_dir", "demo_parameters", "ensure_demo_dataset",
    "generate_demo_dataset", "read_marker",
]
