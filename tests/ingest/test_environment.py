"""Offline by design: environment set on import, the bundled embedder, no clash with transformers'
kernels hub, and light imports for quick `tome docs`."""

import json
import os
import subprocess
import sys

import numpy as np


def _python(code: str, env: dict | None = None) -> dict:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_ingest_sets_the_environment_and_stays_light(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "ANONYMIZED_TELEMETRY")}
    found = _python(
        "import json, os, sys; import ingest\n"
        f"ingest.Store({str(tmp_path / 's')!r}).documents()\n"
        "print(json.dumps({'offline': os.environ.get('HF_HUB_OFFLINE'), 'telemetry': os.environ.get('ANONYMIZED_TELEMETRY'),"
        " 'heavy': sorted(m for m in ('torch', 'chromadb', 'pypdf', 'sentence_transformers') if m in sys.modules)}))",
        env=env,
    )
    assert found == {"offline": "1", "telemetry": "False", "heavy": []}


def test_the_bundled_embedder_loads_offline_without_waking_the_kernels_hub():
    found = _python(
        "import json; import ingest; from ingest.embed import get_embedder\n"
        "vector = get_embedder().encode(['Termination for convenience'])\n"
        "from transformers.utils import is_kernels_available\n"
        "print(json.dumps({'shape': list(vector.shape), 'norm': float((vector ** 2).sum()), 'kernels': is_kernels_available()}))"
    )
    assert found["shape"] == [1, 384] and np.isclose(found["norm"], 1.0, atol=1e-4)
    assert found["kernels"] is False


def test_chroma_never_gets_an_embedding_function(store):
    collection = store._vectors.collection
    assert collection._embedding_function is None
    assert collection.configuration_json["hnsw"]["space"] == "cosine"
