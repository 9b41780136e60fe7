"""Our stage-2 UNet/ControlNet against the original lllyasviel/ControlNet implementation, at equal work.

    python benchmarks/bench_vs_controlnet.py --reference /path/to/ControlNet [--rounds 7] [--steps 3]
        [--threads 1] [--clock cpu] [--tuned] [--precision fp32 bf16] [--force-bf16]

`--reference` is a local checkout of https://github.com/lllyasviel/ControlNet (`git clone` it beforehand;
this script never downloads anything and exits with a hint when the folder is missing). Its
`cldm/cldm.py`, `ldm/util.py` and `ldm/modules/{attention.py,diffusionmodules/openaimodel.py,
diffusionmodules/util.py}` are imported as they are; only at run time and only here: its Lightning-1.x
modules `ldm.models.diffusion.{ddpm,ddim}` (unused by the networks) are replaced by stubs, xformers is
switched off, and its gradient checkpointing is off (`use_checkpoint=False`, as ours).

Both implementations are built at the same architecture (the demo size by default: latent 4x16x16,
batch 8, 64 channels, channel_mult [1,2,4], one ResBlock per level, attention at 2 and 4 with 32-wide
heads, 16 context tokens of width 64 as the demo's CF encoder gives, a 3x128x128 hint for the ControlNet,
32 GroupNorm groups as the original's) and checked to compute the same function: the original's weights
are copied into ours and the outputs compared. Then, interleaved over `--rounds` rounds (A, B, A, B...),
each times `--steps` calls of:

- training step: forward, MSE loss, backward, AdamW step (plain `torch.optim.AdamW` for both). Without
  ControlNet the whole UNet trains; with it the UNet encoder is locked (the original runs it under
  `no_grad`, ours freezes it) and the ControlNet plus the UNet decoder train (the original's
  `sd_locked=False` parameter set; its default `sd_locked=True` computes the same gradients and only
  leaves the decoder out of the optimiser);
- guided sampling step: classifier-free guidance with the conditional and unconditional halves in one
  batched forward (2 x batch), under `no_grad`. The original encodes the hint inside every ControlNet
  call; ours encodes it once per sampling run (as `ControlLDM.sample` does), outside the timed step.

Printed: the median time per call of each implementation, and ours' speed-up (original time / our
time), per case, for fp32 and bf16 autocast. The bf16 rows also give the speed-up against the original
at fp32 (the recommended setting against the original's default). `--tuned` adds "ours+": our model in
channels_last with the fused AdamW kernel (same arithmetic; the speed settings a CPU user would pick).
bf16 is skipped on CPUs without native bf16 kernels unless `--force-bf16`.
"""
from __future__ import annotations

import argparse
import copy
import importlib
import sys
import types
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cldm.controlnet import ControlNet  # noqa: E402
from eyeoct.devices import cpu_has_native_bf16  # noqa: E402
from ldm.modules.unet import UNetModel  # noqa: E402
from ldm.sd_init import sd_key_to_ours  # noqa: E402
from measure import CLOCK_HELP, interleaved_medians, machine_line  # noqa: E402

REFERENCE_FILES = ("cldm/cldm.py", "ldm/util.py", "ldm/modules/attention.py",
                   "ldm/modules/diffusionmodules/openaimodel.py", "ldm/modules/diffusionmodules/util.py")
REFERENCE_URL = "https://github.com/lllyasviel/ControlNet"
REFERENCE_PACKAGES = ("ldm", "ldm.modules", "ldm.modules.diffusionmodules", "ldm.models", "ldm.models.diffusion", "cldm")


def demo_architecture(args) -> dict:
    return dict(in_channels=4, out_channels=4, model_channels=args.channels, channel_mult=list(args.channel_mult),
                num_res_blocks=args.num_res_blocks, attention_resolutions=[2, 4], num_head_channels=32,
                context_dim=args.context_dim, transformer_depth=1)


def check_reference(path: Path | None) -> list[str]:
    """The reference files missing under ``path`` (all of them when no path is given)."""
    if path is None:
        return list(REFERENCE_FILES)
    return [name for name in REFERENCE_FILES if not (path / name).is_file()]


