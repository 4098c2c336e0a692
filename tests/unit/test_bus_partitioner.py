"""The orchestrator's producer places a key where aiokafka's default partitioner (murmur2) does."""

import random

from aiokafka.partitioner import DefaultPartitioner

from dac_runtime.orchestrator.dispatch.bus import keyed_partitioner


def test_same_partition_as_the_default_for_every_key_and_partition_count() -> None:
    rng = random.Random(7)
    keys = [rng.randbytes(rng.randrange(1, 40)) for _ in range(500)] + [b"persona-a", b"0" * 32]
    for partitions in (1, 3, 12, 64):
        every = list(range(partitions))
        for key in keys + keys:  # the second pass is answered from the cache
            assert keyed_partitioner(key, every, every) == DefaultPartitioner()(key, every, every)


def test_no_key_goes_to_an_available_partition() -> None:
    assert {keyed_partitioner(None, [0, 1, 2], [2]) for _ in range(20)} == {2}
