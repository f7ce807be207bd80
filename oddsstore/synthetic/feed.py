"""A seeded, deterministic synthetic odds feed, shaped like what a scraper hands to the store.

Used by ``oddsstore demo``, the benchmarks and the tests. :class:`Feed` keeps a steady set of
upcoming football events, each shown by every bookmaker, and produces one scrape cycle per call:
per event and bookmaker, a :class:`FeedSnapshot` whose ``markets`` are plain dicts with exactly the
keys of :class:`oddsstore.records.MarketIn` (what a scraper has after parsing JSON; no Pydantic).

The model behind the prices (the catalogue and the price model are in :mod:`oddsstore.synthetic.catalogue`):

* Goals, corners and cards are independent Poisson counts per team (first half 45% of the
  match's rate); every market type of :data:`MARKET_TYPES` (129 types, 258 market lines) is priced
  from those distributions. Bookmakers add their own opinion (a little noise) and a margin of
  3-8%; odds are rounded to 2 decimals and kept within ``[1.01, 1000]``.
* Each bookmaker offers ``markets_per_snapshot`` of them per event: 31 core full-time markets
  plus a random choice of the rest, nine tenths of it shared with BetPawa's choice.
* Between two cycles each offered market changes price with probability ``change_rate``; at
  ``change_rate / 20`` it is suspended (every outcome ``is_active`` False) for 1-4 cycles, and at
  ``change_rate / 40`` it disappears for 1-6 cycles and comes back. Counting suspensions and
  resumptions, about ``1.1 * change_rate`` of the markets differ between two cycles.
* An event is scraped every cycle until its kickoff; then a new event (new key) takes its place,
  kicking off about ``horizon`` after it, so every cycle has ``events x bookmakers`` snapshots.

Market dicts are reused from one cycle to the next while they do not change, and outcome dicts are
shared between markets: treat everything the feed returns as immutable. At the pawa scale (1,300
events x 3 bookmakers x 170 markets) the first cycle takes a few seconds, later ones ~0.4 s, and the
feed holds ~500 MB.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from oddsstore.errors import InvalidInputError, UnknownReferenceError
from oddsstore.synthetic.catalogue import CORE, MARKET_TYPES, OPTIONAL, SPECS, MarketType, Spec, match_model

if TYPE_CHECKING:
    from oddsstore.records import Bookmaker, Event, EventBookmaker, Sport, Tournament

__all__ = [
    "MARKET_TYPES",
    "Feed",
    "FeedEvent",
    "FeedIds",
    "FeedSnapshot",
    "FeedStore",
    "MarketType",
    "register",
    "to_write",
]

Market = dict[str, Any]

# --- the feed ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """Reference data of one event, keyed by ``betpawa_event_id``."""

    betpawa_event_id: str
    tournament: str
    country: str
    home_team: str
    away_team: str
    kickoff: datetime


@dataclass(frozen=True, slots=True)
class FeedSnapshot:
    """What one bookmaker showed for one event in one cycle; ``markets`` are ``MarketIn`` dicts."""

    event_key: str
    bookmaker_slug: str
    captured_at: datetime
    markets: list[Market]


_TOURNAMENTS = (
    ("Premier League", "England"),
    ("Championship", "England"),
    ("LaLiga", "Spain"),
    ("Serie A", "Italy"),
    ("Bundesliga", "Germany"),
    ("Ligue 1", "France"),
    ("Eredivisie", "Netherlands"),
    ("Primeira Liga", "Portugal"),
    ("Super Lig", "Turkey"),
    ("Premiership", "Scotland"),
    ("NPFL", "Nigeria"),
    ("Premier League", "Ghana"),
    ("Premier League", "Kenya"),
    ("Premier League", "Uganda"),
    ("Premier League", "Tanzania"),
    ("Super League", "Zambia"),
    ("Premiership", "South Africa"),
    ("Serie A", "Brazil"),
    ("Liga Profesional", "Argentina"),
    ("MLS", "USA"),
)
_TOWNS = (
    "Aldwick Barrow Brenton Carlow Dunmore Easton Fairhaven Glenwood Harlow Ironbridge "
    "Kingsford Lakeside Marlow Newbury Oakham Portland Queensbury Redcliff Stanmore Thornbury "
    "Upton Westfield Yarmouth Ashby Bexley Clifton Denham Elmstead Fenwick Grafton "
).split()
_SUFFIXES = ("United", "City", "FC", "Rovers", "Athletic", "Town", "Wanderers", "Stars")
_BOOKMAKERS = (
    ("BetPawa", "betpawa", "https://www.betpawa.ng"),
    ("SportyBet", "sportybet", "https://www.sportybet.com"),
    ("Bet9ja", "bet9ja", "https://sports.bet9ja.com"),
)
_TEAMS_PER_TOURNAMENT = 18
_MAX_CENTS = 100_000  # odds of at most 1000.00


class _Book:
    """One bookmaker's markets for one event: the catalogue lines it offers and their dicts."""

    __slots__ = ("specs", "markets", "held", "margin")

    def __init__(self, specs: list[int], markets: list[Market], margin: float) -> None:
        self.specs = specs
        self.markets = markets
        self.held: dict[int, tuple[bool, int]] = {}  # slot -> (hidden, cycle it comes back)
        self.margin = margin