@contextmanager
def foreign_packages(root: Path):
    """Import the reference's own `ldm`/`cldm` packages (same names as ours) without disturbing ours."""
    ours = {name: mod for name, mod in sys.modules.items() if name.split(".")[0] in ("ldm", "cldm")}
    for name in ours:
        del sys.modules[name]
    # Lightning-1.x modules the networks never use: stubbed so that cldm/cldm.py imports
    ddpm = types.ModuleType("ldm.models.diffusion.ddpm")
    ddpm.LatentDiffusion = type("LatentDiffusion", (nn.Module,), {})
    ddim = types.ModuleType("ldm.models.diffusion.ddim")
    ddim.DDIMSampler = type("DDIMSampler", (), {})
    sys.modules.update({ddpm.__name__: ddpm, ddim.__name__: ddim})
    # the packages point at the reference folders, whether or not they hold an __init__.py
    for package in REFERENCE_PACKAGES:
        module = types.ModuleType(package)
        module.__path__ = [str(root / package.replace(".", "/"))]
        sys.modules[package] = module
    loaded: dict[str, types.ModuleType] = {}
    try:
        yield loaded
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] in ("ldm", "cldm")]:
            loaded[name] = sys.modules.pop(name)
        sys.modules.update(ours)


def load_reference(root: Path) -> types.SimpleNamespace:
    """The original's ControlNet, ControlledUnetModel and UNetModel classes, xformers off."""
    with warnings.catch_warnings(), foreign_packages(root):
        warnings.simplefilter("ignore")
        attention = importlib.import_module("ldm.modules.attention")
        attention.XFORMERS_IS_AVAILABLE = False  # the plain softmax attention, as on a machine without xformers
        openaimodel = importlib.import_module("ldm.modules.diffusionmodules.openaimodel")
        cldm = importlib.import_module("cldm.cldm")
    return types.SimpleNamespace(UNetModel=openaimodel.UNetModel, ControlledUnetModel=cldm.ControlledUnetModel,
                                 ControlNet=cldm.ControlNet)


