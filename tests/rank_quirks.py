"""train.py with rank 1's view of the world changed, for the multi-process failure tests.

``GAN_STUDIO_TEST_QUIRK``:
- ``local-out``: rank 1 uses ``--out`` + ``-rank1``, as if --out were on a node-local disk.
- ``stuck-data``: rank 1 hangs while opening its dataset, as if rendering data never finished.
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
sys.exit(train.main(sys.argv[1:]))
