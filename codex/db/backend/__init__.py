"""PostgreSQL backend whose connections run as the restricted application role."""
