"""Per-team limits on LLM calls per minute, exact across processes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 16:20:00

- teams.calls_per_minute: the team's limit (0: none).
- team_call_rates: one row per limited team, its GCRA state (the "theoretical arrival
  time" of the next call). A limited team's call takes a place or is refused with one
  conditional upsert of that row (server/storage/jobs.py), so every server process and
  replica shares one exact count; teams without a limit never get a row or a write.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE teams ADD COLUMN calls_per_minute INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD CONSTRAINT ck_teams_calls_per_minute CHECK (calls_per_minute >= 0);
CREATE TABLE team_call_rates (
    team_id TEXT NOT NULL,
    tat TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_team_call_rates PRIMARY KEY (team_id),
    CONSTRAINT fk_team_call_rates_team_id FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
);
"""

DOWNGRADE = """
DROP TABLE team_call_rates;
ALTER TABLE teams DROP CONSTRAINT ck_teams_calls_per_minute;
ALTER TABLE teams DROP COLUMN calls_per_minute;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
