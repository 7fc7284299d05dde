-- The dial log, first version. Applied once, in one transaction, by
-- webdial at start (see src/calls/sqlite.rs); never edit a migration that
-- has shipped: add the next file instead.

-- Every dial and action that was sent to a PBX, by the gateway id its
-- answer carried. Ids are ULIDs, so they sort by time: lists and pages go
-- by id.
CREATE TABLE calls (
    id        TEXT PRIMARY KEY NOT NULL,
    created   INTEGER NOT NULL,          -- when it was asked for, Unix milliseconds
    branch    TEXT NOT NULL,
    action    TEXT NOT NULL,             -- dial, hangup, transfer, …
    extension TEXT NOT NULL,
    number    TEXT NOT NULL,             -- as received
    dialled   TEXT,                      -- after the branch's number rules
    call_id   TEXT,                      -- the PBX's id of the call
    dial_id   TEXT,                      -- an action on an earlier dial: that dial's id
    key       TEXT NOT NULL,             -- the API key's name
    state     TEXT NOT NULL,
    status    TEXT NOT NULL,
    message   TEXT
) WITHOUT ROWID;

-- Retention deletes by age; a key scoped to some branches lists by branch.
CREATE INDEX calls_created ON calls (created);
CREATE INDEX calls_branch ON calls (branch, id);

-- Call events, each kept whole as JSON; tied to a dial when known.
CREATE TABLE events (
    id      TEXT PRIMARY KEY NOT NULL,
    at      INTEGER NOT NULL,            -- when webdial received it, Unix milliseconds
    branch  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    dial_id TEXT,
    call_id TEXT,
    body    TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX events_dial ON events (dial_id, id);
CREATE INDEX events_at ON events (at);
