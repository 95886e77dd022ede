-- Feature flags now gate behaviour (server/src/access/features.rs). The Hocuspocus dialect is a
-- shipped, tested way to connect, so it is on unless an organization turns it off; with the old
-- default (false) every existing Hocuspocus client would have been refused the day the flag began
-- to count.
UPDATE feature_flags SET default_value = 'true' WHERE key = 'hocuspocus';
UPDATE feature_flags SET description = 'Largest canvas zoom factor the client offers (a number from 1 to 64)'
    WHERE key = 'canvas.max_zoom';
