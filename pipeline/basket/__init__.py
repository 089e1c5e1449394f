"""basket: Instacart-style order features behind a write-audit-publish data-quality audit."""
