"""Prints a config that equals BASE_CONFIG except for its loss, with the paper's values (and,
with --seed, its training seed).

    python -m pytorch_modules.bin.loss_variant_config [--seed 2] conf/demo_dam.yaml am_softmax > am.yaml

Used by local/compare_losses.sh so that the four losses share data, seed and schedule.  The
margin warm-up of the base config (optim.margin_warmup_*) is kept for the additive-margin
losses and set to 0 for softmax and A-Softmax, which have no additive margin to warm up.
"""
import argparse

import yaml

from pytorch_modules.config import LossConfig, config_from_dict, load_config
from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.heads import PAPER_OPTIONS, scheduled_margin_types

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_config")
    parser.add_argument("loss", help=" | ".join(PAPER_OPTIONS))
    parser.add_argument("--seed", type=int, help="training.seed (default: the base config's)")
    args = parser.parse_args()
    if args.loss not in PAPER_OPTIONS:
        raise RecipeError(f"unknown loss '{args.loss}' (choose one of {', '.join(PAPER_OPTIONS)})")
    config = load_config(args.base_config)
    # The paper's settings of the loss (heads.PAPER_OPTIONS).
    config.loss = LossConfig(type=args.loss, options=dict(PAPER_OPTIONS[args.loss]))
    data = config.to_dict()
    if args.loss not in scheduled_margin_types():
        data["optim"].update(margin_warmup_start=0.0, margin_warmup_epochs=0.0)
    if args.seed is not None:
        data["training"]["seed"] = args.seed
    config_from_dict(data, f"{args.base_config} with loss {args.loss}")  # checks the result
    seed = f", seed {args.seed}" if args.seed is not None else ""
    print(f"# {args.base_config} with the loss replaced by {args.loss}{seed} "
          f"(local/compare_losses.sh)")
    print(yaml.safe_dump(data, sort_keys=False, default_flow_style=None), end="")


if __name__ == "__main__":
    run_entry_point(main, "loss_variant_config")
