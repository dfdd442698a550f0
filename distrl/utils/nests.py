"""Helpers over nests: arrays, or (possibly nested) tuples, NamedTuples and dicts of arrays.

Everything that moves experience (environment loops, adders, replay clients)
works on nests, so these live at the bottom of the package and import
nothing from it but ``distrl.types``. Arrays, scalars and flat dicts take
fast paths; only deeper nests go through ``dm-tree``, whose per-call cost
shows in the per-step hot loops (measured in ``tests/unit/adders``'s
throughput check).
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import tree

from distrl.types import Nest


def copy_nest(value: Nest) -> Nest:
    """Returns a copy of ``value`` that later in-place changes to it cannot reach.

    Arrays are copied; immutable scalars are returned as they are; any other
    nest is copied leaf by leaf with ``np.array``.
    """
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (np.generic, int, float, bool)):
        return value
    return tree.map_structure(np.array, value)


def zeros_like_nest(value: Nest) -> Nest:
    """A zero-filled nest with the structure, shapes and dtypes of ``value``."""
    if isinstance(value, (np.ndarray, np.generic, int, float, bool)):
        return np.zeros_like(value)
    return tree.map_structure(np.zeros_like, value)


def stack_nests(values: Sequence[Nest], leading_shape: tuple[int, ...] | None = None) -> Nest:
    """Stacks same-structured nests into one nest whose leaves gain a leading axis.

    When ``leading_shape`` is given, the new leading axis of length
    ``len(values)`` is reshaped to it (e.g. ``(batch, time)``). An empty
    nest ``()`` stays ``()``. Raises ``ValueError`` (numpy's) when leaves
    differ in shape and ``TypeError``/``ValueError`` (dm-tree's) when the
    nests differ in structure.
    """
    first = values[0]
    if isinstance(first, (np.ndarray, np.generic, int, float, bool)):
        stacked = np.stack(values)
        if leading_shape is not None:
            stacked = stacked.reshape(leading_shape + stacked.shape[1:])
        return stacked
    if isinstance(first, tuple) and not first:
        return ()

    def _stack(*leaves: Any) -> np.ndarray:
        stacked = np.stack(leaves)
        if leading_shape is not None:
            stacked = stacked.reshape(leading_shape + stacked.shape[1:])
        return stacked

    if type(first) is dict and all(isinstance(v, (np.ndarray, np.generic)) for v in first.values()):
        # A flat dict of arrays (e.g. extras {'policy_version': ...}): skip dm-tree.
        return {key: _stack(*(value[key] for value in values)) for key in first}
    return tree.map_structure(_stack, *values)


def index_nest(value: Nest, index: int) -> Nest:
    """Entry ``index`` along the leading axis of every leaf (the inverse of
    ``stack_nests`` for one item); arrays take a fast path."""
    if isinstance(value, np.ndarray):
        return value[index]
    return tree.map_structure(lambda leaf: leaf[index], value)


def stacked_length(items: Nest) -> int:
    """Leading-axis length of the first leaf of a stacked batch (a walk down
    the first branch; cheaper than flattening the whole nest on every insert)."""
    leaf = items
    while not hasattr(leaf, "shape"):
        if isinstance(leaf, Mapping):
            leaf = leaf[sorted(leaf)[0]]
        else:
            leaf = leaf[0]
    return int(leaf.shape[0])


def concatenate_batches(
    batches: Sequence[Nest], priorities: Sequence[np.ndarray | None]
) -> tuple[Nest, np.ndarray | None]:
    """One stacked batch from several, leaf by leaf and in order, with their
    priorities (all arrays or all None); a single batch is returned as it is."""
    if len(batches) == 1:
        return batches[0], priorities[0]
    merged = tree.map_structure(lambda *leaves: np.concatenate(leaves), *batches)
    return merged, None if priorities[0] is None else np.concatenate(priorities)


_EMPTY_TUPLE = ()  # CPython has one empty tuple, so ``extras=()`` fields are checked by identity.


def make_flattener(structure: Nest) -> Callable[[Nest], Sequence[Any] | None] | None:
    """Returns a fast ``tree.flatten`` for batches built like ``structure``, or None.

    ``tree.flatten`` costs about 1 us, a third of the plain buffer's whole
    insert of a 256-item batch, so the usual item, a tuple or NamedTuple
    whose fields are leaves or empty tuples (e.g. a ``Transition`` with
    ``extras=()``), gets a flattener that picks the leaf fields with one
    ``operator.itemgetter``. It returns the leaves (in dm-tree order) when a
    batch has the same type and length and the same fields hold the empty
    tuple, and None otherwise: the caller then uses ``tree.flatten``, so the
    shortcut never changes the result. It checks nothing about the leaves: a
    field holding a nest where the signature has a leaf fails the caller's
    leaf check, which re-flattens with dm-tree. Other structures get None and
    always use ``tree.flatten``.
    """
    if not isinstance(structure, tuple):
        return None
    leaf_fields: list[int] = []
    empty_fields: list[int] = []
    for index, field in enumerate(structure):
        if not tree.is_nested(field):
            leaf_fields.append(index)
        elif type(field) is tuple and not field:
            empty_fields.append(index)
        else:
            return None
    if len(leaf_fields) < 2:
        return None  # ``itemgetter`` of one index returns the leaf, not a tuple; not worth a case.
    cls, length = type(structure), len(structure)
    get_leaves = operator.itemgetter(*leaf_fields)

    def flatten(items: Nest) -> Sequence[Any] | None:
        if type(items) is not cls or len(items) != length:
            return None
        for index in empty_fields:
            if items[index] is not _EMPTY_TUPLE:  # Anything else takes dm-tree's path.
                return None
        return get_leaves(items)

    return flatten


def make_unflattener(structure: Nest) -> Callable[[Sequence[Any]], Nest]:
    """Returns a function that rebuilds ``structure`` from its flat leaves.

    ``tree.unflatten_as`` takes about 10 us for a ``Transition``, more than the
    whole gather of a 256-item batch, so the common containers (tuples,
    NamedTuples, lists, dicts) get a precompiled builder; anything else falls
    back to ``tree.unflatten_as``. Leaf order follows dm-tree (dict keys sorted).
    Leaves are picked by ``operator.itemgetter`` (no Python frame per leaf).
    """
    counter = iter(range(len(tree.flatten(structure))))

    def compile_node(node: Nest) -> Callable[[Sequence[Any]], Any] | None:
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            parts = [compile_node(child) for child in node]
            if any(p is None for p in parts):
                return None
            cls = type(node)
            return lambda leaves: cls(*[p(leaves) for p in parts])
        if type(node) in (tuple, list):
            parts = [compile_node(child) for child in node]
            if any(p is None for p in parts):
                return None
            cls = type(node)
            return lambda leaves: cls([p(leaves) for p in parts])
        if type(node) is dict:
            keys = sorted(node)
            parts = [compile_node(node[k]) for k in keys]
            if any(p is None for p in parts):
                return None
            return lambda leaves: {k: p(leaves) for k, p in zip(keys, parts)}
        if tree.is_nested(node):
            return None
        return operator.itemgetter(next(counter))

    compiled = compile_node(structure)
    if compiled is None:
        return lambda leaves: tree.unflatten_as(structure, list(leaves))
    return compiled
