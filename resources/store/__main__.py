"""``python -m resources.store upgrade`` (migrate the store at ``$DATABASE_URL``, else the
embedded SQLite file, to head) or ``python -m resources.store revision MESSAGE`` (autogenerate
a migration after changing ``models.py``)."""

import sys

from resources.store.migrate import migrate, new_revision

if len(sys.argv) == 3 and sys.argv[1] == "revision":
    new_revision(sys.argv[2])
elif sys.argv[1:] in ([], ["upgrade"]):
    migrate()
else:
    sys.exit("usage: python -m resources.store [upgrade | revision MESSAGE]")
