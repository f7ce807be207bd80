-- Odds history: what each bookmaker showed for each event, every scrape, for the retention period.
-- depends: 0002_scrape
--
-- odds_snapshots and market_odds are partitioned by range on captured_at, one partition per UTC
-- day, both with the same bounds, so a day of history is dropped as a unit (never deleted row by
-- row). There is no DEFAULT partition: a row whose day has no partition is an error, not a
-- silent 24 GB catch-all. Partitions are made by oddsstore_ensure_partitions (0004).
-- market_odds (every market of every snapshot) was replaced by the change log market_changes
-- and market_current in 0005_change_only, which moved its rows and dropped it.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * prefer-bigint-over-int: event_id and bookmaker_id have the type of the keys they
--     reference (0001_reference.sql); every market row carries them, 4 bytes each.
--   * require-lock-timeout, require-statement-timeout: every statement creates an object, or
--     comments on one, created in this migration. latest_snapshots' foreign keys take SHARE ROW
--     EXCLUSIVE on events and bookmakers (readers are not blocked) until this short migration
--     commits; their validation scans the new, empty table.
-- squawk-ignore-file prefer-bigint-over-int
-- squawk-ignore-file require-lock-timeout, require-statement-timeout

-- Snapshot ids come from a plain sequence, not an identity column: identity columns on
-- partitioned tables need PostgreSQL 17, and the write path reserves a batch's ids in one call.
create sequence odds_snapshots_id_seq as bigint;

create table odds_snapshots (
    id            bigint      not null default nextval('odds_snapshots_id_seq'),
    event_id      integer     not null,
    bookmaker_id  integer     not null,
    captured_at   timestamptz not null,
    scrape_run_id bigint,
    -- Default TOAST compression: lz4 would be faster, but not every server build has it
    -- (the embedded PostgreSQL 18 does not). Servers that do can set default_toast_compression.
    raw_response  jsonb,
    -- The natural key: one snapshot per event, bookmaker and moment. It contains the partition
    -- key (required on a partitioned table) and leads with event_id (a distribution column on
    -- Citus must be part of every unique key; docs/scaling.md). Its index serves the history
    -- of an event (odds_history) and the latest snapshot of a pair.
    constraint odds_snapshots_pkey primary key (event_id, bookmaker_id, captured_at)
) partition by range (captured_at);
-- No foreign keys to events, bookmakers and scrape_runs, on purpose: a day partition carrying
-- them makes retention's DROP TABLE take ACCESS EXCLUSIVE locks on those three tables (dropping
-- it removes their foreign-key triggers), queueing every reader and writer behind it; the
-- benchmark saw a concurrent writer deadlock there. The write path checks the ids of every
-- batch instead (merge_stage in queries/odds.sql raises SQLSTATE 23503 as a foreign key would),
-- and latest_snapshots, which every newest snapshot of a pair updates, keeps its foreign keys.
comment on table odds_snapshots is 'One scrape of one event at one bookmaker: proof the bookmaker was seen at captured_at. Daily partitions.';
comment on column odds_snapshots.id is 'Surrogate id (odds_snapshots_id_seq); market_odds.snapshot_id points here. Unique by construction, not by index.';
comment on column odds_snapshots.captured_at is 'When the scraper saw the odds (timestamptz, UTC day = partition).';
comment on column odds_snapshots.scrape_run_id is 'The scrape run that produced the snapshot, if the scraper reported one.';
comment on column odds_snapshots.raw_response is 'Optional full API response. Never read by the store; leave it null unless you need it for debugging (it was half the disk in production).';

create table market_odds (
    snapshot_id         bigint           not null,
    captured_at         timestamptz      not null,
    event_id            integer          not null,
    line                double precision,
    handicap_home       double precision,
    handicap_away       double precision,
    betpawa_market_id   text             not null,
    betpawa_market_name text             not null,
    handicap_type       text,
    outcomes            jsonb            not null
) partition by range (captured_at);
-- No primary key and no foreign key to odds_snapshots, on purpose:
--  * a foreign key into the partitioned snapshot table cost 4.5x of COPY throughput in a
--    measurement on a 2-core machine before this schema was written, and would have to carry
--    captured_at anyway;
--  * (snapshot_id, betpawa_market_id, line) is unique by construction: the write path rejects a
--    snapshot listing the same market and line twice, and each snapshot gets fresh ids from the
--    sequence inside the transaction that writes its markets.
comment on table market_odds is 'Every market of every snapshot (outcomes as JSONB). Daily partitions, same bounds as odds_snapshots.';
comment on column market_odds.snapshot_id is 'The odds_snapshots row (id, captured_at) this market belongs to.';
comment on column market_odds.captured_at is 'Copy of the snapshot''s captured_at: the partition key, and lets a lookup by snapshot touch one partition.';
comment on column market_odds.event_id is 'Copy of the snapshot''s event_id: the distribution column if the table is ever distributed (docs/scaling.md).';
comment on column market_odds.betpawa_market_id is 'Market type id as on BetPawa ("3743" = 1X2 - FT). With line, identifies the market within a snapshot.';
comment on column market_odds.line is 'Over/under total or handicap line; null for markets without one.';
comment on column market_odds.handicap_type is 'european or asian for handicap markets; null otherwise.';
comment on column market_odds.outcomes is 'JSON array of {name, odds, is_active}; odds are decimal prices above 1.0.';

-- latest_odds and odds_history read the markets of given snapshots. Rows of a snapshot are
-- written together and snapshot ids grow with every batch, so within a day partition
-- snapshot_id follows the physical order: a BRIN index finds a snapshot's few pages at a
-- fraction of a B-tree's size and write cost (docs/schema.md has the measurement).
create index market_odds_snapshot_id_idx on market_odds using brin (snapshot_id) with (pages_per_range = 8);
comment on index market_odds_snapshot_id_idx is 'Markets of one snapshot: latest_odds, odds_history. BRIN: snapshot_id grows with the physical order.';

create table latest_snapshots (
    event_id     integer     not null,
    bookmaker_id integer     not null,
    snapshot_id  bigint      not null,
    captured_at  timestamptz not null,
    constraint latest_snapshots_pkey primary key (event_id, bookmaker_id),
    constraint latest_snapshots_event_id_fkey foreign key (event_id) references events (id),
    constraint latest_snapshots_bookmaker_id_fkey foreign key (bookmaker_id) references bookmakers (id)
);
-- Maintained by write_snapshots in the same transaction (one set-based upsert per batch), so
-- latest_odds and stale_odds never search the history: their cost does not grow with it.
comment on table latest_snapshots is 'The newest snapshot of each event x bookmaker pair within retention. Derived from odds_snapshots by the write path.';
