"""Your own image in the latent space: the projector, its distance, the CLI and the app tab.

- ``projector``: the optimisation (Karras et al. 2020, section 5) and ``Projection``, the saved
  result that the interpolation, mixing and edit code use like a seed (``app.keys``);
- ``loss``: the offline distances it minimises (pixel, Laplacian pyramid, + Inception);
- ``target``: a picture decoded as data_prep stores training images (``load_target``), and the
  target | reconstruction picture (``before_after``);
- ``cli``: ``python -m app.project`` (an image file -> ``latent.safetensors`` and pictures);
- ``ui``: the "Your image" tab (upload -> streamed projection -> the visitor's session).

The projector's names are re-exported here (``from app.projection import Projection``); ``ui``
is not, so importing the projector never imports Gradio.
"""
from .projector import (SPACES, Projection, ProjectionOptions, ProjectionStep, check_compatible,
                        image_to_target, project, projection_steps, reconstruction_pixels)

__all__ = ["SPACES", "Projection", "ProjectionOptions", "ProjectionStep", "check_compatible", "image_to_target",
           "project", "projection_steps", "reconstruction_pixels"]
