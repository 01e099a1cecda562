"""Butcher tableaus of the explicit Runge-Kutta methods the engine knows, as plain floats.

Stored as Python floats (float64) and turned into ``torch.add(..., alpha=a * dt)`` calls by the
steppers: one fused multiply-add per non-zero coefficient, no tensor per coefficient. Names follow
torchdiffeq's, so a recipe switching backend keeps its method string; in particular torchdiffeq's
``rk4`` is Kutta's 3/8 rule (``rk4_alt_step_func``), available here as ``rk4``/``rk38``, while
the textbook method is ``rk4_classic``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple


@dataclass(frozen=True)
class Tableau:
    """An explicit RK method: nodes ``c``, lower-triangular ``a`` (row i has i entries),
    weights ``b``; for embedded pairs ``e`` = b - b_hat (error weights) and ``mid`` (weights of
    y(t0 + dt/2), used by the 4th-order dense output). ``fsal``: the last stage is f(t1, y1)."""

    name: str
    order: int
    c: Tuple[float, ...]
    a: Tuple[Tuple[float, ...], ...]
    b: Tuple[float, ...]
    e: Optional[Tuple[float, ...]] = None
    mid: Optional[Tuple[float, ...]] = None
    fsal: bool = False
    a_nz: Tuple[Tuple[Tuple[int, float], ...], ...] = field(init=False, repr=False)
    b_nz: Tuple[Tuple[int, float], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        nz = tuple(tuple((j, v) for j, v in enumerate(row) if v != 0.0) for row in self.a)
        object.__setattr__(self, "a_nz", ((),) + nz)
        object.__setattr__(self, "b_nz", tuple((j, v) for j, v in enumerate(self.b) if v != 0.0))

    @property
    def stages(self) -> int:
        return len(self.c)

    def without_fsal_stage(self) -> "Tableau":
        """The same method with its first-same-as-last stage dropped: on a fixed grid that stage
        is just the next step's first evaluation, and dropping it spares the final step one
        evaluation it would never use."""
        if not self.fsal:
            return self
        return Tableau(self.name, self.order, self.c[:-1], self.a[:-1], self.b[:-1])


def _t(rows: List[List[float]]) -> Tuple[Tuple[float, ...], ...]:
    return tuple(tuple(r) for r in rows)


EULER = Tableau("euler", 1, (0.0,), (), (1.0,))
MIDPOINT = Tableau("midpoint", 2, (0.0, 0.5), _t([[0.5]]), (0.0, 1.0))
HEUN2 = Tableau("heun2", 2, (0.0, 1.0), _t([[1.0]]), (0.5, 0.5))
HEUN3 = Tableau("heun3", 3, (0.0, 1 / 3, 2 / 3), _t([[1 / 3], [0.0, 2 / 3]]), (0.25, 0.0, 0.75))
RK38 = Tableau(
    "rk38",
    4,
    (0.0, 1 / 3, 2 / 3, 1.0),
    _t([[1 / 3], [-1 / 3, 1.0], [1.0, -1.0, 1.0]]),
    (0.125, 0.375, 0.375, 0.125),
)
RK4_CLASSIC = Tableau(
    "rk4_classic",
    4,
    (0.0, 0.5, 0.5, 1.0),
    _t([[0.5], [0.0, 0.5], [0.0, 0.0, 1.0]]),
    (1 / 6, 1 / 3, 1 / 3, 1 / 6),
)

_DP_B = [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]
DOPRI5 = Tableau(
    "dopri5",
    5,
    (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    _t(
        [
            [1 / 5],
            [3 / 40, 9 / 40],
            [44 / 45, -56 / 15, 32 / 9],
            [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
            [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
            _DP_B,
        ]
    ),
    tuple(_DP_B + [0.0]),
    # error weights b - b_hat, b_hat the 4th-order solution of the pair
    tuple(
        b - h
        for b, h in zip(
            _DP_B + [0.0],
            [1951 / 21600, 0.0, 22642 / 50085, 451 / 720, -12231 / 42400, 649 / 6300, 1 / 60],
        )
    ),
    # Shampine's midpoint weights (halved, as torchdiffeq's DPS_C_MID)
    (
        6025192743 / 30085553152 / 2,
        0.0,
        51252292925 / 65400821598 / 2,
        -2691868925 / 45128329728 / 2,
        187940372067 / 1594534317056 / 2,
        -1776094331 / 19743644256 / 2,
        11237099 / 235043384 / 2,
    ),
    fsal=True,
)

_BS_B = [2 / 9, 1 / 3, 4 / 9]
BOSH3 = Tableau(
    "bosh3",
    3,
    (0.0, 0.5, 0.75, 1.0),
    _t([[0.5], [0.0, 0.75], _BS_B]),
    tuple(_BS_B + [0.0]),
    (2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8),
    (0.0, 0.5, 0.0, 0.0),
    fsal=True,
)

# Tsitouras (2011), "Runge-Kutta pairs of order 5(4) satisfying only the first column
# simplifying assumption", Table 1 (the constants published there).
_TS_B = [
    0.09646076681806523,
    0.01,
    0.4798896504144996,
    1.379008574103742,
    -3.290069515436081,
    2.324710524099774,
]
_TS_B_HAT = [
    0.09468075576583945,
    0.009183565540343254,
    0.4877705284247616,
    1.234297566930479,
    -2.7077123499835256,
    1.866628418170587,
    1 / 66,
]


def _tsit5_dense(theta: float) -> List[float]:
    """Tsitouras' continuous-extension weights b_i(theta); only theta = 1/2 is used, as the
    midpoint of the 4th-order dense output (what odepipe's torchdiffeq tsit5 plugin does)."""
    t = theta
    return [
        -1.0530884977290216
        * t
        * (t - 1.3299890189751412)
        * (t**2 - 1.4364028541716351 * t + 0.7139816917074209),
        0.1017 * t**2 * (t**2 - 2.1966568338249754 * t + 1.2949852507374631),
        2.490627285651252793 * t**2 * (t**2 - 2.38535645472061657 * t + 1.57803468208092486),
        -16.54810288924490272 * (t - 1.21712927295533244) * (t - 0.61620406037800089) * t**2,
        47.37952196281928122 * (t - 1.203071208372362603) * (t - 0.658047292653547382) * t**2,
        -34.87065786149660974 * (t - 1.2) * (t - 0.666666666666666667) * t**2,
        2.5 * (t - 1) * (t - 0.6) * t**2,
    ]


TSIT5 = Tableau(
    "tsit5",
    5,
    (0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0),
    _t(
        [
            [0.161],
            [-0.008480655492356989, 0.335480655492357],
            [2.8971530571054935, -6.359448489975075, 4.3622954328695815],
            [5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
            [
                5.86145544294642,
                -12.92096931784711,
                8.159367898576159,
                -0.071584973281401,
                -0.028269050394068383,
            ],
            _TS_B,
        ]
    ),
    tuple(_TS_B + [0.0]),
    tuple(b - h for b, h in zip(_TS_B + [0.0], _TS_B_HAT)),
    tuple(_tsit5_dense(0.5)),
    fsal=True,
)

FIXED: Dict[str, Tableau] = {
    "euler": EULER,
    "midpoint": MIDPOINT,
    "heun2": HEUN2,
    "heun": HEUN2,
    "heun3": HEUN3,
    "rk4": RK38,
    "rk38": RK38,
    "rk4_classic": RK4_CLASSIC,
    # embedded pairs stepped on a fixed grid (their error estimate is unused)
    "bosh3": BOSH3,
    "dopri5": DOPRI5,
    "tsit5": TSIT5,
}
ADAPTIVE: Dict[str, Tableau] = {"bosh3": BOSH3, "dopri5": DOPRI5, "tsit5": TSIT5}


def lookup(method: str, table: Dict[str, Tableau], kind: str) -> Tableau:
    """The tableau of ``method``, or a ValueError that lists the names ``kind`` accepts."""
    try:
        return table[method]
    except KeyError:
        raise ValueError(
            f"unknown {kind} method {method!r}; choose one of {', '.join(sorted(table))}"
        ) from None
