"""Running work on a SLURM cluster: transports (OpenSSH, local), command builders, parsers, states, staging.

Generic: nothing here knows about corpora.
"""
