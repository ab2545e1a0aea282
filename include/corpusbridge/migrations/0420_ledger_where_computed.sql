-- Where each loaded shard was computed, from the job-I.json the payload writes beside its result (not part of it:
-- the same inputs give the same result files on every backend). NULL for results written before the file existed.
ALTER TABLE load_ledger
    ADD COLUMN backend   text,   -- slurm | local
    ADD COLUMN slurm_job text,   -- <array job>_<index>, or the job id
    ADD COLUMN host      text;   -- the node (SLURMD_NODENAME) or the workstation
