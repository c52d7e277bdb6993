"""Sampling latency: generation in-process, and what the app's ``/sample`` API adds on top of it.

Default mode, randomly initialised generators: for each family and preset (tiny, small-32, small-64,
paper-256) save the generator to a temp dir, then time ``load_generator`` + the first
``generate_images`` call (what a user waits for after launching the app), and steady-state
throughput at batch sizes 1 and 16 through the app's own sampling path (seeded z, noise, truncation).

``--api``: start ``python -m app`` on the bundled weights (or ``--weights``) in a subprocess, call
``/sample`` over raw HTTP for N seeds, several times (Gradio's REST route: POST
``/gradio_api/call/sample``, then read the event stream until ``complete``), then fetch every image
it returns with HTTP GETs, as a page would, and compare the median latency with the median
in-process ``generate_images`` time for the same seeds: what serving costs (encoding, files,
queue, HTTP) beyond generating. The same call through ``gradio_client`` (its file downloads off)
is timed too: on this project's VM the client library alone added about 0.3 s per call, which is
the client's cost, not the server's. Both print a markdown table naming the device (the CPU model from /proc/cpuinfo) and
the machine's load average, since other jobs on the machine slow both columns.

    python benchmarks/sample_latency.py [--device cuda] [--presets tiny small-32] [--repeats 3]
    python benchmarks/sample_latency.py --api [--seeds 16 64] [--repeats 5] [--weights weights/progan-openmoji]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from app.models import launch_sources  # noqa: E402
from benchmarks.machine import device_name, load_note  # noqa: E402
from app.sampling import generate_images  # noqa: E402
from families import FAMILIES, load_generator  # noqa: E402

PRESETS = ("tiny", "small-32", "small-64", "paper-256")
BATCH_SIZES = (1, 16)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(family_name: str, preset: str, device: torch.device, *, repeats: int, folder: Path) -> dict:
    family = FAMILIES[family_name]
    torch.manual_seed(0)
    path = family.generator_cls(family.preset(preset)).save_pretrained(folder / f"{family_name}-{preset}")
    kwargs = {"psi": 0.7, "noise": "random"}
    _sync(device)
    start = time.perf_counter()
    generator = load_generator(path, device=device)
    generate_images(generator, [0], **kwargs)
    _sync(device)
    first = time.perf_counter() - start
    row = {"family": family_name, "preset": preset, "resolution": generator.config.resolution, "first_s": first}
    for batch in BATCH_SIZES:
        seeds = list(range(batch))
        generate_images(generator, seeds, batch_size=batch, **kwargs)  # warm-up: allocator, kernels
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            generate_images(generator, seeds, batch_size=batch, **kwargs)
        _sync(device)
        row[f"ips_{batch}"] = batch * repeats / (time.perf_counter() - start)
    return row


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_app(weights: str, device: str, log: Path, *, timeout: float = 300.0) -> tuple[subprocess.Popen, str]:
    """``python -m app`` on 127.0.0.1 in a subprocess; returns it and its URL once the page answers."""
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app", "--weights", weights, "--device", device,
                                 "--port", str(port)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: the app exited with {proc.returncode}: {log.read_text()[-500:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"error: the app did not start within {timeout:.0f} s: {log.read_text()[-500:]}")


def _call(url: str, api_name: str, data: list) -> list:
    """One event through Gradio's REST route; returns its outputs or exits with the server's error."""
    request = urllib.request.Request(f"{url}gradio_api/call/{api_name}", data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        event_id = json.loads(response.read())["event_id"]
    event = None
    with urllib.request.urlopen(f"{url}gradio_api/call/{api_name}/{event_id}", timeout=600) as stream:
        for line in stream:
            text = line.decode().rstrip("\n")
            if text.startswith("event: "):
                event = text[len("event: "):]
            elif text.startswith("data: ") and event in ("complete", "error"):
                payload = json.loads(text[len("data: "):])
                if event == "error":
                    raise SystemExit(f"error: /{api_name} failed: {payload}")
                return payload
    raise SystemExit(f"error: /{api_name} ended without a result")


def _fetch(file: dict) -> bytes:
    with urllib.request.urlopen(file["url"], timeout=60) as response:
        return response.read()


def measure_api(weights: str, device: torch.device, seed_counts: list[int], *, repeats: int) -> list[dict]:
    """Median in-process ``generate_images`` time and median ``/sample`` latency per seed count."""
    from gradio_client import Client

    generator = load_generator(weights, device=device, progress=False)
    label = next(iter(launch_sources([weights])))  # the label the app gives these weights
    cutoff = 2 * generator.config.num_stages
    kwargs = {"psi": 0.7, "noise": "random"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start_app(weights, str(device), Path(tmp) / "app.log")
        try:
            for count in seed_counts:
                seeds = list(range(count))
                text = f"0-{count - 1}"
                generate_images(generator, seeds, **kwargs)                       # warm-up both sides
                inputs = [label, text, 0.7, cutoff, "random", None]  # model, seeds, psi, cutoff, noise, class
                _call(url, "sample", inputs)
                client = Client(url, verbose=False, download_files=False)
                client.predict(*inputs, api_name="/sample")
                local, call, fetched, library, sent = [], [], [], [], 0
                for _ in range(repeats):  # interleaved, so a burst of load from other jobs hits both columns
                    _sync(device)
                    start = time.perf_counter()
                    generate_images(generator, seeds, **kwargs)
                    _sync(device)
                    local.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    gallery, grid, _status = _call(url, "sample", inputs)
                    call.append(time.perf_counter() - start)
                    assert len(gallery) == count, (len(gallery), count)
                    sent = sum(len(_fetch(file)) for file in [item["image"] for item in gallery] + [grid])
                    fetched.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    client.predict(*inputs, api_name="/sample")
                    library.append(time.perf_counter() - start)
                rows.append({"seeds": count, "generate_s": statistics.median(local), "call_s": statistics.median(call),
                             "api_s": statistics.median(fetched), "resolution": generator.config.resolution,
                             "client_s": statistics.median(library), "kib": sent / 1024,
                             "image_px": Image.open(io.BytesIO(_fetch(gallery[0]["image"]))).width})
                print(f"  measured {count} seeds", file=sys.stderr, flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return rows


def main_api(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    torch.set_grad_enabled(False)
    note = load_note()
    rows = measure_api(args.weights, device, args.seeds, repeats=args.repeats)
    print(f"Device: {device_name(device)}; torch {torch.__version__}; {note}")
    print(f"Weights: {_shown_path(args.weights)}; psi 0.7, random noise; medians of {args.repeats} calls on 127.0.0.1: "
          f"POST /gradio_api/call/sample + its event stream, then every returned PNG fetched with HTTP GET\n")
    print("| seeds | image px sent | KiB sent | generate in-process | /sample call | call + images | ratio "
          "| gradio_client predict | its ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        g = r["generate_s"]
        print(f"| {r['seeds']} | {r['image_px']} | {r['kib']:.0f} | {g * 1000:.0f} ms | {r['call_s'] * 1000:.0f} ms | "
              f"{r['api_s'] * 1000:.0f} ms | {r['api_s'] / g:.1f}x | {r['client_s'] * 1000:.0f} ms | "
              f"{r['client_s'] / g:.1f}x |")
    print("\nratio: (call + images) / generate in-process; the target is at most 3x.")


def _shown_path(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per batch size (per seed count with --api)")
    parser.add_argument("--api", action="store_true", help="compare /sample over HTTP with in-process generation")
    parser.add_argument("--weights", default=str(ROOT / "weights" / "stylegan_lite-openmoji"),
                        help="--api: the weights the app serves (default: the bundled StyleGAN-lite)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[16, 64], help="--api: seeds per call")
    args = parser.parse_args(argv)
    if args.api:
        if args.repeats < 1 or any(not 1 <= n <= 64 for n in args.seeds):
            parser.error("--repeats must be at least 1 and --seeds counts in 1..64 (the app's cap)")
        return main_api(args)
    device = torch.device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family_name in args.families:
            for preset in args.presets:
                rows.append(measure(family_name, preset, device, repeats=args.repeats, folder=Path(tmp)))
                print(f"  measured {family_name} {preset}", file=sys.stderr, flush=True)
    print(f"Device: {device_name(device)}; torch {torch.__version__}; {load_note()}; random init, psi 0.7, random noise\n")
    print("| family | preset | resolution | first image (load + generate) | images/s, batch 1 | images/s, batch 16 |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['family']} | {r['preset']} | {r['resolution']} | {r['first_s'] * 1000:.0f} ms | "
              f"{r['ips_1']:.1f} | {r['ips_16']:.1f} |")


if __name__ == "__main__":
    main()
