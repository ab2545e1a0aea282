"""Plain functions the DAG tasks call: they resolve Connections and log progress."""
