"""A synchronous store for scrapers that do not use asyncio (requests, Scrapy, plain scripts).

:class:`SyncOddsStore` has every method of :class:`~oddsstore.store.OddsStore`, with the same
parameters, return values and errors, called without ``await``::

    from oddsstore.sync import SyncOddsStore

    with SyncOddsStore.connect("postgresql://user@host/db") as store:
        run = store.start_scrape_run("scheduled")
        store.write_snapshots(snapshots, scrape_run_id=run.id)
        store.finish_scrape_run(run.id, "completed", events_scraped=len(snapshots))

It is a thin wrapper, not a second implementation: an :class:`OddsStore` runs on an event loop
in a daemon thread of its own, and each call waits for its coroutine there. So it works from any
thread, several at once (their calls share the store's pool as tasks would), and from code that
runs an event loop of its own. Attributes that are not coroutines (``pool``, ``queries``,
``retention_days``, ...) are the wrapped store's.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from oddsstore.errors import StoreClosedError
from oddsstore.store import OddsStore

T = TypeVar("T")


class SyncOddsStore:
    """:class:`OddsStore`'s methods, blocking. Create one with :meth:`connect`; close it with
    :meth:`close` or a ``with`` block."""

    def __init__(self, store: OddsStore, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self._store = store
        self._loop = loop
        self._thread = thread
        self._closed = False

    @classmethod
    def connect(cls, dsn: str, **options: Any) -> SyncOddsStore:
        """Open a store on ``dsn``; ``options`` are :meth:`OddsStore.connect`'s
        (``retention_days``, ``connect_timeout``, pool options, ...).

        :raises OddsStoreError: as :meth:`OddsStore.connect` does; no thread is left behind.
        """
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="oddsstore-sync", daemon=True)
        thread.start()

        async def open_store() -> OddsStore:
            return await OddsStore.connect(dsn, **options)

        try:
            store = asyncio.run_coroutine_threadsafe(open_store(), loop).result()
        except BaseException:
            _stop(loop, thread)
            raise
        return cls(store, loop, thread)

    def close(self) -> None:
        """Close the pool (waiting for calls in progress) and stop the loop's thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._store.close(), self._loop).result()
        finally:
            _stop(self._loop, self._thread)

    def __enter__(self) -> SyncOddsStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        @functools.wraps(attribute)
        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._wait(attribute(*args, **kwargs))

        return blocking

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(name for name in dir(self._store) if not name.startswith("_"))})

    def _wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coroutine.close()
            raise StoreClosedError("this SyncOddsStore is closed")
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a SyncOddsStore cannot be called from its own event loop; use the OddsStore")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()
