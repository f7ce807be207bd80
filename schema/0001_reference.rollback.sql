-- Rolls back 0001_reference: drops the reference tables (and everything in them).
drop table event_bookmakers;
drop table events;
drop table bookmakers;
drop table tournaments;
drop table sports;
