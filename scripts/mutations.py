"""The mutants that scripts/mutate.py applies: deliberate bugs in the modules where a silent bug costs most.

Each entry: id, file, a list of (old, new) replacements (each ``old`` must occur exactly once), and
the test files that should catch it. ``ESCAPES`` are the bugs issue 14 found slipping through the
suite; ``EQUIVALENT`` names mutants that cannot change behaviour, with the reason (docs/testing.md).
"""
from __future__ import annotations

from mutant_base import (  # noqa: F401 (mutate.py imports Mutant from here)
    Mutant, m, ADA, ADA_T, APP_T, AUG, AUGM, BROWSER, DIST, E, EMA_T, FLOOR_T, GEN_T, I, IMAGE_T, INC_T,
    IT, ITER_T, L, LAZY, LIM, LOSS_T, M, MBD, METRIC_T, MIX, MOD, ONNX, ONNX_T, PR, RANK_T, S,
    SAMP, SG, SLOW_DIST, STEP_T, STREAM_T, STYLE_T, T, TR, TRICKS_T, UI,
)

MUTANTS: list[Mutant] = [
    # losses
    m("loss-gp-abs", L, "- target).square().mean()", "- target).abs().mean()", LOSS_T),
    m("loss-gp-sum", L, "- target).square().mean()", "- target).square().sum()", LOSS_T),
    m("loss-gp-on-reals", L, "mixed = torch.lerp(real.detach(), fake.detach(), eps)", "mixed = real.detach().clone()", LOSS_T),
    m("loss-r1-abs", L, "return grad.square().sum(dim=1).mean(), scores", "return grad.abs().sum(dim=1).mean(), scores", LOSS_T),
    m("loss-unscaled-mean", L, "scale = grad_scale / scores.shape[0]", "scale = grad_scale", LOSS_T),
    m("loss-no-double-backward", L, "create_graph=True", "create_graph=False", LOSS_T),
    m("loss-drift-on-fakes", L, "drift = real_scores.square().mean()", "drift = fake_scores.square().mean()", LOSS_T),
    Mutant("loss-wasserstein-sign", L, (("        return fake_scores.mean()\n", "        return -fake_scores.mean()\n"),
                                        ("return -real_scores.mean()", "return real_scores.mean()")), LOSS_T),
    m("loss-gp-lambda-dropped", L, "loss = loss + gp_lambda * gp", "loss = loss + gp", LOSS_T),
    m("loss-wgan-g-sign", L, "return -fake_scores.float().mean()", "return fake_scores.float().mean()", LOSS_T),
    m("loss-logistic-g-sign", L, "return F.softplus(-fake_scores.float()).mean()",
      "return F.softplus(fake_scores.float()).mean()", LOSS_T),
    Mutant("loss-logistic-d-swapped", L, (("return F.softplus(fake_scores).mean()", "return F.softplus(-fake_scores).mean()"),
                                          ("loss = F.softplus(-real_scores).mean()", "loss = F.softplus(real_scores).mean()")),
           LOSS_T),
    m("loss-r1-gamma-not-halved", L, "loss = loss + r1_gamma / 2 * r1", "loss = loss + r1_gamma * r1", LOSS_T),
    m("loss-lazy-gp-unweighted", L, "return gp_lambda * gp, {", "return gp, {", LOSS_T),
    m("loss-lazy-r1-not-halved", L, "return r1_gamma / 2 * r1, {", "return r1_gamma * r1, {", LOSS_T),
    m("loss-real-sign-of-fakes", L, '"real_sign": real_scores.detach().sign().mean()',
      '"real_sign": fake_scores.detach().sign().mean()', LOSS_T),
    # penalties at the wrong points (issue 20: a linear critic let these pass)
    m("loss-lazy-r1-on-fakes", L, "r1, _ = r1_penalty(discriminator, real, grad_scale=grad_scale)",
      "r1, _ = r1_penalty(discriminator, fake, grad_scale=grad_scale)", LOSS_T),
    m("loss-r1-on-fakes", L, "r1, real_scores = r1_penalty(discriminator, real, grad_scale=grad_scale)",
      "r1, _ = r1_penalty(discriminator, fake, grad_scale=grad_scale)\n        real_scores = discriminator(real.detach())",
      LOSS_T),
    m("loss-dragan-on-fakes", L, "dragan = dragan_penalty(discriminator, real, c=dragan_c, grad_scale=grad_scale)\n        loss,",
      "dragan = dragan_penalty(discriminator, fake, c=dragan_c, grad_scale=grad_scale)\n        loss,", LOSS_T),
    m("loss-lazy-dragan-on-fakes", L,
      "dragan = dragan_penalty(discriminator, real, c=dragan_c, grad_scale=grad_scale)\n        return",
      "dragan = dragan_penalty(discriminator, fake, c=dragan_c, grad_scale=grad_scale)\n        return", LOSS_T),
    m("loss-gp-on-fakes", L, "mixed = torch.lerp(real.detach(), fake.detach(), eps)", "mixed = fake.detach().clone()", LOSS_T),
    m("step-lazy-gp-on-reals", T, 'if split_loss(ctx.loss)[1] == "wgan_gp":  # interpolates', "if False:  # interpolates",
      STEP_T),
    # EMA
    m("ema-blend-reversed", E, "zip(targets, model.parameters())], 1.0 - beta)", "zip(targets, model.parameters())], beta)",
      EMA_T),
    m("ema-rampup-max", E, "half_life = min(half_life, images_seen * rampup)",
      "half_life = max(half_life, images_seen * rampup)", EMA_T),
    m("ema-beta-inverted", E, "return 0.5 ** (batch_images / half_life)", "return 0.5 ** (half_life / batch_images)", EMA_T),
    m("ema-buffers-averaged", E, "torch._foreach_copy_(buffers, list(model.buffers()))",
      "torch._foreach_lerp_(buffers, list(model.buffers()), 1.0 - beta)", EMA_T),
    m("ema-first-step-frozen", E, "    if half_life <= 0:\n        return 0.0", "    if half_life <= 0:\n        return 1.0", EMA_T),
    # data stream
    m("stream-ignores-rank", S, "position = self.consumed * self.world_size + self.rank",
      "position = self.consumed * self.world_size", STREAM_T),
    m("stream-stride-one", S, "position += self.world_size", "position += 1", STREAM_T),
    m("stream-same-permutation-every-epoch", S, "manual_seed(self.seed * 100003 + epoch)", "manual_seed(self.seed)", STREAM_T),
    m("stream-resume-ignores-world", S, "position = self.consumed * self.world_size + self.rank",
      "position = self.consumed + self.rank", STREAM_T),
    m("stream-to-float-0-1", S, ".float().div_(127.5).sub_(1.0)", ".float().div_(255.0)", STREAM_T),
    m("stream-rescale-dropped", S, "return consumed * saved_world_size // world_size", "return consumed", STREAM_T),
    # train step
    m("step-fade-reversed", T, "return torch.lerp(upsample2x(downsample2x(reals)), reals, alpha)",
      "return torch.lerp(reals, upsample2x(downsample2x(reals)), alpha)", STEP_T),
    m("step-d-ignores-fade", T, "_critic(ctx, label, penalty=penalized), fade_reals(real, ctx.alpha), fake,",
      "_critic(ctx, label, penalty=penalized), real, fake,", STEP_T),
    m("step-w-avg-not-tracked", T, "fake = _generate(ctx, batch_size, training_w_avg=True, labels=fake_labels)",
      "fake = _generate(ctx, batch_size, training_w_avg=False, labels=fake_labels)", STEP_T),
    m("step-w-avg-tracked-in-d", T, "fake = _generate(ctx, real.shape[0], training_w_avg=False, labels=label).float()\n        with ctx.autocast():\n            fake_scores",
      "fake = _generate(ctx, real.shape[0], training_w_avg=True, labels=label).float()\n        with ctx.autocast():\n            fake_scores", STEP_T),
    Mutant("step-d-accum-not-averaged", T, (("ctx.backward(fake_loss / len(reals))", "ctx.backward(fake_loss)"),
                                            ("ctx.backward(real_loss / len(reals))", "ctx.backward(real_loss)")), STEP_T),
    m("step-lazy-not-scaled", T, "ctx.backward(loss * every / len(reals))", "ctx.backward(loss / len(reals))", STEP_T),
    m("step-g-accum-not-averaged", T, "ctx.backward(loss / micro_batches)", "ctx.backward(loss)", STEP_T),
    m("step-lazy-penalty-kept", T, "penalty=reg_every == 1, feature_matching", "penalty=True, feature_matching",
      ("tests/test_closed_forms.py",)),
    m("step-mixing-for-progan", T, 'config.mixing_prob if family == "stylegan_lite" else 0.0', "config.mixing_prob",
      ("tests/test_closed_forms.py",)),
    m("step-buffers-not-averaged", "progan/training/distributed.py",
      "return [b for name, b in module.named_buffers() if name in saved and b.is_floating_point()]", "return []",
      SLOW_DIST),
    # Inception preprocessing
    m("inception-x-over-255", I, "x = (x - 128.0) / 128.0", "x = x / 255.0", INC_T),
    m("inception-no-tf-offset", I, "theta[0, 2] += theta[0, 0] / width - theta[0, 0] / size", "theta[0, 2] += 0.0", INC_T),
    m("inception-nearest", I, 'mode="bilinear", padding_mode="border"', 'mode="nearest", padding_mode="border"', INC_T),
    m("inception-zero-padding", I, 'padding_mode="border"', 'padding_mode="zeros"', INC_T),
    m("inception-grey-not-repeated", I, "x = x.repeat(1, 3, 1, 1)", "x = x.expand(-1, 1, -1, -1)", INC_T),
    # metrics
    m("metric-biased-cov", M, "np.cov(x, rowvar=False)", "np.cov(x, rowvar=False, bias=True)", METRIC_T),
    m("metric-fid-trace-halved", M, "np.trace(sigma2) - 2.0 * trace_sqrt", "np.trace(sigma2) - trace_sqrt", METRIC_T),
    m("metric-fid-no-sqrt", M, "return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())",
      "return float(np.clip(eigenvalues, 0, None).sum())", METRIC_T),
    m("metric-kid-biased", M, "within = (k_within.sum() - np.trace(k_within)) / (m * (m - 1))",
      "within = k_within.sum() / (m * m)", METRIC_T),
    m("metric-kid-quadratic", M, "k_cross = (x @ y.T / d + 1) ** 3", "k_cross = (x @ y.T / d + 1) ** 2", METRIC_T),
    m("metric-pr-self-neighbour", M, "dist.kthvalue(k + 1, dim=1)", "dist.kthvalue(k, dim=1)", METRIC_T),
    m("metric-pr-strict", M, "(dist <= radii.unsqueeze(0))", "(dist < radii.unsqueeze(0))", METRIC_T),
    m("metric-pr-swapped", M, "    return precision, recall", "    return recall, precision", METRIC_T),
    # app limits
    m("limits-images-not-per-resolution", LIM, "return max(1, min(self.max_images, self.max_pixels // (resolution * resolution)))",
      "return max(1, self.max_images)", APP_T),
    m("limits-frames-not-per-resolution", LIM, "return max(2, min(self.max_frames, self.max_video_pixels // (resolution * resolution)))",
      "return max(2, self.max_frames)", APP_T),
    m("limits-finite-check-dropped", LIM, "if not math.isfinite(number) or not low <= number <= high:",
      "if not low <= number <= high:", APP_T),
    m("limits-whole-number-dropped", LIM, "    if number != int(number):", "    if False:", APP_T),
    m("limits-cutoff-off-by-one", LIM, "layers = 2 * config.num_stages  #", "layers = 2 * config.num_stages + 1  #", APP_T),
    m("ui-mix-cells-unchecked", UI, "if cells > limits.max_pixels // generator.config.resolution ** 2:", "if False:", APP_T),
    m("ui-frames-unchecked", UI, 'frames = check_int("frames", frames, 2, limits.frames_allowed(generator.config.resolution))',
      "frames = int(frames)", APP_T),
    m("store-max-resolution-unchecked", MOD, "if resolution > self.limits.max_resolution:", "if False:", APP_T),
    m("store-remote-not-evicted", MOD, "for old in remote[:-self.max_remote]:", "for old in []:", APP_T),
    m("checkpoint-not-pruned", "progan/training/checkpoint.py", "for old in list_checkpoints(root)[:-keep]:",
      "for old in []:", STREAM_T),
    # truncation and mixing
    m("app-ignores-psi", SAMP, "return generator.truncate(ws, psi=psi, cutoff=cutoff)", "return ws", STYLE_T),
    m("truncate-reversed", SG, "truncated = torch.lerp(self.w_avg.to(ws.dtype), ws, psi)",
      "truncated = torch.lerp(ws, self.w_avg.to(ws.dtype), psi)", STYLE_T),
    m("truncate-cutoff-inclusive", SG, "return torch.where(layer < cutoff, truncated, ws)",
      "return torch.where(layer <= cutoff, truncated, ws)", STYLE_T),
    m("mix-swapped", SG, "return torch.where(layer < crossover, ws, ws_other)",
      "return torch.where(layer < crossover, ws_other, ws)", STYLE_T),
    m("w-avg-beta-reversed", SG, "mean(dim=0).to(self.w_avg.dtype), 1.0 - self.config.w_avg_beta)",
      "mean(dim=0).to(self.w_avg.dtype), self.config.w_avg_beta)", STYLE_T),
    m("app-mix-rows-cols-swapped", MIX, "mixed = mix_styles(ws_cols, ws_rows, layers)", "mixed = mix_styles(ws_rows, ws_cols, layers)", STYLE_T),
    # a projected image ("Your image", app.generate --latent)
    m("ui-projection-not-stored", "app/projection/ui.py",
      "yield update.picture, update.latent, project_status(update), update.projection",
      "yield update.picture, update.latent, project_status(update), previous",
      ("tests/test_app_project.py::test_project_event_streams_numbers_and_stores_the_projection", *IMAGE_T)),
    m("image-keys-take-seed-noise", "app/keys.py", "per_key.append(list(key.noise))",
      "per_key.append(seed_noise(generator, [0]))", IMAGE_T),
    m("projection-not-streamed", "app/projection/ui.py", "if state.step % every == 0 and state.step < state.steps:",
      "if False:", IMAGE_T),
    m("upload-pixel-cap-ignored", "app/projection/ui.py", ", max_pixels=limits.max_upload_pixels", "",
      (BROWSER + "test_your_image_bad_uploads_give_one_line_errors",)),
    m("cli-latent-drawn-as-seed-0", "app/generate.py", "else reconstruction_pixels(k.render(generator))",
      "else generate_images(generator, [0])[0]", GEN_T),
    m("cli-latent-unchecked", "app/generate.py", "        check_compatible(projection, generator)\n", "        pass\n", GEN_T),
    m("image-keys-truncated", "app/keys.py", "rows.append(key.ws(generator))",
      "rows.append(generator.truncate(key.ws(generator), psi=0.5, cutoff=None))", GEN_T),
]

