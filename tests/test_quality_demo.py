"""Detection quality on the built-in demo data (frozen features, fixed seeds): the fused model
beats each single modality, geometry-only defects are found by the 3D branch and colour-only
ones by the RGB branch."""

import numpy as np
import pytest

from core.config import FitConfig
from core.demo import generate_demo_dataset
from core.metrics import image_auroc
from core.pipeline import evaluate, fit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quality")
    root = generate_demo_dataset(tmp / "d", seed=7, size=256, n_train=40, n_validation=6,
                                 n_test_good=10, n_test_per_defect=5)
    out = {}
    for cat in ("puck", "cookie"):
        model = fit(root, cat, FitConfig(adapt=False, cache_dir=str(tmp / "cache")))
        out[cat] = evaluate(model, root, cat)
    return out


def _type_auroc(report, defect, modality):
    good = [r.modality_scores[modality] for r in report.results if r.label == "good"]
    bad = [r.modality_scores[modality] for r in report.results if r.label == defect]
    return image_auroc(np.r_[np.zeros(len(good)), np.ones(len(bad))], np.r_[good, bad])


def test_fused_never_loses_to_its_best_single_modality(reports):
    # fused image score: mean of the top-k fused-map pixels (FitConfig defaults)
    for cat, rep in reports.items():
        best_single = max(rep.modality_image_auroc.values())
        assert rep.image_auroc >= best_single - 0.01, (cat, rep.image_auroc, rep.modality_image_auroc)
        assert rep.pixel_auroc > 0.95 and rep.aupro_30 > 0.85, cat


def test_holes_are_found_although_they_have_no_3d_points(reports):
    """A hole removes the 3D points: the RGB branch still scores the gap and fusion keeps it."""
    for cat, rep in reports.items():
        good = [r.image_score for r in rep.results if r.label == "good"]
        holes = [r.image_score for r in rep.results if r.label == "hole"]
        assert image_auroc(np.r_[np.zeros(len(good)), np.ones(len(holes))], np.r_[good, holes]) > 0.9, cat


def test_geometry_defects_found_by_3d_colour_defects_by_rgb(reports):
    for defect in ("dent", "bump"):
        xyz = np.mean([_type_auroc(r, defect, "xyz") for r in reports.values()])
        rgb = np.mean([_type_auroc(r, defect, "rgb") for r in reports.values()])
        # the 3D branch finds them and beats RGB, which sees only their shading (with the crop
        # around the part RGB sees that shading better: dent 0.86 against 0.95 for xyz)
        assert xyz > 0.85 and xyz > rgb + 0.05, (defect, xyz, rgb)
    rgb = np.mean([_type_auroc(r, "stain", "rgb") for r in reports.values()])
    xyz = np.mean([_type_auroc(r, "stain", "xyz") for r in reports.values()])
    assert rgb > 0.65 and rgb > xyz + 0.1, (rgb, xyz)