class _Live:
    __slots__ = ("event", "probs", "books")

    def __init__(self, event: FeedEvent, probs: list[Sequence[float]], books: list[_Book]) -> None:
        self.event, self.probs, self.books = event, probs, books


class Feed:
    """A steady stream of scrape cycles over ``events`` upcoming events and ``bookmakers``
    bookmakers.

    Args:
        events: events scraped per cycle (the pawa scale is 1,300).
        bookmakers: bookmakers per event; the first three are BetPawa, SportyBet and Bet9ja.
        seed: the same arguments always give the same output.
        start: time of cycle 0; must be timezone-aware.
        interval: time between two cycles.
        markets_per_snapshot: markets each bookmaker offers per event (31 to 258).
        change_rate: probability that an offered market changes price between two cycles.
        horizon: kickoffs lie up to this far after the current cycle.
    """

    def __init__(
        self,
        *,
        events: int,
        bookmakers: int = 3,
        seed: int = 0,
        start: datetime,
        interval: timedelta = timedelta(minutes=10),
        markets_per_snapshot: int = 170,
        change_rate: float = 0.05,
        horizon: timedelta = timedelta(days=4),
    ) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise InvalidInputError(f"start must be timezone-aware, got {start.isoformat()}")
        if events < 1 or bookmakers < 1:
            raise InvalidInputError(
                f"need at least one event and one bookmaker, got events={events}, bookmakers={bookmakers}"
            )
        if not len(CORE) <= markets_per_snapshot <= len(SPECS):
            raise InvalidInputError(
                f"markets_per_snapshot must lie in [{len(CORE)}, {len(SPECS)}], got {markets_per_snapshot}"
            )
        if not 0.0 <= change_rate <= 0.9:
            raise InvalidInputError(f"change_rate must lie in [0, 0.9], got {change_rate}")
        if interval <= timedelta(0) or horizon < timedelta(days=1):
            raise InvalidInputError(
                f"need interval > 0 and horizon >= 1 day, got interval={interval}, horizon={horizon}"
            )
        self.start, self.interval, self.horizon = start, interval, horizon
        self.markets_per_snapshot = markets_per_snapshot
        self.change_rate = change_rate
        self._events = events
        self._rng = random.Random(seed)
        rng = self._rng
        self.sport: dict[str, str] = {"name": "Football", "slug": "football"}
        self.tournaments: list[dict[str, str]] = [{"name": name, "country": country} for name, country in _TOURNAMENTS]
        self.bookmakers: list[dict[str, str]] = [
            {"name": name, "slug": slug, "base_url": url} for name, slug, url in _BOOKMAKERS[:bookmakers]
        ]
        self.bookmakers += [
            {"name": f"Bookmaker {n}", "slug": f"bookmaker{n}", "base_url": f"https://bookmaker{n}.example"}
            for n in range(len(_BOOKMAKERS) + 1, bookmakers + 1)
        ]
        self._margins = [0.05] + [rng.uniform(0.03, 0.06) for _ in range(bookmakers - 1)]
        self._teams = [
            [
                (f"{town} {suffix}", rng.gauss(0.0, 0.35))
                for town, suffix in zip(
                    rng.sample(_TOWNS, _TEAMS_PER_TOURNAMENT),
                    rng.choices(_SUFFIXES, k=_TEAMS_PER_TOURNAMENT),
                    strict=True,
                )
            ]
            for _ in _TOURNAMENTS
        ]
        self._live: list[_Live] = []
        self._seen: dict[str, FeedEvent] = {}
        self._serial = 0
        self._next = 0
        # Outcome dicts are shared (by name, then odds in cents): far fewer objects to build and
        # to hold, and no tuple keys for the garbage collector to track.
        self._active: defaultdict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        self._suspended: defaultdict[str, dict[int, dict[str, Any]]] = defaultdict(dict)

    @property
    def events_seen(self) -> Mapping[str, FeedEvent]:
        """Every event that has appeared in a cycle, by ``betpawa_event_id`` (read-only view)."""
        return MappingProxyType(self._seen)

    def captured_at(self, index: int) -> datetime:
        """Time of cycle ``index``: ``start + index * interval``."""
        return self.start + index * self.interval

    def cycle(self, index: int) -> list[FeedSnapshot]:
        """Produce cycle ``index``: one snapshot per live event and bookmaker.

        Cycles must be produced in order, from 0. Returns ``events x bookmakers`` snapshots,
        ordered by event slot then bookmaker.
        """
        if index != self._next:
            raise InvalidInputError(f"cycles are produced in order: expected cycle {self._next}, got {index}")
        self._next += 1
        now = self.captured_at(index)
        if index == 0:
            for _ in range(self._events):
                offset = self._rng.uniform(600.0, self.horizon.total_seconds())
                self._live.append(self._new_event(_quarter_hour(now + timedelta(seconds=offset))))
        for slot, live in enumerate(self._live):
            if live.event.kickoff <= now:
                jitter = timedelta(minutes=15 * self._rng.randint(-24, 24))
                kickoff = max(live.event.kickoff + self.horizon + jitter, now + timedelta(days=1))
                self._live[slot] = self._new_event(_quarter_hour(kickoff))
        if index > 0:
            self._step(index)
        slugs = [b["slug"] for b in self.bookmakers]
        out: list[FeedSnapshot] = []
        for live in self._live:
            key = live.event.betpawa_event_id
            for slug, book in zip(slugs, live.books, strict=True):
                markets = list(book.markets)
                if book.held:
                    for slot in sorted((s for s, (hidden, _) in book.held.items() if hidden), reverse=True):
                        del markets[slot]
                out.append(FeedSnapshot(key, slug, now, markets))
        return out

    # --- internals ---

    def _new_event(self, kickoff: datetime) -> _Live:
        rng = self._rng
        t = rng.randrange(len(_TOURNAMENTS))
        (home, s_home), (away, s_away) = rng.sample(self._teams[t], 2)
        edge = s_home - s_away
        goals = (
            _q(1.3 * math.exp(0.12 + 0.5 * edge + rng.gauss(0, 0.08)), 0.02, 0.2, 4.0),
            _q(1.3 * math.exp(-0.12 - 0.5 * edge + rng.gauss(0, 0.08)), 0.02, 0.2, 4.0),
        )
        corners = (
            _q(5.2 * math.exp(0.2 * edge + rng.gauss(0, 0.1)), 0.1, 2.0, 9.0),
            _q(4.4 * math.exp(-0.2 * edge + rng.gauss(0, 0.1)), 0.1, 2.0, 9.0),
        )
        cards = (_q(rng.uniform(1.4, 2.6), 0.1, 0.5, 4.0), _q(rng.uniform(1.5, 2.8), 0.1, 0.5, 4.0))
        periods = match_model(goals, corners, cards)
        probs = [s.type.price(periods[s.type.period], s.line) for s in SPECS]
        self._serial += 1
        name, country = _TOURNAMENTS[t]
        event = FeedEvent(str(30_000_000 + self._serial * 7), name, country, home, away, kickoff)
        self._seen[event.betpawa_event_id] = event
        # BetPawa picks its optional markets; the others offer mostly the same, a tenth differs
        extra = self.markets_per_snapshot - len(CORE)
        picked = rng.sample(OPTIONAL, extra)
        others = sorted(set(OPTIONAL) - set(picked))
        swap = min(extra // 10, len(others))
        books = []
        for number, margin in enumerate(self._margins):
            own = picked if number == 0 else rng.sample(picked, extra - swap) + rng.sample(others, swap)
            specs = sorted((*CORE, *own))
            markets = [
                self._market(
                    SPECS[i],
                    self._price(SPECS[i].type.outcomes, probs[i], 1.0 + margin + SPECS[i].type.margin, 0.03),
                )
                for i in specs
            ]
            books.append(_Book(specs, markets, margin))
        return _Live(event, probs, books)

    def _step(self, index: int) -> None:
        """Bring back held markets that are due, then change, suspend or hide random ones."""
        rng = self._rng
        change, suspend = self.change_rate, self.change_rate / 20
        rate = self.change_rate * (1 + 1 / 20 + 1 / 40)
        for live in self._live:
            for book in live.books:
                if book.held:
                    for slot, (hidden, until) in list(book.held.items()):
                        if until <= index:
                            del book.held[slot]
                            if not hidden or rng.random() < 0.5:
                                self._move(live, book, slot)
        # Each market is hit with probability `rate`: jump from hit to hit by geometric gaps
        # instead of drawing a number for every one of the ~663,000 markets.
        log_stay = math.log1p(-rate)
        if log_stay == 0.0:
            return

        def gap() -> int:  # markets passed over before the next hit
            return int(min(math.log(1.0 - rng.random()) / log_stay, 1e18))

        pos = gap()
        for live in self._live:
            for book in live.books:
                n = len(book.markets)
                while pos < n:
                    if pos not in book.held:
                        kind = rng.random() * rate
                        if kind < change:
                            self._move(live, book, pos)
                        elif kind < change + suspend:
                            old = book.markets[pos]
                            book.markets[pos] = {
                                **old,
                                "outcomes": [
                                    self._outcome(o["name"], round(o["odds"] * 100), False) for o in old["outcomes"]
                                ],
                            }
                            book.held[pos] = (False, index + rng.randint(1, 4))
                        else:
                            book.held[pos] = (True, index + rng.randint(1, 6))
                    pos += 1 + gap()
                pos -= n

    def _move(self, live: _Live, book: _Book, slot: int) -> None:
        """Re-price one market: drift from its current prices, pulled back towards the model."""
        spec = SPECS[book.specs[slot]]
        true = live.probs[book.specs[slot]]
        old = book.markets[slot]["outcomes"]
        factor = 1.0 + book.margin + spec.type.margin
        drifted = [0.8 / (o["odds"] * factor) + 0.2 * p for o, p in zip(old, true, strict=True)]
        scale = sum(true) / sum(drifted)
        outcomes = self._price(spec.type.outcomes, [p * scale for p in drifted], factor, 0.06)
        if all(a is b for a, b in zip(outcomes, old, strict=True)):
            # too small a move to show at 2 decimals: move the longest price by one tick
            i = max(range(len(outcomes)), key=lambda k: outcomes[k]["odds"])
            cents = round(outcomes[i]["odds"] * 100)
            cents += -1 if cents >= _MAX_CENTS else 1
            outcomes[i] = self._outcome(outcomes[i]["name"], cents, True)
        book.markets[slot] = {**book.markets[slot], "outcomes": outcomes}

    def _price(self, names: Sequence[str], probs: Sequence[float], factor: float, noise: float) -> list[dict[str, Any]]:
        """Active outcomes priced from ``probs`` with margin ``factor - 1``, each probability
        first moved by a random factor within ``1 +- noise`` (the bookmaker's own view) and the
        whole rescaled to the same total."""
        rnd, active = self._rng.random, self._active
        low, spread = 1.0 - noise, 2.0 * noise
        noisy = [p * (low + spread * rnd()) for p in probs]
        factor *= sum(probs) / (sum(noisy) or 1.0)  # the opinion moves prices, not the margin
        out = []
        for name, p in zip(names, noisy, strict=True):
            q = p * factor
            if q * _MAX_CENTS <= 100.0:
                cents = _MAX_CENTS
            else:
                cents = int(100.0 / q + 0.5)
                if cents < 101:
                    cents = 101
            by_cents = active[name]
            found = by_cents.get(cents)
            if found is None:
                found = by_cents[cents] = {"name": name, "odds": cents / 100, "is_active": True}
            out.append(found)
        return out

    def _outcome(self, name: str, cents: int, active: bool) -> dict[str, Any]:
        """The shared outcome dict for these values (many markets show the same outcome)."""
        by_cents = (self._active if active else self._suspended)[name]
        found = by_cents.get(cents)
        if found is None:
            found = by_cents[cents] = {"name": name, "odds": cents / 100, "is_active": active}
        return found

    @staticmethod
    def _market(spec: Spec, outcomes: list[dict[str, Any]]) -> Market:
        return {
            "betpawa_market_id": spec.type.market_id,
            "betpawa_market_name": spec.type.name,
            "line": spec.line,
            "handicap_type": spec.type.handicap_type,
            "handicap_home": spec.handicap_home,
            "handicap_away": spec.handicap_away,
            "outcomes": outcomes,
        }


def _q(value: float, step: float, low: float, high: float) -> float:
    """Clamp and quantise a model rate (so that events share cached distributions)."""
    return round(min(max(value, low), high) / step) * step


def _quarter_hour(t: datetime) -> datetime:
    """``t`` rounded up to a quarter hour (kickoffs are at :00, :15, :30 or :45)."""
    down = t - timedelta(minutes=t.minute % 15, seconds=t.second, microseconds=t.microsecond)
    return down if down == t else down + timedelta(minutes=15)


# --- handing the feed to a store -----------------------------------------------------------------


class FeedStore(Protocol):
    """The part of the store's API :func:`register` uses (matched by shape)."""

    async def upsert_sport(self, name: str, slug: str) -> Sport: ...

    async def upsert_tournament(self, sport_id: int, name: str, country: str | None = None) -> Tournament: ...

    async def upsert_bookmaker(self, name: str, slug: str, base_url: str | None = None) -> Bookmaker: ...

    async def upsert_event(
        self, tournament_id: int, betpawa_event_id: str, home_team: str, away_team: str, kickoff: datetime
    ) -> Event: ...

    async def link_event_bookmaker(
        self, event_id: int, bookmaker_id: int, bookmaker_event_id: str | None = None, event_url: str | None = None
    ) -> EventBookmaker: ...


@dataclass
class FeedIds:
    """Database ids of what :func:`register` has registered; pass it back to register more."""

    sport: int | None = None
    tournaments: dict[tuple[str, str], int] = field(default_factory=dict)
    bookmakers: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    links: set[tuple[int, int]] = field(default_factory=set)


async def register(
    store: FeedStore, feed: Feed, snapshots: Sequence[FeedSnapshot], ids: FeedIds | None = None
) -> FeedIds:
    """Upsert the sport, tournaments, bookmakers, events and event-bookmaker links that
    ``snapshots`` need and ``ids`` does not hold yet.

    Args:
        store: the store (or anything with its reference-data methods).
        feed: the feed the snapshots came from.
        snapshots: one cycle (or any snapshots) of ``feed``.
        ids: what earlier calls registered; updated in place. ``None`` starts afresh.

    Returns:
        ``ids`` (or a new :class:`FeedIds`), holding every id :func:`to_write` needs.
    """
    ids = FeedIds() if ids is None else ids
    if ids.sport is None:
        ids.sport = (await store.upsert_sport(feed.sport["name"], feed.sport["slug"])).id
    for t in feed.tournaments:
        key = (t["name"], t["country"])
        if key not in ids.tournaments:
            ids.tournaments[key] = (await store.upsert_tournament(ids.sport, *key)).id
    urls = {b["slug"]: b["base_url"] for b in feed.bookmakers}
    for b in feed.bookmakers:
        if b["slug"] not in ids.bookmakers:
            ids.bookmakers[b["slug"]] = (await store.upsert_bookmaker(b["name"], b["slug"], b["base_url"])).id
    for snap in snapshots:
        event_id = ids.events.get(snap.event_key)
        if event_id is None:
            e = feed.events_seen[snap.event_key]
            event_id = ids.events[snap.event_key] = (
                await store.upsert_event(
                    ids.tournaments[(e.tournament, e.country)], e.betpawa_event_id, e.home_team, e.away_team, e.kickoff
                )
            ).id
        bookmaker_id = ids.bookmakers[snap.bookmaker_slug]
        if (event_id, bookmaker_id) not in ids.links:
            own_id = (
                snap.event_key if snap.bookmaker_slug == "betpawa" else f"{snap.bookmaker_slug[:2]}{snap.event_key}"
            )
            base = urls.get(snap.bookmaker_slug)
            await store.link_event_bookmaker(event_id, bookmaker_id, own_id, f"{base}/event/{own_id}" if base else None)
            ids.links.add((event_id, bookmaker_id))
    return ids


def to_write(snapshots: Sequence[FeedSnapshot], ids: FeedIds) -> list[dict[str, Any]]:
    """Turn feed snapshots into the dicts ``store.write_snapshots`` takes
    (``event_id``, ``bookmaker_id``, ``captured_at``, ``markets``).

    Raises:
        UnknownReferenceError: a snapshot's event or bookmaker is not in ``ids``; call
            :func:`register` first.
    """
    out = []
    for snap in snapshots:
        try:
            event_id, bookmaker_id = ids.events[snap.event_key], ids.bookmakers[snap.bookmaker_slug]
        except KeyError as exc:
            raise UnknownReferenceError(
                f"{exc.args[0]!r} is not registered; call register(store, feed, snapshots) first"
            ) from None
        out.append(
            {
                "event_id": event_id,
                "bookmaker_id": bookmaker_id,
                "captured_at": snap.captured_at,
                "markets": snap.markets,
            }
        )
    return out