# The bugs issue 14 planted that passed the suite, reintroduced one at a time.
ESCAPES: list[Mutant] = [
    m("escape-rank-ignored", S, "position = self.consumed * self.world_size + self.rank",
      "position = self.consumed * self.world_size", ("tests/test_data_stream.py",)),
    m("escape-ema-beta", E, "zip(targets, model.parameters())], 1.0 - beta)", "zip(targets, model.parameters())], beta)",
      ("tests/test_closed_forms.py",)),
    m("escape-gp-abs", L, "- target).square().mean()", "- target).abs().mean()", ("tests/test_closed_forms.py",)),
    m("escape-inception-x-over-255", I, "x = (x - 128.0) / 128.0", "x = x / 255.0", ("tests/test_inception_preprocessing.py",)),
    m("escape-app-ignores-psi", SAMP, "return generator.truncate(ws, psi=psi, cutoff=cutoff)", "return ws",
      ("tests/test_app_checks.py",)),
    Mutant("escape-ui-checks-removed", UI, (
        ("psi, cutoff = check_truncation(generator.config, psi, cutoff, limits)\n        noise = check_choice(\"noise\", noise, NOISE_MODES)\n        seed_list = parse_seeds(seeds, max_count=limits.images_allowed(generator.config.resolution))",
         "cutoff = None if cutoff in (None, '') else int(cutoff)\n        seed_list = parse_seeds(seeds, max_count=10**6)"),
        ("psi, _ = check_truncation(generator.config, psi, None, limits)\n        frames = check_int(\"frames\", frames, 2, limits.frames_allowed(generator.config.resolution))\n        fps = check_int(\"fps\", fps, limits.min_fps, limits.max_fps)\n        method = check_choice(\"method\", method, METHODS)\n        space = check_choice(\"space\", space, SPACES)\n        noise = check_choice(\"noise\", noise, NOISE_MODES)\n        seed_list = parse_keys(seeds, max_count=limits.max_keyframes,",
         "seed_list = parse_keys(seeds, max_count=10**6,"),
        ("psi, _ = check_truncation(generator.config, psi, None, limits)\n        styles = check_choice(\"styles\", styles, tuple(STYLE_RANGES))\n        noise = check_choice(\"noise\", noise, NOISE_MODES)\n        rows = parse_keys(row_seeds, max_count=limits.max_mix_seeds,",
         "rows = parse_keys(row_seeds, max_count=10**6,"),
        ("cols = parse_keys(col_seeds, max_count=limits.max_mix_seeds,", "cols = parse_keys(col_seeds, max_count=10**6,"),
        ("        if cells > limits.max_pixels // generator.config.resolution ** 2:", "        if False:"),
    ), ("tests/test_app_checks.py", "tests/test_app_server.py::test_server_side_caps_refuse_what_gradio_lets_through")),
    Mutant("escape-no-byte-cap", "data_prep/sources.py", (
        ("                if member.size > max_bytes:", "                if False:"),
        ("data=_read_capped(handle, max_bytes) if handle", "data=handle.read() if handle"),
        ("        if len(item.data) > max_bytes:", "        if False:"),
        ("                if size > max_bytes:", "                if False:"),
        ("                return _read_capped(handle, max_bytes)\n", "                return handle.read()\n"),
        ("        if declared > max_bytes:", "        if False:"),
        ("            return _read_capped(handle, max_bytes)\n    except", "            return handle.read()\n    except"),
    ), ("tests/test_data_prep_limits.py",)),
]

