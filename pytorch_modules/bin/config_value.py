"""Checks a training config as training will (every key, type and range, and that its feature
options make model.input_bins rows) and prints the values
asked for, one per line, so that run.sh can refuse a bad config before stage 0.

    python -m pytorch_modules.bin.config_value conf/small_dam.yaml loss.type
    dam_softmax
    python -m pytorch_modules.bin.config_value --set loss.type=am_softmax \
        conf/small_dam.yaml loss.type
    am_softmax

--set section.key=VALUE overrides a key as training's --set does (notes on stderr).
--as-overrides OVERLAY prints an overlay's keys (a partial config, e.g. conf/overlays/lm.yaml) as
section.key=VALUE lines, the --set options run.sh passes on.
"""
import argparse
import sys
from pathlib import Path

from pytorch_modules.config import load_config, overlay_overrides
from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.features.spectrogram import parse_options_file

PROG = "config_value"


def value_of(data: dict, key: str, path: str):
    section, _, name = key.partition(".")
    if section not in data or not name or name not in data[section]:
        raise RecipeError(f"{path} has no key {key} (give section.key, e.g. loss.type)")
    return data[section][name]


def check_feature_config(config, path) -> None:
    """The feature options the config names exist, parse, and make model.input_bins rows."""
    features = config.data.spectrogram_config
    if not Path(features).is_file():
        raise RecipeError(f"{path}: data.spectrogram_config names {features}, which does not "
                          f"exist (a path relative to the recipe directory)")
    bins = parse_options_file(features).num_bins
    if bins != config.model.input_bins:
        raise RecipeError(f"{path}: model.input_bins is {config.model.input_bins}, but "
                          f"{features} (data.spectrogram_config) makes {bins}-bin features; "
                          f"set model.input_bins: {bins}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config key (repeatable)")
    parser.add_argument("--as-overrides", metavar="OVERLAY",
                        help="print the overlay's keys as section.key=VALUE lines, and nothing "
                             "else")
    parser.add_argument("config", nargs="?")
    parser.add_argument("keys", nargs="*", metavar="section.key")
    args = parser.parse_args()
    if args.as_overrides:
        print("\n".join(overlay_overrides(args.as_overrides)))
        return
    if args.config is None:
        parser.error("give a CONFIG (or --as-overrides OVERLAY)")
    notes = []
    config = load_config(args.config, args.set, notes)
    for note in notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    check_feature_config(config, args.config)
    data = config.to_dict()
    for key in args.keys:
        print(value_of(data, key, args.config))


if __name__ == "__main__":
    run_entry_point(main, PROG)
