"""Are the held-out good parts like the others? Image scores (fused units) of training parts scored
leave-one-out, of the held-out good parts and of the good and defective test parts, per dataset.

A training part's own patches sit in the memory bank, so scored as it is it scores ~0. Here every
``--every``-th training part is scored against the bank without the rows equal to its own patches
(the bank's spread recomputed), as if it had been held out. A frozen fit with exact search (the
adaptors and approximate search would be trained / checked on the same parts). Prints one line per
group and dataset (docs/evaluation.md, "the bagged seeded threshold").

    python bench/bench_leave_one_out.py ROOT:CATEGORY [ROOT:CATEGORY ...] [--every 3] [--seed 0]
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core import tv_shim; tv_shim.install()  # noqa: E402,E702
from core.config import FitConfig  # noqa: E402
from core.data.dataset import open_dataset  # noqa: E402
from core.pipeline import fit  # noqa: E402
from core.scoring.memory_bank import MemoryBank  # noqa: E402


OWN_TOLERANCE = 1e-3  # a bank row this close to one of the part's patches (relative to their norm) is its own


def leave_one_out_score(model, ref, removed: list) -> float:
    """The fused image score of training sample ``ref`` against banks without its own patches
    (how many rows were removed per modality is appended to ``removed``)."""
    prepared = [model.prepare(ref.load())]
    tokens, regions = model.scored_tokens(prepared, 1)
    full = dict(model.banks)
    try:
        for m, bank in full.items():
            own = np.ascontiguousarray(tokens[m][0][regions[m][0]], dtype=np.float32)
            # the bank rows that are this part's own patches (equal up to float noise: the features
            # may have been extracted in another batch, or read from the feature cache)
            dist, _ = MemoryBank(own).nearest(bank.vectors, exact=True)
            keep = dist > OWN_TOLERANCE * float(np.median(np.linalg.norm(own, axis=1)))
            removed.append(int((~keep).sum()))
            model.banks[m] = MemoryBank(np.ascontiguousarray(bank.vectors[keep]))
        scores, maps = model.modality_scores(prepared)
        return float(model.fuse(scores, maps)[0][0])
    finally:
        model.banks = full


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("specs", nargs="+", help="ROOT:CATEGORY")
    ap.add_argument("--every", type=int, default=3, help="score every N-th training part (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for spec in args.specs:
        root, cat = spec.rsplit(":", 1)
        model = fit(root, cat, FitConfig(adapt=False, search="exact", seed=args.seed))
        ds = open_dataset(root)
        train = ds.samples(cat, "train")[::args.every]
        removed: list[int] = []
        groups = {"training, leave-one-out": [leave_one_out_score(model, r, removed) for r in train]}
        print(f"{spec}  bank rows removed per part and modality: median {np.median(removed):.0f}, "
              f"min {min(removed)} (of {min(b.size for b in model.banks.values())}+)", flush=True)
        calib = ds.samples(cat, "validation")
        if calib:
            groups["held-out good (validation)"] = [r.image_score for r in model.score_refs(calib)]
        test = list(model.score_refs(ds.samples(cat, "test")))
        groups["good test parts"] = [r.image_score for r in test if r.is_defect is False]
        groups["defective test parts"] = [r.image_score for r in test if r.is_defect]
        for name, v in groups.items():
            if v:
                print(f"{spec}  {name:28s} n {len(v):3d}  median {np.median(v):.3f}  range {min(v):.3f}-{max(v):.3f}",
                      flush=True)


if __name__ == "__main__":
    main()
