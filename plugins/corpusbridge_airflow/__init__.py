"""Airflow adapters for corpusbridge: hooks, operators, sensors, triggers."""
