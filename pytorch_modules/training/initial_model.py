"""Training that starts from a trained model (training.init_model): large-margin fine-tuning
of a model on its own training set, or fine-tuning a model trained on one corpus (VoxCeleb, say)
on the speakers of another.

The network's weights come from the model, which must be the same backbone with the same
options, trained on features of the same options (both checked, with a sentence naming what
differs).  The classification head comes too when the model was trained on the same speakers
(its final.pt or checkpoint holds the head, and the classes match): large-margin fine-tuning
continues the same classification task with a larger margin.  On other speakers the head is new
(random), as the new training set's classes are other people.  Which of the two happened is said
in the training log.  Used only when training starts: a resumed run continues from its own
checkpoints.
"""
from pathlib import Path

from pytorch_modules.errors import RecipeError
from pytorch_modules.features.spectrogram import parse_options_file
from pytorch_modules.fileio import checkpoint_file


def initialise(model, head, config, speakers: list, num_classes: int, log) -> None:
    """Loads training.init_model's network (and head, on the same speakers) into model and
    head, or raises RecipeError saying why the model does not fit this config."""
    path = config.training.init_model
    state = checkpoint_file.load(path, "give training.init_model a final.pt or a checkpoint "
                                 "that training wrote")
    if not isinstance(state, dict) or not {"model", "config"} <= state.keys():
        raise RecipeError(f"training.init_model {path} is not a model written by training (it "
                          f"lacks the 'model' and 'config' entries)")
    check_same_network(path, state["config"], config)
    model.load_state_dict(state["model"])
    if "head" in state and state.get("speakers") == speakers and _classes(state) == num_classes:
        head.load_state_dict(state["head"])
        log(f"initialised from {path}: its network and its {config.loss.type} head (the same "
            f"{len(speakers)} speakers)")
        return
    reason = ("it has no head (an older final.pt: give one of its training checkpoints to "
              "keep the head)" if "head" not in state else
              f"its {len(state.get('speakers', []))} training speakers are not these "
              f"{len(speakers)}")
    log(f"initialised from {path}: its network; a new {config.loss.type} head, since {reason}")


def _classes(state) -> int | None:
    """The head's number of classes: the rows of its (classes x K, dim) weight over K."""
    weight = state["head"].get("weight")
    if weight is None:
        return None
    return weight.shape[0] // state["config"].get("loss", {}).get("sub_centers", 1)


def check_same_network(path, saved: dict, config) -> None:
    """The model section and the feature options of the init model and of this config agree."""
    mine = config.to_dict()["model"]
    theirs = {**mine, **{k: v for k, v in (saved.get("model") or {}).items()}}
    if theirs != mine:
        differ = ", ".join(f"model.{k}: {theirs.get(k)!r} there, {mine.get(k)!r} here"
                           for k in sorted(set(mine) | set(theirs)) if theirs.get(k) != mine.get(k))
        raise RecipeError(f"training.init_model {path} is another network than this config's "
                          f"({differ}); give the model section of the config it was trained "
                          f"with")
    other = (saved.get("data") or {}).get("spectrogram_config")
    here = config.data.spectrogram_config
    if other and other != here and Path(other).is_file() and Path(here).is_file() \
            and parse_options_file(other) != parse_options_file(here):
        raise RecipeError(f"training.init_model {path} was trained on the features of {other}, "
                          f"which differ from this config's {here}; fine-tune on features of "
                          f"the same options")
