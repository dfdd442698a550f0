"""Networks as encoder -> torso -> head, their initialisers, target-network
updates and parameter conversion for shipping weights."""

from distrl.networks.composition import Network
from distrl.networks.encoders import FlattenEncoder, IdentityEncoder, NatureCNN
from distrl.networks.heads import (
    CategoricalHead,
    DeterministicHead,
    DiagGaussianHead,
    DiscreteQHead,
    ValueHead,
)
from distrl.networks.init import (
    fan_in_uniform_init_,
    kaiming_init_,
    orthogonal_init_,
    uniform_final_init_,
    xavier_init_,
)
from distrl.networks.params import flat_vector, load_numpy_params_, set_flat_vector_, to_numpy_params
from distrl.networks.target import PolyakUpdate, hard_update_, make_target, polyak_update_
from distrl.networks.torsos import MLP

__all__ = [
    "CategoricalHead",
    "DeterministicHead",
    "DiagGaussianHead",
    "DiscreteQHead",
    "FlattenEncoder",
    "IdentityEncoder",
    "MLP",
    "NatureCNN",
    "Network",
    "PolyakUpdate",
    "ValueHead",
    "fan_in_uniform_init_",
    "flat_vector",
    "hard_update_",
    "kaiming_init_",
    "load_numpy_params_",
    "make_target",
    "orthogonal_init_",
    "polyak_update_",
    "set_flat_vector_",
    "to_numpy_params",
    "uniform_final_init_",
    "xavier_init_",
]
