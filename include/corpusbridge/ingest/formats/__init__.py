"""One parser per scholarly format. Each turns bytes into Records or Quarantined items, streaming."""
