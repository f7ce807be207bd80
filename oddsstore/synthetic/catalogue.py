"""The feed's market catalogue and the price model behind it.

Goals, corners and cards are independent Poisson counts per team (first half 45% of the match's
rate); every market type of :data:`MARKET_TYPES` is priced from those distributions as fair
probabilities per outcome. :mod:`oddsstore.synthetic.feed` turns them into bookmakers' odds over time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import pairwise
from typing import Any

# --- distributions -------------------------------------------------------------------------------


class _Dist:
    """A distribution over the integers ``base .. base + len(pmf) - 1``, with its CDF."""

    __slots__ = ("pmf", "base", "cdf")

    def __init__(self, pmf: list[float], base: int = 0) -> None:
        self.pmf = pmf
        self.base = base
        self.cdf = [0.0] * len(pmf)
        acc = 0.0
        for i, p in enumerate(pmf):
            acc += p
            self.cdf[i] = acc

    def le(self, k: int) -> float:
        """P(value <= k)."""
        i = k - self.base
        return 0.0 if i < 0 else self.cdf[min(i, len(self.cdf) - 1)]

    def eq(self, k: int) -> float:
        i = k - self.base
        return self.pmf[i] if 0 <= i < len(self.pmf) else 0.0


def _poisson(lam: float, top: int) -> list[float]:
    """Poisson probabilities of 0 .. top, the tail folded into ``top``."""
    p = math.exp(-lam)
    out = [p]
    for k in range(1, top):
        p *= lam / k
        out.append(p)
    out.append(max(0.0, 1.0 - sum(out)))
    return out


_G = 10  # goals per team modelled (the tail beyond is folded into 10)


class _Goals:
    """Goal distributions of one period, from the teams' scoring rates."""

    def __init__(self, lh: float, la: float) -> None:
        self.lh, self.la = lh, la
        h, a = _poisson(lh, _G), _poisson(la, _G)
        n = 2 * _G + 1
        diff, total = [0.0] * n, [0.0] * n
        self.rt = [[0.0] * n for _ in range(3)]  # result (1, X, 2) x total goals
        self.bt = [[0.0] * n for _ in range(2)]  # both teams scored (yes, no) x total goals
        self.rb = [[0.0, 0.0] for _ in range(3)]  # result x both teams scored
        for i, ph in enumerate(h):
            for j, pa in enumerate(a):
                p = ph * pa
                r = 0 if i > j else 1 if i == j else 2
                b = 0 if i and j else 1
                diff[i - j + _G] += p
                total[i + j] += p
                self.rt[r][i + j] += p
                self.bt[b][i + j] += p
                self.rb[r][b] += p
        self.home, self.away = _Dist(h), _Dist(a)
        self.teams = (self.home, self.away)
        self.diff, self.total = _Dist(diff, -_G), _Dist(total)


class _Counts:
    """Corner or card distributions of one period: per team, total and home-minus-away."""

    def __init__(self, lh: float, la: float, top: int) -> None:
        h, a = _poisson(lh, top), _poisson(la, top)
        diff = [0.0] * (2 * top + 1)
        for i, ph in enumerate(h):
            for j, pa in enumerate(a):
                diff[i - j + top] += ph * pa
        self.home, self.away = _Dist(h), _Dist(a)
        self.teams = (self.home, self.away)
        self.total = _Dist(_poisson(lh + la, 2 * top))
        self.diff = _Dist(diff, -top)


@dataclass(frozen=True, slots=True)
class _Period:
    """Everything a market of one period is priced from; ``halves`` only for full time."""

    goals: _Goals
    corners: _Counts
    cards: _Counts
    halves: tuple[_Period, _Period] | None = None


@lru_cache(maxsize=4096)
def _period(
    goals: tuple[float, float], corners: tuple[float, float], cards: tuple[float, float], share: float
) -> _Period:
    g = _Goals(goals[0] * share, goals[1] * share)
    c = _Counts(corners[0] * share, corners[1] * share, 12 if share < 1 else 20)
    k = _Counts(cards[0] * share, cards[1] * share, 10)
    return _Period(g, c, k)


