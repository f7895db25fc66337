"""Recipes: how to make one probe (base frame, mutations with their seeds, wire form), drawn by hypothesis.

Pure and deterministic for a seed: hypothesis draws a pool of up to RECIPE_POOL recipes with a
fixed seed and no example database; longer runs derive further recipes from the pool with
``random.Random(seed)``. tests/test_abuse.py pins what a seed gives.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from .mutations import MUTATIONS

WIRE_KINDS: tuple[tuple[int, str], ...] = (
    (700, "text"),
    (780, "fragmented"),
    (830, "binary"),
    (870, "compressed"),
    (950, "ws_violation"),
    (952, "oversize"),
    (953, "oversize_fragmented"),
    (954, "oversize_binary"),
    (955, "at_limit"),
    (957, "deflate_bomb"),
    (1000, "text"),
)
"""How a probe travels, chosen by its recipe's ``wire`` (0-999): the upper bound of each share."""


def wire_kind(wire: int) -> str:
    for bound, kind in WIRE_KINDS:
        if wire < bound:
            return kind
    return "text"


@dataclass(frozen=True, slots=True)
class Recipe:
    """How to make one probe: a base frame, up to a few mutations (each with its own seed), a wire form."""

    base: int
    mutations: tuple[tuple[str, int], ...]
    wire: int


def recipe_strategy() -> st.SearchStrategy[Recipe]:
    """Hypothesis strategy of recipes; the heavy lifting is left to seeded randomness in build_probe."""
    mutation = st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 2**32 - 1))
    return st.builds(
        Recipe,
        st.integers(0, 63),
        st.lists(mutation, max_size=3).map(tuple),
        st.integers(0, 999),
    )


RECIPE_POOL = 1024
"""Recipes drawn with hypothesis; longer runs derive further recipes from these by seeded mutation."""


def draw_recipes(count: int, seed: int) -> list[Recipe]:
    """``count`` recipes, the same for the same seed: hypothesis draws up to RECIPE_POOL of them
    (a fixed seed, no example database), the rest are derived from those with ``random.Random(seed)``."""
    pool: list[Recipe] = []
    attempt = 0
    while len(pool) < min(count, RECIPE_POOL) and attempt < 20:
        wanted = min(count, RECIPE_POOL) - len(pool)

        @hypothesis_seed(seed * 1009 + attempt)
        @settings(
            database=None,
            derandomize=False,  # explicit: a loaded profile must not replace the seed
            max_examples=wanted,
            deadline=None,
            phases=(Phase.generate,),
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        @given(recipe_strategy())
        def collect(recipe: Recipe) -> None:
            pool.append(recipe)

        collect()
        attempt += 1
    pool = pool[: min(count, RECIPE_POOL)]
    rng = random.Random(seed)
    recipes = list(pool)
    while len(recipes) < count:
        recipes.append(derive_recipe(pool or [Recipe(0, (), 0)], rng))
    return recipes


def derive_recipe(pool: list[Recipe], rng: random.Random) -> Recipe:
    """A mutation of a pool recipe: fresh seeds for its mutations, sometimes one more or one fewer."""
    parent = rng.choice(pool)
    mutations = [(name, rng.getrandbits(32)) for name, _ in parent.mutations]
    if rng.random() < 0.3:
        mutations.append((rng.choice(MUTATIONS), rng.getrandbits(32)))
    if mutations and rng.random() < 0.2:
        mutations.pop(rng.randrange(len(mutations)))
    base = rng.randrange(64) if rng.random() < 0.3 else parent.base
    # A megabyte probe is not copied: its share of a long run stays what WIRE_KINDS gives it.
    heavy = wire_kind(parent.wire).startswith(("oversize", "at_limit"))
    wire = rng.randrange(1000) if heavy or rng.random() < 0.3 else parent.wire
    return Recipe(base, tuple(mutations[:4]), wire)
