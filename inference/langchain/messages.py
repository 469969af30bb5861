"""What the model is given: LangChain messages as chat template turns, and the reply prefixes
that make it call a tool or answer in JSON."""

import json

from langchain_core.messages import AIMessage, BaseMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage

from inference.errors import InferenceError

CALL_START, CALL_END = "<tool_call>", "</tool_call>"
JSON_INSTRUCTION = "Respond with one JSON object only, without any other text."
SCHEMA_INSTRUCTION = "The JSON object must conform to this JSON schema:\n"


def template_messages(messages: list[BaseMessage]) -> list[dict]:
    """LangChain messages as the chat template's message dicts."""
    turns = []
    for i, message in enumerate(messages):
        role = _role(message, i)
        turn = {"role": role, "content": _text(message, i)}
        if isinstance(message, AIMessage) and message.tool_calls:
            turn["tool_calls"] = [{"type": "function", "id": call.get("id"),
                                   "function": {"name": call["name"], "arguments": call["args"]}}
                                  for call in message.tool_calls]
        if isinstance(message, ToolMessage):
            turn["tool_call_id"] = message.tool_call_id
        turns.append(turn)
    return turns


def _role(message: BaseMessage, index: int) -> str:
    roles = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant", ToolMessage: "tool"}
    for kind, role in roles.items():
        if isinstance(message, kind):
            return role
    if isinstance(message, ChatMessage) and message.role in ("system", "user", "assistant", "tool"):
        return message.role
    raise InferenceError(f"message {index}: ChatGranite cannot send a {type(message).__name__} "
                         f"(role {getattr(message, 'role', message.type)!r}) to the model")


def _text(message: BaseMessage, index: int) -> str:
    """A message's text; tool-use blocks are skipped (its tool_calls carry them), other media refused."""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for block in message.content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") not in ("tool_use", "tool_call", "tool_call_chunk", "reasoning", "thinking"):
            raise InferenceError(f"message {index}: ChatGranite reads text only, not a {block.get('type')!r} block")
    return "\n".join(parts)


def forced_call_prefix(choice: str | dict | None, names: list[str]) -> str:
    """The reply prefix that makes the model call a tool, after checking `choice` against `names`."""
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name") or choice.get("name")
    if choice in (None, "auto", "none"):
        return ""
    if choice in ("any", "required"):
        return CALL_START + "\n"
    if choice in names:
        return CALL_START + "\n" + '{"name": ' + json.dumps(choice, ensure_ascii=False) + ', "arguments": '
    raise InferenceError(f"tool_choice {choice!r}: expected auto, none, any, required or one of {names}")


def ask_for_json(turns: list[dict], response_format: dict) -> list[dict]:
    """The conversation with the JSON instruction added to its system turn (made if missing)."""
    if response_format.get("type") not in ("json_object", "json_schema"):
        raise InferenceError(f"response_format {response_format!r}: expected type json_object or json_schema")
    instruction = JSON_INSTRUCTION
    if response_format.get("schema"):
        instruction += "\n" + SCHEMA_INSTRUCTION + json.dumps(response_format["schema"], ensure_ascii=False)
    if turns and turns[0]["role"] == "system":
        return [{**turns[0], "content": f"{turns[0]['content']}\n\n{instruction}"}, *turns[1:]]
    return [{"role": "system", "content": instruction}, *turns]
