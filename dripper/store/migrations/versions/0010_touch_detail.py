"""touch detail: what went wrong, in a column of its own beside the reason

A reason such as `smtp_retry` was stored with what went wrong glued after it
(`smtp_retry: 451 4.3.0 try later`), so counting or filtering by reason meant matching
prefixes. The reason column now holds the reason alone and `detail` the rest. `plan` and
`report` show them joined, as before.

Existing rows are split here by the prefixes dripper wrote until now (a frozen list: the
migration must not change when the reasons do). Text that starts with none of them stays
whole in `reason`.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Each prefix with what separated it from its detail.
_PREFIXES = (
    ("smtp_retry", ": "),
    ("retry", ": "),
    ("rate_limited", ": "),
    ("letters_unavailable", ": "),
    ("held", ": "),
    ("paused", " "),
    ("soft_bounce", ": "),
    ("smtp_error", ": "),
    ("render_error", ": "),
    ("permanent_error", ": "),
    ("gave_up", ": "),
)


def upgrade() -> None:
    op.add_column("touches", sa.Column("detail", sa.Text))
    for reason, separator in _PREFIXES:
        head = reason + separator
        # substr, not LIKE: `_` in a reason is a LIKE wildcard.
        op.execute(
            sa.text(
                "UPDATE touches SET detail = substr(reason, :after), reason = :reason "
                "WHERE substr(reason, 1, :length) = :head"
            ).bindparams(after=len(head) + 1, reason=reason, length=len(head), head=head)
        )


def downgrade() -> None:
    for reason, separator in _PREFIXES:
        op.execute(
            sa.text(
                "UPDATE touches SET reason = reason || :separator || detail "
                "WHERE reason = :reason AND detail IS NOT NULL"
            ).bindparams(reason=reason, separator=separator)
        )
    with op.batch_alter_table("touches") as batch:
        batch.drop_column("detail")