def match_model(
    goals: tuple[float, float], corners: tuple[float, float], cards: tuple[float, float]
) -> dict[str, _Period]:
    first, second = (_period(goals, corners, cards, share) for share in (0.45, 0.55))
    full = _period(goals, corners, cards, 1.0)
    return {"FT": replace(full, halves=(first, second)), "1H": first, "2H": second}


# --- pricing helpers: fair probabilities per outcome ---------------------------------------------


def _asian(d: _Dist, threshold: float) -> tuple[float, float]:
    """Two-way bet on ``value > threshold``: stakes back on a tie, quarter lines split in two."""
    parts = (threshold - 0.25, threshold + 0.25) if (threshold * 4) % 2 else (threshold,)
    win = lose = 0.0
    for t in parts:
        low = math.floor(t)
        win += 1.0 - d.le(low)
        lose += d.le(low - 1) if t == low else d.le(low)
    # fair odds are 1 + lose / win, so the implied probability is win / (win + lose)
    return win / (win + lose), lose / (win + lose)


def _three(d: _Dist, shift: float = 0.0) -> tuple[float, float, float]:
    """1 / X / 2 of ``value + shift`` (positive, zero, negative)."""
    k = -int(shift)
    return 1.0 - d.le(k), d.eq(k), d.le(k - 1)


def _yes(p: float) -> tuple[float, float]:
    return p, 1.0 - p


def _odd(d: _Dist) -> tuple[float, float]:
    odd = sum(p for i, p in enumerate(d.pmf) if (i + d.base) % 2)
    return odd, 1.0 - odd


def _buckets(d: _Dist, edges: Sequence[int]) -> tuple[float, ...]:
    """P(value in [edges[i], edges[i+1])) for each i, the last bucket open-ended."""
    out = [d.le(hi - 1) - d.le(lo - 1) for lo, hi in pairwise(edges)]
    return (*out, 1.0 - d.le(edges[-1] - 1))


def _over(row: list[float], line: float) -> float:
    return sum(row[math.floor(line) + 1 :])


def _split(row: list[float], line: float) -> tuple[float, float]:
    """(over, under) ``line`` of one row of a result x total table."""
    over = _over(row, line)
    return over, sum(row) - over


def _double_chance(p: tuple[float, float, float]) -> tuple[float, float, float]:
    home, draw, away = p
    return home + draw, home + away, draw + away


def _winning_margin(d: _Dist) -> tuple[float, ...]:
    return d.eq(1), d.eq(2), 1 - d.le(2), d.eq(0), d.eq(-1), d.eq(-2), d.le(-3)


