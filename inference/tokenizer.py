"""The tokenizer: `tokenizers` on tokenizer.json, plus the special tokens and chat template.

Special tokens come from tokenizer_config.json (special_tokens_map.json fills gaps). The chat
template comes from chat_template.jinja when present (transformers gives it priority), else
from tokenizer_config.json's `chat_template` (a string, or named templates of which `default`
is used, and `tool_use` when tools are given).
"""

import json
from pathlib import Path
from typing import Any

import tokenizers

from inference import chat_template
from inference.errors import InferenceError

SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


class Tokenizer:
    def __init__(self, backend: tokenizers.Tokenizer, special_tokens: dict[str, str],
                 chat_templates: dict[str, str], source: str = "<memory>"):
        self.backend, self.special_tokens, self.chat_templates, self.source = backend, special_tokens, chat_templates, source
        self.vocab_size = backend.get_vocab_size(with_added_tokens=True)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "Tokenizer":
        folder = Path(path)
        file = folder / "tokenizer.json"
        if not file.is_file():
            raise InferenceError(f"{file}: not found (Tome reads the fast tokenizer file)")
        try:
            backend = tokenizers.Tokenizer.from_file(str(file))
        except Exception as error:  # tokenizers raises a bare Exception for a malformed file
            raise InferenceError(f"{file}: not a readable tokenizer ({error})") from None
        config = _read_json(folder / "tokenizer_config.json")
        special_map = _read_json(folder / "special_tokens_map.json")
        special = {name: _content(config.get(name) or special_map.get(name)) for name in SPECIAL_TOKEN_NAMES}
        return cls(backend, {k: v for k, v in special.items() if v}, _chat_templates(folder, config), str(folder))

    # --- special tokens -------------------------------------------------------------------------

    def token_id(self, token: str | None) -> int | None:
        return None if token is None else self.backend.token_to_id(token)

    @property
    def eos_token_id(self) -> int | None:
        return self.token_id(self.special_tokens.get("eos_token"))

    @property
    def pad_token_id(self) -> int | None:
        return self.token_id(self.special_tokens.get("pad_token"))

    @property
    def bos_token_id(self) -> int | None:
        return self.token_id(self.special_tokens.get("bos_token"))

    # --- text <-> ids ---------------------------------------------------------------------------

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Ids for `text`; special-token strings in it become their ids, as in transformers."""
        return self.backend.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def decoder(self, skip_special_tokens: bool = True) -> "IncrementalDecoder":
        return IncrementalDecoder(self, skip_special_tokens)

    # --- chat -------------------------------------------------------------------------------------

    def render_chat(self, messages: list[dict], documents: list[dict] | None = None, tools: list[dict] | None = None,
                    add_generation_prompt: bool = True, **variables: Any) -> str:
        """The prompt text for a conversation, as transformers' apply_chat_template(tokenize=False)."""
        return chat_template.render(self._template(tools), messages, documents, tools, add_generation_prompt,
                                    **{**self.special_tokens, **variables})

    def encode_chat(self, messages: list[dict], documents: list[dict] | None = None, tools: list[dict] | None = None,
                    add_generation_prompt: bool = True, **variables: Any) -> list[int]:
        return self.encode(self.render_chat(messages, documents, tools, add_generation_prompt, **variables))

    def _template(self, tools) -> str:
        templates = self.chat_templates
        if tools is not None and "tool_use" in templates:
            return templates["tool_use"]
        if "default" not in templates:
            raise InferenceError(f"{self.source}: the tokenizer has no chat template")
        return templates["default"]


class IncrementalDecoder:
    """Turns ids arriving one by one into text pieces that never end inside a UTF-8 character.

    Byte-level BPE can split a character's bytes across tokens; decoding a partial character gives
    U+FFFD, so such text is held back until the following tokens complete it. Each piece is the
    difference between decoding a short window with and without the newest ids, which keeps the
    spacing and merge rules of a full decode.
    """

    def __init__(self, tokenizer: Tokenizer, skip_special_tokens: bool = True):
        self._tokenizer, self._skip = tokenizer, skip_special_tokens
        self._ids: list[int] = []
        self._start = 0  # window start: ids before it are settled
        self._done = 0  # ids whose text has been returned

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        before = self._decode(self._ids[self._start : self._done])
        after = self._decode(self._ids[self._start :])
        if after.endswith("\ufffd") or len(after) <= len(before):
            return ""
        self._start, self._done = self._done, len(self._ids)
        return after[len(before) :]

    def flush(self) -> str:
        """Whatever is still held back (even an incomplete character), at the end of generation."""
        before = self._decode(self._ids[self._start : self._done])
        after = self._decode(self._ids[self._start :])
        self._start = self._done = len(self._ids)
        return after[len(before) :]

    def _decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, self._skip)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InferenceError(f"{path}: not readable JSON ({error})") from None
    return data if isinstance(data, dict) else {}


def _content(token: Any) -> str | None:
    """A special token as written in the config: a string or an AddedToken dict."""
    if isinstance(token, dict):
        return token.get("content")
    return token if isinstance(token, str) else None


def _chat_templates(folder: Path, config: dict[str, Any]) -> dict[str, str]:
    templates: dict[str, str] = {}
    given = config.get("chat_template")
    if isinstance(given, str):
        templates["default"] = given
    elif isinstance(given, list):  # [{"name": ..., "template": ...}, ...]
        templates.update({entry["name"]: entry["template"] for entry in given})
    file = folder / "chat_template.jinja"
    if file.is_file():  # beside the config it takes priority, as in transformers
        templates["default"] = file.read_text(encoding="utf-8")
    for extra in sorted((folder / "additional_chat_templates").glob("*.jinja")):
        templates[extra.stem] = extra.read_text(encoding="utf-8")
    return templates
