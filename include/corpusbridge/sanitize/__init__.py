"""Sanitation: raw documents (still carrying source markup) into clean, structured, searchable records."""
