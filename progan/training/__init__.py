"""The training loop both families share (ProGAN appendix A.1, StyleGAN appendix C).

- ``options``: ``TrainConfig``, the frozen dataclass behind every ``train.py`` flag.
- ``schedule``: progressive growing (stage, fade-in alpha, batch size) as a function of images seen.
- ``step``: the D step, the lazy penalty step and the G step (losses and backward), shared by both families.
- ``iteration``: one training iteration (D step -> lazy penalty -> G step -> EMA, the tricks, Adam
  steps and the gradient all-reduce): what the trainer runs and the memory estimate traces.
- ``ema``: the generator's exponential moving average.
- ``health``: stop and non-finite flags agreed on across processes; the fp16 divergence rule.
- ``data_stream``: per-rank, resumable data order.
- ``checkpoint``: atomic, pickle-free checkpoints.
- ``samples``: sample grids from fixed latents.
- ``trainer``: the loop that ties them together under Accelerate.

Imports the model files, ``progan.hub`` and ``progan.metrics``; nothing outside ``training`` imports it
except ``train.py`` and the scripts.
"""
