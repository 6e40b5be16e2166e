"""The fat-tree rules reproduce NVIDIA's published DGX SuperPOD component tables."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenfab.blueprint.network import effective_radix, fat_tree, smallest_even_spread, tiers_needed

# DGX SuperPOD B300-XDR RA (RA-11339-001), dgx-superpod-architecture.html: SU = 72 DGX B300 = 576 GPUs,
# Quantum-X800 Q3400 (144 x 800G); (SUs, leaf, spine).
B300_XDR_TABLE = [(1, 8, 4), (2, 16, 8), (4, 32, 18), (8, 64, 36), (18, 144, 72)]

# DGX SuperPOD B200 RA, dgx-superpod-architecture.html: SU = 32 DGX B200 = 256 GPUs, QM9700 (64 x 400G);
# (SUs, leaf, spine, core).
B200_NDR_TABLE = [
    (2, 16, 8, 0),
    (4, 32, 16, 0),
    (8, 64, 32, 0),
    (16, 128, 128, 64),
    (32, 256, 256, 128),
    (64, 512, 512, 256),
]


@pytest.mark.parametrize(("sus", "leaves", "spines"), B300_XDR_TABLE)
def test_b300_quantum_x800_leaf_spine_counts(sus, leaves, spines):
    tree = fat_tree(endpoints_per_su=576, scalable_units=sus, radix=144)
    assert tree.tiers == 2
    assert tree.switches_by_tier == (leaves, spines)


@pytest.mark.parametrize(("sus", "leaves", "spines", "cores"), B200_NDR_TABLE)
def test_b200_ndr_counts_including_third_tier(sus, leaves, spines, cores):
    tree = fat_tree(endpoints_per_su=256, scalable_units=sus, radix=64)
    expected = (leaves, spines, cores) if cores else (leaves, spines)
    assert tree.switches_by_tier == expected


def test_every_b300_size_from_1_to_18_units_stays_two_tier_with_even_spread():
    for sus in range(1, 19):
        tree = fat_tree(576, sus, 144)
        leaves, spines = tree.switches_by_tier
        assert leaves == 8 * sus
        assert 72 % spines == 0, "each leaf has the same number of links to every spine"
        assert spines * 144 >= leaves * 72


def test_breakout_doubles_radix_for_slower_links():
    assert effective_radix(64, 800, 400) == 128
    assert effective_radix(144, 800, 800) == 144


@given(st.integers(1, 200), st.sampled_from([64, 128, 144]))
def test_tree_has_enough_ports_at_every_tier(sus, radix):
    tree = fat_tree(576, sus, radix)
    assert tree.tiers == tiers_needed(tree.switches_by_tier[0], radix)
    for tier in range(tree.tiers - 1):
        up_links = tree.links_by_tier[tier + 1]
        assert up_links <= tree.switches_by_tier[tier + 1] * tree.downlinks_by_tier[tier + 1]
    assert tree.links_by_tier[0] == 576 * sus


def test_spine_count_is_smallest_divisor():
    assert smallest_even_spread(32, 72, 144) == 18
