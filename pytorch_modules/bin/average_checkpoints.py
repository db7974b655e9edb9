"""Writes a model that is the mean of several checkpoints' weights (BatchNorm statistics
included), as training's optim.average_last does for the last epochs (WeSpeaker's
average_model.py does the same for its recipes).

    python -m pytorch_modules.bin.average_checkpoints --out exp/m/final_avg10.pt \
        exp/m/checkpoints/epoch_02[1-9].pt exp/m/checkpoints/epoch_030.pt

The checkpoints must come from one training run (same config and data); the output is a
final.pt (model, config, speakers, data fingerprint of the last checkpoint) that stage 4, verify
and embed take.  Keep the epochs' checkpoints with training.keep_checkpoints.
"""
import argparse

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio import checkpoint_file
from pytorch_modules.training.averaging import WeightAverage

PROG = "average_checkpoints"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the averaged model (a final.pt)")
    parser.add_argument("checkpoints", nargs="+")
    args = parser.parse_args()
    average, last = WeightAverage(len(args.checkpoints), len(args.checkpoints)), None
    for number, path in enumerate(args.checkpoints, 1):
        state = checkpoint_file.load(path, "give checkpoints that training wrote")
        if not {"model", "config"} <= state.keys():
            raise RecipeError(f"{path} is not a checkpoint written by training (it lacks the "
                              f"'model' and 'config' entries).")
        if last is not None and (state["config"] != last["config"]
                                 or state["model"].keys() != last["model"].keys()):
            raise RecipeError(f"{path} comes from another training run than "
                              f"{args.checkpoints[0]} (its config or its network differs); "
                              f"average checkpoints of one run.")
        average.add(number, state["model"])
        last = state
    checkpoint_file.save_atomic({"model": average.mean(last["model"]), "config": last["config"],
                             "speakers": last["speakers"],
                             "data_fingerprint": last.get("data_fingerprint")}, args.out)
    print(f"{PROG}: the mean of {len(args.checkpoints)} checkpoints -> {args.out}")


if __name__ == "__main__":
    run_entry_point(main, PROG)
