"""`tome generate`, `tome generate --chat`, `tome models` and the model lookup (app/models.py)."""

import io
import shutil

import pytest
import torch

from app.cli import main
from app.models import MODEL_ENV, ModelNotFoundError, resolve_model
from inference import Generator, HybridModel, Tokenizer


@pytest.fixture
def workdir(tmp_path, monkeypatch, model_folder):
    """A current directory with models/b-model (the tiny model) and models/a-broken (no weights)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(MODEL_ENV, raising=False)
    shutil.copytree(model_folder, tmp_path / "models" / "b-model")
    (tmp_path / "models" / "a-broken").mkdir()
    shutil.copy(model_folder / "config.json", tmp_path / "models" / "a-broken")
    return tmp_path


def test_lookup_order(workdir, monkeypatch, model_folder):
    assert resolve_model() == workdir / "models" / "a-broken"  # the first folder with a config.json
    monkeypatch.setenv(MODEL_ENV, str(model_folder))
    assert resolve_model() == model_folder
    assert resolve_model(workdir / "models" / "b-model") == workdir / "models" / "b-model"
    with pytest.raises(ModelNotFoundError, match=r"nowhere: not a model folder \(no config.json; given by --model\)"):
        resolve_model(workdir / "nowhere")


def test_no_model_anywhere_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(MODEL_ENV, raising=False)
    with pytest.raises(ModelNotFoundError, match="no model: pass --model DIR, set TOME_MODEL"):
        resolve_model()
    assert main(["generate", "Hello"]) == 2
    assert capsys.readouterr().err.startswith("tome: error: no model: pass --model DIR")


def test_generate_streams_the_raw_completion(workdir, capsys, model_folder):
    assert main(["generate", "--model", "models/b-model", "The Supplier shall", "--max-new-tokens", "12",
                 "--stats"]) == 0
    out, err = capsys.readouterr()
    gen = Generator(HybridModel.from_pretrained(model_folder), Tokenizer.from_pretrained(model_folder))
    expected = gen.stream_text("The Supplier shall", max_new_tokens=12)
    assert out == "".join(expected) + "\n"
    assert "12 generated at" in err and "finish: length" in err


def test_chat_uses_the_template_and_keeps_history(workdir, capsys, monkeypatch, model_folder):
    monkeypatch.setattr("sys.stdin", io.StringIO("What is clause 7?\n/reset\nAnd clause 8?\n"))
    assert main(["generate", "--chat", "--model", "models/b-model", "--system", "Be brief.",
                 "--max-new-tokens", "6"]) == 0
    out = capsys.readouterr().out
    gen = Generator(HybridModel.from_pretrained(model_folder), Tokenizer.from_pretrained(model_folder))
    first = gen.generate([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is clause 7?"}],
                         max_new_tokens=6)
    after_reset = gen.generate([{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "And clause 8?"}], max_new_tokens=6)
    assert out.count("you> ") == 4 and out.count("model> ") == 2
    assert f"model> {first.text}\n" in out and f"model> {after_reset.text}\n" in out


def test_models_lists_folders_with_size_dtype_and_budget(workdir, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("a-broken  unusable: ") and "no weights found" in out[0]
    assert out[1].startswith("b-model  ") and "float32" in out[1] and "context budget 4,096 tokens" in out[1]
    assert "3 layers (2 mamba, 1 attention), MoE 4x2" in out[1]


def test_generate_reports_bad_input_on_one_line(workdir, capsys):
    assert main(["generate", "--model", "models/a-broken", "Hello"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a-broken: no weights found" in err
    assert main(["generate", "--model", "models/b-model", "--context-budget", "3", "Hello there, a long prompt"]) == 2
    assert "context budget is 3 tokens" in capsys.readouterr().err


def test_bf16_runs_end_to_end_from_the_command_line(workdir, capsys, model_folder):
    assert main(["generate", "--model", "models/b-model", "--dtype", "bfloat16", "Hi", "--max-new-tokens", "3",
                 "--stats"]) == 0
    out, err = capsys.readouterr()
    assert "3 generated" in err or "finish: eos" in err
    gen = Generator(HybridModel.from_pretrained(model_folder, dtype=torch.bfloat16), Tokenizer.from_pretrained(model_folder))
    assert out == "".join(gen.stream_text("Hi", max_new_tokens=3)) + "\n"
