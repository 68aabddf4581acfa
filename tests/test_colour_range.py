"""The fitted colour range: from the good-pixel median to twice the distance up to the larger of
the pixel threshold and the good pixels' high quantile."""

import numpy as np

from core.colour_range import fitted_colour_range


def test_the_top_is_twice_the_distance_from_the_median_to_the_good_tail():
    good = np.r_[np.zeros(50), np.linspace(1.0, 2.0, 101)]  # zeros (outside the part) are not counted
    lo, hi = fitted_colour_range(good, pixel_threshold=1.2, pixel_quantile=1.0)
    assert lo == 1.5 and hi == 2.5  # median 1.5 of the non-zero values; 2.0 + (2.0 - 1.5)


def test_a_pixel_threshold_above_the_good_tail_sets_the_distance():
    lo, hi = fitted_colour_range(np.linspace(1.0, 2.0, 101), pixel_threshold=3.0, pixel_quantile=0.999)
    assert (lo, hi) == (1.5, 4.5)


def test_all_zero_maps_still_give_a_rising_range():
    lo, hi = fitted_colour_range(np.zeros((2, 4, 4), np.float32), pixel_threshold=0.0, pixel_quantile=0.999)
    assert lo == 0.0 and hi > lo
