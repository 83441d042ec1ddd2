"""Keyed messages land where aiokafka's default partitioner (and Java's clients) put them."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from servicekit.partitioner import KeyPartitioner, murmur2

pytestmark = pytest.mark.unit


def _keys() -> list[bytes]:
    rng = random.Random(7)
    made = [f"b_01a24907c821e611d225b4:{i}".encode() for i in range(500)]
    made += [rng.randbytes(rng.randrange(0, 64)) for _ in range(2000)]
    return [b"", b"a", b"ab", b"abc", b"abcd", *made]


def test_murmur2_is_kafkas_for_every_length_and_byte() -> None:
    for key in _keys():
        assert murmur2(key) == aiokafka_murmur2(key), key


@pytest.mark.parametrize("partitions", [1, 6, 12, 7])
def test_keys_go_to_the_default_partitioners_partition_also_when_remembered(
    partitions: int,
) -> None:
    default = DefaultPartitioner()
    ours = KeyPartitioner(remember=100)  # fills up and forgets many times over
    every = list(range(partitions))
    for _ in range(2):
        for key in _keys():
            assert ours(key, every, every) == default(key, every, every), key


def test_a_message_without_a_key_goes_to_an_available_partition() -> None:
    ours = KeyPartitioner()
    assert {ours(None, [0, 1, 2], [2]) for _ in range(50)} == {2}
    assert {ours(None, [0, 1, 2], []) for _ in range(200)} == {0, 1, 2}
