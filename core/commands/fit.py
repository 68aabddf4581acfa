"""``lsfa fit DATA_ROOT --category C --out MODEL.lsfa``: fit a model on train/good."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.adaptation.config import ADAPTOR_CHOICES, ADAPTOR_HELP, LOSS_HELP, AdaptConfig
from core.config import AUTO_ENSEMBLE, DEFAULT_PRESET, PRESETS, FitConfig, option_choices, option_help


def register(sub) -> None:
    p = sub.add_parser("fit", help="fit a model on a category's train/good samples")
    p.add_argument("data_root", type=Path, help="dataset folder (MVTec 3D-AD, Eyecandies or plain)")
    p.add_argument("--category", "-c", required=True, help="category (class) to fit")
    p.add_argument("--out", "-o", type=Path, required=True, help="model file to write (.lsfa)")
    p.add_argument("--modalities", default=FitConfig.modalities, help=option_help("modalities"))
    p.add_argument("--rgb-backbone", default=FitConfig.rgb_backbone, help=option_help("rgb_backbone"))
    p.add_argument("--xyz-backbone", default=FitConfig.xyz_backbone, help=option_help("xyz_backbone"))
    p.add_argument("--rgb-weights", help=option_help("rgb_weights"))
    p.add_argument("--xyz-weights", help=option_help("xyz_weights"))
    p.add_argument("--device", default=FitConfig.device, help=option_help("device"))
    p.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET,
                   help="resolution preset: auto (default) = one model at 224 px (28×28 patches) for RGB + 3D "
                        "data, and for data without point clouds a second one at 320 px (40×40 patches) "
                        "combined with it (an RGB-only fit costs about a seventh of an RGB + 3D one; the second model "
                        "raised 16 RGB-only tuning sets from 0.81 / 0.87 to 0.86 / 0.92 I-AUROC / AUPRO); "
                        "fast = always one 224 px model; accurate = always both models (core.ensemble; about "
                        "3× slower to fit and to score; on RGB + 3D data lower on images (tuning 0.956 vs "
                        "0.965) and higher on the parts' pixels (AUPRO 0.903 vs 0.891): README, 'The accurate preset')")
    p.add_argument("--image-size", type=int, help=option_help("image_size") + " (overrides the preset)")
    p.add_argument("--grid", type=int, help=option_help("grid") + " (overrides the preset)")
    p.add_argument("--coreset", type=float, default=FitConfig.coreset_ratio,
                   help=f"{option_help('coreset_ratio')} (default {FitConfig.coreset_ratio})")
    p.add_argument("--min-bank", type=int, default=FitConfig.min_bank_size,
                   help=f"{option_help('min_bank_size')} (default {FitConfig.min_bank_size})")
    p.add_argument("--rgb-rotations", type=int, default=FitConfig.rgb_rotations,
                   choices=option_choices("rgb_rotations"),
                   help=f"{option_help('rgb_rotations')} (default {FitConfig.rgb_rotations})")
    p.add_argument("--bank-shifts", type=int, default=FitConfig.bank_shifts,
                   choices=option_choices("bank_shifts"),
                   help=f"{option_help('bank_shifts')} (default {FitConfig.bank_shifts})")
    p.add_argument("--fusion", default=FitConfig.fusion, choices=option_choices("fusion"),
                   help=f"{option_help('fusion')} (default {FitConfig.fusion})")
    p.add_argument("--fused-image-score", default=FitConfig.fused_image_score,
                   choices=option_choices("fused_image_score"),
                   help=f"{option_help('fused_image_score')} (default {FitConfig.fused_image_score})")
    p.add_argument("--units-fusion", default=FitConfig.units_fusion, choices=option_choices("units_fusion"),
                   help=f"{option_help('units_fusion')} (default {FitConfig.units_fusion})")
    p.add_argument("--image-topk", type=int, default=FitConfig.image_topk,
                   help=f"{option_help('image_topk')} (default {FitConfig.image_topk})")
    p.add_argument("--patch-distance", default=FitConfig.patch_distance,
                   choices=option_choices("patch_distance"),
                   help=f"{option_help('patch_distance')} (default {FitConfig.patch_distance})")
    p.add_argument("--image-score", default=FitConfig.image_score, choices=option_choices("image_score"),
                   help=option_help("image_score"))
    p.add_argument("--search", default=FitConfig.search, choices=option_choices("search"),
                   help=f"{option_help('search')} (default {FitConfig.search})")
    p.add_argument("--no-preprocess", action="store_true", help="skip the " + option_help("preprocess"))
    p.add_argument("--no-object-crop", dest="object_crop", action="store_false",
                   help="score the whole image: do not " + option_help("object_crop"))
    p.add_argument("--rgb-object-crop", action="store_true",
                   help=option_help("rgb_object_crop").replace("%", "%%"))
    p.add_argument("--no-colour-contrast", dest="colour_contrast", action="store_false",
                   help="RGB features without the colour-contrast block: by default the "
                   + option_help("colour_contrast").removeprefix("EfficientNet-Lite RGB features also hold "))
    p.add_argument("--position-weight", type=float, default=FitConfig.position_weight, metavar="W",
                   help=f"{option_help('position_weight')} (default {FitConfig.position_weight:g})")
    p.add_argument("--no-self-check", dest="self_check", action="store_false",
                   help="skip the " + option_help("self_check"))
    p.add_argument("--held-out-threshold-only", dest="threshold_training_parts", action="store_false",
                   help="seed the image threshold on the held-out good parts only; by default the "
                   + option_help("threshold_training_parts").removeprefix("with the self-check: the "))
    p.add_argument("--uncertain-band", action="store_true", help=option_help("uncertain_band"))
    p.add_argument("--max-train", type=int, help=option_help("max_train"))
    p.add_argument("--seed", type=int, default=FitConfig.seed, help=option_help("seed"))
    p.add_argument("--force", action="store_true", help="overwrite an existing model file")
    add_roi_arg(p, what="stored in the model file; thresholds are calibrated on the inspected pixels only")
    add_units_arg(p)
    add_adaptation_args(p)
    p.set_defaults(func=run)


def add_units_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--xyz-units", choices=["m", "cm", "mm"], default=None,
                   help="unit of the point-cloud coordinates on disk; they are scaled to metres on load "
                        "(fit: default m, stored in the model; score/eval: default the unit the model was "
                        "fitted in; clouds whose point spacing looks like mm or cm are refused)")


def add_roi_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--roi", type=Path, metavar="MASK.png",
                   help="region of interest: a PNG the size of the dataset's images (original pixels); "
                        "non-zero pixels are inspected, zero pixels ignored (they score 0, so they make no "
                        f"defect region and no NG); {what}")


def add_adaptation_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("LSFA feature adaptation")
    g.add_argument("--adapt", dest="adapt", action="store_true", default=None,
                   help=option_help("adapt") + " (default)")
    g.add_argument("--no-adapt", dest="adapt", action="store_false", help="frozen features only")
    g.add_argument("--epochs", type=int, help="adaptor training epochs, honoured as given (default: "
                   f"{AdaptConfig().epochs}, raised on small training sets to reach {AdaptConfig().min_steps} steps)")
    g.add_argument("--adaptor", choices=ADAPTOR_CHOICES, help="adaptor: " + ADAPTOR_HELP)
    g.add_argument("--losses", help="comma list of " + ", ".join(f"{k} ({v})" for k, v in LOSS_HELP.items())
                   + "; default all four")
    g.add_argument("--batch-size", type=int, help="adaptor training batch (images)")
    g.add_argument("--lr", type=float, help="adaptor learning rate (default 1e-3)")


def _why_ensemble(config) -> str:
    if config.ensemble == AUTO_ENSEMBLE:
        return "ensemble: the default for data without point clouds; --preset fast fits one model"
    return "ensemble"


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
    if args.image_size is not None or args.grid is not None:
        resolution["ensemble"] = []  # an explicit resolution fits one model
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
        rgb_rotations=args.rgb_rotations,
        bank_shifts=args.bank_shifts,
        fusion=args.fusion,
        patch_distance=args.patch_distance,
        image_score=args.image_score,
        fused_image_score=args.fused_image_score,
        units_fusion=args.units_fusion,
        image_topk=args.image_topk,
        search=args.search,
        preprocess=not args.no_preprocess,
        object_crop=args.object_crop,
        rgb_object_crop=args.rgb_object_crop,
        colour_contrast=args.colour_contrast,
        position_weight=args.position_weight,
        self_check=args.self_check,
        uncertain_band=args.uncertain_band,
        threshold_training_parts=args.threshold_training_parts,
        max_train=args.max_train,
        seed=args.seed,
        adaptation=adaptation,
        **kwargs,
    )


def run(args) -> int:
    from core.commands._progress import cli_progress
    from core.errors import UserError
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
        roi = None
        if args.roi is not None:
            from core.roi import read_roi

            roi = read_roi(args.roi)
        model = fit(args.data_root, args.category, config, progress, xyz_units=args.xyz_units,
                    roi=roi, roi_source=str(args.roi))
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
        + (f"models {model.describe_members()} ({_why_ensemble(model.config)}), " if hasattr(model, "members") else "")
        + f"adapted={'yes' if model.adapted else 'no'}"
    )
    print(f"calibration: {model.info['calibration']}")
    print(f"thresholds: {t.describe()}")
    if model.roi is not None:
        from core.roi import inspected_share

        print(f"region of interest: {args.roi} ({100 * inspected_share(model.roi):.1f} % of the image inspected)")
    check = model.info.get("self_check")
    if check:
        from core.self_check import ADAPT_CONFIDENCE, interval_text

        est = check["estimate"]
        print(f"self-check ESTIMATE on synthetic defects (not real ones): I-AUROC {est['image_auroc']:.3f}"
              f"{interval_text(est)}, "
              f"AUPRO@0.3 {est['aupro_30']:.3f}; kept {check['variant']} features"
              + (f" (adapted better in {check['adapted_wins_share']:.0%} of bootstrap resamples of the synthetic "
                 f"defects; {ADAPT_CONFIDENCE:.0%} needed)" if check.get("adapted_wins_share") is not None else "")
              + f", fusion {check['fusion']}")
        from core.self_check import describe_good_flagged, describe_weak_modalities

        for line in (describe_good_flagged(est), describe_weak_modalities(check)):
            if line:
                print(line)
    print(f"wrote {args.out} (model id {model_id})")
    return 0
