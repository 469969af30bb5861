"""`tome serve`: the web page, on this machine only unless --host says otherwise."""

import argparse
import os
import sys
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
SCRIPT = Path(__file__).resolve().parents[1] / "ui" / "streamlit_app.py"


def add_commands(commands) -> None:
    from ingest.settings import DEFAULT_STORE

    serve = commands.add_parser("serve", help="start the web page (http://127.0.0.1:8501 by default)")
    serve.add_argument("--store", metavar="DIR", default=DEFAULT_STORE, help=f"store folder (default {DEFAULT_STORE})")
    serve.add_argument("--model", metavar="DIR", help="Granite model folder (default: $TOME_MODEL, else models/*)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help=f"address to listen on (default {DEFAULT_HOST}, this machine only; 0.0.0.0 for all)")
    serve.set_defaults(run=run_serve)


def streamlit_command(args: argparse.Namespace) -> list[str]:
    """`python -m streamlit run` with Tome's page: headless, no usage statistics, no file watcher,
    the upload limit of the ingestion settings."""
    from ingest.settings import IngestSettings

    upload_mb = max(1, IngestSettings().max_file_bytes // 2**20)
    options = {
        "server.address": args.host,
        "server.port": args.port,
        "server.headless": "true",
        "server.fileWatcherType": "none",
        "server.runOnSave": "false",
        "server.maxUploadSize": upload_mb,
        "browser.gatherUsageStats": "false",
        "global.developmentMode": "false",
        "client.toolbarMode": "viewer",
        # The page shows errors in plain words itself; a traceback would be debug output.
        "client.showErrorDetails": "none",
        "theme.base": "light",
        "theme.primaryColor": "#1f5fbf",
    }
    command = [sys.executable, "-m", "streamlit", "run", str(SCRIPT)]
    command += [f"--{name}={value}" for name, value in options.items()]
    command += ["--", "--store", str(Path(args.store).expanduser().resolve())]
    if args.model:
        command += ["--model", str(Path(args.model).expanduser().resolve())]
    return command


def run_serve(args: argparse.Namespace) -> int:
    from app.models import ModelNotFoundError, resolve_model

    if not 0 < args.port < 65536:
        print(f"tome: error: --port {args.port}: expected 1 to 65535", file=sys.stderr)
        return 2
    try:
        if args.model:
            resolve_model(args.model)
        Path(args.store).expanduser().mkdir(parents=True, exist_ok=True)
    except ModelNotFoundError as error:
        print(f"tome: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"tome: error: {args.store}: cannot create the store folder ({error.strerror})", file=sys.stderr)
        return 2
    problem = _unavailable(args.host, args.port)
    if problem:
        print(f"tome: error: {args.host}:{args.port}: {problem} (choose another with --port or --host)",
              file=sys.stderr)
        return 2
    print(f"tome: serving {args.store} at http://{args.host}:{args.port} (Ctrl-C stops)", file=sys.stderr, flush=True)
    command = streamlit_command(args)
    os.execv(command[0], command)  # Streamlit takes over this process: signals reach it directly


def _unavailable(host: str, port: int) -> str:
    """Why the page could not listen on host:port ("" if it can), asked before Streamlit starts
    so the answer is one plain line."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return f"unknown host ({error.strerror})"
    family, kind, _, _, address = infos[0]
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            return "already in use" if error.errno == errno.EADDRINUSE else error.strerror or str(error)
    return ""
