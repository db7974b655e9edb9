"""Prints a config that equals BASE_CONFIG except for its loss, with the paper's values.

    python -m pytorch_modules.bin.loss_variant_config conf/demo_dam.yaml am_softmax > am.yaml

Used by local/compare_losses.sh so that the four losses share data, seed and schedule.
"""
import argparse

import yaml

from pytorch_modules.config import config_from_dict, load_config
from pytorch_modules.errors import RecipeError, run_entry_point

# The paper's settings of each loss (Sec 2, 4): m = 4 for A-Softmax as in SphereFace,
# m = 0.2 and s = 30 for the additive margins, lambda = 2 for the dynamic one.
PAPER_LOSSES = {
    "softmax": {},
    "a_softmax": {"margin": 4},
    "am_softmax": {"margin": 0.2, "scale": 30.0},
    "dam_softmax": {"margin": 0.2, "scale": 30.0, "lambda": 2.0},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_config")
    parser.add_argument("loss", help=" | ".join(PAPER_LOSSES))
    args = parser.parse_args()
    if args.loss not in PAPER_LOSSES:
        raise RecipeError(f"unknown loss '{args.loss}' (choose one of {', '.join(PAPER_LOSSES)})")
    data = load_config(args.base_config).to_dict()
    data["loss"] = {"type": args.loss, **PAPER_LOSSES[args.loss]}
    config_from_dict(data, f"{args.base_config} with loss {args.loss}")  # checks the result
    print(f"# {args.base_config} with the loss replaced by {args.loss} (local/compare_losses.sh)")
    print(yaml.safe_dump(data, sort_keys=False, default_flow_style=None), end="")


if __name__ == "__main__":
    run_entry_point(main, "loss_variant_config")
