"""Running: the parameters and profiles, the paper's protocol and numbers, the run context, the caches, the
results files, the study runner and the command line."""
