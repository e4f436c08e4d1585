"""lead language, owner and consent: columns of their own

A lead's language (BCP 47), its sales owner and where and when it gave its consent were
CSV attributes (`attrs`); conditions, calls, letters and the From identity read them, so
they become columns, checked on import. The values already in `attrs` move over: an
`owner` attribute to `owner`, a `language` (else `locale`) attribute to `language` when
Babel knows it (one it does not stays an attribute, where it was).

Revision ID: 0013
Revises: 0012
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from dripper.store.tables import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("language", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("owner", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("consent_source", sa.String(300), nullable=False, server_default=""))
        batch.add_column(sa.Column("consent_at", UTCDateTime))
    _move_attributes()


def _move_attributes() -> None:
    """The owner and language attributes into their columns, a batch of leads at a time."""
    from dripper.leads.records import LeadError, normalize_language

    conn = op.get_bind()
    leads = sa.table(
        "leads",
        sa.column("id", sa.BigInteger),
        sa.column("attrs", sa.JSON),
        sa.column("language", sa.String),
        sa.column("owner", sa.String),
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(leads.c.id, leads.c.attrs).where(leads.c.id > last).order_by(leads.c.id).limit(_BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        for lead_id, stored in rows:
            attrs: dict[str, Any] = dict(json.loads(stored) if isinstance(stored, str) else stored or {})
            values: dict[str, Any] = {}
            owner = attrs.get("owner")
            if isinstance(owner, str) and owner.strip() and len(owner.strip()) <= 200:
                values["owner"] = attrs.pop("owner").strip()
            for key in ("language", "locale"):
                tag = attrs.get(key)
                if isinstance(tag, str) and tag.strip() and "language" not in values:
                    try:
                        values["language"] = normalize_language(tag)
                    except LeadError:
                        continue
                    if key == "language":
                        attrs.pop(key)
            if values:
                conn.execute(sa.update(leads).where(leads.c.id == lead_id).values(attrs=attrs, **values))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("consent_at")
        batch.drop_column("consent_source")
        batch.drop_column("owner")
        batch.drop_column("language")
