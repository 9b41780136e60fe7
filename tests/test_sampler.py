"""The resumable training order: one permutation per pass shared by the ranks, resumed at any position."""
import pytest

from eyeoct.data.sampler import ResumableBatchSampler, SamplerPosition, pass_order


def global_order(samplers):
    """Indices in the order the whole job consumes them: global batch by global batch, rank by rank."""
    passes = [list(s) for s in samplers]
    assert len({len(p) for p in passes}) == 1, "every rank must get the same number of batches"
    return [i for step in zip(*passes) for batch in step for i in batch]


def ranks(world_size, num_samples=10, batch_size=2, drop_last=False, start=None, seed=3):
    return [ResumableBatchSampler(num_samples, batch_size, seed, r, world_size, drop_last, start)
            for r in range(world_size)]


def test_ranks_split_one_shared_permutation_without_overlap():
    order = pass_order(12, seed=3, epoch=0)
    assert sorted(order) == list(range(12))
    two = ranks(2, num_samples=12, batch_size=3)
    rank0, rank1 = ([i for batch in sampler for i in batch] for sampler in ranks(2, num_samples=12, batch_size=3))
    assert set(rank0).isdisjoint(rank1) and len(rank0) == len(rank1) == 6
    assert global_order(two) == order
    assert len(two[0]) == 2  # 12 samples / (2 ranks x 3)


def test_a_partial_last_global_batch_is_split_evenly_or_dropped():
    order = pass_order(11, seed=3, epoch=0)
    padded = ranks(2, num_samples=11, batch_size=2)  # global batches of 4, 4, then 3 -> 2 per rank, one padded
    batches = [list(s) for s in padded]
    assert [len(b) for b in batches[0]] == [2, 2, 2] and [len(b) for b in batches[1]] == [2, 2, 2]
    assert global_order(ranks(2, num_samples=11, batch_size=2)) == order + order[:1]
    dropped = ranks(2, num_samples=11, batch_size=2, drop_last=True)
    assert global_order(dropped) == order[:8] and len(dropped[0]) == 2


def test_each_pass_is_a_new_permutation_and_seeds_differ():
    sampler = ResumableBatchSampler(16, 4, seed=0)
    first, second = sum(list(sampler), []), sum(list(sampler), [])
    assert sorted(first) == sorted(second) == list(range(16)) and first != second
    assert first == pass_order(16, 0, 0) and second == pass_order(16, 0, 1)
    assert pass_order(16, 1, 0) != pass_order(16, 0, 0)


@pytest.mark.parametrize("resume_ranks", [1, 2, 3])
def test_resuming_mid_pass_continues_the_same_order_with_any_rank_count(resume_ranks):
    order = pass_order(24, seed=3, epoch=5)
    before = ResumableBatchSampler(24, 2, 3, 0, 2, start=SamplerPosition(epoch=5, offset=0))
    iterator = iter(before)
    for _ in range(3):  # three global batches of 2 ranks x 2 consumed
        next(iterator)
        before.note_consumed()
    next(iterator)  # prefetched by the loader but never trained on: not part of the position
    position = before.position()
    assert position == SamplerPosition(epoch=5, offset=12)
    resumed = ranks(resume_ranks, num_samples=24, batch_size=2, start=position)
    assert global_order(resumed)[:12] == order[12:]


def test_position_moves_to_the_next_pass_once_a_pass_is_used_up():
    sampler = ResumableBatchSampler(8, 4, seed=0)
    assert len(sampler) == 2
    for _ in sampler:
        sampler.note_consumed()
    assert sampler.position() == SamplerPosition(epoch=1, offset=0)
    at_end = ResumableBatchSampler(8, 4, seed=0, start=SamplerPosition(epoch=0, offset=8))
    assert [i for batch in at_end for i in batch] == pass_order(8, 0, 1)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="rank"):
        ResumableBatchSampler(8, 4, 0, rank=2, world_size=2)
    with pytest.raises(ValueError, match="global batch of 16"):
        ResumableBatchSampler(8, 4, 0, rank=0, world_size=4, drop_last=True)
