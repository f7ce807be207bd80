-- Rolls back 0003_odds: drops the odds history (all partitions go with their parents).
drop table latest_snapshots;
drop table market_odds;
drop table odds_snapshots;
drop sequence odds_snapshots_id_seq;
