"""Series in long-format CSV (series id, time, one column per feature): reading with errors
that name the file, line and column; the codec between file units and model units; writing
of predictions; decoding draws from the prior (figures: :mod:`.series_plot`).

Shared by the ``csv`` source, the spiral sources and the ``extrapolate``/``sample`` commands,
so a CSV that ``odepipe sample`` writes is one that ``odepipe extrapolate`` reads back.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import difflib
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import odepipe
from odepipe import Batch

#: cell values read as "missing" (case-insensitive), besides an empty cell
MISSING = frozenset({"", "na", "nan", "n/a", "null", "none", "?"})
#: model-time gap between the masked points that pad a short series to the batch's length
PAD_GAP = 1e-3


@dataclasses.dataclass
class Series:
    """One series: ``times`` (n,) sorted, ``values`` (n, D) with NaN where missing."""

    id: str
    times: np.ndarray
    values: np.ndarray
    lines: List[int]  # the file line of every row, for error messages


def _close(word: str, options: Sequence[str]) -> str:
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _number(cell: str) -> float:
    value = float(cell)
    if math.isinf(value):
        raise ValueError("infinite")
    return value


def read_long_csv(
    path: str,
    id_column: str = "series",
    time_column: str = "time",
    features: Optional[Sequence[str]] = None,
    key: str = "data.path",
    fix_columns: str = "set data.{option}",
    max_points: Optional[int] = None,
) -> Tuple[List[str], List[Series]]:
    """Reads a long-format CSV into (feature names, series sorted by first appearance).

    Every problem raises :class:`odepipe.DataError` naming the file, the line (the header is
    line 1) and the column, and saying how to fix it (``key``: where the path came from;
    ``fix_columns``: the fix for a missing column, ``{option}`` being id_column, time_column
    or features). Missing values (an empty cell, NA, NaN,
    null, ?) are allowed in feature columns; rows whose features are all missing are dropped.
    A series of more than ``max_points`` rows is refused before any row is parsed.
    """
    if not os.path.isfile(path):
        raise odepipe.DataError(f"{path}: no such file; set {key} to an existing CSV file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as exc:
        raise odepipe.DataError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8 CSV"
        ) from None
    except csv.Error as exc:
        raise odepipe.DataError(f"{path}: not a readable CSV file ({exc})") from None
    numbered = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not numbered:
        raise odepipe.DataError(
            f"{path}: the file is empty; it needs a header line such as "
            f"'{id_column},{time_column},x' and one row per observation"
        )
    header_line, header = numbered[0]
    header = [h.strip() for h in header]
    for name, what, option in (
        (id_column, "series id", "id_column"),
        (time_column, "time", "time_column"),
    ):
        if name not in header:
            raise odepipe.DataError(
                f"{path}: line {header_line} (the header) has no {what} column '{name}'"
                f"{_close(name, header)}; columns are: {', '.join(header)}. Rename the column or "
                f"{fix_columns.format(option=option)}"
            )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise odepipe.DataError(
            f"{path}: line {header_line}: column name(s) "
            f"{', '.join(dupes)} appear more than once; rename them"
        )
    if features is None or len(features) == 0:
        features = [h for h in header if h not in (id_column, time_column) and h]
    else:
        for name in features:
            if name not in header:
                raise odepipe.DataError(
                    f"{path}: line {header_line} (the header) has no feature column '{name}'"
                    f"{_close(name, header)}; columns are: {', '.join(header)}. Add the column or "
                    f"{fix_columns.format(option='features')}"
                )
    if not features:
        raise odepipe.DataError(
            f"{path}: no feature columns besides '{id_column}' and "
            f"'{time_column}'; add at least one column of values"
        )
    cols = {h: header.index(h) for h in header}
    if max_points is not None:
        _check_lengths(path, numbered[1:], cols[id_column], max_points)
    raw: Dict[str, List[Tuple[float, List[float], int]]] = {}
    for line, row in numbered[1:]:
        if len(row) != len(header):
            raise odepipe.DataError(
                f"{path}: line {line} has {len(row)} fields but the header "
                f"has {len(header)}; every row needs exactly one value per "
                f"column (leave a cell empty for a missing value)"
            )
        sid = row[cols[id_column]].strip()
        if not sid:
            raise odepipe.DataError(
                f"{path}: line {line}, column '{id_column}': the series id "
                f"is empty; give every row the id of its series"
            )
        cell = row[cols[time_column]].strip()
        try:
            t = _number(cell)
            if math.isnan(t):
                raise ValueError("nan")
        except ValueError:
            raise odepipe.DataError(
                f"{path}: line {line}, column '{time_column}': {cell!r} is "
                f"not a finite number; every row needs a numeric time"
            ) from None
        values = []
        for name in features:
            cell = row[cols[name]].strip()
            if cell.lower() in MISSING:
                values.append(math.nan)
                continue
            try:
                values.append(_number(cell))
            except ValueError as exc:
                what = (
                    "is infinite (or beyond float64's range); write a finite number (rescale "
                    "the column if its values are that large)"
                    if str(exc) == "infinite"
                    else "is not a number; write a number"
                )
                raise odepipe.DataError(
                    f"{path}: line {line}, column '{name}': {cell!r} {what}, or leave the cell "
                    f"empty (or NA) for a missing value"
                ) from None
        raw.setdefault(sid, []).append((t, values, line))
    series = []
    for sid, points in raw.items():
        points.sort(key=lambda p: p[0])
        for (t0, _, l0), (t1, _, l1) in zip(points, points[1:]):
            if t0 == t1:
                raise odepipe.DataError(
                    f"{path}: line {l1}: series '{sid}' has time {t1:g} "
                    f"twice (also line {l0}); merge or remove one row"
                )
        table = np.array([p[1] for p in points], dtype=np.float64).reshape(len(points), -1)
        keep = np.asarray(~np.isnan(table).all(1))
        if keep.any():
            series.append(
                Series(
                    sid,
                    np.array([p[0] for p in points])[keep],
                    table[keep],
                    [p[2] for p, k in zip(points, keep.tolist()) if k],
                )
            )
    if not series:
        raise odepipe.DataError(
            f"{path}: no row has an observed value in the feature columns "
            f"{', '.join(features)}; the file holds no data"
        )
    return list(features), series


def _check_lengths(
    path: str, rows: Sequence[Tuple[int, List[str]]], id_index: int, max_points: int
) -> None:
    """Refuses a series longer than ``max_points`` rows: the encoders read a series point by
    point, so a training step costs time in proportion to the longest series of its batch
    (csv_example's model, one thread: 0.68 s a step at 500 points, 2.65 s at 2,000)."""
    counts = collections.Counter(r[id_index].strip() for _, r in rows if len(r) > id_index)
    if not counts:
        return
    sid, n = counts.most_common(1)[0]
    if n > max_points:
        raise odepipe.DataError(
            f"{path}: series '{sid}' has {n:,} rows, more than data.max_points={max_points:,}. "
            f"The encoders read a series point by point, so a training step costs about 1 s "
            f"per 1,000 points of its longest series on one CPU thread (about {n // 1000:,} s "
            f"a step for this one). Cut it into windows of at most {max_points:,} rows, each "
            f"with its own id in the series column (e.g. '{sid}_0', '{sid}_1', ...), which "
            f"also gives the valid and test splits series to hold out; or raise "
            f"data.max_points"
        )


@dataclasses.dataclass
class SeriesCodec:
    """File units <-> model units: per-feature normalization and the time unit.

    Model time is each series' own time since its first row, divided by ``time_scale``; model
    values are ``(value - mean) / std``.
    """

    features: List[str]
    mean: List[float]
    std: List[float]
    time_scale: float = 1.0
    id_column: str = "series"
    time_column: str = "time"

    @classmethod
    def identity(cls, features: Sequence[str]) -> "SeriesCodec":
        return cls(list(features), [0.0] * len(features), [1.0] * len(features))

    def state(self) -> Dict[str, Any]:
        """Plain values, for summary.json and for checking a reloaded run."""
        return {
            "features": list(self.features),
            "mean": [round(m, 10) for m in self.mean],
            "std": [round(s, 10) for s in self.std],
            "time_scale": round(self.time_scale, 10),
        }

    def encode_values(self, values: np.ndarray) -> np.ndarray:
        return (values - np.asarray(self.mean)) / np.asarray(self.std)

    def decode_values(self, values: np.ndarray) -> np.ndarray:
        return values * np.asarray(self.std) + np.asarray(self.mean)

    def to_batch(self, series: Sequence[Series]) -> Batch:
        """One Batch: shared times ``(T,)`` when every series has the same relative grid, else
        per-sample ``(B, T)``, a short series padded with masked points ``PAD_GAP`` apart after
        its last time (grids stay strictly increasing); mask ``(B, T, D)``."""
        B, T, D = len(series), max(len(s.times) for s in series), len(self.features)
        times = np.zeros((B, T))
        values = np.zeros((B, T, D))
        mask = np.zeros((B, T, D))
        for i, s in enumerate(series):
            n = len(s.times)
            rel = (s.times - s.times[0]) / self.time_scale
            times[i, :n] = rel
            times[i, n:] = rel[-1] + PAD_GAP * np.arange(1, T - n + 1)  # masked, kept increasing
            v = self.encode_values(s.values)
            observed = ~np.isnan(v)
            values[i, :n] = np.where(observed, v, 0.0)
            mask[i, :n] = observed
        shared = all(len(s.times) == T for s in series) and np.allclose(times, times[:1])
        f32 = torch.float32
        return Batch(
            times=torch.tensor(times[0] if shared else times, dtype=f32),
            values=torch.tensor(values, dtype=f32),
            mask=torch.tensor(mask, dtype=f32),
            extras={"start": torch.tensor([s.times[0] for s in series], dtype=torch.float64)},
        )


def write_long_csv(
    path: str, codec: SeriesCodec, ids: Sequence[str], times: np.ndarray, values: np.ndarray
) -> None:
    """Writes ``values`` (B, T, D) at ``times`` (B, T), in file units, as a long-format CSV."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([codec.id_column, codec.time_column, *codec.features])
        for sid, ts, vs in zip(ids, times, values):
            for t, v in zip(ts, vs):
                writer.writerow([sid, f"{t:.6g}", *(f"{x:.6g}" for x in v)])


@torch.no_grad()
def sample_prior(
    model: Any, codec: SeriesCodec, times: torch.Tensor, n: int, out_dir: Optional[str]
) -> List[str]:
    """Decodes ``n`` draws z0 ~ N(0, I) over ``times`` (model units, ``(T,)``); writes
    ``samples.csv`` and ``samples.png`` into ``out_dir``; one line per draw."""
    device = next(model.parameters()).device
    z0 = torch.randn(n, model.latent_dim).to(device)  # the caller seeds torch
    times = times.to(device)
    zt = model.evolve(z0, times)  # (n, T, L)
    mean = model.decode(zt, Batch(times=times)).mean.cpu().numpy()  # (n, T, D)
    values = codec.decode_values(mean)
    t = np.broadcast_to(times.cpu().numpy() * codec.time_scale, values.shape[:2])
    ids = [f"sample{i}" for i in range(n)]
    lines = []
    for i in range(n):
        first = ", ".join(f"{k}={v:.3g}" for k, v in zip(codec.features, values[i, 0]))
        last = ", ".join(f"{k}={v:.3g}" for k, v in zip(codec.features, values[i, -1]))
        lines.append(
            f"{ids[i]}: {values.shape[1]} points, {codec.time_column} "
            f"{t[i, 0]:g}..{t[i, -1]:g}, first ({first}), last ({last})"
        )
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        write_long_csv(os.path.join(out_dir, "samples.csv"), codec, ids, t, values)
        from .series_plot import Panel, plot_series

        plot_series(
            os.path.join(out_dir, "samples.png"),
            codec,
            [Panel(sid, t[i], values[i]) for i, sid in enumerate(ids)],
            title=f"{n} draws z0 ~ N(0, I) from the prior, decoded (the decoder's mean)",
        )
        lines.append(
            f"wrote {os.path.join(out_dir, 'samples.csv')} and "
            f"{os.path.join(out_dir, 'samples.png')}"
        )
    return lines
