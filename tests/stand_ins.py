"""Small stand-in models and helpers shared by several test files."""
import torch


def randomise(module: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> None:
    """Random normal weights (times `scale`) everywhere: zero-initialised layers would hide differences."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)


class StandInModel(torch.nn.Module):
    """Same `sample` contract as ControlLDM: a volume from the CF plus noise of each item's generator."""

    def __init__(self, height=16, width=24):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.height, self.width = height, width
        self.calls = []

    def sample(self, cf, steps, eta, guidance_scale, generator, sampler, precision):
        self.calls.append(dict(batch=cf.shape[0], steps=steps, eta=eta, guidance_scale=guidance_scale,
                               sampler=sampler, precision=precision))
        assert len(generator) == cf.shape[0]
        noise = torch.cat([torch.randn(1, 6, self.height, self.width, generator=g) for g in generator])
        base = torch.nn.functional.interpolate(cf.mean(1, keepdim=True), size=(self.height, self.width))
        return torch.tanh(base + self.scale * noise * guidance_scale)


class LinearModel:
    """A fixed model ``out = a * x + b * cond + c * t/1000`` that records how it was called."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t, cond):
        self.calls.append(x.shape[0])
        return 0.9 * x + 0.3 * cond["ctx"] + 0.1 * (t.float() / 1000).view(-1, 1, 1, 1)
