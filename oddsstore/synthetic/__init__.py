"""A synthetic odds feed for the demo, the benchmarks and the tests; not part of the store.

:mod:`oddsstore.synthetic.feed` produces scrape cycles; :mod:`oddsstore.synthetic.catalogue`
holds the market types and the price model behind them.
"""
