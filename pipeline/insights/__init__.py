"""insights: monthly event dumps -> PostgreSQL, with per-month and all-time analyses (spec 001)."""
