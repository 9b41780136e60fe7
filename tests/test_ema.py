"""EMA: hand-computed updates with and without warm-up, swapping weights in, checkpointing."""
import pytest
import torch
from torch import nn

from ldm.modules.ema import EMA


def test_update_matches_hand_computed_values_without_warmup():
    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0]]))
        lin.bias.fill_(0.0)
    ema = EMA(lin, decay=0.9, use_warmup=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 0.0]]))
        lin.bias.fill_(1.0)
    ema.update()
    # 0.9 * old + 0.1 * new
    torch.testing.assert_close(ema.shadow_0, torch.tensor([[1.2, 1.8]]))
    torch.testing.assert_close(ema.shadow_1, torch.tensor([0.1]))
    ema.update()
    torch.testing.assert_close(ema.shadow_0, torch.tensor([[0.9 * 1.2 + 0.3, 0.9 * 1.8]]))


def test_warmup_decay_sequence():
    p = nn.Parameter(torch.zeros(1))
    ema = EMA([p], decay=0.5, use_warmup=True)
    with torch.no_grad():
        p.fill_(1.0)
    ema.update()  # n = 1: decay = min(0.5, 2/11)
    assert ema.shadow_0.item() == pytest.approx(1 - 2 / 11)
    assert ema.current_decay() == pytest.approx(3 / 12)
    for _ in range(20):
        ema.update()
    assert ema.current_decay() == 0.5 and int(ema.num_updates) == 21


def test_tracks_every_trainable_module_once_and_skips_frozen():
    a, b, frozen = nn.Linear(2, 2), nn.Linear(2, 3), nn.Linear(2, 2)
    frozen.requires_grad_(False)
    ema = EMA([a, b, frozen, a.weight], decay=0.9)
    assert len(ema._params) == 4
    assert [s.shape for s in ema._shadows()] == [(2, 2), (2,), (3, 2), (3,)]


def test_average_parameters_swaps_in_and_restores_exactly_and_nests():
    torch.manual_seed(0)
    lin = nn.Linear(3, 3)
    ema = EMA(lin, decay=0.0, use_warmup=False)
    trained = lin.weight.detach().clone()
    with torch.no_grad():
        lin.weight.add_(1.0)
    ema.update()  # decay 0: shadow = current weights
    with torch.no_grad():
        lin.weight.copy_(trained)
    with ema.average_parameters():
        torch.testing.assert_close(lin.weight, trained + 1.0)
        with ema.average_parameters():  # nested: nothing more is swapped
            torch.testing.assert_close(lin.weight, trained + 1.0)
        assert ema.swapped
        with pytest.raises(RuntimeError, match="swapped"):
            ema.update()
    assert not ema.swapped
    assert torch.equal(lin.weight, trained) and torch.equal(ema.shadow_0, trained + 1.0)


def test_fused_update_equals_the_per_tensor_formula():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 3))
    ema = EMA(net, decay=0.9, use_warmup=True)
    expected = [p.detach().clone() for p in net.parameters()]
    for _ in range(3):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        decay = ema.current_decay()
        expected = [decay * e + (1 - decay) * p.detach() for e, p in zip(expected, net.parameters())]
        ema.update()
    for shadow, e in zip(ema._shadows(), expected):
        torch.testing.assert_close(shadow, e, rtol=0, atol=1e-6)


def test_copy_to_writes_the_averages_for_good():
    lin = nn.Linear(2, 2)
    ema = EMA(lin, decay=0.0, use_warmup=False)
    with torch.no_grad():
        lin.weight.fill_(3.0)
    ema.update()
    with torch.no_grad():
        lin.weight.fill_(-1.0)
    ema.copy_to()
    assert torch.equal(lin.weight, torch.full((2, 2), 3.0))


def test_state_dict_round_trip():
    torch.manual_seed(0)
    lin = nn.Linear(2, 2)
    ema = EMA(lin, decay=0.8)
    with torch.no_grad():
        lin.weight.mul_(2)
    ema.update()
    state = ema.state_dict()
    assert set(state) == {"_extra_state", "shadow_0", "shadow_1"}
    fresh = EMA(nn.Linear(2, 2), decay=0.8)
    fresh.load_state_dict(state)
    assert fresh.num_updates == 1 and fresh.current_decay() == ema.current_decay()
    torch.testing.assert_close(fresh.shadow_0, ema.shadow_0)
    with pytest.raises(RuntimeError):
        EMA(nn.Linear(2, 5), decay=0.8).load_state_dict(state)


def test_checkpoints_with_the_old_update_counter_buffer_still_load():
    lin = nn.Linear(2, 2)
    legacy = {"num_updates": torch.tensor(7), "shadow_0": torch.ones(2, 2), "shadow_1": torch.zeros(2)}
    ema = EMA(lin, decay=0.9)
    ema.load_state_dict(legacy)
    assert ema.num_updates == 7 and torch.equal(ema.shadow_0, torch.ones(2, 2))
