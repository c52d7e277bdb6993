"""``python -m app``: serve the Gradio app on 127.0.0.1.

With no ``--weights`` it serves the bundled OpenMoji generators (``weights/``), StyleGAN-lite first.
The default model is loaded before the server starts, so a bad file stops the launch with one
line instead of a traceback; models chosen later load lazily and report errors in the page.
"""
from __future__ import annotations

import argparse
import sys

from .limits import DEFAULT_LIMITS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", action="append", metavar="PATH|URL|hf://org/repo[/file]",
                        help="weights to serve; repeat to offer several in the model switcher "
                             "(default: the bundled weights/)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--concurrency", type=int, default=2, help="generations running at once (default: 2)")
    parser.add_argument("--max-queue", type=int, default=32,
                        help="requests waiting before new ones are refused (default: 32)")
    parser.add_argument("--allow-remote-weights", action="store_true",
                        help="let visitors load http(s):// or hf:// weights (never local paths); "
                             "the server will download what visitors name")
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 64 or args.max_queue < 1:
        parser.error("--concurrency must be in 1..64 and --max-queue at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch  # deferred: --help stays instant

    from .models import LOAD_ERRORS, ModelStore, default_device, launch_sources
    from .display import CSS
    from .ui import build_demo

    device = args.device or default_device()
    try:
        torch.device(device)
        store = ModelStore(launch_sources(args.weights), device=device, allow_remote=args.allow_remote_weights,
                           limits=DEFAULT_LIMITS)
        store.get(store.default)
    except (*LOAD_ERRORS, RuntimeError) as exc:
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    torch.set_grad_enabled(False)
    demo = build_demo(store, limits=DEFAULT_LIMITS)
    demo.queue(default_concurrency_limit=args.concurrency, max_size=args.max_queue)
    print(f"serving {', '.join(store.labels)} on {device}", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, show_error=True, css=CSS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
