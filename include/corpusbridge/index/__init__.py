"""Full-text indexes of clean documents: PostgreSQL FTS by default, Elasticsearch optional, and search."""
