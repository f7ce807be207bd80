"""Benchmarks of oddsstore against the seed plan's SQLAlchemy baseline."""
