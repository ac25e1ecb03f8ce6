"""The SQL transactional store (users, API keys, workspaces, uploads, idempotency keys, the
token ledger and balances, notifications, admin decisions): see ``client.Store`` and
docs/transactional-store.md."""

from resources.store.client import Store
from resources.store.migrate import migrate

__all__ = ["Store", "migrate"]