# The same UI escape, caught through the HTTP API alone (requests Gradio's own validation lets through).
_ui = next(mt for mt in ESCAPES if mt.id == "escape-ui-checks-removed")
ESCAPES.append(_ui._replace(id="escape-ui-checks-removed-via-api",
                            tests=("tests/test_app_server.py::test_server_side_caps_refuse_what_gradio_lets_through",)))

# Mutants that cannot change observable behaviour, with why (see docs/testing.md).
EQUIVALENT: dict[str, str] = {
    "limits-finite-check-dropped": "NaN fails `low <= x <= high` by itself and +-inf lie outside every finite "
                                   "bound the app uses, so `math.isfinite` only documents intent",
}

# Salimans et al. 2016 / Metz et al. 2017 options (training.tricks): the bugs planted when they were written.
MUTANTS += [
    m("tricks-fm-unfaded-reals", T, "fake, fade_reals(reals[i], ctx.alpha),", "fake, reals[i],", TRICKS_T),
    m("tricks-fm-mode-swapped", TR, 'loss = weight * fm if mode == "replace" else', 'loss = weight * fm if mode == "add" else',
      TRICKS_T),
    m("tricks-fm-sum-not-mean", TR, "real_features.float().mean(dim=0) - fake_features.float().mean(dim=0)",
      "real_features.float().sum(dim=0) - fake_features.float().sum(dim=0)", TRICKS_T),
    Mutant("tricks-ha-mean-excludes-current", TR, ((
        "            self.sums[name] += p.detach()\n            mean = (self.sums[name] / self.count).to(p.dtype)",
        "            mean = (self.sums[name] / max(self.count - 1, 1)).to(p.dtype)\n"
        "            self.sums[name] += p.detach()"),), TRICKS_T),
    m("tricks-mbd-excludes-self", MBD, "return torch.exp(-l1).sum(dim=1)", "return torch.exp(-l1).sum(dim=1) - 1", TRICKS_T),
    m("tricks-mbd-l2", MBD, ".abs().sum(dim=3)", ".square().sum(dim=3)", TRICKS_T),
    m("tricks-unrolled-shares-adam-state", TR, "opt.load_state_dict(copy.deepcopy(inner.state_dict()))",
      "opt.load_state_dict(inner.state_dict())", TRICKS_T),
    m("tricks-unrolled-fresh-adam", TR, "opt.load_state_dict(copy.deepcopy(inner.state_dict()))", "pass", TRICKS_T),
    m("tricks-unrolled-ignored", TR, "return dataclasses.replace(ctx, discriminator=d_copy)  #", "return ctx  #", TRICKS_T),
    m("tricks-ha-not-resumed", "progan/training/resume.py",
      '                history.load_state_dict(state["historical_average"][name])', "                pass", TRICKS_T),
    m("resume-keeps-saved-optimizer-options", "progan/training/resume.py", "        group.update(options)\n",
      "", (LAZY + "test_a_resume_with_other_optimizer_options_uses_them_and_keeps_adams_moments",)),
]

