"""Procedural "parts" data: a second, independently written RGB + 3D dataset family.

It is meant for confirming choices (thresholds, feature settings, ablations) that were made on
other data, so it shares no code or modelling decisions with the demo generator.
:func:`generate_parts_dataset` writes the MVTec 3D-AD layout
(``<out>/<category>/{train,validation,test}/<type>/{rgb,xyz,gt}/NNN.{png,tiff}``) with a marker
file ``.lsfa_parts.json`` at the root; :func:`render_parts_sample` renders one sample in memory.

Units: the point clouds (``xyz``) are in **metres** in the camera frame (x right, y down,
z forward, away from the camera); invalid points are exactly (0, 0, 0). Everything inside this
module is modelled in millimetres, so part and defect sizes below are in mm.

Scene
    A part lies on a flat table. A pinhole camera (focal length ``4.4 × size`` pixels, so the
    frame is 89–95 mm wide at the table, about 0.23 mm per pixel at 400 px) looks down from
    390–420 mm (distance of the camera centre from the table plane); the table normal is
    tilted 0.3–3° from the optical axis in a random direction. Each sample gets a random in-plane
    rotation (0–360°) and shift of the part (kept inside the frame with a margin, so the image
    border always sees the table) and jitter of the part's dimensions and features. The parts
    cover about 25–40 % of the frame (the hose 14–20 %). Every pixel's ray
    is intersected with the part's height field (march + bisection), so RGB and xyz are
    registered pixel to pixel and tall parts show true perspective parallax. The table is in
    the point cloud everywhere outside the part (and through holes / the gear's bore) and looks
    like a table in RGB: wood, a green or blue ESD mat, or grey laminate.

Categories (``PARTS_CATEGORIES``)
    bracket  machined aluminium plate 58–66 × 34–40 mm, 7–9 mm thick, with a Z-step (a bend
             raising one end by 5–8 mm), rounded corners, 3 drilled through holes with chamfered
             edges; brushed texture and an anisotropic (Kajiya-Kay) highlight across the brushing.
    gear     spur gear (16–25 teeth, tip radius 29–33 mm, 8–10 mm thick) with a raised hub, a
             recessed web, lightening holes and a bore with keyway; anodised colour (red, blue,
             gold, black, green or violet) with lathe-turned concentric highlights.
    tile     ceramic tile 50–56 mm square, 7–9 mm thick, glossy printed glaze (checker, ring,
             stripe or dot motif) surrounded by an unglazed, matte biscuit/grout edge band.
    hose     black rubber hose segment (radius 9–11.5 mm, 60–70 mm long, slightly curved) lying
             on the table: a curved surface, dark and low in contrast, sometimes a faded print line.

Lighting and camera
    Ambient light plus two directional lights (key and fill, random directions 20–65° from the
    vertical) with per-sample intensity and colour-temperature jitter (3300–6500 K);
    Blinn-Phong highlights, anisotropic highlights on brushed/turned metal. Exposure jitter,
    vignetting, a slight optical blur, gamma 2.2, read + shot noise, 8-bit quantisation.

Sensor model (strength drawn per sample)
    * depth noise along the ray, sigma = s0 · (z / 400 mm)², s0 in 0.05–0.2 mm, partly
      spatially correlated;
    * row-correlated striping (per-row offsets, 0.01–0.05 mm) and a faint low-frequency ripple;
    * at depth discontinuities (> 1 mm between neighbours): dropouts, and "flying pixels"
      placed between the foreground and background depth;
    * dropouts on dark surfaces (probability rising as the lit brightness falls), on saturated
      specular highlights and at grazing angles;
    * 0.05–0.3 % random invalid pixels.

Defects (``PARTS_DEFECT_TYPES``; always placed on a flat-ish top face of the part, never on the
table)
    dent / bump     smooth Gaussian profile, depth/height 0.2–1.0 mm, sigma 1.5–4 mm. Geometry
                    only: the RGB image is the defect-free render.
    scratch         1–3 nearly parallel thin curved strokes (0.6–1.4 mm wide, up to 14–30 mm
                    long, cut off where the top face ends) that change colour/brightness and
                    gloss, with a groove of 0.02–0.1 mm.
    contamination   foreign material (oil, paint, dust, glue), an irregular blob of 2–4
                    ellipses about 5–10 mm across: colour change, raised by 0.2–0.8 mm.
    hole            material removed: an irregular pit 2.2–4.5 mm in radius and 2–4 mm deep,
                    dark in RGB, with most of its points missing in xyz.

    Masks are exact: a pixel is a defect when the defect moved its 3D point by more than
    0.05 mm or changed its noise-free colour by more than 0.03 (on a 0–1 scale) in a channel,
    comparing renders of the same sample with and without the defect. At 400 px the masks
    cover roughly 0.15–2.7 % of the image (scratches 0.15–0.8 %, dents/bumps 0.25–2.7 %).

Designs: by default every part is a new design of its category (the ranges above: tooth count,
hub and web, holes, dimensions, colour scheme, a tile's glaze colours and motif, a hose's print
line), so a category is a family of products, much wider than one product's part-to-part
variation. ``one_design=True`` (``bench/make_parts_data.py --one-design``, ``bench_suite.py
--parts-one-design``) draws the design once per dataset seed and category: every part is the same
product, as a line makes it, and keeps its own surface texture and tone, a tile its own bow, and
its own pose, lighting, sensor noise and defect. The default files are unchanged by the option.

Determinism: each sample draws from its own ``numpy.random.Generator`` seeded from a hash of
(seed, category, split, label, index), so a seed reproduces the files byte for byte (on the same
platform and numpy) and changing the counts or categories does not change the other samples.
A 400 px sample takes about 0.2–0.25 s of one CPU core to render and write.

Modules (each owns one step; units inside are millimetres):
    common   constants and small numeric helpers
    shapes   the four categories as height-field rasters with material channels
    defects  defects painted into a raster
    optics   camera rays, ray / height-field intersection, lights and shading
    sensor   the RGB camera's exposure and noise, the depth sensor's noise and dropouts
    sample   one rendered sample in memory (:func:`render_parts_sample`)
    writer   the dataset on disk (:func:`generate_parts_dataset`)
"""

from core.data.parts.common import GENERATOR_NAME, GENERATOR_VERSION, MARKER_NAME, PARTS_CATEGORIES, PARTS_DEFECT_TYPES
from core.data.parts.sample import PartsSample, render_parts_sample
from core.data.parts.writer import generate_parts_dataset

__all__ = [
    "GENERATOR_NAME", "GENERATOR_VERSION", "MARKER_NAME", "PARTS_CATEGORIES", "PARTS_DEFECT_TYPES",
    "PartsSample", "generate_parts_dataset", "render_parts_sample",
]
