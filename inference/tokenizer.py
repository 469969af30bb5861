"""The tokenizer: `tokenizers` on tokenizer.json, plus the special tokens and chat template.

Special tokens come from tokenizer_config.json (special_tokens_map.json fills gaps). The chat
template comes from chat_template.jinja when present (transformers gives it priority), else
from tokenizer_config.json's `chat_template` (a string, or named templates of which `default`
is used, and `tool_use` when tools are given).
"""

import functools
import json
import re
from pathlib import Path
from typing import Any

import tokenizers

from inference import chat_template
from inference.errors import InferenceError

SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# Private-use characters (transformers' choice too) wrapped around control tokens found in user
# text when rendering with sanitize=True; `encode` turns a wrapped token into plain text.
MARK_START, MARK_END = "\U000f0000", "\U000f0001"


class Tokenizer:
    def __init__(self, backend: tokenizers.Tokenizer, special_tokens: dict[str, str],
                 chat_templates: dict[str, str], source: str = "<memory>"):
        self.backend, self.special_tokens, self.chat_templates, self.source = backend, special_tokens, chat_templates, source
        self.vocab_size = backend.get_vocab_size(with_added_tokens=True)
        self._plain = tokenizers.Tokenizer.from_str(backend.to_str())  # special tokens encoded as ordinary text
        self._plain.encode_special_tokens = True

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
        """Ids for `text`; special-token strings in it become their ids, as in transformers.

        Control tokens that `render_chat(..., sanitize=True)` marked as user text are encoded as
        the plain characters they are made of.
        """
        if MARK_START not in text and MARK_END not in text:
            return self.backend.encode(text, add_special_tokens=add_special_tokens).ids
        pieces = self._markers.split(text)  # [text, marked token or None, text, ...]
        ids = self.backend.encode(pieces[0], add_special_tokens=add_special_tokens).ids
        newline = self.backend.encode("\n", add_special_tokens=False).ids
        for i, piece in enumerate(pieces[1:], start=1):
            if piece:
                ids += self._encode_piece(piece, plain=i % 2 == 1, newline=newline)
        return ids

    def encode_after(self, text: str, prefix: str | None) -> list[int] | None:
        """Ids of `text` after `prefix` (a text it starts with), or None when they could differ
        from the tail of `encode(text)`.

        The backend splits text at added tokens before anything else and encodes the pieces
        between them on their own; markers (see `encode`) split it too. So when the rest begins
        with an added token that no context can change (not lstrip, single_word or normalized;
        not inside a marker) and no added token straddles the boundary, encode(prefix) +
        encode(rest) == encode(text): a chat prompt that continues a cached document turn then
        encodes only the new turn.
        """
        if prefix is None or len(text) <= len(prefix) or not text.startswith(prefix) or prefix.endswith(MARK_START):
            return None
        rest = text[len(prefix) :]
        first = max((t for t in self._added if rest.startswith(t.content)), key=lambda t: len(t.content), default=None)
        if first is None or first.lstrip or first.single_word or first.normalized:
            return None
        for token in self._added:  # one starting in the prefix and ending in the rest would win there
            content = token.content
            if any(prefix.endswith(content[:k]) and rest.startswith(content[k:]) for k in range(1, len(content))):
                return None
        return self.encode(rest)

    @functools.cached_property
    def _added(self) -> list[tokenizers.AddedToken]:
        return list(self.backend.get_added_tokens_decoder().values())

    def _encode_piece(self, piece: str, plain: bool, newline: list[int]) -> list[int]:
        # Encoded after a newline and without it, as transformers does, so the piece starts a word
        # the way it would mid-text.
        backend = self._plain if plain else self.backend
        ids = backend.encode("\n" + piece, add_special_tokens=False).ids
        return ids[len(newline) :] if ids[: len(newline)] == newline else backend.encode(piece, add_special_tokens=False).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def decoder(self, skip_special_tokens: bool = True) -> "IncrementalDecoder":
        return IncrementalDecoder(self, skip_special_tokens)

    # --- chat -------------------------------------------------------------------------------------

    def render_chat(self, messages: list[dict], documents: list[dict] | None = None, tools: list[dict] | None = None,
                    add_generation_prompt: bool = True, sanitize: bool = False, **variables: Any) -> str:
        """The prompt text for a conversation, as transformers' apply_chat_template(tokenize=False).

        sanitize=True marks control tokens inside messages, documents and tools (a contract that
        contains "<|end_of_text|>" must not end a turn); `encode` then encodes them as plain text.
        """
        template = self._template(tools)
        if sanitize:
            pattern = _alternatives(self._control_tokens(template))
            messages, documents, tools = (_mark(value, pattern) for value in (messages, documents, tools))
        return chat_template.render(template, messages, documents, tools, add_generation_prompt,
                                    **{**self.special_tokens, **variables})

    def encode_chat(self, messages: list[dict], documents: list[dict] | None = None, tools: list[dict] | None = None,
                    add_generation_prompt: bool = True, sanitize: bool = True, **variables: Any) -> list[int]:
        """Prompt ids for a conversation; by default control tokens in user content stay plain text."""
        return self.encode(self.render_chat(messages, documents, tools, add_generation_prompt, sanitize, **variables))

    def _control_tokens(self, template: str) -> list[str]:
        """Special tokens, and added tokens the template writes itself."""
        added = self.backend.get_added_tokens_decoder().values()
        return [t.content for t in added if t.special or (t.content in template and not t.content.isspace())]

    @functools.cached_property
    def _markers(self) -> re.Pattern:
        """A marked added token (captured), or a stray marker (captures None)."""
        tokens = _alternatives(t.content for t in self.backend.get_added_tokens_decoder().values()).pattern
        return re.compile(f"{MARK_START}({tokens}){MARK_END}|[{MARK_START}{MARK_END}]")

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


def _alternatives(tokens) -> re.Pattern:
    """A regex matching any of the tokens, longest first (a token beats the tokens inside it)."""
    ordered = sorted(set(tokens), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered)) or "(?!)")  # (?!) never matches


def _mark(value: Any, pattern: re.Pattern) -> Any:
    """Wrap every control token in the strings of `value` in markers (forged markers removed first)."""
    if isinstance(value, str):
        value = value.replace(MARK_START, "").replace(MARK_END, "")
        return pattern.sub(lambda match: MARK_START + match.group(0) + MARK_END, value)
    if isinstance(value, dict):
        return {key: _mark(item, pattern) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mark(item, pattern) for item in value]
    return value


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
