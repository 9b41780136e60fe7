"""Peak GPU memory of one stage-2 training step under DDP, estimated on the meta device (no GPU needed).

    python benchmarks/memory_stage2.py [--batch-size 8] [key=value ...]   (overrides of configs/dm/aptos_cldm.yaml)

The model is built and run on the meta device (shapes only). Per GPU it counts:
  - fp32 weights (trainable, and the frozen autoencoder), fp32 gradients, DDP's gradient buckets (a second
    copy of the gradients unless gradient_as_bucket_view), AdamW's two moments and the EMA;
  - the bf16 copies autocast caches of the trainable weights during the forward (2 bytes each);
  - the activations autograd saves for backward (distinct storages seen by `saved_tensors_hooks` in a meta
    forward of the training loss under bf16 autocast, weights and their casts excluded);
  - the largest set of activations recomputed at once inside one checkpointed block (measured in a second
    meta forward without checkpointing).
Their sum estimates the peak; allocator fragmentation and CUDA/NCCL workspaces (typically 1-3 GiB) come on top.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aptos_models import stage2_config  # noqa: E402

from eyeoct.config import instantiate_from_config  # noqa: E402
from ldm.modules.attention import OCTTransformerBlock  # noqa: E402
from ldm.modules.unet_blocks import ResBlock  # noqa: E402

GIB = 2**30
CHECKPOINTED = (ResBlock, OCTTransformerBlock)


def build_on_meta(overrides: list[str]) -> tuple[nn.Module, dict]:
    """The APTOS stage-2 model on the meta device, with a random first stage of the APTOS architecture."""
    cfg = stage2_config("aptos", overrides)
    with torch.device("meta"):
        model = instantiate_from_config(cfg.model)
    return model, cfg


def saved_activation_bytes(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(bytes of distinct storages saved for backward, largest bytes saved inside one checkpointable block)."""
    weights = {p.untyped_storage()._cdata for p in model.parameters()}
    weight_shapes = {tuple(p.shape) for p in model.parameters()}
    seen: set[int] = set()
    stack: list[list[int]] = [[0]]
    per_block: list[int] = []

    def pack(t: torch.Tensor):
        key = t.untyped_storage()._cdata
        is_weight_cast = t.dtype == torch.bfloat16 and tuple(t.shape) in weight_shapes
        if key not in seen and key not in weights and not is_weight_cast:
            seen.add(key)
            stack[-1][0] += t.untyped_storage().nbytes()
        return t

    def enter(module, args):
        stack.append([0])

    def leave(module, args, output):
        per_block.append(stack.pop()[0])
        stack[-1][0] += per_block[-1]

    hooks = [m.register_forward_pre_hook(enter) for m in model.modules() if isinstance(m, CHECKPOINTED)]
    hooks += [m.register_forward_hook(leave) for m in model.modules() if isinstance(m, CHECKPOINTED)]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", torch.bfloat16):
        model.diffusion_loss(batch, torch.Generator())[0].mean()  # random draws on the CPU, moved to meta
    for hook in hooks:
        hook.remove()
    return stack[0][0], max(per_block, default=0)


def set_checkpointing(model: nn.Module, enabled: bool) -> None:
    for module in model.modules():
        if isinstance(module, CHECKPOINTED):
            module.use_checkpoint = enabled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    model, cfg = build_on_meta(args.overrides)
    model.train()
    trainable = sum(p.numel() for p in model.trainable_named_parameters().values())
    frozen = sum(p.numel() for p in model.parameters()) - trainable
    h, w = model.image_size
    cf = int(cfg.model.params.cf_size)
    with torch.device("meta"):
        batch = {"oct": torch.zeros(args.batch_size, 6, h, w), "cf": torch.zeros(args.batch_size, 3, cf, cf)}
    checkpointed = bool(cfg.model.params.unet_config.get("use_checkpoint", False))
    saved, _ = saved_activation_bytes(model, batch)
    set_checkpointing(model, False)
    saved_without, largest_block = saved_activation_bytes(model, batch)
    lines = {
        "weights fp32 (trainable + frozen first stage)": 4 * (trainable + frozen),
        "gradients fp32": 4 * trainable,
        "DDP gradient buckets": 4 * trainable,
        "AdamW moments": 8 * trainable,
        "EMA": 4 * trainable,
        "bf16 weight copies (autocast cache)": 2 * trainable,
        f"saved activations ({'checkpointed' if checkpointed else 'no checkpointing'})": saved,
        "largest recomputed block": largest_block if checkpointed else 0,
    }
    print(f"aptos_cldm.yaml: batch {args.batch_size} per GPU, OCT {h}x{w}, CF {cf}, latent "
          f"{tuple(model.latent_shape)}, {trainable / 1e6:.0f}M trainable + {frozen / 1e6:.0f}M frozen parameters")
    for name, value in lines.items():
        print(f"  {name:<52} {value / GIB:7.2f} GiB")
    print(f"  {'estimated peak per GPU (DDP, bf16-mixed)':<52} {sum(lines.values()) / GIB:7.2f} GiB")
    print(f"  (saved activations without any checkpointing: {saved_without / GIB:.2f} GiB)")


if __name__ == "__main__":
    main()
