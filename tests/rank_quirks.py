"""train.py with rank 1's view of the world changed, for the multi-process failure tests.

``GAN_STUDIO_TEST_QUIRK``:
- ``local-out``: rank 1 uses ``--out`` + ``-rank1``, as if --out were on a node-local disk.
- ``stuck-data``: rank 1 hangs while opening its dataset, as if rendering data never finished.
- ``count-collectives`` (every rank): counts collective calls and writes, per training step, the count
  at the start of its D step to ``OUT/collectives-rank{RANK}.json``.
- ``record-data`` (every rank): writes ``OUT/data-rank{RANK}.pt``: every uint8 image batch the loop read
  (``images``), and for every gradient all-reduce the flat gradient before and after it (``grads``:
  ``(what, before, after)``), the values the test compares across ranks.
"""
import os
import sys
import time

import train

rank = int(os.environ.get("RANK", "0"))
quirk = os.environ.get("GAN_STUDIO_TEST_QUIRK", "")
if rank == 1 and quirk == "local-out":
    where = sys.argv.index("--out") + 1
    sys.argv[where] += "-rank1"
if rank == 1 and quirk == "stuck-data":
    train.dataset_opener = lambda config, accelerator: time.sleep(3600)
if quirk == "count-collectives":
    import atexit
    import json
    from pathlib import Path

    import torch.distributed as dist

    import progan.training.iteration as iteration_module

    calls, at_step = [0], []
    for name in ("all_reduce", "broadcast", "all_gather", "barrier", "reduce", "gather"):
        def counted(*args, _original=getattr(dist, name), **kwargs):
            calls[0] += 1
            return _original(*args, **kwargs)
        setattr(dist, name, counted)

    def d_step(*args, _original=iteration_module.discriminator_step, **kwargs):
        at_step.append(calls[0])
        return _original(*args, **kwargs)

    iteration_module.discriminator_step = d_step
    out = Path(sys.argv[sys.argv.index("--out") + 1])
    atexit.register(lambda: (out / f"collectives-rank{rank}.json").write_text(json.dumps(at_step)))
if quirk == "record-data":
    import atexit
    from pathlib import Path

    import torch

    import progan.training.iteration as iteration_module
    import progan.training.trainer as trainer_module

    record: dict = {"images": [], "grads": []}

    def split(batch, device, _original=trainer_module.split_batch):
        record["images"].append((batch[0] if isinstance(batch, (tuple, list)) else batch).clone())
        return _original(batch, device)

    def reduce(module, _original=iteration_module.all_reduce_gradients, **options):
        flat = lambda: torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])  # noqa: E731
        before = flat().clone()
        _original(module, **options)
        record["grads"].append((type(module).__name__, before, flat().clone()))

    trainer_module.split_batch, iteration_module.all_reduce_gradients = split, reduce
    out = Path(sys.argv[sys.argv.index("--out") + 1])
    atexit.register(lambda: torch.save(record, out / f"data-rank{rank}.pt"))
sys.exit(train.main(sys.argv[1:]))
