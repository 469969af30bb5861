"""Which model Tome runs, the same way everywhere: `--model DIR`, else `TOME_MODEL`, else the first
model folder (a folder with a config.json) under `models/` in the current directory.

`TOME_MODEL` is read here and nowhere else.
"""

import dataclasses
import os
from pathlib import Path

MODEL_ENV = "TOME_MODEL"
MODELS_DIR = "models"


class ModelNotFoundError(ValueError):
    """No model was given and none was found, or the given path is not a model folder."""


def resolve_model(explicit: str | Path | None = None, cwd: Path | None = None) -> Path:
    """The model folder to use: explicit, else $TOME_MODEL, else the first folder under models/."""
    given = explicit or os.environ.get(MODEL_ENV)
    if given:
        folder = Path(given).expanduser()
        source = "--model" if explicit else MODEL_ENV
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(f"{folder}: not a model folder (no config.json; given by {source})")
        return folder
    root = (cwd or Path.cwd()) / MODELS_DIR
    found = model_folders(root)
    if not found:
        raise ModelNotFoundError(
            f"no model: pass --model DIR, set {MODEL_ENV}, or put a Granite 4.0 H folder "
            f"(e.g. ibm-granite/granite-4.0-h-1b) under {root}"
        )
    return found[0]


def model_folders(root: Path) -> list[Path]:
    """Folders under root holding a config.json, in name order."""
    if not root.is_dir():
        return []
    return sorted(path for path in root.iterdir() if (path / "config.json").is_file())


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    path: Path
    parameters: int = 0
    dtype: str = "?"
    size_bytes: int = 0
    context_budget: int = 0
    layout: str = ""  # e.g. "40 layers (36 mamba, 4 attention), MoE 64x6"
    problem: str = ""  # why the folder cannot be loaded, if it cannot


def describe(folder: Path) -> ModelInfo:
    """What `tome models` shows, read from config.json and the safetensors headers only."""
    from inference import InferenceError
    from inference.checkpoint import Tensors, weight_files
    from inference.config import HybridConfig

    try:
        config = HybridConfig.from_pretrained(folder)
        files = weight_files(folder)
        tensors = Tensors(files)
    except InferenceError as error:
        return ModelInfo(folder, problem=str(error))
    parameters = sum(_numel(tensors.shape(name)) for name in tensors if name != "lm_head.weight"
                     or not config.tie_word_embeddings)
    embedding = "model.embed_tokens.weight"
    dtype = str(tensors[embedding].dtype).removeprefix("torch.") if embedding in tensors else "?"
    mamba = config.layer_types.count("mamba")
    layout = f"{config.num_hidden_layers} layers ({mamba} mamba, {config.num_hidden_layers - mamba} attention)"
    if config.has_experts:
        layout += f", MoE {config.num_local_experts}x{config.num_experts_per_tok}"
    return ModelInfo(folder, parameters, dtype, sum(f.stat().st_size for f in files), config.context_budget, layout)


def _numel(shape: tuple[int, ...]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total