# Issue 20, second pass: ADA's masks and controller, the cutout's shape, what each rank reads and how the
# gradients are averaged (2 real processes), every ONNX export option, the projection's quality floor.
MUTANTS += [
    Mutant("ada-one-mask-for-all", ADA, (("    out: dict[str, torch.Tensor] = {}\n",
                                          "    out: dict[str, torch.Tensor] = {}\n    shared = torch.rand(n, device=device)\n"),
                                         ("mask = torch.rand(n, device=device) < prob", "mask = shared < prob")),
           ("tests/test_ada.py::test_every_transform_has_its_own_mask",)),
    m("cutout-scattered-pixels", AUGM, "(cols < left + cw)  # [N, H, W]\n",  # the same count, anywhere
      "(cols < left + cw)  # [N, H, W]\n"
      "    hole = hole.flatten(1).gather(1, torch.rand(n, h * w, device=x.device).argsort(1)).view(n, h, w)\n",
      (AUG + "test_cutout_zeroes_one_square_of_half_the_side_clipped_only_by_the_border",)),
    m("ada-p-always-rises", AUGM, "direction = (r_t > self.target) - (r_t < self.target)", "direction = 1", ADA_T),
    m("ada-step-ignores-images", AUGM, "step = count / (self.speed_kimg * 1000)",
      "step = self.interval / (self.speed_kimg * 1000)", ADA_T),
    m("ada-trainer-sign-ignored", "progan/training/trainer.py", "self.ada.adjust(float(totals[0]), int(totals[1]))",
      "self.ada.adjust(float(totals[1]), int(totals[1]))", ADA_T),
    m("ada-trainer-every-step", "progan/training/trainer.py", "if (self.step + 1) % self.ada.interval:", "if False:", ADA_T),
    m("dist-gradients-summed", DIST, "    flat.div_(world)\n", "", RANK_T),
    m("dist-loader-rank-0", "progan/training/trainer.py", "rank=acc.process_index, world_size=acc.num_processes, consumed=self.consumed",
      "rank=0, world_size=acc.num_processes, consumed=self.consumed", RANK_T),
    m("dist-loader-one-world", "progan/training/trainer.py",
      "rank=acc.process_index, world_size=acc.num_processes, consumed=self.consumed",
      "rank=acc.process_index, world_size=1, consumed=self.consumed", RANK_T),
    m("dist-stream-ignores-rank", S, "position = self.consumed * self.world_size + self.rank",
      "position = self.consumed * self.world_size", RANK_T),
    m("onnx-cli-ignores-cutoff", ONNX, "cutoff=args.cutoff, opset=args.opset", "cutoff=None, opset=args.opset", ONNX_T),
    m("onnx-graph-ignores-cutoff", ONNX, "g.truncate(g.broadcast(g.mapping(z)), psi=psi, cutoff=self.cutoff)",
      "g.truncate(g.broadcast(g.mapping(z)), psi=psi, cutoff=None)", ONNX_T),
    m("onnx-graph-ignores-psi", ONNX, "g.truncate(g.broadcast(g.mapping(z)), psi=psi, cutoff=self.cutoff)",
      "g.truncate(g.broadcast(g.mapping(z)), psi=0.7 + 0 * psi, cutoff=self.cutoff)", ONNX_T),
    m("onnx-cli-ignores-noise", ONNX, "noise=args.noise, cutoff=args.cutoff", 'noise="const", cutoff=args.cutoff', ONNX_T),
    m("onnx-noise-none-is-const", ONNX, "self.noise = noise\n", 'self.noise = "const" if noise == "none" else noise\n', ONNX_T),
    m("onnx-cli-ignores-opset", ONNX, "cutoff=args.cutoff, opset=args.opset", "cutoff=args.cutoff, opset=OPSET", ONNX_T),
    Mutant("onnx-opset-unchecked", ONNX, (("    if opset < OPSET:  #", "    if False:  #"),
                                          ("    if written != opset:  #", "    if False:  #")), ONNX_T),
    # the projector of StyleGAN2 appendix D, crippled together (the case) and one part at a time
    Mutant("projection-crippled", PR, (("                n -= n.mean()\n                n *= n.square().mean().rsqrt()\n",
                                         "                pass\n"),
                                        ("total = loss + options.noise_weight * _noise_penalty(noise) if noise else loss",
                                         "total = loss"),
                                        ('            group["lr"] = _learning_rate(t, options)',
                                         '            group["lr"] = options.initial_lr')), FLOOR_T),
    m("projection-no-noise-renormalisation", PR, "                n -= n.mean()\n                n *= n.square().mean().rsqrt()\n",
      "                pass\n", FLOOR_T),
    m("projection-no-noise-regulariser", PR, "total = loss + options.noise_weight * _noise_penalty(noise) if noise else loss",
      "total = loss", FLOOR_T),
    m("projection-constant-lr", PR, '            group["lr"] = _learning_rate(t, options)',
      '            group["lr"] = options.initial_lr',
      ("tests/test_projection.py::test_learning_rate_follows_the_projectors_schedule", *FLOOR_T)),
    # the one training iteration (issue 20: written once for the trainer, the memory estimate and the tests)
    m("iter-lazy-off-by-one", IT, "step % setup.reg_every == 0", "(step + 1) % setup.reg_every == 0", ITER_T),
    m("iter-lazy-skip-flag-lost", IT, "d_skipped = _discriminator_update(ctx, setup) or d_skipped",
      "_discriminator_update(ctx, setup)", ITER_T),
    m("iter-d-grads-kept", IT, "    skipped = _step_was_skipped(setup.opt_d)  # read before anything else steps\n"
      "    setup.opt_d.zero_grad(set_to_none=True)\n", "    skipped = _step_was_skipped(setup.opt_d)\n", ITER_T),
    m("iter-g-ignores-unrolled-d", IT, "g_terms = generator_step(g_ctx,", "g_terms = generator_step(ctx,", ITER_T),
    m("iter-w-avg-not-averaged", IT, "        all_reduce_mean_(setup.averaged_buffers, **setup.reduce_options)", "        pass", SLOW_DIST),
    Mutant("iter-ema-before-g-step", IT, (("        setup.opt_g.step()\n        setup.opt_g.zero_grad(set_to_none=True)\n"
                                            "    with phase(\"EMA\"):\n        update_ema(setup.generator_ema, ctx.generator, beta=ema_beta)\n",
                                            "        update_ema(setup.generator_ema, ctx.generator, beta=ema_beta)\n"
                                            "        setup.opt_g.step()\n        setup.opt_g.zero_grad(set_to_none=True)\n"),), ITER_T),
    m("iter-history-penalty-on-d-only", IT, 'g_terms["g_historical"] = _historical_penalty(setup, "generator", ctx.generator, ctx)',
      'g_terms["g_historical"] = _historical_penalty(setup, "discriminator", ctx.discriminator, ctx)', ITER_T),
]


# The later passes live in their own modules (each under ~400 lines): the pass-through keyword audit and
# the coverage passes, the loose checks, the degenerate fixtures, the red teams, the blind passes and sets' survivors.
from mutations_audit import AUDIT  # noqa: E402
from mutations_blind import BLIND  # noqa: E402
from mutations_blind_h import BLIND_H  # noqa: E402
from mutations_degen import DEGENERATE  # noqa: E402
from mutations_loose import LOOSE  # noqa: E402
from mutations_redteam import REDTEAM  # noqa: E402
from mutations_redteam2 import REDTEAM2  # noqa: E402
from mutations_sweep import SWEEP  # noqa: E402
from mutations_sweep2 import SWEEP2  # noqa: E402
from mutations_s16 import S16  # noqa: E402
from mutations_s17 import S17  # noqa: E402

MUTANTS += BLIND + AUDIT + LOOSE + DEGENERATE + REDTEAM + REDTEAM2 + BLIND_H + SWEEP + SWEEP2 + S16 + S17
