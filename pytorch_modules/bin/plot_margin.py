"""Draws the dynamic margin of DAM-Softmax against cos(theta_y) (the paper's Fig 3) as a PNG.

    python -m pytorch_modules.bin.plot_margin --config conf/rescnn_dam.yaml --out margin.png
    python -m pytorch_modules.bin.plot_margin --model exp/demo_dam/final.pt --out margin.png
    python -m pytorch_modules.bin.plot_margin --margin 0.2 --lambda 2 --out margin.png
    python -m pytorch_modules.bin.plot_margin --margin 0.2 --lambda 2 --angular --out margin.png

m and lambda come from the loss section of a training config (or of the config stored in a
trained model); AM-Softmax's constant margin m is drawn for reference.  An am_softmax config
draws the constant margin alone.  The angular heads likewise: a dam_aam_softmax config draws
its m_i (the same formula, an angle in radians added to theta_y) with AAM-Softmax's constant
angle m for reference, an aam_softmax config the constant angle alone.
"""
import argparse
import os

from pytorch_modules.config import config_from_dict, load_config
from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio import checkpoint_file
from pytorch_modules.reports.plots import dam_margin, plot_margin

PROG = "plot_margin"


# loss.type -> (dynamic margin (has lambda), angular margin)
MARGIN_HEADS = {"am_softmax": (False, False), "dam_softmax": (True, False),
                "aam_softmax": (False, True), "dam_aam_softmax": (True, True)}
NAMES = {(False, False): "AM-Softmax", (True, False): "DAM-Softmax",
         (False, True): "AAM-Softmax", (True, True): "DAM-AAM-Softmax"}


def margin_options(args):
    """(m, lambda or None, angular, where they came from): lambda None means the constant
    margin alone (AM- or AAM-Softmax); angular, a margin added to the angle (AAM, DAM-AAM)."""
    if args.margin is not None:
        return args.margin, args.lam, args.angular, "--margin/--lambda"
    if args.model:
        state = checkpoint_file.load(args.model, "give the final.pt that training wrote, or "
                                 "--config")
        if not isinstance(state, dict) or "config" not in state:
            raise RecipeError(f"{args.model} holds no training config; give the final.pt that "
                              f"training wrote, or --config.")
        config, source = config_from_dict(state["config"], source=args.model), args.model
    else:
        config, source = load_config(args.config), args.config
    options = config.loss.options
    if config.loss.type not in MARGIN_HEADS:
        raise RecipeError(f"{source} trains with {config.loss.type}, which has no additive "
                          f"margin; plot_margin draws the margins of "
                          f"{', '.join(MARGIN_HEADS)}.")
    dynamic, angular = MARGIN_HEADS[config.loss.type]
    return options["margin"], options["lam"] if dynamic else None, angular, source


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="training config (conf/*.yaml)")
    source.add_argument("--model", help="a trained model (exp/<model>/final.pt)")
    source.add_argument("--margin", type=float, help="m, given directly (with --lambda)")
    parser.add_argument("--lambda", dest="lam", type=float, help="lambda, with --margin")
    parser.add_argument("--angular", action="store_true",
                        help="with --margin: the margin is an angle (dam_aam_softmax)")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--cos-min", type=float, default=0.0,
                        help="left end of the cos(theta_y) axis (default 0; -1 for all of it)")
    parser.add_argument("--title")
    args = parser.parse_args()
    if args.margin is not None and args.lam is None:
        parser.error("--margin needs --lambda")
    if args.angular and args.margin is None:
        parser.error("--angular goes with --margin (a config or model says it itself)")
    for path in filter(None, (args.config, args.model)):
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist.")
    if not -1.0 <= args.cos_min < 1.0:
        raise RecipeError(f"--cos-min must lie in [-1, 1), got {args.cos_min}.")
    margin, lam, angular, source = margin_options(args)
    if lam is not None and lam <= 0:
        raise RecipeError(f"lambda must be positive, got {lam}.")
    loss = NAMES[lam is not None, angular]
    kind = " (an angle, radians)" if angular else ""
    params = f"m = {margin:g}" + ("" if lam is None else f", lambda = {lam:g}")
    plot_margin(margin, lam, args.out, (args.cos_min, 1.0),
                title=args.title or f"{loss} {'angular ' if angular else ''}margin, {params} "
                                    f"({source})", angular=angular)
    if lam is None:
        print(f"{PROG}: constant margin m = {margin:g}{kind} -> {args.out}")
    else:
        print(f"{PROG}: m_i = {float(dam_margin(1.0, margin, lam)):.4f} at cos 1, "
              f"{float(dam_margin(0.0, margin, lam)):.4f} at cos 0{kind} -> {args.out}")


if __name__ == "__main__":
    run_entry_point(main, PROG)
