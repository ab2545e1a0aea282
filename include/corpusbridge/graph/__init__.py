"""The concept co-occurrence graph: merged from the payload's partial counts in the load's per-shard transaction
(load.py), its edge statistics (stats.py), queries (query.py) and files for other tools (export.py, svg.py)."""
