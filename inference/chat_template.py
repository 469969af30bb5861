"""Rendering a model's Jinja chat template exactly as transformers' `apply_chat_template` does.

Same environment: a sandboxed, immutable Jinja with trim_blocks/lstrip_blocks and loop controls;
`tojson` as json.dumps(ensure_ascii=False) (no HTML escaping); `raise_exception`, `strftime_now`,
a plain `dict` and a `namespace` that refuses underscore attributes; `{% generation %}` blocks
render their body. Inputs are rebuilt from plain JSON types first, so a template can reach no
Python object's methods, and message keys whose value is None are dropped.
"""

import dataclasses
import functools
import json
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.utils
from jinja2.sandbox import ImmutableSandboxedEnvironment

from inference.errors import InferenceError


class TemplateError(InferenceError):
    """The chat template failed, or rejected the conversation (its `raise_exception`)."""


class _Generation(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}` marks assistant text for training masks; render the body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


class _Namespace(jinja2.utils.Namespace):
    """Jinja's namespace without underscore attributes (no way into Python internals)."""

    def __init__(*args, **kwargs):  # noqa: N805 - the signature trick of jinja2.utils.Namespace
        self, args = args[0], args[1:]
        attributes = dict(*args, **kwargs)
        for name in attributes:
            _Namespace._check(name)
        jinja2.utils.Namespace.__init__(self, attributes)

    def __setitem__(self, name, value):
        _Namespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name):
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(f"chat templates cannot set namespace attribute {name!r}")


def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(format):
    return datetime.now().strftime(format)


class _Dict:
    """`dict(...)` for templates, without exposing the dict type itself."""

    def __call__(self, *args, **kwargs):
        return dict(*args, **kwargs)

    def fromkeys(self, *args, **kwargs):
        return dict.fromkeys(*args, **kwargs)


@functools.lru_cache(maxsize=16)
def compile_template(source: str) -> jinja2.Template:
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = _tojson
    environment.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now, dict=_Dict(),
                               namespace=_Namespace)
    try:
        return environment.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as error:
        raise TemplateError(f"chat template does not parse (line {error.lineno}: {error.message})") from None


def plain(value: Any) -> Any:
    """Rebuild `value` from JSON types; anything else becomes an inert "<TypeName>" string."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    for kind in (str, bool, int, float):  # subclasses (enums, numpy scalars) lose their extra methods
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if hasattr(value, "item") and callable(value.item):  # numpy/torch scalars
        return plain(value.item())
    return f"<{type(value).__name__}>"


def render(source: str, messages: list[dict], documents: list[dict] | None = None, tools: list[dict] | None = None,
           add_generation_prompt: bool = True, **variables: Any) -> str:
    """The template's text for a conversation; `variables` are the special tokens and extras."""
    if not messages:
        raise TemplateError("cannot render an empty conversation")
    for name, items in (("message", messages), ("document", documents or []), ("tool", tools or [])):
        for item in items:
            if not isinstance(item, dict):
                raise TemplateError(f"each {name} must be a dict, got {type(item).__name__}")
    messages = [{key: value for key, value in message.items() if value is not None} for message in messages]
    try:
        return compile_template(source).render(
            messages=plain(messages), documents=plain(documents), tools=plain(tools),
            add_generation_prompt=add_generation_prompt, **plain(variables),
        )
    except jinja2.exceptions.TemplateError as error:
        raise TemplateError(f"chat template: {error}") from None