def build_reference(ref, arch: dict, controlnet: bool, hint_channels: int = 3):
    """The original's UNet (ControlledUnetModel with ControlNet) and ControlNet at ``arch``, checkpointing off."""
    kwargs = dict(image_size=32, in_channels=arch["in_channels"], model_channels=arch["model_channels"],
                  num_res_blocks=arch["num_res_blocks"], attention_resolutions=arch["attention_resolutions"],
                  channel_mult=arch["channel_mult"], num_head_channels=arch["num_head_channels"],
                  use_spatial_transformer=True, transformer_depth=arch["transformer_depth"],
                  context_dim=arch["context_dim"], use_linear_in_transformer=True, legacy=False, use_checkpoint=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not controlnet:
            return ref.UNetModel(out_channels=arch["out_channels"], **kwargs), None
        unet = ref.ControlledUnetModel(out_channels=arch["out_channels"], **kwargs)
        return unet, ref.ControlNet(hint_channels=hint_channels, **kwargs)


def build_ours(arch: dict, controlnet: bool, hint_stages: int):
    unet = UNetModel(**arch, num_groups=32, use_linear_in_transformer=True)
    if not controlnet:
        return unet, None
    net = ControlNet(arch, hint_stages=hint_stages, hint_hidden_channels=(16, 32, 96, 256))
    unet.encoder.requires_grad_(False)  # sd_locked
    return unet, net


@torch.no_grad()
def copy_reference_weights(ref_unet, ref_cnet, unet, cnet) -> None:
    """Load the original's weights into ours by name (SD names for the UNet; ControlNet names mapped)."""
    unet.load_state_dict({sd_key_to_ours(k, unet): v for k, v in ref_unet.state_dict().items()})
    if cnet is None:
        return
    n_body = len(cnet.hint_encoder.body)
    state = {}
    for key, value in ref_cnet.state_dict().items():
        root, _, rest = key.partition(".")
        if root == "input_hint_block":
            index, _, leaf = rest.partition(".")
            name = f"hint_encoder.body.{index}.{leaf}" if int(index) < n_body else f"hint_encoder.out.{leaf}"
        elif root == "zero_convs":
            index, _, leaf = rest.partition(".")
            name = f"zero_convs.{index}.{leaf.removeprefix('0.')}"
        elif root == "middle_block_out":
            name = f"zero_convs.{len(cnet.zero_convs) - 1}.{rest.removeprefix('0.')}"
        else:
            name = sd_key_to_ours(key, cnet.encoder)
            name = f"encoder.{name}"
        state[name] = value
    cnet.load_state_dict(state)


def randomize_(*modules: nn.Module, seed: int = 0) -> None:
    """Small random values everywhere (zero-initialised layers would hide differences)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in modules:
            if module is not None:
                for p in module.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.05)


class Case:
    """Inputs and the two step functions of one implementation.

    ``channels_last`` puts our model and its image inputs in that memory format; ``fused`` selects the
    fused AdamW kernel (same update, one pass over the parameters)."""

    def __init__(self, unet, cnet, original: bool, inputs: dict, trainable: list[nn.Parameter],
                 channels_last: bool = False, fused: bool = False):
        self.unet, self.cnet, self.original = unet, cnet, original
        if channels_last:
            for module in (unet, cnet):
                if module is not None:
                    module.to(memory_format=torch.channels_last)
            inputs = {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v
                      for k, v in inputs.items()}
        self.inputs = inputs
        self.optimizer = torch.optim.AdamW(trainable, lr=1e-4, **({"fused": True} if fused else {}))
        self.hint_features = None
        if cnet is not None and not original:
            with torch.no_grad():
                self.hint_features = cnet.encode_hint(inputs["hint"], inputs["x"].shape[-2:])

    def forward(self, x, t, context, hint, hint_features=None):
        if self.cnet is None:
            return self.unet(x, t, context) if not self.original else self.unet(x, timesteps=t, context=context)
        if self.original:
            control = self.cnet(x=x, hint=hint, timesteps=t, context=context)
            control = [c * 1.0 for c in control]  # ControlLDM.apply_model's control_scales
            return self.unet(x=x, timesteps=t, context=context, control=control)
        if hint_features is None:
            hint_features = self.cnet.encode_hint(hint, x.shape[-2:])
        return self.unet(x, t, context, control=self.cnet(x, t, context, hint_features))

    def train_step(self, bf16: bool) -> None:
        inp = self.inputs
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = self.forward(inp["x"], inp["t"], inp["context"], inp["hint"])
        loss = F.mse_loss(out.float(), inp["target"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    @torch.no_grad()
    def sample_step(self, bf16: bool, guidance: float = 3.0) -> torch.Tensor:
        inp = self.inputs
        x2, t2 = torch.cat([inp["x"], inp["x"]]), torch.cat([inp["t"], inp["t"]])
        context2 = torch.cat([inp["context"], inp["null_context"]])
        hint2 = torch.cat([inp["hint"], inp["hint"]])
        features2 = None
        if self.hint_features is not None:
            features2 = torch.cat([self.hint_features, torch.zeros_like(self.hint_features)])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = self.forward(x2, t2, context2, hint2, features2)
        out_c, out_u = out.float().chunk(2)
        return out_u + guidance * (out_c - out_u)


def make_inputs(arch: dict, args, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    b, size = args.batch_size, args.latent_size
    return dict(x=torch.randn(b, arch["in_channels"], size, size, generator=gen),
                t=torch.randint(0, 1000, (b,), generator=gen),
                context=torch.randn(b, args.tokens, arch["context_dim"], generator=gen),
                null_context=torch.randn(b, args.tokens, arch["context_dim"], generator=gen),
                hint=torch.rand(b, 3, args.hint_size, args.hint_size, generator=gen) * 2 - 1,
                target=torch.randn(b, arch["out_channels"], size, size, generator=gen))


def trainable_parameters(unet, cnet) -> list[nn.Parameter]:
    """The whole UNet; with a ControlNet, the ControlNet and the UNet decoder (the encoder is locked)."""
    if cnet is None:
        return list(unet.parameters())
    return list(cnet.parameters()) + list(unet.output_blocks.parameters()) + list(unet.out.parameters())


def build_cases(ref, args, controlnet: bool) -> tuple[dict[str, Case], float]:
    """The original, ours and (with ``--tuned``) ours in channels_last with fused AdamW, all with the
    original's weights; and the largest output difference between the original and ours."""
    arch = demo_architecture(args)
    torch.manual_seed(0)
    ref_unet, ref_cnet = build_reference(ref, arch, controlnet)
    unet, cnet = build_ours(arch, controlnet, hint_stages=3 if controlnet else 0)
    randomize_(ref_unet, ref_cnet)
    copy_reference_weights(ref_unet, ref_cnet, unet, cnet)
    inputs = make_inputs(arch, args)
    cases = {"original": Case(ref_unet, ref_cnet, True, inputs, trainable_parameters(ref_unet, ref_cnet))}
    variants = {"ours": {}}
    if args.tuned:
        variants["ours+"] = {"channels_last": True, "fused": True}
    for name, options in variants.items():
        u, c = copy.deepcopy(unet), copy.deepcopy(cnet)
        cases[name] = Case(u, c, False, inputs, [p for p in trainable_parameters(u, c) if p.requires_grad], **options)
    with torch.no_grad():
        a = cases["original"].forward(inputs["x"], inputs["t"], inputs["context"], inputs["hint"])
        b = cases["ours"].forward(inputs["x"], inputs["t"], inputs["context"], inputs["hint"])
    return cases, (a - b).abs().max().item() / a.abs().max().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=None,
                        help=f"local checkout of {REFERENCE_URL} (never downloaded)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="calls per round and implementation")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"], help=CLOCK_HELP)
    parser.add_argument("--tuned", action="store_true",
                        help="also time ours in channels_last with fused AdamW (the speed settings for CPUs)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--latent-size", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--channel-mult", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--num-res-blocks", type=int, default=1)
    parser.add_argument("--context-dim", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--hint-size", type=int, default=128)
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--force-bf16", action="store_true", help="measure bf16 even where the CPU emulates it")
    parser.add_argument("--cases", nargs="+", default=["unet", "controlnet"], choices=["unet", "controlnet"])
    parser.add_argument("--kinds", nargs="+", default=["train", "sample"], choices=["train", "sample"])
    args = parser.parse_args()
    missing = check_reference(args.reference)
    if missing:
        where = args.reference or "(no --reference given)"
        print(f"The original ControlNet implementation is needed to compare against; not found at {where}: "
              f"missing {', '.join(missing)}.\nClone it beforehand (`git clone {REFERENCE_URL}`) and pass "
              f"--reference /path/to/ControlNet. Nothing was measured.")
        return
    torch.set_num_threads(args.threads)
    precisions = list(args.precision)
    if "bf16" in precisions and not cpu_has_native_bf16() and not args.force_bf16:
        precisions.remove("bf16")
        print("bf16 skipped: this CPU has no native bf16 kernels (oneDNN emulates bf16 there, 10-50x slower than "
              "fp32); --force-bf16 measures it anyway")
    ref = load_reference(args.reference)
    print(f"{machine_line()}; reference {args.reference.resolve()}")
    print(f"batch {args.batch_size}, latent {args.latent_size}x{args.latent_size}, channels {args.channels}, "
          f"mult {args.channel_mult}, {args.num_res_blocks} ResBlock(s) per level, {args.rounds} rounds x "
          f"{args.steps} calls, {args.clock} clock, medians; speed-up = original time / our time")
    names = ["original", "ours"] + (["ours+"] if args.tuned else [])
    header = f"{'case':10} {'step':6} {'prec':4} " + " ".join(f"{n + ' ms':>11}" for n in names)
    header += " " + " ".join(f"{'x ' + n:>8}" for n in names[1:]) + f" {'x vs orig fp32':>14}"
    print(header)
    for case in args.cases:
        cases, rel_diff = build_cases(ref, args, controlnet=case == "controlnet")
        print(f"# {case}: same function (original weights in ours): max |difference| / max |output| = "
              f"{rel_diff:.1e}", flush=True)
        for kind in args.kinds:
            fp32_original = None
            for precision in precisions:
                bf16 = precision == "bf16"
                fns = {n: (lambda c=c: c.train_step(bf16)) if kind == "train" else (lambda c=c: c.sample_step(bf16))
                       for n, c in cases.items()}
                medians = interleaved_medians(fns, args.rounds, args.steps, args.clock)
                fp32_original = medians["original"] if precision == "fp32" else fp32_original
                line = f"{case:10} {kind:6} {precision:4} " + " ".join(f"{medians[n] * 1e3:11.1f}" for n in names)
                line += " " + " ".join(f"{medians['original'] / medians[n]:8.2f}" for n in names[1:])
                if bf16 and fp32_original:
                    line += f" {fp32_original / medians[names[-1]]:14.2f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
