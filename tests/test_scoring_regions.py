"""Which patch cells each modality scores: RGB also sees enclosed gaps in the 3D data."""

import numpy as np

from core.tokens import scoring_regions


def test_rgb_region_fills_holes_in_the_point_cloud_but_not_the_outside():
    g = 12
    fg = np.zeros((2, g, g), bool)
    fg[:, 2:10, 2:10] = True
    fg[0, 5:7, 5:7] = False  # a hole through the part: no 3D points, table removed
    fg[1, 2:10, 2] = False  # a notch at the border: open to the outside
    regions = scoring_regions(fg.reshape(2, -1), g, ("rgb", "xyz"))
    rgb = regions["rgb"].reshape(2, g, g)
    xyz = regions["xyz"].reshape(2, g, g)
    assert rgb[0, 5:7, 5:7].all() and not xyz[0, 5:7, 5:7].any()
    assert not rgb[1, 2:10, 2].any()  # not enclosed: stays outside
    assert not rgb[:, 0].any() and not rgb[:, :, 11].any()
    assert (rgb >= xyz).all()


def test_samples_without_xyz_keep_every_cell():
    fg = np.ones((1, 28 * 28), bool)
    regions = scoring_regions(fg, 28, ("rgb",))
    assert regions["rgb"].all()
