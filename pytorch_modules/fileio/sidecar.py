"""Sidecar files beside a model (final.threshold, final.calibration): `# comment` lines, then
one `key value` line per entry; never pickle, so reading one runs nothing."""
from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.atomic import write_lines


def write(path, comment: str, entries: dict) -> None:
    """The sidecar, whole or not at all."""
    write_lines(path, [f"# {comment}"] + [f"{key} {value}" for key, value in entries.items()])


def read(path, remedy: str) -> dict:
    """{key: value text} of a sidecar; a line without a value is an error naming the file and
    line, ending with `remedy` (how to write the file again)."""
    entries = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if line.startswith("#") or not line.strip():
                continue
            key, _, value = line.strip().partition(" ")
            if not value.strip():
                raise RecipeError(f"{path}:{line_no}: expected 'KEY VALUE', got "
                                  f"{line.rstrip()!r}; {remedy}")
            entries[key] = value.strip()
    return entries
