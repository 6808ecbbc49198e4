"""Which Surprise algorithms to compare, with which hyper-parameters, and what each would cost.

A grid is Surprise's `param_grid` format per algorithm (lists of values; `sim_options` and
`bsl_options` as dicts of lists), plus optional `folds`, `subsample_users`,
`subsample_ratings` and `max_fit_seconds`. `quick` compares every algorithm in a couple of
minutes on a fixed-seed subsample of whole users (about 80k ratings); `full` runs on all
kept ratings and widens the reference's SVD grid (n_factors 100-150, reg_all 0.09-0.15)
past its edge. A user's own grid is a JSON/YAML file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import surprise

from songrec.models.errors import ModelError

ALGORITHMS: dict[str, type] = {
    name: getattr(surprise, name)
    for name in (
        "NormalPredictor",
        "BaselineOnly",
        "SVD",
        "SVDpp",
        "NMF",
        "SlopeOne",
        "CoClustering",
        "KNNBasic",
        "KNNBaseline",
        "KNNWithMeans",
        "KNNWithZScore",
    )
}
# These print progress to stdout unless told otherwise; the CLI owns the terminal.
_QUIET = {"BaselineOnly", "KNNBasic", "KNNBaseline", "KNNWithMeans", "KNNWithZScore"}
_NESTED = ("sim_options", "bsl_options")

QUICK = {
    "folds": 3,
    "subsample_ratings": 80_000,
    "max_fit_seconds": 120,
    "algorithms": {
        "NormalPredictor": {},
        "BaselineOnly": {},
        "SVD": {"n_factors": [50, 150], "reg_all": [0.05, 0.1], "n_epochs": [20]},
        "SVDpp": {"n_factors": [10], "n_epochs": [10]},
        "NMF": {"n_factors": [15], "n_epochs": [50]},
        "SlopeOne": {},
        "CoClustering": {"n_cltr_u": [3], "n_cltr_i": [3]},
        # User-based: a 10k-song item-item similarity costs GBs and a minute; `full` has both.
        "KNNBaseline": {
            "k": [40],
            "sim_options": {"name": ["pearson_baseline"], "user_based": [True]},
        },
        "KNNWithMeans": {
            "k": [40],
            "sim_options": {"name": ["msd", "cosine"], "user_based": [True]},
        },
    },
}
FULL = {
    "folds": 5,
    "max_fit_seconds": 1800,
    "algorithms": {
        "NormalPredictor": {},
        "BaselineOnly": {"bsl_options": {"method": ["als", "sgd"]}},
        "SVD": {
            "n_factors": [100, 150, 200],
            "reg_all": [0.05, 0.1, 0.15],
            "lr_all": [0.005, 0.01],
            "n_epochs": [20, 40],
        },
        "SVDpp": {"n_factors": [20, 50]},
        "NMF": {"n_factors": [15, 50], "n_epochs": [50]},
        "SlopeOne": {},
        "CoClustering": {"n_cltr_u": [3, 5], "n_cltr_i": [3, 5]},
        "KNNBaseline": {
            "k": [20, 40],
            "sim_options": {"name": ["pearson_baseline", "msd"], "user_based": [True, False]},
        },
        "KNNWithMeans": {
            "k": [20, 40],
            "sim_options": {"name": ["msd", "cosine", "pearson"], "user_based": [True, False]},
        },
    },
}
BUILTIN = {"quick": QUICK, "full": FULL}


@dataclass(frozen=True)
class Grid:
    """A parsed grid: algorithm -> Surprise param_grid, and how to run it."""

    name: str
    algorithms: dict[str, dict]
    folds: int | None = None
    subsample_users: int | None = None
    subsample_ratings: int | None = None
    max_fit_seconds: float | None = None
    extra: dict = field(default_factory=dict)
    # The ranking model's validation grid (models.ranking.validate); None: its default.
    ranking: dict | None = None

    def combinations(self, algorithm: str) -> list[dict]:
        """Every hyper-parameter combination of one algorithm, nested options expanded."""
        return expand(self.algorithms[algorithm], quiet=algorithm in _QUIET)

    def size(self) -> int:
        """Number of (algorithm, combination) pairs: the length of the progress bar."""
        return sum(len(self.combinations(a)) for a in self.algorithms)


def _as_list(value: object, where: str) -> list:
    if isinstance(value, list):
        if not value:
            raise ModelError(f"grid: {where} is an empty list")
        return value
    if isinstance(value, dict):
        raise ModelError(f"grid: {where} must be a list of values, not a mapping")
    return [value]


def expand(param_grid: dict, quiet: bool = False) -> list[dict]:
    """Surprise's param_grid -> the list of combinations GridSearchCV would try."""
    keys, choices = [], []
    for key, value in param_grid.items():
        keys.append(key)
        if key in _NESTED:
            if not isinstance(value, dict):
                raise ModelError(f"grid: {key} must be a mapping of option -> list of values")
            names = list(value)
            lists = [_as_list(value[n], f"{key}.{n}") for n in names]
            choices.append([dict(zip(names, combo, strict=True)) for combo in product(*lists)])
        else:
            choices.append(_as_list(value, key))
    combos = [dict(zip(keys, combo, strict=True)) for combo in product(*choices)]
    if quiet:
        combos = [{"verbose": False, **c} for c in combos]
    return combos


