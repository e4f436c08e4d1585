"""pending touch indexes: a tick's cost follows the touches due, not the touches kept

(state, due_at) indexed every touch ever planned. Most touches are `sent` with a past
due time and most `planned` ones lie ahead, but column statistics multiply the two, so
"planned and due by now" looked like a fifth of the table and PostgreSQL scanned all of
it (skip_superseded, the count of due e-mails; these now read the queue in due order
with a limit, see touchrows.py, a plan that does not hang on that guess). Two partial
indexes hold only the pending rows:
- (due_at, id) of the planned touches: the queue, in the order claims take it, so a
  claim reads exactly the rows it takes and sorts nothing;
- claimed_at of the touches in `sending`: the claims whose lease may run out.
A touch leaves both once it is recorded, so neither grows with the history.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_touches_planned_due",
        "touches",
        ["due_at", "id"],
        postgresql_where=sa.text("state = 'planned'"),
        sqlite_where=sa.text("state = 'planned'"),
    )
    op.create_index(
        "ix_touches_sending",
        "touches",
        ["claimed_at"],
        postgresql_where=sa.text("state = 'sending'"),
        sqlite_where=sa.text("state = 'sending'"),
    )
    op.drop_index("ix_touches_state_due", table_name="touches")


def downgrade() -> None:
    op.create_index("ix_touches_state_due", "touches", ["state", "due_at"])
    op.drop_index("ix_touches_sending", table_name="touches")
    op.drop_index("ix_touches_planned_due", table_name="touches")
