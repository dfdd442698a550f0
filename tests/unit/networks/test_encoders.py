"""Encoders for every observation kind: one-hot, images in either channel order, nests; and the factory's choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dm_env import specs

from distrl.networks import MLP, Network
from distrl.networks.encoders import CompactCNN, FlattenEncoder, NatureCNN, NestEncoder, OneHotEncoder
from distrl.networks.factory import describe_encoder, image_layout, make_encoder
from distrl.networks.heads import DiscreteQHead, MultiCategorical, MultiCategoricalHead
from distrl.networks.numpy_inference import compile_numpy_forward


def test_one_hot_of_scalar_and_multi_discrete_observations():
    scalar = OneHotEncoder(4)
    assert scalar(torch.tensor([0, 3, 1])).tolist() == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]
    assert scalar(torch.tensor(2)).tolist() == [0, 0, 1, 0]  # one observation, no batch axis
    multi = OneHotEncoder((2, 3))
    codes = multi(torch.tensor([[1, 2], [0, 0]]))
    assert codes.dtype == torch.float32 and codes.tolist() == [[0, 1, 0, 0, 1], [1, 0, 1, 0, 0]]
    assert multi(torch.zeros(4, 5, 2, dtype=torch.int64)).shape == (4, 5, 5)  # [batch, time, ...]
    with pytest.raises(RuntimeError):
        scalar(torch.tensor([4]))


def test_flatten_keeps_leading_dims_for_scalar_observations():
    encoder = FlattenEncoder(())
    assert encoder(torch.tensor([1.0, 2.0, 3.0])).shape == (3, 1)  # a batch of three scalars
    assert encoder(torch.tensor(1.0)).shape == (1,)


@pytest.mark.parametrize("encoder_class, size", [(NatureCNN, 40), (CompactCNN, 10)])
def test_image_encoders_give_the_same_features_for_either_channel_order(encoder_class, size):
    torch.manual_seed(0)
    first = encoder_class((3, size, size), channels_last=False)
    last = encoder_class((size, size, 3), channels_last=True)
    last.load_state_dict(first.state_dict())
    frames = torch.randint(0, 256, (5, 3, size, size), dtype=torch.uint8)
    expected = first(frames)
    torch.testing.assert_close(last(frames.permute(0, 2, 3, 1).contiguous()), expected)
    assert expected.shape == (5, first.output_dim) and expected.dtype == torch.float32
    # uint8 pixels are scaled by 1/255: the same image as floats in [0, 1] gives the same features.
    torch.testing.assert_close(first(frames.float() / 255.0), expected)


def test_stacked_channel_last_frames_merge_stack_and_channels():
    encoder = CompactCNN((4, 8, 8, 3), channels_last=True)
    assert encoder.input_shape == (12, 8, 8)
    assert encoder(torch.zeros(2, 4, 8, 8, 3, dtype=torch.uint8)).shape == (2, encoder.output_dim)
    with pytest.raises(ValueError, match="at least 36x36"):
        NatureCNN((3, 20, 20))


def test_nest_encoder_concatenates_leaf_features_in_tree_order():
    spec = {"velocity": specs.Array((1,), np.float32), "position": specs.Array((2,), np.float32),
            "cell": specs.DiscreteArray(3)}
    encoder = make_encoder(spec)
    assert isinstance(encoder, NestEncoder) and encoder.output_dim == 2 + 1 + 3
    features = encoder({"position": torch.tensor([[1.0, 2.0]]), "velocity": torch.tensor([[3.0]]),
                        "cell": torch.tensor([2])})
    assert features.tolist() == [[0.0, 0.0, 1.0, 1.0, 2.0, 3.0]]  # cell, position, velocity (sorted keys)
    assert describe_encoder(encoder) == {"cell": "one_hot(3)", "position": "flatten(2 -> 2)",
                                         "velocity": "flatten(1 -> 1)"}


@pytest.mark.parametrize(
    "spec, expected",
    [
        (specs.DiscreteArray(16), "one_hot(16)"),
        (specs.BoundedArray((2,), np.int64, 0, [2, 3]), "one_hot(3+4 -> 7)"),
        (specs.BoundedArray((3,), np.int8, 0, 1), "flatten(3 -> 3)"),  # MultiBinary
        (specs.BoundedArray((4, 84, 84), np.uint8, 0, 255), "nature_cnn(4x84x84, channels-first -> 512)"),
        (specs.BoundedArray((84, 84, 3), np.uint8, 0, 255),
         "nature_cnn(84x84x3, channels-last, permuted on device -> 512)"),
        (specs.Array((7, 7, 3), np.uint8), "compact_cnn(7x7x3, channels-last, permuted on device -> 256)"),
        (specs.Array((3, 84, 84), np.float32), "flatten(3x84x84 -> 21168)"),  # float images are not scaled
        (specs.Array((), np.float32), "flatten(scalar -> 1)"),
        (specs.BoundedArray((2,), np.int64, 0, 100_000), "flatten(2 -> 2)"),  # too many categories
    ],
)
def test_factory_encodes_each_kind_of_leaf(spec, expected):
    assert describe_encoder(make_encoder(spec)) == expected


def test_ambiguous_image_layout_is_refused_naming_the_leaf():
    assert image_layout((3, 84, 84)) is False and image_layout((84, 84, 3)) is True
    with pytest.raises(ValueError, match="observation leaf 'image': cannot tell the channel axis"):
        make_encoder({"image": specs.Array((84, 3, 84), np.uint8)})


def test_numpy_acting_path_matches_torch_for_one_hot_observations():
    torch.manual_seed(0)
    network = Network(OneHotEncoder(16), MLP(16, [8]), DiscreteQHead(8, 4))
    forward = compile_numpy_forward(network)
    assert forward is not None
    observations = np.array([0, 5, 15])
    np.testing.assert_allclose(forward(observations), network(torch.from_numpy(observations)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(forward(np.int64(5)), network(torch.tensor(5)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_multi_categorical_sums_components_and_its_mode_is_per_component():
    logits = torch.log(torch.tensor([[0.5, 0.5, 0.1, 0.2, 0.7]]))
    distribution = MultiCategorical(logits, (2, 3))
    action = torch.tensor([[1, 2]])
    assert distribution.log_prob(action).item() == pytest.approx(np.log(0.5) + np.log(0.7))
    expected_entropy = -2 * 0.5 * np.log(0.5) - sum(p * np.log(p) for p in (0.1, 0.2, 0.7))
    assert distribution.entropy().item() == pytest.approx(expected_entropy, rel=1e-5)
    assert distribution.mode.tolist() == [[0, 2]]
    head = MultiCategoricalHead(4, (2, 3))
    assert head(torch.zeros(6, 4)).sample().shape == (6, 2)
