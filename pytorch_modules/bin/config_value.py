"""Checks a training config as training will (every key, type and range) and prints the values
asked for, one per line, so that run.sh can refuse a bad config before stage 0.

    python -m pytorch_modules.bin.config_value conf/small_dam.yaml loss.type
    dam_softmax
"""
import argparse

from pytorch_modules.config import load_config
from pytorch_modules.errors import RecipeError, run_entry_point

PROG = "config_value"


def value_of(data: dict, key: str, path: str):
    section, _, name = key.partition(".")
    if section not in data or not name or name not in data[section]:
        raise RecipeError(f"{path} has no key {key} (give section.key, e.g. loss.type)")
    return data[section][name]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("keys", nargs="*", metavar="section.key")
    args = parser.parse_args()
    data = load_config(args.config).to_dict()
    for key in args.keys:
        print(value_of(data, key, args.config))


if __name__ == "__main__":
    run_entry_point(main, PROG)
