"""Finding, opening and checking a checkpoint's safetensors weights.

Only safetensors are read: a pickle checkpoint (`.bin`, `.pt`, ...) can run arbitrary code when
loaded, so it is refused with a message saying so. Tensors stay memory-mapped: a tensor loaded in
its stored dtype costs no copy until its pages are touched.
"""

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from safetensors import safe_open

from inference.errors import CheckpointError

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
SHOWN = 4  # names listed per kind of problem before "and N more", to keep the error one line


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a checkpoint folder: the index's shards, or the single file."""
    index = folder / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"{index}: not a safetensors index ({error})") from None
        files = [folder / name for name in dict.fromkeys(weight_map.values())]
        for file in files:
            if not file.is_file():
                raise CheckpointError(f"{file}: listed in {INDEX_FILE} but missing")
        return files
    if (folder / SINGLE_FILE).is_file():
        return [folder / SINGLE_FILE]
    shards = sorted(folder.glob("*.safetensors"))
    if shards:
        return shards
    pickles = sorted(path for path in folder.iterdir() if path.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{pickles[0]}: refusing a pickle checkpoint, because loading pickle can execute arbitrary "
            "code; use the model's safetensors release or convert it to safetensors first"
        )
    raise CheckpointError(f"{folder}: no weights found (expected {SINGLE_FILE} or {INDEX_FILE})")


class Tensors(Mapping):
    """Name -> memory-mapped tensor over all files of a checkpoint (read lazily)."""

    def __init__(self, files: list[Path]):
        self._handles = []
        self._where: dict[str, object] = {}
        for file in files:
            try:
                handle = safe_open(str(file), framework="pt")
            except Exception as error:  # safetensors raises its own error types for a bad header
                raise CheckpointError(f"{file}: not a readable safetensors file ({error})") from None
            self._handles.append(handle)
            for name in handle.keys():
                self._where[name] = handle

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._where[name].get_tensor(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._where[name].get_slice(name).get_shape())


def check_names_and_shapes(folder: Path, found: Tensors, expected: dict[str, tuple[int, ...]]) -> None:
    """Raise one error naming every missing, unexpected and mis-shaped tensor."""
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    misshaped = [
        f"{name} {list(found.shape(name))} (config needs {list(shape)})"
        for name, shape in expected.items()
        if name in found and found.shape(name) != shape
    ]
    problems = [
        _listing(kind, names)
        for kind, names in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
        if names
    ]
    if problems:
        raise CheckpointError(f"{folder}: weights do not match config.json: {'; '.join(problems)}")


def _listing(kind: str, names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return f"{len(names)} {kind}: {shown}{more}"


def fingerprint(identity: bytes, tensors: Tensors) -> str:
    """A model identity for caches: the config plus every 1-D tensor (norms, A_log, D, biases).

    Hashing all weights would take as long as reading them; the small tensors differ between any
    two trainings of the same architecture, and are read in a few milliseconds.
    """
    digest = hashlib.sha256(identity)
    for name in sorted(tensors):
        if len(tensors.shape(name)) == 1:
            digest.update(name.encode())
            digest.update(tensors[name].contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]
