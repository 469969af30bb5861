"""A Granite-style tokenizer folder built from scratch: byte-level BPE, the Granite special tokens,
and a chat template written for these tests from the reference's description (§4) of the
Granite 4.0 template (system block assembly, tools and documents blocks, tool calls and
responses, default system prompt, generation prompt without a trailing newline).
"""

import json
from pathlib import Path

SPECIAL = ["<|pad|>", "<|end_of_text|>", "<|unk|>", "<|start_of_role|>", "<|end_of_role|>",
           "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|tool_call|>"]

TEMPLATE = r"""
{%- set tools_intro = "You are a helpful assistant with access to the following tools. You may call one or more tools to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" %}
{%- set tools_outro = "\n</tools>\n\nFor each tool call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>. If a tool does not exist in the provided list of tools, notify the user that you do not have the ability to fulfill the request." %}
{%- set documents_intro = "You are a helpful assistant with access to the following documents. You may use one or more documents to assist with the user query.\n\nYou are given a list of documents within <documents></documents> XML tags:\n<documents>" %}
{%- set documents_outro = "\n</documents>\n\nWrite the response to the user's input by strictly aligning with the facts in the provided documents. If the information needed to answer the question is not available in the documents, inform the user that the question cannot be answered based on the available data." %}
{%- set ns = namespace(system="", tools="", documents="", start=0, in_tools=false) %}
{%- if tools %}
    {%- set ns.tools = tools_intro %}
    {%- for tool in tools %}{%- set ns.tools = ns.tools + "\n" + (tool | tojson) %}{%- endfor %}
    {%- set ns.tools = ns.tools + tools_outro %}
{%- endif %}
{%- if documents %}
    {%- set ns.documents = documents_intro %}
    {%- for document in documents %}{%- set ns.documents = ns.documents + "\n" + (document | tojson) %}{%- endfor %}
    {%- set ns.documents = ns.documents + documents_outro %}
{%- endif %}
{%- if messages[0].role == "system" %}
    {%- set ns.start = 1 %}
    {%- if messages[0].content is string %}
        {%- set ns.system = messages[0].content %}
    {%- else %}
        {%- for part in messages[0].content %}
            {%- if part.type == "text" %}{%- set ns.system = ns.system + ("\n" if ns.system else "") + part.text %}{%- endif %}
        {%- endfor %}
    {%- endif %}
    {%- if ns.tools %}{%- set ns.system = ns.system + "\n\n" + ns.tools %}{%- endif %}
    {%- if ns.documents %}{%- set ns.system = ns.system + "\n\n" + ns.documents %}{%- endif %}
{%- elif ns.tools and ns.documents %}
    {%- set ns.system = ns.tools + "\n\n" + ns.documents %}
{%- elif ns.tools or ns.documents %}
    {%- set ns.system = ns.tools or ns.documents %}
{%- else %}
    {%- set ns.system = "You are a helpful assistant. Please ensure responses are professional, accurate, and safe." %}
{%- endif %}
{{- "<|start_of_role|>system<|end_of_role|>" + ns.system + "<|end_of_text|>\n" }}
{%- for message in messages[ns.start:] %}
    {%- set content = message.content if message.content is string else (message.content | map(attribute="text") | join("\n")) if message.content is defined else "" %}
    {%- if message.role == "tool" %}
        {%- if not ns.in_tools %}{{- "<|start_of_role|>user<|end_of_role|>" }}{%- set ns.in_tools = true %}{%- endif %}
        {{- "\n<tool_response>\n" + content + "\n</tool_response>" }}
        {%- if loop.last or messages[ns.start + loop.index0 + 1].role != "tool" %}{{- "<|end_of_text|>\n" }}{%- set ns.in_tools = false %}{%- endif %}
    {%- elif message.role in ["system", "user", "assistant"] %}
        {{- "<|start_of_role|>" + message.role + "<|end_of_role|>" + content }}
        {%- if message.role == "assistant" and message.tool_calls %}
            {%- for call in message.tool_calls %}
                {%- set call = call.function if call.function is defined else call %}
                {{- ("\n" if content or not loop.first else "") + "<tool_call>\n" + ({"name": call.name, "arguments": call.arguments} | tojson) + "\n</tool_call>" }}
            {%- endfor %}
        {%- endif %}
        {{- "<|end_of_text|>\n" }}
    {%- else %}
        {{- raise_exception("Unknown message role: " + message.role) }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- "<|start_of_role|>assistant<|end_of_role|>" }}{%- endif %}
"""

CORPUS = [
    "The Supplier shall indemnify the Customer against all claims arising from the Services.",
    "Termination for convenience requires ninety (90) days' written notice.",
    "Überweisungen erfolgen in Euro; la résiliation prend effet à la date convenue. 契約の終了。",
    "Torque the M8 bolts to 25 N·m ±10 %, then check the ≥ 3 mm gap. Emoji: 📄✅",
    "def parse(x):\n    return {\"name\": x, \"arguments\": [1, 2.5]}\n\t<tool_call></tool_call>",
] * 20


def build(folder: Path, template_in_config: bool = True, vocab_size: int = 320) -> Path:
    """Write tokenizer.json, tokenizer_config.json (and chat_template.jinja if asked) to folder.

    320 tokens (bytes, specials and a few dozen merges) fit the tiny checkpoints' vocabulary, so
    the two make a complete model folder; multi-byte characters then span several tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(CORPUS, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "GPT2Tokenizer", "add_bos_token": False, "model_max_length": 4096,
        "bos_token": "<|end_of_text|>", "eos_token": "<|end_of_text|>", "pad_token": "<|pad|>",
        "unk_token": "<|unk|>",
        "added_tokens_decoder": {str(tokenizer.token_to_id(token)): {
            "content": token, "special": True, "lstrip": False, "rstrip": False, "normalized": False,
            "single_word": False} for token in SPECIAL},
    }
    if template_in_config:
        config["chat_template"] = TEMPLATE
    else:
        (folder / "chat_template.jinja").write_text(TEMPLATE)
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return folder
