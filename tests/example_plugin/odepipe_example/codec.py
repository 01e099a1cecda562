"""The CSV codec of the oscillator source: what ``odepipe extrapolate`` needs to read a user's
seed series and write the prediction (declared by subclassing ``odepipe.SeriesCodecSource``).

The model was trained on raw positions and velocities from t = 0, so file units are model units:
values pass unchanged and each series' time is measured from its own first row.
"""
from __future__ import annotations

import dataclasses
from typing import Any, List, Sequence

import numpy as np
import torch

from odepipe import Batch


@dataclasses.dataclass
class OscillatorCodec:
    """Columns ``series, time, x, v``; identity values; time from each series' first row."""

    features: List[str] = dataclasses.field(default_factory=lambda: ["x", "v"])
    time_scale: float = 1.0
    id_column: str = "series"
    time_column: str = "time"

    def encode_values(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=float)

    def decode_values(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=float)

    def to_batch(self, series: Sequence[Any]) -> Batch:
        """Series with ``times (n,)`` and ``values (n, 2)`` (NaN where missing) -> one Batch on
        per-sample relative grids, padded with masked points after a short series' end."""
        B, T = len(series), max(len(s.times) for s in series)
        times, values, mask = np.zeros((B, T)), np.zeros((B, T, 2)), np.zeros((B, T, 2))
        for i, s in enumerate(series):
            n = len(s.times)
            rel = (np.asarray(s.times, dtype=float) - s.times[0]) / self.time_scale
            times[i, :n] = rel
            times[i, n:] = rel[-1] + 1e-3 * np.arange(1, T - n + 1)  # kept increasing, masked
            v = np.asarray(s.values, dtype=float)
            values[i, :n] = np.nan_to_num(v)
            mask[i, :n] = ~np.isnan(v)
        f32 = torch.float32
        return Batch(times=torch.tensor(times, dtype=f32), values=torch.tensor(values, dtype=f32),
                     mask=torch.tensor(mask, dtype=f32))