def parse_grid(spec: dict, name: str) -> Grid:
    """Check a grid mapping (algorithm names, list values, SVD present) and wrap it."""
    if not isinstance(spec, dict):
        raise ModelError(f"grid {name}: expected a mapping at the top level")
    algorithms = spec.get("algorithms", spec)
    extra_keys = {
        "folds",
        "subsample_users",
        "subsample_ratings",
        "max_fit_seconds",
        "algorithms",
        "ranking",
    }
    if "algorithms" not in spec:
        algorithms = {k: v for k, v in spec.items() if k not in extra_keys}
    if not isinstance(algorithms, dict) or not algorithms:
        raise ModelError(f"grid {name}: no algorithms listed")
    for algo, params in algorithms.items():
        if algo not in ALGORITHMS:
            raise ModelError(
                f"grid {name}: unknown algorithm {algo!r}; choose from {', '.join(ALGORITHMS)}"
            )
        if not isinstance(params, dict):
            raise ModelError(f"grid {name}: {algo} needs a mapping of parameter -> list")
        for combo in expand(params):
            try:
                ALGORITHMS[algo](**combo)
            except TypeError as exc:
                raise ModelError(f"grid {name}: {algo}: {exc}") from None
    if "SVD" not in algorithms:
        raise ModelError(f"grid {name}: must include SVD (the model songrec ships)")
    folds = spec.get("folds")
    users = spec.get("subsample_users")
    ratings = spec.get("subsample_ratings")
    limit = spec.get("max_fit_seconds")
    for key, value in (
        ("folds", folds),
        ("subsample_users", users),
        ("subsample_ratings", ratings),
    ):
        if value is not None and (not isinstance(value, int) or value < 2):
            raise ModelError(f"grid {name}: {key} must be an integer >= 2")
    ranking = spec.get("ranking")
    if ranking is not None and not isinstance(ranking, dict):
        raise ModelError(f"grid {name}: ranking must be a mapping of parameter -> list")
    return Grid(
        name, algorithms, folds, users, ratings, float(limit) if limit else None, ranking=ranking
    )


def load_grid(grid: str) -> Grid:
    """`quick`, `full`, or the path of a JSON/YAML grid file."""
    if grid in BUILTIN:
        return parse_grid(BUILTIN[grid], grid)
    path = Path(grid)
    if not path.is_file():
        raise ModelError(f"--grid {grid!r}: not quick, full, or an existing JSON/YAML file")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            spec = yaml.safe_load(text)
        else:
            spec = json.loads(text)
    except Exception as exc:  # json and yaml raise different types
        raise ModelError(f"grid file {path} is not valid: {exc}".splitlines()[0]) from None
    return parse_grid(spec, path.name)
