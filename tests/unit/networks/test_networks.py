"""Unit tests for distrl.networks: shapes, head maths, initialisers, target
updates and parameter conversion."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from distrl.networks import (
    MLP,
    CategoricalHead,
    DeterministicHead,
    DiagGaussianHead,
    DiscreteQHead,
    FlattenEncoder,
    IdentityEncoder,
    NatureCNN,
    Network,
    PolyakUpdate,
    ValueHead,
    fan_in_uniform_init_,
    flat_vector,
    hard_update_,
    kaiming_init_,
    load_numpy_params_,
    make_target,
    orthogonal_init_,
    polyak_update_,
    set_flat_vector_,
    to_numpy_params,
    uniform_final_init_,
    xavier_init_,
)

B = 7


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _small_net() -> nn.Module:
    """An MLP network with a BatchNorm so it has buffers, including an integer one."""
    return nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))


# Encoders.


def test_identity_encoder_passes_through() -> None:
    encoder = IdentityEncoder(4)
    x = torch.randn(B, 4)
    assert encoder.output_dim == 4
    assert encoder(x) is x


def test_flatten_encoder_flattens_trailing_dims_and_casts() -> None:
    encoder = FlattenEncoder((3, 4))
    assert encoder.output_dim == 12
    out = encoder(torch.zeros(B, 3, 4, dtype=torch.float64))
    assert out.shape == (B, 12) and out.dtype == torch.float32
    assert encoder(torch.zeros(2, B, 3, 4, dtype=torch.int64)).shape == (2, B, 12)


def test_nature_cnn_uint8_frames_to_512_and_a_head() -> None:
    encoder = NatureCNN((4, 84, 84))
    assert encoder.output_dim == 512
    frames = torch.randint(0, 256, (B, 4, 84, 84), dtype=torch.uint8)
    features = encoder(frames)
    assert features.shape == (B, 512) and features.dtype == torch.float32
    torch.testing.assert_close(features, encoder(frames.float() / 255.0))
    network = Network(encoder, MLP(512, []), DiscreteQHead(512, 6))
    assert network(frames).shape == (B, 6)


def test_nature_cnn_keeps_leading_dims() -> None:
    encoder = NatureCNN((4, 84, 84))
    assert encoder(torch.zeros(2, 3, 4, 84, 84, dtype=torch.uint8)).shape == (2, 3, 512)


# Torsos.


def test_mlp_shapes_and_layers() -> None:
    torso = MLP(4, [16, 8], layer_norm=True)
    assert torso.output_dim == 8
    assert torso(torch.randn(B, 4)).shape == (B, 8)
    kinds = [type(m) for m in torso.layers]
    assert kinds == [nn.Linear, nn.LayerNorm, nn.ReLU, nn.Linear, nn.LayerNorm, nn.ReLU]


def test_mlp_without_final_activation_ends_in_linear() -> None:
    torso = MLP(4, [16, 3], activation=nn.Tanh, activate_final=False)
    assert [type(m) for m in torso.layers] == [nn.Linear, nn.Tanh, nn.Linear]


def test_mlp_with_no_hidden_layers_is_identity() -> None:
    torso = MLP(5, [])
    x = torch.randn(B, 5)
    assert torso.output_dim == 5
    torch.testing.assert_close(torso(x), x)


# Heads.


@pytest.mark.parametrize("dueling", [False, True])
def test_discrete_q_head_shape(dueling: bool) -> None:
    assert DiscreteQHead(8, 3, dueling=dueling)(torch.randn(B, 8)).shape == (B, 3)


def test_dueling_subtracts_mean_advantage() -> None:
    head = DiscreteQHead(8, 5, dueling=True)
    x = torch.randn(B, 8)
    q_minus_v = head(x) - head.value(x)
    torch.testing.assert_close(q_minus_v.mean(dim=-1), torch.zeros(B), atol=1e-6, rtol=0)


def test_deterministic_head_stays_in_bounds_and_centres_at_zero() -> None:
    low, high = np.array([-2.0, 0.0, -0.3]), np.array([1.0, 5.0, 0.7])
    head = DeterministicHead(8, low, high)
    huge = torch.randn(B, 8) * 1e6
    action = head(huge)
    assert action.shape == (B, 3)
    low_t, high_t = torch.tensor(low, dtype=torch.float32), torch.tensor(high, dtype=torch.float32)
    assert ((action >= low_t) & (action <= high_t)).all()
    nn.init.zeros_(head.linear.weight)
    nn.init.zeros_(head.linear.bias)
    torch.testing.assert_close(head(huge), ((low_t + high_t) / 2).expand(B, 3))


def test_deterministic_head_bounds_are_buffers() -> None:
    head = DeterministicHead(4, -1.0, [1.0, 2.0])
    assert head.action_dim == 2
    assert {"action_minimum", "action_maximum"} <= head.state_dict().keys()
    assert all(p is not head.action_minimum for p in head.parameters())
    with pytest.raises(ValueError):
        DeterministicHead(4, [1.0], [1.0])


def test_categorical_head_probabilities_sum_to_one() -> None:
    dist = CategoricalHead(8, 4)(torch.randn(B, 8))
    assert isinstance(dist, torch.distributions.Categorical)
    torch.testing.assert_close(dist.probs.sum(-1), torch.ones(B))
    assert dist.sample().shape == (B,)


@pytest.mark.parametrize("state_dependent_std", [False, True])
def test_diag_gaussian_log_prob_and_entropy_by_hand(state_dependent_std: bool) -> None:
    head = DiagGaussianHead(8, 3, state_dependent_std=state_dependent_std, init_log_std=-0.5)
    x = torch.randn(B, 8)
    dist = head(x)
    action = torch.randn(B, 3)
    mean = head.mean(x)
    log_std = head.log_std_layer(x) if state_dependent_std else head.log_std.expand(B, 3)
    std = log_std.exp()
    expected_log_prob = (-0.5 * ((action - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    expected_entropy = (0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum(-1)
    assert dist.log_prob(action).shape == (B,)
    torch.testing.assert_close(dist.log_prob(action), expected_log_prob)
    torch.testing.assert_close(dist.entropy(), expected_entropy)
    assert dist.sample().shape == (B, 3)


def test_diag_gaussian_default_std_is_a_state_independent_parameter() -> None:
    head = DiagGaussianHead(8, 2, init_log_std=0.3)
    assert isinstance(head.log_std, nn.Parameter)
    torch.testing.assert_close(head(torch.randn(B, 8)).base_dist.scale, torch.full((B, 2), math.exp(0.3)))
    with torch.no_grad():
        head.log_std.fill_(100.0)
    torch.testing.assert_close(head(torch.randn(B, 8)).base_dist.scale, torch.full((B, 2), math.exp(2.0)))


def test_value_head_shape() -> None:
    assert ValueHead(8)(torch.randn(B, 8)).shape == (B,)


def test_network_composes_and_checks_sizes() -> None:
    network = Network(FlattenEncoder((2, 2)), MLP(4, [16]), ValueHead(16))
    assert network(torch.randn(B, 2, 2)).shape == (B,)
    with pytest.raises(ValueError, match="torso.output_dim"):
        Network(FlattenEncoder((2, 2)), MLP(4, [16]), ValueHead(8))


# Initialisers.


def test_fan_in_uniform_bounds_weights_and_biases() -> None:
    module = nn.Sequential(nn.Linear(64, 256), nn.Conv2d(4, 128, 3))
    fan_in_uniform_init_(module)
    for layer, fan_in in ((module[0], 64), (module[1], 4 * 3 * 3)):
        bound = 1 / math.sqrt(fan_in)
        for tensor in (layer.weight, layer.bias):
            assert tensor.abs().max() <= bound
            assert tensor.abs().max() > 0.9 * bound
            assert tensor.abs().min() < 0.1 * bound


def test_uniform_final_init_within_scale() -> None:
    layer = uniform_final_init_(nn.Linear(256, 64))
    for tensor in (layer.weight, layer.bias):
        assert tensor.abs().max() <= 3e-3
        assert tensor.abs().max() > 2.5e-3


def test_kaiming_xavier_orthogonal_zero_biases_and_scale() -> None:
    module = nn.Sequential(nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 64))
    kaiming_init_(module)
    assert module[0].weight.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    assert (module[0].bias == 0).all() and (module[2].bias == 0).all()
    xavier_init_(module)
    assert module[0].weight.abs().max() <= math.sqrt(6 / (256 + 128))
    orthogonal_init_(module, gain=0.5)
    w = module[2].weight  # [64, 128]: rows are orthogonal with norm gain.
    torch.testing.assert_close(w @ w.T, 0.25 * torch.eye(64), atol=1e-5, rtol=0)
    assert (module[2].bias == 0).all()


def test_init_rejects_module_without_layers() -> None:
    with pytest.raises(ValueError, match="no nn.Linear"):
        orthogonal_init_(nn.ReLU(), 1.0)


# Target networks.


def _perturbed_pair() -> tuple[nn.Module, nn.Module]:
    online = _small_net()
    online(torch.randn(B, 3))  # Moves the BatchNorm running statistics.
    target = make_target(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    online(torch.randn(B, 3))
    return target, online


def test_make_target_is_a_frozen_independent_copy() -> None:
    online = _small_net()
    online(torch.randn(B, 3)).sum().backward()
    target = make_target(online)
    for t, o in zip(target.parameters(), online.parameters()):
        assert not t.requires_grad and t.grad is None
        assert torch.equal(t, o) and t.data_ptr() != o.data_ptr()


def test_polyak_tau_one_equals_hard_copy() -> None:
    target, online = _perturbed_pair()
    hard_target = make_target(target)
    polyak_update_(target, online, 1.0)
    hard_update_(hard_target, online)
    for a, b, o in zip(target.state_dict().values(), hard_target.state_dict().values(), online.state_dict().values()):
        assert torch.equal(a, o) and torch.equal(b, o)


def test_polyak_tau_zero_leaves_parameters_and_copies_buffers() -> None:
    target, online = _perturbed_pair()
    before = {k: v.clone() for k, v in target.named_parameters()}
    polyak_update_(target, online, 0.0)
    for name, p in target.named_parameters():
        assert torch.equal(p, before[name])
    for (name, t), o in zip(target.named_buffers(), online.buffers()):
        assert torch.equal(t, o), name


def test_polyak_tau_half_averages() -> None:
    target, online = _perturbed_pair()
    expected = [(t + o) / 2 for t, o in zip(target.parameters(), online.parameters())]
    polyak_update_(target, online, 0.5)
    for p, e in zip(target.parameters(), expected):
        torch.testing.assert_close(p, e, atol=1e-6, rtol=0)
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)  # Dyadic values: the average is exact.
    with torch.no_grad():
        a.weight.fill_(1.0), a.bias.fill_(-3.0), b.weight.fill_(2.0), b.bias.fill_(1.0)
    polyak_update_(a, b, 0.5)
    assert (a.weight == 1.5).all() and (a.bias == -1.0).all()


def test_polyak_rejects_bad_tau_and_mismatched_modules() -> None:
    with pytest.raises(ValueError):
        polyak_update_(nn.Linear(2, 2), nn.Linear(2, 2), 1.5)
    with pytest.raises(ValueError, match="differ"):
        polyak_update_(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)), 0.1)


def test_polyak_update_paired_once_follows_weights_loaded_in_place() -> None:
    """A ``PolyakUpdate`` holds the tensors it paired: a ``load_state_dict`` (in place, as a
    checkpoint restore does) into either module is seen by its next call."""
    target, online = _perturbed_pair()
    update = PolyakUpdate(target, online)
    loaded_online, loaded_target = _perturbed_pair()
    online.load_state_dict(loaded_online.state_dict())
    target.load_state_dict(loaded_target.state_dict())
    expected = [(t + o) / 2 for t, o in zip(loaded_target.parameters(), loaded_online.parameters())]
    update(0.5)
    for p, e in zip(target.parameters(), expected):
        torch.testing.assert_close(p, e, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="tau"):
        update(-0.1)


# Parameters as numpy and as a flat vector.


def test_numpy_params_round_trip_without_reallocation() -> None:
    source, dest = _perturbed_pair()
    params = to_numpy_params(source)
    assert params.keys() == source.state_dict().keys()
    assert all(isinstance(v, np.ndarray) and v.flags.c_contiguous for v in params.values())
    pointers = {k: v.data_ptr() for k, v in dest.state_dict().items()}
    for array in params.values():
        array.flags.writeable = False  # As returned by ray.get.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_numpy_params_(dest, params)
    for name, tensor in dest.state_dict().items():
        assert tensor.data_ptr() == pointers[name]
        np.testing.assert_array_equal(tensor.numpy(), params[name])


def test_numpy_params_are_snapshots() -> None:
    module = nn.Linear(3, 2)
    params = to_numpy_params(module)
    snapshot = params["weight"].copy()
    with torch.no_grad():
        module.weight.add_(1.0)
    np.testing.assert_array_equal(params["weight"], snapshot)


def test_numpy_params_are_contiguous_for_strided_tensors() -> None:
    module = nn.Linear(3, 2)
    module.weight = nn.Parameter(torch.randn(3, 2).T)
    array = to_numpy_params(module)["weight"]
    assert array.flags.c_contiguous
    np.testing.assert_array_equal(array, module.weight.detach().numpy())


def test_load_numpy_params_rejects_mismatches() -> None:
    params = to_numpy_params(nn.Linear(3, 2))
    with pytest.raises(KeyError):
        load_numpy_params_(nn.Linear(3, 2, bias=False), params)
    with pytest.raises(ValueError, match="shape"):
        load_numpy_params_(nn.Linear(4, 2), params)


def test_flat_vector_round_trip() -> None:
    source, dest = _small_net(), _small_net()
    vector = flat_vector(source)
    assert vector.shape == (sum(p.numel() for p in source.parameters()),)
    pointers = [p.data_ptr() for p in dest.parameters()]
    set_flat_vector_(dest, vector)
    for s, d, ptr in zip(source.parameters(), dest.parameters(), pointers):
        assert torch.equal(s, d) and d.data_ptr() == ptr
    vector.zero_()  # The module must not alias the vector it was set from.
    assert torch.equal(flat_vector(dest), flat_vector(source))
    with pytest.raises(ValueError):
        set_flat_vector_(dest, vector[:-1])
