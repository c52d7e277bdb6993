"""The training loop both families share (ProGAN appendix A.1, StyleGAN appendix C).

- ``options``: ``TrainConfig``, the frozen dataclass behind every ``train.py`` flag.
- ``schedule``: progressive growing (stage, fade-in alpha, batch size) as a function of images seen.
- ``step``: one D step and one G step, explicit gradient all-reduce across processes.
- ``ema``: the generator's exponential moving average.
- ``data_stream``: per-rank, resumable data order.
- ``checkpoint``: atomic, pickle-free checkpoints.
- ``samples``: sample grids from fixed latents.
- ``trainer``: the loop that ties them together under Accelerate.

Imports the model files, ``progan.hub`` and ``progan.metrics``; nothing outside ``training`` imports it
except ``train.py`` and the scripts.
"""
