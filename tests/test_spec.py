"""The stage table, rounding rules, presets and the pixel rule."""

import pytest

from scaler.spec import (
    B0_STAGES,
    PRESETS,
    check_pixels,
    preset,
    round_channels,
    round_layers,
    round_pixels,
    scale,
)


def test_b0_table_is_the_papers():
    assert [(s.expand, s.kernel, s.stride, s.channels, s.layers) for s in B0_STAGES] == [
        (1, 3, 1, 16, 1),
        (6, 3, 2, 24, 2),
        (6, 5, 2, 40, 2),
        (6, 3, 2, 80, 3),
        (6, 5, 1, 112, 3),
        (6, 5, 2, 192, 4),
        (6, 3, 1, 320, 1),
    ]
    assert sum(s.layers for s in B0_STAGES) == 16


@pytest.mark.parametrize(
    "channels, width, expected",
    [
        (32, 1.0, 32),
        (32, 1.1, 32),  # 35.2 -> 32 (>= 90 %)
        (16, 1.1, 16),  # 17.6 -> 16
        (40, 1.1, 48),  # 44 -> 48 (halves up)
        (1280, 1.1, 1408),
        (16, 0.25, 8),  # at least 8
        (24, 0.35, 8),
        (112, 1.2, 136),  # 134.4 -> 136
        (16, 1.8, 32),  # 28.8 -> 32
        (40, 0.6, 24),  # 24
        (10, 1.0, 16),  # 10 -> 8 is under 90 % of 10, bumped to 16
    ],
)
def test_round_channels(channels, width, expected):
    assert round_channels(channels, width) == expected


@pytest.mark.parametrize(
    "layers, depth, expected",
    [(1, 1.0, 1), (1, 1.2, 2), (2, 1.2, 3), (4, 1.2, 5), (3, 3.1, 10), (4, 1.25, 5)],
)
def test_round_layers_is_ceil(layers, depth, expected):
    assert round_layers(layers, depth) == expected


def test_pixel_rule_reproduces_official_sizes():
    for name, p in PRESETS.items():
        assert preset(name).pixels == p.pixels, name
    assert round_pixels(1.15, 224) == 258  # 257.6
    assert round_pixels(0.5, 33) == 17  # 16.5 rounds half up
    assert preset("b1", base_pixels=32).pixels == 34  # 240/224 * 32 = 34.3


def test_paper_point_turns_16_blocks_into_23():
    assert scale(1.2, 1.1).layers == 23
    assert [s.layers for s in scale(1.2, 1.1).stages] == [2, 3, 3, 4, 4, 5, 2]


def test_key_identifies_realized_network():
    # 1.1 and 1.2 round every stage to the same channels and layers.
    assert scale(1.1, 1.05, pixels=64).key == scale(1.2, 1.05, pixels=64).key
    assert scale(1.2, 1.1, pixels=64).key != scale(1.2, 1.1, pixels=65).key


@pytest.mark.parametrize("kwargs", [{"depth": 0}, {"depth": -1}, {"width": 0}, {"resolution": -2}])
def test_bad_multipliers(kwargs):
    with pytest.raises(ValueError, match="must be"):
        scale(**kwargs)


@pytest.mark.parametrize("pixels", [0, 7, 2049])
def test_bad_pixels(pixels):
    with pytest.raises(ValueError, match="between 8 and 2048"):
        check_pixels(pixels)


def test_unknown_preset():
    with pytest.raises(ValueError, match="b0, b1"):
        preset("b9")
