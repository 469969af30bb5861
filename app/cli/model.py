"""`tome generate` (raw completion, or `--chat` for a terminal chat) and `tome models`."""

import argparse
import sys

DTYPES = ("bfloat16", "float32", "float16")


def add_commands(commands) -> None:
    generate = commands.add_parser(
        "generate", help="run the model on a prompt (raw completion), or chat with it (--chat)",
        description="Stream the model's completion of PROMPT, or with --chat talk to it through its chat template. "
                    "Type /reset to clear the conversation and /exit (or Ctrl-D) to leave.",
    )
    generate.add_argument("prompt", nargs="?", help="text to complete (with --chat: the first message); - reads stdin")
    generate.add_argument("--chat", action="store_true", help="terminal chat using the model's chat template")
    _model_arguments(generate)
    generate.add_argument("--system", help="system message for --chat")
    generate.add_argument("--max-new-tokens", type=int, help="longest reply, in tokens (default 256)")
    generate.add_argument("--temperature", type=float, help="0 (default) decodes greedily")
    generate.add_argument("--top-p", type=float)
    generate.add_argument("--top-k", type=int)
    generate.add_argument("--repetition-penalty", type=float)
    generate.add_argument("--seed", type=int)
    generate.add_argument("--stop", action="append", help="stop at this text (repeatable)")
    generate.add_argument("--stats", action="store_true", help="print token counts and speed to stderr")
    generate.set_defaults(run=run_generate)

    models = commands.add_parser("models", help="list the model folders found, with size, dtype and context budget")
    models.add_argument("--dir", help="folder to scan (default: models/ in the current directory)")
    models.set_defaults(run=run_models)


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="DIR", help="model folder (default: $TOME_MODEL, else the first under models/)")
    parser.add_argument("--dtype", choices=DTYPES, help="compute dtype (default: the checkpoint's)")
    parser.add_argument("--context-budget", type=int, help="longest prompt + reply in tokens "
                                                           "(default: the model's max_position_embeddings)")


def _options(args: argparse.Namespace) -> dict:
    """Only the options given on the command line: the defaults live in inference.generate."""
    names = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed", "stop")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _fail(error: Exception) -> int:
    print(f"tome: error: {error}", file=sys.stderr)
    return 2


def _load(args: argparse.Namespace):
    import torch

    from app.models import resolve_model
    from inference import Generator, HybridModel, Tokenizer

    folder = resolve_model(args.model)
    dtype = getattr(torch, args.dtype) if args.dtype else None
    model = HybridModel.from_pretrained(folder, dtype=dtype, context_budget=args.context_budget)
    return Generator(model, Tokenizer.from_pretrained(folder))


def run_generate(args: argparse.Namespace) -> int:
    from app.models import ModelNotFoundError
    from inference import InferenceError

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not args.chat and not prompt:
        return _fail("a PROMPT is needed (or --chat)")
    try:
        generator = _load(args)
        if args.chat:
            return _chat(generator, args, prompt)
        _print_stream(generator.stream_text(prompt, **_options(args)), args.stats)
        return 0
    except (InferenceError, ModelNotFoundError) as error:
        return _fail(error)


def _print_stream(stream, stats: bool) -> str:
    for piece in stream:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    result = stream.result
    if stats:
        speed = result.completion_tokens / result.decode_seconds if result.decode_seconds else 0.0
        print(f"[{result.prompt_tokens} prompt tokens in {result.prefill_seconds:.2f}s, {result.completion_tokens} "
              f"generated at {speed:.1f} tokens/s, finish: {result.finish_reason}]", file=sys.stderr)
    return result.text


def _chat(generator, args: argparse.Namespace, first: str | None) -> int:
    from inference import InferenceError

    system = [{"role": "system", "content": args.system}] if args.system else []
    history = list(system)
    pending = first
    while True:
        if pending is None:
            try:
                pending = input("you> ")
            except EOFError:
                print()
                return 0
        text, pending = pending.strip(), None
        if text in ("/exit", "/quit"):
            return 0
        if text == "/reset":
            history = list(system)
            continue
        if not text:
            continue
        history.append({"role": "user", "content": text})
        sys.stdout.write("model> ")
        try:
            reply = _print_stream(generator.stream(history, **_options(args)), args.stats)
        except InferenceError as error:  # e.g. the conversation outgrew the context budget
            history.pop()
            print(f"tome: error: {error}", file=sys.stderr)
            continue
        history.append({"role": "assistant", "content": reply})


def run_models(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.models import MODELS_DIR, describe, model_folders

    root = Path(args.dir) if args.dir else Path.cwd() / MODELS_DIR
    folders = model_folders(root)
    if not folders:
        print(f"no model folders under {root}", file=sys.stderr)
        return 1
    for info in map(describe, folders):
        if info.problem:
            print(f"{info.path.name}  unusable: {info.problem}")
        else:
            print(f"{info.path.name}  {_count(info.parameters)} parameters  {info.dtype}  {_bytes(info.size_bytes)}  "
                  f"context budget {info.context_budget:,} tokens  {info.layout}")
    return 0


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
