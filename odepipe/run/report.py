"""The few lines ``odepipe run`` prints when a run ends: how far it got and why it stopped,
how long it took, which step's weights it kept, the headline test figures (of those weights)
by name, and where the folder and plots are."""

from __future__ import annotations

import os
from typing import Any, Dict, List

from .folder import Run


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def stop_reason(summary: Dict[str, Any], max_seconds: Any = None) -> str:
    """ "all planned steps" or the time limit that ended the run early."""
    if summary.get("stopped_because") == "max_seconds":
        limit = f"={max_seconds:g}" if isinstance(max_seconds, (int, float)) else ""
        return f"stopped early: train.max_seconds{limit} reached"
    return "all planned steps done"


def describe(summary: Dict[str, Any], run: Run, max_seconds: Any = None) -> List[str]:
    """Human-readable lines for the end of a run (the JSON is ``odepipe run --json``)."""
    steps, planned = summary.get("steps"), summary.get("steps_planned", summary.get("steps"))
    lines = [
        f"{summary.get('recipe', 'run')}: {steps} of {planned} steps, "
        f"{stop_reason(summary, max_seconds)}; "
        f"{_duration(float(summary.get('seconds') or 0))} on {summary.get('device', '?')}"
        + (f" x{summary['processes']}" if summary.get("processes", 1) > 1 else "")
    ]
    kept = kept_weights(summary)
    if kept:
        lines.append(kept)
    figures = [
        (k, v)
        for k, v in summary.items()
        if k.startswith("test_") and (isinstance(v, (int, float)) or v is None)
    ]
    if figures:
        width = max(len(k) for k, _ in figures)
        step = summary.get("kept_step")
        lines.append("test metrics" + (f" (weights of step {step}):" if step is not None else ":"))
        lines += [f"  {k:<{width}}  {_number(v)}" for k, v in figures]
    lines.append(f"run folder: {run.path}")
    plots = run.plots()
    if plots:
        lines.append(f"plots: {', '.join(os.path.relpath(p) for p in plots)}")
    if summary.get("stopped_because") == "max_seconds":
        lines.append(f"continue it: odepipe run --resume {run.path} train.max_seconds=null")
    return lines


def kept_weights(summary: Dict[str, Any]) -> str:
    """Which weights the figures are of: ``kept: best weights from step 1200 of 2000, by
    valid_extrap_mse=0.0512`` or ``kept: last weights (step 2000)``; empty for a summary
    written before runs recorded it."""
    step = summary.get("kept_step")
    if step is None:
        return ""
    if summary.get("kept") == "best":
        by = summary.get("selected_by")
        return (
            f"kept: best weights from step {step} of {summary.get('steps')}, by "
            f"{by}={_number(summary.get('selected_value'))} (best.pt)"
        )
    return f"kept: last weights (step {step})"


def _number(value: Any) -> str:
    if value is None:
        return "n/a (not finite)"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.4g}"
