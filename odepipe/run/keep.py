"""Which weights a run keeps: ``train.keep: best`` chooses among the periodic evaluations on the
data source's ``valid`` split by ``train.select``, ``last`` keeps the final step's.

The choice is honest only because it never looks at the test split: ``train.select`` must name
a validation metric, and the test metrics in summary.json are those of the kept weights.

Which way a metric improves is read from its name, by one explicit rule
(:func:`direction`): the words of the name, split at ``_`` after the ``valid_`` prefix, are
scanned from the first; the first word in :data:`LOWER_IS_BETTER` or :data:`HIGHER_IS_BETTER`
decides (``extrap_mse`` -> lower, ``elbo_at_mean`` -> higher, ``nll_per_token`` -> lower). A
name with neither kind of word cannot be selected by: the error says so and lists the ones that
can.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence

from ..errors import RecipeError

if TYPE_CHECKING:  # recipe validation imports this module: no torch import at run time
    import torch

#: the prefix of every metric of the validation split (``evaluate(split="valid")``)
PREFIX = "valid_"
#: words of a metric name that make lower values better (losses, errors, surprisal)
LOWER_IS_BETTER = ("loss", "mse", "rmse", "mae", "nll", "perplexity", "error", "bpd")
#: words of a metric name that make higher values better (bounds, likelihoods, scores)
HIGHER_IS_BETTER = ("elbo", "lik", "likelihood", "accuracy", "acc", "auc", "f1", "bleu")
#: the default ``train.select``: extrapolation error when the source scores it on valid ...
DEFAULT_SERIES = "valid_extrap_mse"
#: ... else the validation ELBO at the posterior mean (the negative of the validation loss
#: with beta 1 and z0 at its mean: deterministic, so two evaluations of one model agree)
DEFAULT_LOSS = "valid_elbo_at_mean"


def metric_name(select: str) -> str:
    """``train.select`` as the metric's full name: ``extrap_mse`` and ``valid_extrap_mse`` are
    the same metric."""
    return select if select.startswith(PREFIX) else PREFIX + select


def direction(metric: str) -> Optional[str]:
    """``"min"`` when lower values of ``metric`` are better, ``"max"`` when higher ones are,
    None when its name does not say (see the module's rule)."""
    name = metric[len(PREFIX) :] if metric.startswith(PREFIX) else metric
    for word in name.lower().split("_"):
        if word in LOWER_IS_BETTER:
            return "min"
        if word in HIGHER_IS_BETTER:
            return "max"
    return None


def check_select(select: Optional[str]) -> List[str]:
    """Problems with a ``train.select`` value that need no data to see (for recipe
    validation): another split's metric, or a name whose better direction is unknown."""
    if select is None:
        return []
    for split in ("test_", "train_"):
        if select.startswith(split):
            return [
                f"train.select={select} names a metric of the {split[:-1]} split; the "
                f"kept weights are chosen on the valid split alone (the test metrics are "
                f"reported for them), e.g. train.select={PREFIX}{select[len(split) :]}"
            ]
    if direction(metric_name(select)) is None:
        return [
            f"train.select={select}: cannot tell whether lower or higher is better from the "
            f"name; select a metric whose name holds one of "
            f"{', '.join(LOWER_IS_BETTER)} (lower is better) or "
            f"{', '.join(HIGHER_IS_BETTER)} (higher is better)"
        ]
    return []


def resolve_select(select: Optional[str], metrics: Mapping[str, float], source: str = "") -> str:
    """The metric ``train.select`` names among ``metrics`` (a validation evaluation), or the
    default; RecipeError listing the selectable metrics when it is not there."""
    if select is None:
        return DEFAULT_SERIES if DEFAULT_SERIES in metrics else DEFAULT_LOSS
    name = metric_name(select)
    if name not in metrics:
        available = selectable(metrics)
        raise RecipeError(
            [
                f"train.select={select}: the valid split reports no {name}; available: "
                f"{', '.join(available) or '(none)'}"
            ],
            source or None,
        )
    return name


def selectable(metrics: Mapping[str, float]) -> List[str]:
    """The validation metrics that :func:`direction` can rank, sorted."""
    return sorted(k for k in metrics if k.startswith(PREFIX) and direction(k) is not None)


class Selection:
    """The best evaluation so far by one metric: its step, its value and a copy of its weights.

    Ties keep the earlier step; a non-finite value is never chosen. ``evaluated_step`` is the
    last step offered, so the end of a run knows whether its final step was evaluated."""

    def __init__(self, metric: str):
        mode = direction(metric)
        assert mode is not None, metric  # check_select / resolve_select ruled it out
        self.metric, self.mode = metric, mode
        self.step: Optional[int] = None
        self.value: Optional[float] = None
        self.weights: Optional[Dict[str, "torch.Tensor"]] = None
        self.evaluated_step = -1

    def improves(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.value is None:
            return True
        return value < self.value if self.mode == "min" else value > self.value

    def offer(self, step: int, metrics: Mapping[str, float], model: "torch.nn.Module") -> bool:
        """Records an evaluation at ``step``; True (and a copy of the weights) when it is the
        new best."""
        self.evaluated_step = step
        value = float(metrics[self.metric])
        if not self.improves(value):
            return False
        self.step, self.value = step, value
        self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return True

    def state(self) -> Dict[str, object]:
        """Plain values and tensors for the checkpoint (``weights_only`` loading)."""
        return {
            "metric": self.metric,
            "step": self.step,
            "value": self.value,
            "evaluated_step": self.evaluated_step,
            "model": self.weights,
        }

    def best_file(self, recipe_yaml: str, name: str) -> Dict[str, object]:
        """What best.pt holds: the chosen weights, their step, the metric and its value, and
        the run's recipe and name (a checkpoint without optimizer: it cannot be resumed)."""
        assert self.weights is not None
        return {
            "step": self.step,
            "metric": self.metric,
            "value": self.value,
            "model": self.weights,
            "recipe": recipe_yaml,
            "name": name,
        }

    def summary(self, last_step: int) -> Dict[str, object]:
        """summary.json's ``kept``, ``kept_step``, ``selected_by`` and ``selected_value``; the
        last weights, with a warning, when no evaluation gave a finite value."""
        if self.weights is None:
            import warnings

            warnings.warn(
                f"odepipe: no validation evaluation gave a finite {self.metric}; the run "
                f"keeps its last weights",
                stacklevel=3,
            )
            return {"kept": "last", "kept_step": last_step, "selected_by": None}
        return {
            "kept": "best",
            "kept_step": self.step,
            "selected_by": self.metric,
            "selected_value": self.value,
        }

    def resumed(self, recorded: object, step: int) -> "Selection":
        """The choice to continue from a checkpoint's ``best`` (:meth:`state`): the recorded
        one when it ranks by this metric; else this fresh one (with a warning when the run had
        chosen by another metric: the choice starts again at ``step``)."""
        if not isinstance(recorded, dict):
            return self
        previous = Selection.from_state(recorded)
        if previous.metric == self.metric:
            return previous
        import warnings

        warnings.warn(
            f"odepipe: the run chose its best weights by {previous.metric} (step "
            f"{previous.step}); resumed with train.select={self.metric}, the choice starts "
            f"again from step {step}",
            stacklevel=3,
        )
        return self

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> "Selection":
        selection = cls(str(state["metric"]))
        step, value = state.get("step"), state.get("value")
        selection.step = int(step) if isinstance(step, int) else None
        selection.value = float(value) if isinstance(value, (int, float)) else None
        evaluated = state.get("evaluated_step", -1)
        selection.evaluated_step = int(evaluated) if isinstance(evaluated, int) else -1
        weights = state.get("model")
        selection.weights = dict(weights) if isinstance(weights, dict) else None
        return selection


def require_valid_split(keep: str, splits: Sequence[str], source: str = "") -> None:
    """RecipeError, before any training, when ``train.keep=best`` has nothing to choose from."""
    if keep != "best" or "valid" in splits:
        return
    raise RecipeError(
        [
            f"train.keep=best chooses the weights on the data source's valid split, but this "
            f"source has only the splits {', '.join(splits)}; use train.keep=last, or a data "
            f"source with a valid split"
        ],
        source or None,
    )
