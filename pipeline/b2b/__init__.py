"""b2b (seed 003): a B2B shop's companies, customers, products and orders, loaded once and then
daily from generated quotes, CRM leads and web logs, with snapshots and reports."""