def _dc_split(pairs: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """Double chance (1X, 12, X2) x a yes/no split, from the split per result (1, X, 2)."""
    (a, b), (c, d), (e, f) = pairs
    return a + c, b + d, a + e, b + f, c + e, d + f


def _first_to_score(g: _Goals) -> tuple[float, float, float]:
    goal = 1.0 - math.exp(-(g.lh + g.la))
    return goal * g.lh / (g.lh + g.la), 1.0 - goal, goal * g.la / (g.lh + g.la)


def _ht_ft(m: _Period) -> tuple[float, ...]:
    assert m.halves is not None
    first, second = (h.goals.diff for h in m.halves)
    out = [0.0] * 9
    for i, p1 in enumerate(first.pmf):
        d1 = i + first.base
        r1 = 0 if d1 > 0 else 1 if d1 == 0 else 2
        for j, p2 in enumerate(second.pmf):
            d = d1 + j + second.base
            out[r1 * 3 + (0 if d > 0 else 1 if d == 0 else 2)] += p1 * p2
    return tuple(out)


def _highest_half(m: _Period) -> tuple[float, float, float]:
    assert m.halves is not None
    first, second = (h.goals.total for h in m.halves)
    more = same = 0.0
    for i, p1 in enumerate(first.pmf):
        more += p1 * second.le(i - 1)
        same += p1 * second.eq(i)
    return more, 1.0 - more - same, same


def _both_halves(m: _Period, event: Callable[[_Period], float], either: bool = False) -> float:
    assert m.halves is not None
    p1, p2 = (event(h) for h in m.halves)
    return 1.0 - (1.0 - p1) * (1.0 - p2) if either else p1 * p2


def _correct_score(g: _Goals, top: int) -> tuple[float, ...]:
    cells = [g.home.pmf[i] * g.away.pmf[j] for i in range(top + 1) for j in range(top + 1)]
    return (*cells, max(0.0, 1.0 - sum(cells)))


# --- the catalogue -------------------------------------------------------------------------------


Pricer = Callable[[_Period, Any], Sequence[float]]  # (period, line or None)


@dataclass(frozen=True, slots=True)
class MarketType:
    """One market type: its BetPawa id and name, outcome names, and the lines it is offered at.

    ``period`` is ``"FT"``, ``"1H"`` or ``"2H"``; ``lines`` is empty for a market without a line.
    ``handicap_type`` is ``"asian"`` or ``"european"`` for handicap markets, whose ``line`` is the
    home team's handicap.
    """

    market_id: str
    name: str
    period: str
    outcomes: tuple[str, ...]
    price: Pricer = field(repr=False, compare=False)
    lines: tuple[float, ...] = ()
    handicap_type: str | None = None
    margin: float = field(default=0.0, repr=False)  # added to the bookmaker's margin
    core: bool = field(default=False, repr=False)  # every bookmaker offers it


def _steps(low: float, high: float, step: float = 0.25) -> tuple[float, ...]:
    return tuple(low + i * step for i in range(round((high - low) / step) + 1))


def _catalogue() -> tuple[MarketType, ...]:
    """Every market type. Ids are numbered in table order from 3743 ("1X2 - FT"): add new types
    at the end so that existing ids stay."""
    types: list[MarketType] = []
    one_x_two, yes_no, over_under = ("1", "X", "2"), ("Yes", "No"), ("Over", "Under")
    exotic = 0.02  # correct scores, combinations and the like carry a higher margin
    halves = ("FT", "1H", "2H")
    whole = ("",)  # a whole-match market: no period in its name

    def add(
        name: str,
        outcomes: tuple[str, ...] | dict[str, tuple[str, ...]],
        price: Pricer,
        lines: dict[str, tuple[float, ...]] | None = None,
        handicap: str | None = None,
        margin: float = 0.0,
        periods: tuple[str, ...] = halves,
    ) -> None:
        for period in periods:
            names = outcomes[period] if isinstance(outcomes, dict) else outcomes
            types.append(
                MarketType(
                    str(3743 + len(types)),
                    f"{name} - {period}" if period else name,
                    period or "FT",
                    names,
                    price,
                    lines[period] if lines else (),
                    handicap,
                    margin,
                )
            )

    def per(ft: tuple[float, ...], half: tuple[float, ...]) -> dict[str, tuple[float, ...]]:
        return {"FT": ft, "1H": half, "2H": half}

    add("1X2", one_x_two, lambda m, _: _three(m.goals.diff))
    add("Double Chance", ("1X", "12", "X2"), lambda m, _: _double_chance(_three(m.goals.diff)))
    add("Draw No Bet", ("1", "2"), lambda m, _: _asian(m.goals.diff, 0.0))
    add(
        "Over/Under",
        over_under,
        lambda m, line: _asian(m.goals.total, line),
        {"FT": _steps(0.5, 6.5, 1), "1H": _steps(0.5, 3.5, 1), "2H": _steps(0.5, 4.5, 1)},
    )
    add(
        "Asian Handicap",
        ("1", "2"),
        lambda m, line: _asian(m.goals.diff, -line),
        per(_steps(-2.0, 2.0), _steps(-1.0, 1.0)),
        "asian",
    )
    add(
        "Asian Over/Under",
        over_under,
        lambda m, line: _asian(m.goals.total, line),
        per((1.75, 2.0, 2.25, 2.75, 3.0, 3.25), (0.75, 1.0, 1.25)),
    )
    add(
        "European Handicap",
        one_x_two,
        lambda m, line: _three(m.goals.diff, line),
        per((-3.0, -2.0, -1.0, 1.0, 2.0, 3.0), (-2.0, -1.0, 1.0, 2.0)),
        "european",
    )
    add("Both Teams To Score", yes_no, lambda m, _: _yes((1 - m.goals.home.pmf[0]) * (1 - m.goals.away.pmf[0])))
    scores = tuple(f"{i}-{j}" for i in range(5) for j in range(5)) + ("Other",)
    half_scores = tuple(f"{i}-{j}" for i in range(3) for j in range(3)) + ("Other",)
    add(
        "Correct Score",
        {"FT": scores, "1H": half_scores, "2H": half_scores},
        lambda m, _: _correct_score(m.goals, 4 if m.halves else 2),
        margin=exotic,
    )
    add("Odd/Even", ("Odd", "Even"), lambda m, _: _odd(m.goals.total))

    def team_totals(side: str, team: int) -> None:
        add(
            f"{side} Team Over/Under",
            over_under,
            lambda m, line: _asian(m.goals.teams[team], line),
            per(_steps(0.5, 3.5, 1), (0.5, 1.5)),
        )

    team_totals("Home", 0)
    team_totals("Away", 1)
    add(
        "Exact Goals",
        {"FT": ("0", "1", "2", "3", "4", "5", "6+"), "1H": ("0", "1", "2", "3+"), "2H": ("0", "1", "2", "3+")},
        lambda m, _: _buckets(m.goals.total, range(7 if m.halves else 4)),
        margin=exotic,
    )

    def team_goals(side: str, team: int) -> None:
        other = 1 - team
        add(
            f"{side} Exact Goals",
            ("0", "1", "2", "3+"),
            lambda m, _: _buckets(m.goals.teams[team], range(4)),
            margin=exotic,
        )
        add(f"{side} Odd/Even", ("Odd", "Even"), lambda m, _: _odd(m.goals.teams[team]))
        add(f"{side} Clean Sheet", yes_no, lambda m, _: _yes(m.goals.teams[other].pmf[0]))
        add(
            f"{side} Win To Nil",
            yes_no,
            lambda m, _: _yes(m.goals.teams[other].pmf[0] * (1 - m.goals.teams[team].pmf[0])),
        )
        add(f"{side} To Score", yes_no, lambda m, _: _yes(1 - m.goals.teams[team].pmf[0]))

    team_goals("Home", 0)
    team_goals("Away", 1)
    add(
        "1X2 & Both Teams To Score",
        ("1 & Yes", "1 & No", "X & Yes", "X & No", "2 & Yes", "2 & No"),
        lambda m, _: tuple(p for row in m.goals.rb for p in row),
        margin=exotic,
    )
    add(
        "1X2 & Over/Under",
        ("1 & Over", "1 & Under", "X & Over", "X & Under", "2 & Over", "2 & Under"),
        lambda m, line: tuple(p for row in m.goals.rt for p in _split(row, line)),
        per((1.5, 2.5, 3.5), (0.5, 1.5)),
        margin=exotic,
    )
    add(
        "Double Chance & Both Teams To Score",
        ("1X & Yes", "1X & No", "12 & Yes", "12 & No", "X2 & Yes", "X2 & No"),
        lambda m, _: _dc_split(m.goals.rb),
        margin=exotic,
    )
    add(
        "Double Chance & Over/Under",
        ("1X & Over", "1X & Under", "12 & Over", "12 & Under", "X2 & Over", "X2 & Under"),
        lambda m, line: _dc_split([_split(row, line) for row in m.goals.rt]),
        per((1.5, 2.5, 3.5), (0.5, 1.5)),
        margin=exotic,
    )
    add(
        "Both Teams To Score & Over/Under",
        ("Yes & Over", "Yes & Under", "No & Over", "No & Under"),
        lambda m, line: tuple(p for row in m.goals.bt for p in _split(row, line)),
        per((1.5, 2.5, 3.5), (1.5,)),
        margin=exotic,
    )
    add(
        "Winning Margin",
        ("1 by 1", "1 by 2", "1 by 3+", "X", "2 by 1", "2 by 2", "2 by 3+"),
        lambda m, _: _winning_margin(m.goals.diff),
        margin=exotic,
    )
    add(
        "Goal Range",
        {"FT": ("0-1", "2-3", "4-5", "6+"), "1H": ("0", "1", "2+"), "2H": ("0", "1", "2+")},
        lambda m, _: _buckets(m.goals.total, (0, 2, 4, 6) if m.halves else (0, 1, 2)),
        margin=exotic,
    )
    add("First Team To Score", ("1", "No goal", "2"), lambda m, _: _first_to_score(m.goals))
    add("Last Team To Score", ("1", "No goal", "2"), lambda m, _: _first_to_score(m.goals))
    add(
        "Corners Over/Under",
        over_under,
        lambda m, line: _asian(m.corners.total, line),
        per(_steps(7.5, 12.5, 1), _steps(3.5, 5.5, 1)),
    )
    add("Corners 1X2", one_x_two, lambda m, _: _three(m.corners.diff))
    add(
        "Corners Asian Handicap",
        ("1", "2"),
        lambda m, line: _asian(m.corners.diff, -line),
        per(_steps(-2.5, 2.5, 1), _steps(-1.5, 1.5, 1)),
        "asian",
    )

    def team_corners(side: str, team: int) -> None:
        add(
            f"{side} Corners Over/Under",
            over_under,
            lambda m, line: _asian(m.corners.teams[team], line),
            per(_steps(3.5, 6.5, 1), _steps(1.5, 3.5, 1)),
        )

    team_corners("Home", 0)
    team_corners("Away", 1)
    add("Corners Odd/Even", ("Odd", "Even"), lambda m, _: _odd(m.corners.total))
    add(
        "Cards Over/Under",
        over_under,
        lambda m, line: _asian(m.cards.total, line),
        per(_steps(2.5, 6.5, 1), _steps(0.5, 3.5, 1)),
    )
    add("Cards 1X2", one_x_two, lambda m, _: _three(m.cards.diff))
    add(
        "Half Time/Full Time",
        tuple(f"{a}/{b}" for a in one_x_two for b in one_x_two),
        lambda m, _: _ht_ft(m),
        margin=exotic,
        periods=whole,
    )
    add("Highest Scoring Half", ("1st", "2nd", "Equal"), lambda m, _: _highest_half(m), periods=whole)

    def team_halves(side: str, team: int) -> None:
        result = 2 * team  # index of this team's win in (1, X, 2)
        add(
            f"{side} Score Both Halves",
            yes_no,
            lambda m, _: _yes(_both_halves(m, lambda h: 1 - h.goals.teams[team].pmf[0])),
            periods=whole,
        )
        add(
            f"{side} Win Both Halves",
            yes_no,
            lambda m, _: _yes(_both_halves(m, lambda h: _three(h.goals.diff)[result])),
            margin=exotic,
            periods=whole,
        )
        add(
            f"{side} Win Either Half",
            yes_no,
            lambda m, _: _yes(_both_halves(m, lambda h: _three(h.goals.diff)[result], either=True)),
            periods=whole,
        )

    team_halves("Home", 0)
    team_halves("Away", 1)
    add(
        "Goal In Both Halves",
        yes_no,
        lambda m, _: _yes(_both_halves(m, lambda h: 1 - h.goals.total.pmf[0])),
        periods=whole,
    )

    core = {
        "1X2 - FT",
        "Double Chance - FT",
        "Draw No Bet - FT",
        "Over/Under - FT",
        "Asian Handicap - FT",
        "Both Teams To Score - FT",
        "Correct Score - FT",
        "Odd/Even - FT",
        "Half Time/Full Time",
    }
    return tuple(replace(t, core=t.name in core) for t in types)


MARKET_TYPES: tuple[MarketType, ...] = _catalogue()
"""Every market type the feed prices, in catalogue order."""


@dataclass(frozen=True, slots=True)
class Spec:
    """One market line of the catalogue: the fixed part of its market dict."""

    type: MarketType
    line: float | None
    handicap_home: float | None
    handicap_away: float | None


def _specs() -> tuple[Spec, ...]:
    specs = []
    for t in MARKET_TYPES:
        if not t.lines:
            specs.append(Spec(t, None, None, None))
        for line in t.lines:  # 0.0 - line: a handicap of 0 is 0.0 for both teams, never -0.0
            specs.append(Spec(t, line, line, 0.0 - line) if t.handicap_type else Spec(t, line, None, None))
    return tuple(specs)


SPECS = _specs()
CORE = tuple(i for i, s in enumerate(SPECS) if s.type.core)
OPTIONAL = tuple(i for i, s in enumerate(SPECS) if not s.type.core)
